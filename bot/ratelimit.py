"""Token buckets for outbound traffic, with pauses ordered by a peer (``Retry-After``).

:class:`TokenBucket` lives in one process's memory; :class:`SharedBucket` lives in the database
and is shared by every replica (the outbox's per-channel lanes use it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select, update

from bot.store.repo import insert_ignore
from bot.store.tables import RateBudgetRow

BUDGETS = RateBudgetRow.__table__  # type: ignore[attr-defined]


def locked_now(conn: Any, lane: str, now: Callable[[], float]) -> float:
    """The time of a budget decision, read once the lane is this transaction's alone.

    A token is stamped with this time; read before a wait for the database's lock, it would be
    early by that wait, and the next message would follow the previous one sooner than the
    budget allows. SQLite takes its write lock at the first write (a no-op update here);
    PostgreSQL locks the lane's row (``FOR UPDATE``).
    """
    if conn.dialect.name == "sqlite":
        conn.execute(update(BUDGETS).where(BUDGETS.c.lane == lane).values(lane=BUDGETS.c.lane))
    else:
        conn.execute(select(BUDGETS.c.lane).where(BUDGETS.c.lane == lane).with_for_update())
    return now()


class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``. Not thread-safe (one loop)."""

    def __init__(
        self, rate: float, burst: int, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._now = monotonic
        self._tokens = float(burst)
        self._stamp = monotonic()
        self._paused_until = 0.0

    def _refill(self) -> float:
        now = self._now()
        if now < self._paused_until:  # nothing accrues while the peer asked us to wait
            self._stamp = now
            return now
        if self._stamp < self._paused_until:  # the first token is due the moment a pause ends
            self._tokens = max(self._tokens, 1.0)
            self._stamp = self._paused_until
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        return now

    def wait_time(self) -> float:
        """Seconds until a token is available (0 when one is available now)."""
        now = self._refill()
        if now < self._paused_until:
            return self._paused_until - now
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    def try_take(self) -> float:
        """Take a token and return 0, or return how long to wait for one."""
        wait = self.wait_time()
        if wait == 0.0:
            self._tokens -= 1
        return wait

    def pause(self, seconds: float) -> None:
        """The peer said to wait (HTTP 429 Retry-After): no token before then."""
        now = self._refill()
        self._paused_until = max(self._paused_until, now + seconds)
        self._tokens = 0.0


class SharedBucket:
    """A token bucket kept in the database (``rate_budgets``), so that every replica spends
    the same budget and a restarted process does not begin with a budget the channel already
    spent. Blocking (run it in a worker thread); same answers as :class:`TokenBucket`.

    ``now`` gives seconds on a clock all replicas share (wall time by default). A pause
    ordered by the peer is stored as a debt: the bucket holds ``1 - seconds * rate`` tokens,
    so the next token is due exactly when the pause ends, on every replica.
    """

    def __init__(
        self, engine: Engine, lane: str, rate: float, burst: int, now: Callable[[], float]
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.lane = lane
        self.rate = rate
        self.burst = burst
        self._engine = engine
        self._now = now
        self._lock = threading.Lock()  # one process: threads take turns; replicas lock the row

    def try_take(self) -> float:
        """Take a token and return 0, or return how long to wait for one."""
        return self._change(lambda tokens: (tokens - 1, 0.0) if tokens >= 1 else None)

    def wait_time(self) -> float:
        return self._change(lambda tokens: None)

    def room(self, wanted: int) -> int:
        """How many of ``wanted`` tokens could be taken now: a look, which neither takes nor
        locks anything (the take that follows decides)."""
        query = select(BUDGETS.c.tokens, BUDGETS.c.updated_at).where(BUDGETS.c.lane == self.lane)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return max(0, min(wanted, self.burst))
        elapsed = max(0.0, self._now() - row.updated_at.timestamp())
        tokens = min(float(self.burst), row.tokens + elapsed * self.rate)
        return max(0, min(wanted, int(tokens)))

    def take(self, wanted: int) -> tuple[int, float]:
        """Take up to ``wanted`` tokens at once, for messages sent together right now: how
        many were taken, and (when fewer than ``wanted``) how long until the next one."""
        taken = [0]

        def spend(tokens: float) -> tuple[float, float]:
            count = max(0, min(wanted, int(tokens)))
            taken[0] = count
            left = tokens - count
            return left, 0.0 if count == wanted else (1 - left) / self.rate

        wait = self._change(spend)
        return taken[0], wait

    def pause(self, seconds: float) -> None:
        """The peer said to wait (HTTP 429 Retry-After): no token before then."""
        self._change(lambda tokens: (min(tokens, 1 - seconds * self.rate), 0.0))

    def _change(self, spend: Callable[[float], tuple[float, float] | None]) -> float:
        with self._lock, self._engine.begin() as conn:
            now = locked_now(conn, self.lane, self._now)
            row = self._row(conn, now)
            elapsed = max(0.0, now - row.updated_at.timestamp())
            tokens = min(float(self.burst), row.tokens + elapsed * self.rate)
            outcome = spend(tokens)
            if outcome is None:
                wait = (1 - tokens) / self.rate if tokens < 1 else 0.0
                new_tokens = tokens
            else:
                new_tokens, wait = outcome
            stamp = datetime.fromtimestamp(max(now, row.updated_at.timestamp()), UTC)
            conn.execute(
                update(BUDGETS)
                .where(BUDGETS.c.lane == self.lane)
                .values(tokens=new_tokens, updated_at=stamp)
            )
        return max(0.0, wait)

    def _row(self, conn: Any, now: float) -> Any:
        query = select(BUDGETS.c.tokens, BUDGETS.c.updated_at).where(BUDGETS.c.lane == self.lane)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            start = datetime.fromtimestamp(now, UTC)
            insert_ignore(
                conn,
                BUDGETS,
                [{"lane": self.lane, "tokens": float(self.burst), "updated_at": start}],
                "lane",
            )
            row = conn.execute(query).one()
        return row


class SlidingWindow:
    """At most ``limit`` messages in any rolling ``window`` seconds, as an API that states "N a
    minute" counts them; kept in the database (``rate_budgets``) like :class:`SharedBucket`.

    A ring of ``limit`` rows (``<lane>#0`` …) holds the times of the last ``limit`` sends; the
    lane's own row holds the ring's next slot (``tokens``) and the end of a pause ordered by
    the peer (``updated_at``). A send is allowed when the oldest of the last ``limit`` sends is
    at least ``window`` seconds old. Blocking (run it in a worker thread).
    """

    def __init__(
        self, engine: Engine, lane: str, limit: int, window: float, now: Callable[[], float]
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a moving window needs limit >= 1 and window > 0")
        self.lane = lane
        self.limit = limit
        self.window = window
        self._engine = engine
        self._now = now
        self._lock = threading.Lock()

    def try_take(self) -> float:
        """Record a send and return 0, or return how long until one is allowed."""
        return self._change(1, take=True)[1]

    def wait_time(self) -> float:
        return self._change(1, take=False)[1]

    def room(self, wanted: int) -> int:
        """How many of ``wanted`` sends the window allows now: a look, which neither records
        nor locks anything (the take that follows decides)."""
        head_query = select(BUDGETS.c.tokens, BUDGETS.c.updated_at).where(
            BUDGETS.c.lane == self.lane
        )
        allowed = 0
        with self._engine.connect() as conn:
            now = self._now()
            row = conn.execute(head_query).first()
            head = 0 if row is None else int(row.tokens) % self.limit
            if row is not None and row.updated_at.timestamp() > now:  # paused by the peer
                return 0
            while allowed < min(wanted, self.limit):
                slot = f"{self.lane}#{(head + allowed) % self.limit}"
                oldest = conn.execute(
                    select(BUDGETS.c.updated_at).where(BUDGETS.c.lane == slot)
                ).scalar()
                if oldest is not None and oldest.timestamp() + self.window > now:
                    break
                allowed += 1
        return allowed

    def take(self, wanted: int) -> tuple[int, float]:
        """Record up to ``wanted`` sends at once: how many, and (when fewer) how long until
        the next one is allowed."""
        return self._change(wanted, take=True)

    def pause(self, seconds: float) -> None:
        """The peer said to wait (HTTP 429 Retry-After): no send before then."""
        with self._lock, self._engine.begin() as conn:
            now = locked_now(conn, self.lane, self._now)
            paused = self._head(conn, now)[1]
            until = datetime.fromtimestamp(max(paused, now + seconds), UTC)
            conn.execute(
                update(BUDGETS).where(BUDGETS.c.lane == self.lane).values(updated_at=until)
            )

    def _change(self, wanted: int, take: bool) -> tuple[int, float]:
        """Walk the ring from its next slot: each slot whose send is at least ``window`` old
        allows one more send now (recorded when ``take``)."""
        with self._lock, self._engine.begin() as conn:
            now = locked_now(conn, self.lane, self._now)
            head, paused = self._head(conn, now)
            if paused > now:
                return 0, paused - now
            at = datetime.fromtimestamp(now, UTC)
            allowed, wait = 0, 0.0
            while allowed < min(wanted, self.limit):
                slot = f"{self.lane}#{(head + allowed) % self.limit}"
                oldest = conn.execute(
                    select(BUDGETS.c.updated_at).where(BUDGETS.c.lane == slot)
                ).scalar()
                free_at = 0.0 if oldest is None else oldest.timestamp() + self.window
                if free_at > now:
                    wait = free_at - now
                    break
                if take:
                    if oldest is None:
                        conn.execute(
                            BUDGETS.insert(), [{"lane": slot, "tokens": 0.0, "updated_at": at}]
                        )
                    else:
                        conn.execute(
                            update(BUDGETS).where(BUDGETS.c.lane == slot).values(updated_at=at)
                        )
                allowed += 1
            if allowed < wanted and wait == 0.0:  # the whole ring was free: full a moment
                wait = self.window
            if take and allowed:
                conn.execute(
                    update(BUDGETS)
                    .where(BUDGETS.c.lane == self.lane)
                    .values(tokens=float((head + allowed) % self.limit))
                )
        return allowed, wait

    def _head(self, conn: Any, now: float) -> tuple[int, float]:
        """The ring's next slot and the end of any pause (row locked on PostgreSQL)."""
        query = select(BUDGETS.c.tokens, BUDGETS.c.updated_at).where(BUDGETS.c.lane == self.lane)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            start = datetime.fromtimestamp(0, UTC)
            insert_ignore(
                conn, BUDGETS, [{"lane": self.lane, "tokens": 0.0, "updated_at": start}], "lane"
            )
            row = conn.execute(query).one()
        return int(row.tokens) % self.limit, row.updated_at.timestamp()


class Budget:
    """A lane's budget: a token bucket (pace and burst) and, where the API states its limit
    as "N in any rolling window", that moving window as well; a send needs both."""

    def __init__(self, bucket: SharedBucket, window: SlidingWindow | None = None) -> None:
        self.bucket = bucket
        self.window = window

    def try_take(self) -> float:
        if self.window is not None:
            wait = self.window.wait_time()
            if wait > 0:
                return wait
        wait = self.bucket.try_take()
        if wait > 0 or self.window is None:
            return wait
        return self.window.try_take()  # another replica may have filled it meanwhile

    def wait_time(self) -> float:
        wait = self.bucket.wait_time()
        return max(wait, self.window.wait_time()) if self.window is not None else wait

    def room(self, wanted: int) -> int:
        """How many of ``wanted`` messages the budget allows now (nothing is spent)."""
        wanted = self.bucket.room(wanted)
        return self.window.room(wanted) if self.window is not None and wanted else wanted

    def take(self, wanted: int) -> tuple[int, float]:
        """Spend the budget of up to ``wanted`` messages sent together right now: how many
        may go, and (when fewer than ``wanted``) how long until the next may."""
        limit = wanted
        if self.window is not None:
            limit = self.window.room(wanted)
            if limit == 0:
                return 0, self.window.wait_time()
        taken, wait = self.bucket.take(limit)
        if self.window is not None and taken:
            taken = self.window.take(taken)[0]  # another replica may have sent meanwhile
        if taken < wanted and self.window is not None:
            wait = max(wait, self.window.wait_time())
        return taken, wait

    def pause(self, seconds: float) -> None:
        self.bucket.pause(seconds)
        if self.window is not None:
            self.window.pause(seconds)
