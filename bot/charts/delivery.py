"""The chart in a card's thread: an outbox message kind that follows the card.

When the outbox records a card it just posted on a surface that takes files (a
:class:`ChartSurface`, Slack), it writes a ``chart`` message for that card in the same
transaction: so a chart never goes before its card, and a card that failed gets none. The
message has its own order key (a chart that waits never holds up the card's updates), the
lowest priority (it goes after every card message of its lane), and its own rate budget
(``<surface>.chart``, the file methods' tier, not the channel's post budget).

Delivering it must not hold up the lane either: the chart is drawn in the background
(:meth:`bot.charts.service.Charts.png_if_ready`), started when the card is posted, and the
message comes due a few seconds later; while the PNG is not there yet it is tried again
shortly (with backoff), and uploaded once it is. A permanent failure (a missing
``files:write`` scope, say) is written on the incident's timeline and audit trail and the
message stops (``dead``); a transient one is retried with backoff up to the outbox's attempt
limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import Connection, Engine

from bot.charts.png import caption
from bot.charts.service import Charts
from bot.errors import BotError, NotFound, PermanentError, TransientError
from bot.ports import Clock, MessageRef
from bot.store import audit
from bot.store.repo import OUTBOX, TIMELINE, card_ref, insert_ignore

log = logging.getLogger(__name__)

CHART = "chart"  # the outbox kind
LOW_PRIORITY = 2  # after a person's actions (0) and the bot's routine messages (1)
HEAD_START = timedelta(seconds=3)  # the chart is drawn meanwhile (started when the card posts)


@dataclass(frozen=True, slots=True)
class ChartFile:
    png: bytes
    filename: str
    title: str
    comment: str  # posted with the file
    alt: str  # what a screen reader says instead of the picture


@runtime_checkable
class ChartSurface(Protocol):
    """A surface that can put a picture in a card's thread."""

    async def upload_chart(self, ref: MessageRef, chart: ChartFile) -> None: ...


class ChartPending(TransientError):
    """The chart is still being drawn: try the message again shortly."""


def chart_failed(surface: str, error: str) -> str:
    return f"chart not posted in the {surface} thread: {error}"


class ChartDelivery:
    """What the outbox worker calls for ``chart`` messages."""

    def __init__(self, charts: Charts, engine: Engine, clock: Clock) -> None:
        self.charts = charts
        self._engine = engine
        self._clock = clock

    def after_post(
        self, conn: Connection, row: Any, ref: MessageRef, surface: object, now: datetime
    ) -> None:
        """In the transaction recording a posted card: its chart message, when the surface
        takes files."""
        if not isinstance(surface, ChartSurface) or row.incident_id is None:
            return
        chart_row = {
            "idempotency_key": f"chart:{row.surface}:{row.channel}:{row.incident_id}:"
            f"{ref.message_id}"[:255],
            "surface": row.surface,
            "channel": row.channel,
            "kind": CHART,
            "incident_id": row.incident_id,
            "order_key": f"chart:{row.order_key}",
            "payload_json": "{}",
            "severity_rank": row.severity_rank,
            "priority": LOW_PRIORITY,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now + HEAD_START,
            "created_at": now,
            "sent_at": None,
            "last_error": "",
        }
        insert_ignore(conn, OUTBOX, [chart_row], "idempotency_key")

    def posted(self, surface: object, incident_id: int | None) -> None:
        """A card was just posted: start drawing its chart, so it is ready when its message is
        due (a failure here is met again, and handled, when the message is sent)."""
        if isinstance(surface, ChartSurface) and incident_id is not None:
            with contextlib.suppress(BotError):
                self.charts.png_if_ready(incident_id)

    async def send(self, surface: object, row: Any, spend: Callable[[], Awaitable[None]]) -> bool:
        """Upload the incident's chart into its card's thread, spending its budget (``spend``)
        right before the upload. Raises ``ChartPending`` while it is drawn, ``NotFound`` when
        there is nothing to chart or no card (the message is then skipped), and the surface's
        errors otherwise (permanent ones are recorded first)."""
        if not isinstance(surface, ChartSurface):
            raise NotFound(f"{row.surface} takes no charts")
        ref = await asyncio.to_thread(self._ref, row)
        if ref is None:
            raise NotFound(f"no card of INC-{row.incident_id} on {row.surface}:{row.channel}")
        try:
            png = self.charts.png_if_ready(row.incident_id)
            if png is None:
                raise ChartPending(f"the chart of INC-{row.incident_id} is being drawn")
            chart = await self.charts.chart(row.incident_id)
            upload = ChartFile(
                png,
                f"INC-{row.incident_id}-{chart.rule_id}.png",
                chart.title,
                caption(chart),
                chart.describe()[:1000],
            )
            await spend()
            await surface.upload_chart(ref, upload)
        except NotFound:
            raise
        except PermanentError as exc:
            await asyncio.to_thread(self._record_failure, row, str(exc))
            raise
        return False

    def _ref(self, row: Any) -> MessageRef | None:
        with self._engine.connect() as conn:
            return card_ref(conn, row)

    def _record_failure(self, row: Any, error: str) -> None:
        now = self._clock.now()
        text = chart_failed(row.surface, error)
        log.warning("INC-%s: %s", row.incident_id, text)
        with self._engine.begin() as conn:
            conn.execute(
                TIMELINE.insert(),
                [
                    {
                        "incident_id": row.incident_id,
                        "at": now,
                        "actor": "bot",
                        "surface": row.surface,
                        "kind": "chart",
                        "text": text,
                    }
                ],
            )
            audit.append(
                conn,
                [
                    {
                        "at": now,
                        "actor": "bot",
                        "surface": row.surface,
                        "action": "chart",
                        "incident_id": row.incident_id,
                        "result": "failed",
                        "detail": text,
                    }
                ],
            )
