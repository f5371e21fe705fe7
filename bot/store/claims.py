"""The outbox's claims: which worker (replica) is delivering which rows, until when.

A worker claims rows with ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL (a plain select on
SQLite, one process), sets ``claimed_by``/``claimed_until``, and gives back at the end of its
round what is still pending; right before each send it renews the row's claim (:meth:`renew`).
A claim that lapses (its worker died) lets another worker deliver the row; rows are recorded as
sent only while claimed by the worker recording them (:meth:`mine`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, or_, select, update

from bot.store.repo import OUTBOX

BATCH = 500  # rows per round, shared among the lanes
MIN_SHARE = 20  # rows per lane and round, however many lanes have some
MAX_LANES = 200  # lanes per round (the ones with a person's action or the most severe first)


class Claims:
    def __init__(
        self,
        engine: Engine,
        holder: str,
        timeout: timedelta,
        on_claimed: Callable[[int], None] = lambda count: None,
    ) -> None:
        self._engine = engine
        self._holder = holder
        self._timeout = timeout
        self._on_claimed = on_claimed
        self._claimed: list[int] = []
        self.count = 0  # rows claimed since start (a metric)

    def mine(self, row_id: int) -> Any:
        """The row, while it is pending and claimed by this worker."""
        return (
            (OUTBOX.c.id == row_id)
            & (OUTBOX.c.status == "pending")
            & (OUTBOX.c.claimed_by == self._holder)
        )

    def held(self, conn: Any, row_ids: Sequence[int]) -> set[int]:
        """Of ``row_ids``, the rows still pending and claimed by this worker (locked until the
        transaction ends on PostgreSQL)."""
        query = select(OUTBOX.c.id).where(
            OUTBOX.c.id.in_(row_ids),
            OUTBOX.c.status == "pending",
            OUTBOX.c.claimed_by == self._holder,
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        return set(conn.execute(query).scalars())

    def claimable(self, now: datetime) -> Any:
        """Pending rows no other live worker holds."""
        return (OUTBOX.c.status == "pending") & or_(
            OUTBOX.c.claimed_until.is_(None),
            OUTBOX.c.claimed_until < now,
            OUTBOX.c.claimed_by == self._holder,
        )

    def claim(self, now: datetime) -> list[Any]:
        """Claim pending rows of every lane, a person's actions first, then most severe first,
        when at least one of them is due.

        Each (surface, channel) lane gets its own share of the batch (:meth:`_select`), so a
        large backlog in one channel never keeps another channel's rows out of the round. Rows
        that are not due yet come along so that they keep blocking the later messages of their
        card (an update never overtakes the post it updates). Of each card, only rows from its
        first pending one on without a gap are claimed: a card whose first message another
        worker holds stays with that worker.
        """
        with self._engine.begin() as conn:
            rows = self._select(conn, now)
            if not rows:
                return []
            mine = {r.id for r in rows}
            keys = sorted({r.order_key for r in rows})
            allowed: set[int] = set()
            for start in range(0, len(keys), 500):
                pending = conn.execute(
                    select(OUTBOX.c.id, OUTBOX.c.order_key)
                    .where(
                        OUTBOX.c.status == "pending",
                        OUTBOX.c.order_key.in_(keys[start : start + 500]),
                    )
                    .order_by(OUTBOX.c.id)
                ).all()
                gap: set[str] = set()
                for row_id, key in pending:
                    if key in gap:
                        continue
                    if row_id in mine:
                        allowed.add(row_id)
                    else:
                        gap.add(key)
            rows = [r for r in rows if r.id in allowed]
            if not any(r.next_attempt_at <= now for r in rows):
                return []
            ids = [r.id for r in rows]
            got: set[int] = set()
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                # only rows still free: without row locks (SQLite) a racing worker may have
                # claimed some since the select
                conn.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.id.in_(chunk), self.claimable(now))
                    .values(claimed_by=self._holder, claimed_until=now + self._timeout)
                )
                got.update(
                    conn.execute(
                        select(OUTBOX.c.id).where(
                            OUTBOX.c.id.in_(chunk), OUTBOX.c.claimed_by == self._holder
                        )
                    ).scalars()
                )
        self._claimed = ids
        if len(got) < len(ids):  # a card keeps its order: nothing after a row we did not get
            lost = {r.order_key for r in rows if r.id not in got}
            rows = [r for r in rows if r.order_key not in lost]
        self.count += len(got)
        self._on_claimed(len(got))
        return rows

    def _select(self, conn: Any, now: datetime) -> list[Any]:
        """Up to ``BATCH`` claimable rows shared among the lanes that have some, each lane's
        best first (priority, severity, age), plus the earlier pending rows of their cards."""
        lanes = conn.execute(
            select(OUTBOX.c.surface, OUTBOX.c.channel)
            .where(self.claimable(now))
            .group_by(OUTBOX.c.surface, OUTBOX.c.channel)
            .order_by(func.min(OUTBOX.c.priority), func.min(OUTBOX.c.severity_rank))
            .limit(MAX_LANES)
        ).all()
        share = max(MIN_SHARE, BATCH // max(len(lanes), 1))
        rows: dict[int, Any] = {}
        for surface, channel in lanes:
            query = (
                select(OUTBOX)
                .where(self.claimable(now), OUTBOX.c.surface == surface)
                .where(OUTBOX.c.channel == channel)
                .order_by(OUTBOX.c.priority, OUTBOX.c.severity_rank, OUTBOX.c.id)
                .limit(share)
            )
            rows.update((r.id, r) for r in self._locked(conn, query))
        keys = sorted({r.order_key for r in rows.values()})
        for start in range(0, len(keys), 500):
            earlier = select(OUTBOX).where(
                self.claimable(now), OUTBOX.c.order_key.in_(keys[start : start + 500])
            )
            rows.update((r.id, r) for r in self._locked(conn, earlier) if r.id not in rows)
        return sorted(rows.values(), key=lambda r: (r.priority, r.severity_rank, r.id))

    @staticmethod
    def _locked(conn: Any, query: Any) -> list[Any]:
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=OUTBOX)
        return list(conn.execute(query).all())

    def renew(self, row_id: int, now: datetime) -> bool:
        """Right before a send: extend this worker's claim on the row from ``now``; False when
        the claim lapsed meanwhile and the row is not this worker's any more (do not send).
        A claim then lapses only if one send outlasts the claim timeout."""
        with self._engine.begin() as conn:
            done = conn.execute(
                update(OUTBOX).where(self.mine(row_id)).values(claimed_until=now + self._timeout)
            )
        return bool(done.rowcount == 1)

    def renew_many(self, row_ids: Sequence[int], now: datetime) -> set[int]:
        """:meth:`renew` for several rows at once: answers those still this worker's."""
        with self._engine.begin() as conn:
            conn.execute(
                update(OUTBOX)
                .where(
                    OUTBOX.c.id.in_(row_ids),
                    OUTBOX.c.status == "pending",
                    OUTBOX.c.claimed_by == self._holder,
                )
                .values(claimed_until=now + self._timeout)
            )
            return self.held(conn, row_ids)

    def release(self) -> None:
        """The round is over: rows still pending go back for any worker to claim."""
        ids, self._claimed = self._claimed, []
        with self._engine.begin() as conn:
            for start in range(0, len(ids), 500):
                conn.execute(
                    update(OUTBOX)
                    .where(
                        OUTBOX.c.id.in_(ids[start : start + 500]),
                        OUTBOX.c.claimed_by == self._holder,
                        OUTBOX.c.status == "pending",
                    )
                    .values(claimed_by="", claimed_until=None)
                )

    def next_due_in(self, now: datetime) -> float | None:
        """Seconds until a row this worker may claim is due (rows claimed by another worker
        count from the moment their claim lapses)."""
        with self._engine.connect() as conn:
            nxt = conn.execute(
                select(func.min(OUTBOX.c.next_attempt_at)).where(self.claimable(now))
            ).scalar_one()
            lapse = conn.execute(
                select(func.min(OUTBOX.c.claimed_until)).where(
                    OUTBOX.c.status == "pending",
                    OUTBOX.c.claimed_by != self._holder,
                    OUTBOX.c.claimed_until >= now,
                )
            ).scalar_one()
        due = [t for t in (nxt, lapse) if t is not None]
        if not due:
            return None
        return max(0.0, (min(due) - now).total_seconds())
