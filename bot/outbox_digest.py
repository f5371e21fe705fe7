"""The storm digest: in a storm, one message per channel listing the incidents whose card still
waits for its turn.

Posted once more than ``digest_after`` cards wait in a channel; while cards wait it is edited at
least every ``DIGEST_EVERY`` seconds when what waits has changed (counts by severity, most severe
first; critical incidents are never only in a digest: they are posted first), and it says so at
once when every card is out.

Its state lives in the database (``storm_digests``), not in a worker: where the message is, a
hash of the incidents it shows, when it was last edited, and which worker is posting or editing
it right now (``claimed_by``/``claimed_until``, like the outbox's own claims). Every replica's
outbox worker may find a digest due; only the one that claims its row posts or edits it, so a
channel gets one digest however many replicas deliver, and a digest outlives the replica that
posted it (another one edits it and closes it). A claim lapses when its worker dies.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine, select, update
from sqlmodel import SQLModel

from bot.errors import BotError, TransientError
from bot.pipeline.notify import MessageKind
from bot.ports import Clock, DigestLine, DigestSurface, MessageRef
from bot.ratelimit import Budget
from bot.store.repo import INCIDENTS, OUTBOX, insert_ignore
from bot.store.types import UTCDateTime

log = logging.getLogger(__name__)

DIGEST_EVERY = 6.0  # seconds between edits of a storm digest while its backlog changes
DIGEST_LINES = 1000  # incidents a digest counts (the surface shows the most severe of them)
CLAIM_TIMEOUT = timedelta(seconds=60)

DIGESTS = sa.Table(
    "storm_digests",
    SQLModel.metadata,
    sa.Column("lane", sa.String(300), primary_key=True),  # "<surface>:<channel>"
    sa.Column("surface", sa.String(32), nullable=False),
    sa.Column("channel", sa.String(255), nullable=False),
    sa.Column("message_id", sa.String(255), nullable=False),  # "" until the post is recorded
    sa.Column("ref_channel", sa.String(255), nullable=False),
    sa.Column("shown", sa.String(64), nullable=False),  # hash of the incident ids it shows
    sa.Column("edited_at", UTCDateTime(), nullable=False),
    sa.Column("claimed_by", sa.String(255), nullable=False),
    sa.Column("claimed_until", UTCDateTime(), nullable=True),
)

Lane = tuple[str, str]
BudgetOf = Callable[[str, str, str], Budget | None]


def not_delivered(surface: str, channel: str, error: BotError) -> str:
    return f"storm digest in {surface}:{channel} not delivered: {error}"


def shown_hash(ids: tuple[int, ...]) -> str:
    return hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Turn:
    """This worker's turn at a lane's digest: post it (``ref`` None) or edit it."""

    ref: MessageRef | None


class StormDigests:
    """The digests of every (surface, channel) lane, edited by whichever worker claims them."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        holder: str,
        console_url: str,
        digest_after: Mapping[str, int],
        budget_of: BudgetOf,
        monotonic: Callable[[], float],
        claim_timeout: timedelta = CLAIM_TIMEOUT,
    ) -> None:
        """``digest_after`` maps a surface to how many waiting cards start its digest;
        ``budget_of(surface, channel, kind)`` is the outbox's budget a message spends;
        ``monotonic`` is the budgets' clock (seconds), which also times the edits."""
        self._engine = engine
        self._clock = clock
        self._holder = holder
        self._console_url = console_url
        self._after = dict(digest_after)
        self._budget_of = budget_of
        self._monotonic = monotonic
        self._timeout = claim_timeout

    def covers(self, surface_name: str, surface: object) -> bool:
        return surface_name in self._after and isinstance(surface, DigestSurface)

    async def refresh(self, surface: DigestSurface, lane: Lane, waits: list[float]) -> None:
        """Post, edit or close the lane's digest if it is due and no other worker has it;
        append to ``waits`` when this lane's digest wants another look."""
        surface_name, channel = lane
        ids = await asyncio.to_thread(self._waiting, lane)
        turn = await asyncio.to_thread(self._claim, lane, ids, waits)
        if turn is None:
            return
        try:
            if turn.ref is None and not ids:  # the storm ended before its digest was out
                return
            lines = await asyncio.to_thread(self._lines, ids)
            kind = MessageKind.POST if turn.ref is None else MessageKind.UPDATE
            budget = self._budget_of(surface_name, channel, kind.value)
            if budget is not None:  # spent right before the call: Slack counts arrivals
                wait = await asyncio.to_thread(budget.try_take)
                if wait > 0:
                    waits.append(wait)
                    return
            try:
                if turn.ref is None:
                    ref = await surface.post_digest(channel, lines)
                else:
                    ref = turn.ref
                    await surface.update_digest(ref, lines)
            except BotError as exc:
                log.warning(not_delivered(surface_name, channel, exc))
                if isinstance(exc, TransientError) and exc.retry_after and budget is not None:
                    await asyncio.to_thread(budget.pause, exc.retry_after)
                return
            await asyncio.to_thread(self._record, lane, ref, ids)
            turn = None
            if ids:
                waits.append(DIGEST_EVERY)
        finally:
            if turn is not None:
                await asyncio.to_thread(self._give_back, lane)

    async def close_idle(self, surfaces: Mapping[str, object], busy: Collection[Lane] = ()) -> None:
        """Digests of lanes with nothing in this round: edited (or closed) all the same."""
        if not self._after:
            return
        for lane in await asyncio.to_thread(self._lanes):
            surface = surfaces.get(lane[0])
            if lane not in busy and self.covers(lane[0], surface):
                assert isinstance(surface, DigestSurface)
                await self.refresh(surface, lane, [])

    # the database ----------------------------------------------------------------------------

    def _lanes(self) -> list[Lane]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(DIGESTS.c.surface, DIGESTS.c.channel)).all()
        return [(str(s), str(c)) for s, c in rows]

    def _free(self, now: datetime) -> Any:
        return sa.or_(
            DIGESTS.c.claimed_by == "",
            DIGESTS.c.claimed_by == self._holder,
            DIGESTS.c.claimed_until.is_(None),
            DIGESTS.c.claimed_until < now,
        )

    def _claim(self, lane: Lane, ids: tuple[int, ...], waits: list[float]) -> Turn | None:
        """This worker's turn at the lane's digest, or None (nothing to do, not due yet, or
        another worker has it)."""
        key, now = f"{lane[0]}:{lane[1]}", self._clock.now()
        query = select(DIGESTS).where(DIGESTS.c.lane == key)
        with self._engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None:
                if len(ids) <= self._after.get(lane[0], 0):
                    return None
                first = {
                    "lane": key,
                    "surface": lane[0],
                    "channel": lane[1],
                    "message_id": "",
                    "ref_channel": "",
                    "shown": "",
                    "edited_at": now,
                    "claimed_by": self._holder,
                    "claimed_until": now + self._timeout,
                }
                insert_ignore(conn, DIGESTS, [first], "lane")
                row = conn.execute(query).one()
                return Turn(None) if row.claimed_by == self._holder else None
            if row.message_id and row.shown == shown_hash(ids):
                return None
            if row.message_id and ids:
                due = row.edited_at.timestamp() + DIGEST_EVERY - self._monotonic()
                if due > 0:
                    waits.append(due)
                    return None
            taken = conn.execute(
                update(DIGESTS)
                .where(DIGESTS.c.lane == key, self._free(now))
                .values(claimed_by=self._holder, claimed_until=now + self._timeout)
            )
            if taken.rowcount != 1:
                return None  # another worker is posting or editing it
        if not row.message_id:  # its first post never got recorded (that worker died)
            return Turn(None)
        return Turn(MessageRef(lane[0], row.ref_channel or lane[1], row.message_id))

    def _record(self, lane: Lane, ref: MessageRef, ids: tuple[int, ...]) -> None:
        key = f"{lane[0]}:{lane[1]}"
        mine = (DIGESTS.c.lane == key) & (DIGESTS.c.claimed_by == self._holder)
        with self._engine.begin() as conn:
            if not ids:  # closed: the storm is over
                conn.execute(DIGESTS.delete().where(mine))
                return
            edited = datetime.fromtimestamp(self._monotonic(), UTC)
            conn.execute(
                update(DIGESTS)
                .where(mine)
                .values(
                    message_id=ref.message_id,
                    ref_channel=ref.channel,
                    shown=shown_hash(ids),
                    edited_at=edited,
                    claimed_by="",
                    claimed_until=None,
                )
            )

    def _give_back(self, lane: Lane) -> None:
        """Nothing was sent: a digest never posted is forgotten, a posted one waits for any
        worker's next look."""
        key = f"{lane[0]}:{lane[1]}"
        mine = (DIGESTS.c.lane == key) & (DIGESTS.c.claimed_by == self._holder)
        with self._engine.begin() as conn:
            conn.execute(DIGESTS.delete().where(mine, DIGESTS.c.message_id == ""))
            conn.execute(update(DIGESTS).where(mine).values(claimed_by="", claimed_until=None))

    def _waiting(self, lane: Lane) -> tuple[int, ...]:
        """Incidents of the lane whose card post still waits (not the critical ones: they are
        posted first), most severe first, then oldest."""
        with self._engine.connect() as conn:
            found = conn.execute(
                select(OUTBOX.c.incident_id)
                .where(
                    OUTBOX.c.status == "pending",
                    OUTBOX.c.kind == MessageKind.POST.value,
                    OUTBOX.c.surface == lane[0],
                    OUTBOX.c.channel == lane[1],
                    OUTBOX.c.severity_rank > 0,
                )
                .order_by(OUTBOX.c.severity_rank, OUTBOX.c.id)
                .limit(DIGEST_LINES)
            ).scalars()
            return tuple(dict.fromkeys(int(i) for i in found if i is not None))

    def _lines(self, ids: tuple[int, ...]) -> list[DigestLine]:
        if not ids:
            return []
        with self._engine.connect() as conn:
            rows = {
                r.id: r
                for r in conn.execute(
                    select(INCIDENTS.c.id, INCIDENTS.c.severity, INCIDENTS.c.title).where(
                        INCIDENTS.c.id.in_(ids)
                    )
                )
            }
        return [
            DigestLine(
                i, f"INC-{i}", rows[i].severity, rows[i].title, f"{self._console_url}/incidents/{i}"
            )
            for i in ids
            if i in rows
        ]
