"""Durable delivery of every outbound message.

Rows are written in the same transaction as the change that causes them (see
``bot.pipeline.ingest`` and ``bot.interactions``). The worker delivers them: cards are rendered
from the database at delivery time (so a burst of changes costs one update), messages of one
card go in order, each (surface, channel) lane has its own token bucket, failures retry with
exponential backoff and jitter (``Retry-After`` honoured), permanent failures stop at ``dead``.

A message's idempotency key is unique: the same change can never enqueue it twice. A crash
after commit and before delivery loses nothing (the row is still pending). A crash in the moment
between a surface accepting a message and the row being marked sent leaves it pending, so that
one message may be sent again after a restart (surfaces that can look up an earlier send by its
key avoid even that).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from bot.errors import BotError, NotFound, PermanentError, TransientError
from bot.pipeline.notify import MessageKind
from bot.ports import ChatSurface, Clock, MessageRef
from bot.ratelimit import TokenBucket
from bot.settings import RateLimit
from bot.store.cards import load_card
from bot.store.repo import CARD_REFS, OUTBOX

log = logging.getLogger(__name__)

BATCH = 500
MAX_BACKOFF = 300.0


@dataclass(frozen=True, slots=True)
class OutboxStats:
    pending: int
    dead: int
    oldest_age_s: float


def backoff(attempts: int, rng: random.Random) -> float:
    """Exponential backoff with full jitter: 1 s, 2 s, 4 s … capped at five minutes."""
    ceiling = min(MAX_BACKOFF, 2.0 ** max(attempts - 1, 0))
    return ceiling / 2 + rng.random() * ceiling / 2


class OutboxWorker:
    def __init__(
        self,
        engine: Engine,
        surfaces: Mapping[str, ChatSurface],
        clock: Clock,
        console_url: str,
        rate_limits: Mapping[str, RateLimit] | None = None,
        max_attempts: int = 12,
        on_delivered: Callable[[str, str, float], None] = lambda surface, kind, age: None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._monotonic = monotonic
        self._engine = engine
        self._surfaces = dict(surfaces)
        self._clock = clock
        self._console_url = console_url
        self._limits = dict(rate_limits or {})
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._max_attempts = max_attempts
        self._wake = asyncio.Event()
        self._rng = random.Random()
        self._on_delivered = on_delivered

    # public ----------------------------------------------------------------------------------

    def wake(self) -> None:
        """New rows were committed: deliver now rather than at the next poll."""
        self._wake.set()

    async def run(self, stop: asyncio.Event, poll: float = 1.0) -> None:
        while not stop.is_set():
            self._wake.clear()
            try:
                delay = await self.deliver_due()
            except Exception:  # the worker must outlive any bug in one delivery round
                log.exception("outbox round failed; retrying shortly")
                delay = poll
            wait = poll if delay is None else max(0.01, min(poll, delay))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    waiter = asyncio.ensure_future(self._wake.wait())
                    stopper = asyncio.ensure_future(stop.wait())
                    try:
                        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        waiter.cancel()
                        stopper.cancel()

    def stats(self) -> OutboxStats:
        with self._engine.connect() as conn:
            pending, oldest = conn.execute(
                select(func.count(), func.min(OUTBOX.c.created_at)).where(
                    OUTBOX.c.status == "pending"
                )
            ).one()
            dead = conn.execute(select(func.count()).where(OUTBOX.c.status == "dead")).scalar_one()
        age = 0.0 if oldest is None else (self._clock.now() - oldest).total_seconds()
        return OutboxStats(int(pending), int(dead), age)

    async def deliver_due(self) -> float | None:
        """Deliver what is due; return seconds until the next row is due (None: nothing)."""
        rows = await asyncio.to_thread(self._due)
        if not rows:
            return await asyncio.to_thread(self._next_due_in)
        lanes: dict[tuple[str, str], list[Any]] = {}
        for row in rows:
            lanes.setdefault((row.surface, row.channel), []).append(row)
        waits: list[float] = []
        async with asyncio.TaskGroup() as group:
            for lane, lane_rows in lanes.items():
                group.create_task(self._deliver_lane(lane, lane_rows, waits))
        return min(waits) if waits else 0.0

    # internals -------------------------------------------------------------------------------

    def _due(self) -> list[Any]:
        """Pending rows, most severe first, when at least one of them is due.

        Rows that are not due yet come along so that they keep blocking the later messages
        of their card (an update never overtakes the post it updates).
        """
        now = self._clock.now()
        with self._engine.connect() as conn:
            any_due = conn.execute(
                select(OUTBOX.c.id)
                .where(OUTBOX.c.status == "pending", OUTBOX.c.next_attempt_at <= now)
                .limit(1)
            ).first()
            if any_due is None:
                return []
            return list(
                conn.execute(
                    select(OUTBOX)
                    .where(OUTBOX.c.status == "pending")
                    .order_by(OUTBOX.c.severity_rank, OUTBOX.c.id)
                    .limit(BATCH)
                ).all()
            )

    def _next_due_in(self) -> float | None:
        with self._engine.connect() as conn:
            nxt = conn.execute(
                select(func.min(OUTBOX.c.next_attempt_at)).where(OUTBOX.c.status == "pending")
            ).scalar_one()
        if nxt is None:
            return None
        return max(0.0, (nxt - self._clock.now()).total_seconds())

    def _bucket(self, surface: str, channel: str) -> TokenBucket | None:
        limit = self._limits.get(f"{surface}:{channel}") or self._limits.get(surface)
        if limit is None:
            return None
        key = (surface, channel)
        if key not in self._buckets:
            self._buckets[key] = TokenBucket(limit.rate, limit.burst, self._monotonic)
        return self._buckets[key]

    async def _deliver_lane(
        self, lane: tuple[str, str], rows: list[Any], waits: list[float]
    ) -> None:
        surface_name, channel = lane
        blocked: set[str] = set()
        now = self._clock.now()
        # messages of one card go in id order, whatever the severity sort put first
        rows = sorted(rows, key=lambda r: (r.severity_rank, r.order_key, r.id))
        by_card: dict[str, list[Any]] = {}
        for row in rows:
            by_card.setdefault(row.order_key, []).append(row)
        ordered = sorted(by_card.values(), key=lambda rs: (rs[0].severity_rank, rs[0].id))
        bucket = self._bucket(surface_name, channel)
        for card_rows in ordered:
            for row in card_rows:
                if row.order_key in blocked:
                    break
                if row.next_attempt_at > now:
                    blocked.add(row.order_key)
                    waits.append((row.next_attempt_at - now).total_seconds())
                    break
                if bucket is not None:
                    wait = bucket.try_take()
                    if wait > 0:
                        waits.append(wait)
                        return
                ok = await self._deliver(row)
                if not ok:
                    blocked.add(row.order_key)
                    break

    async def _deliver(self, row: Any) -> bool:
        surface = self._surfaces.get(row.surface)
        if surface is None:
            await asyncio.to_thread(
                self._finish, row, "dead", f"no surface named {row.surface!r} is configured"
            )
            return False
        try:
            await self._send(surface, row)
        except TransientError as exc:
            if exc.retry_after is not None:
                bucket = self._bucket(row.surface, row.channel)
                if bucket is not None:
                    bucket.pause(exc.retry_after)
            await asyncio.to_thread(self._retry, row, str(exc), exc.retry_after)
            return False
        except NotFound as exc:
            await asyncio.to_thread(self._finish, row, "sent", f"skipped: {exc}")
            return True
        except PermanentError as exc:
            log.warning(
                "outbox %s to %s:%s failed for good: %s", row.kind, row.surface, row.channel, exc
            )
            await asyncio.to_thread(self._finish, row, "dead", str(exc))
            return False
        except (BotError, OSError, TimeoutError) as exc:
            await asyncio.to_thread(self._retry, row, f"{type(exc).__name__}: {exc}", None)
            return False
        await asyncio.to_thread(self._finish, row, "sent", "")
        age = (self._clock.now() - row.created_at).total_seconds()
        self._on_delivered(row.surface, row.kind, age)
        return True

    async def _send(self, surface: ChatSurface, row: Any) -> None:
        kind = MessageKind(row.kind)
        if kind is MessageKind.POST:
            card = await asyncio.to_thread(self._card, row.incident_id)
            ref = await surface.post(card, row.channel)
            await asyncio.to_thread(self._save_ref, row, ref)
            return
        ref = await asyncio.to_thread(self._ref, row)
        if ref is None:
            raise NotFound(f"no card of INC-{row.incident_id} on {row.surface}:{row.channel}")
        if kind is MessageKind.UPDATE:
            card = await asyncio.to_thread(self._card, row.incident_id)
            await surface.update(ref, card)
        else:
            text = json.loads(row.payload_json).get("text", "")
            await surface.reply(ref, text)

    def _card(self, incident_id: int) -> Any:
        with Session(self._engine) as session:
            return load_card(session, incident_id, self._console_url)

    def _ref(self, row: Any) -> MessageRef | None:
        with self._engine.connect() as conn:
            found = conn.execute(
                select(CARD_REFS.c.message_id).where(
                    CARD_REFS.c.incident_id == row.incident_id,
                    CARD_REFS.c.surface == row.surface,
                    CARD_REFS.c.channel == row.channel,
                )
            ).first()
        return MessageRef(row.surface, row.channel, found[0]) if found else None

    def _save_ref(self, row: Any, ref: MessageRef) -> None:
        now = self._clock.now()
        with self._engine.begin() as conn:
            conn.execute(
                CARD_REFS.delete().where(
                    CARD_REFS.c.incident_id == row.incident_id,
                    CARD_REFS.c.surface == row.surface,
                    CARD_REFS.c.channel == row.channel,
                )
            )
            conn.execute(
                CARD_REFS.insert(),
                [
                    {
                        "incident_id": row.incident_id,
                        "surface": row.surface,
                        "channel": ref.channel,
                        "message_id": ref.message_id,
                        "created_at": now,
                    }
                ],
            )
            conn.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id == row.id)
                .values(status="sent", sent_at=now, attempts=row.attempts + 1)
            )

    def _finish(self, row: Any, status: str, error: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id == row.id, OUTBOX.c.status == "pending")
                .values(
                    status=status,
                    sent_at=self._clock.now() if status == "sent" else None,
                    attempts=row.attempts + 1,
                    last_error=error,
                )
            )

    def _retry(self, row: Any, error: str, retry_after: float | None) -> None:
        attempts = row.attempts + 1
        if attempts >= self._max_attempts:
            log.warning(
                "outbox %s to %s:%s gave up after %d attempts: %s",
                row.kind,
                row.surface,
                row.channel,
                attempts,
                error,
            )
            self._finish(row, "dead", error)
            return
        delay = retry_after if retry_after is not None else backoff(attempts, self._rng)
        with self._engine.begin() as conn:
            conn.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id == row.id)
                .values(
                    attempts=attempts,
                    last_error=error,
                    next_attempt_at=self._clock.now() + timedelta(seconds=delay),
                )
            )
