"""Leases: one replica at a time holds a named lease (the scheduler's), renewed by a heartbeat.

A lease row is ``(name, holder, expires_at, generation)``. The holder renews it every heartbeat
for ``ttl`` (2 x the heartbeat); any other replica takes it once ``expires_at`` has passed, and
every change of holder raises ``generation`` by one. Two guards keep a holder that stopped
renewing (a long pause, a network split, SIGSTOP) from acting after another took over:

- locally, :class:`LeaseKeeper` counts the lease as held only until a monotonic deadline,
  ``ttl - margin`` after the start of its last successful renewal: the holder stops scheduling
  before anyone else may start;
- in the database, :func:`fence` makes a write transaction check that the lease still has this
  holder and generation (``FOR SHARE`` on PostgreSQL, so a takeover waits for that transaction
  to end), and raises :class:`FencedWrite` otherwise: the transaction rolls back.

Times in ``expires_at`` come from each replica's clock: keep replica clocks within ``margin``
of each other (NTP does far better).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, case, select, update
from sqlalchemy.exc import IntegrityError

from bot.errors import Conflict
from bot.store.tables import LeaseRow

LEASES = LeaseRow.__table__  # type: ignore[attr-defined]


class FencedWrite(Conflict):
    """A write made under a lease this process no longer holds; its transaction rolled back."""


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease as its holder took it: writes fenced with it need the same holder and
    generation in the database."""

    name: str
    holder: str
    generation: int


@dataclass(frozen=True, slots=True)
class LeaseState:
    """The lease row as read: who holds it, until when, at which generation."""

    holder: str
    expires_at: datetime
    generation: int


def acquire(engine: Engine, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the lease; True when ``holder`` holds it until ``now + ttl``."""
    return take(engine, name, holder, now, ttl)[0] is not None


def take(
    engine: Engine, name: str, holder: str, now: datetime, ttl: timedelta
) -> tuple[Lease | None, LeaseState | None]:
    """Take or renew the lease. Returns the lease when ``holder`` now holds it, and the row as
    it stands (who holds it until when) either way."""
    expires = now + ttl
    with engine.begin() as conn:
        done = conn.execute(
            update(LEASES)
            .where(LEASES.c.name == name)
            .where((LEASES.c.holder == holder) | (LEASES.c.expires_at < now))
            .values(
                holder=holder,
                expires_at=expires,
                generation=case(
                    (LEASES.c.holder == holder, LEASES.c.generation),
                    else_=LEASES.c.generation + 1,
                ),
            )
        )
        row = conn.execute(select(LEASES).where(LEASES.c.name == name)).first()
    if row is not None:
        state = LeaseState(row.holder, row.expires_at, row.generation)
        mine = done.rowcount == 1 and row.holder == holder
        return (Lease(name, holder, row.generation) if mine else None), state
    try:
        with engine.begin() as conn:
            conn.execute(
                LEASES.insert(),
                [{"name": name, "holder": holder, "expires_at": expires, "generation": 1}],
            )
    except IntegrityError:  # another replica inserted it first
        return None, holder_state(engine, name)
    return Lease(name, holder, 1), LeaseState(holder, expires, 1)


def release(engine: Engine, name: str, holder: str, now: datetime | None = None) -> None:
    """Give the lease up: it expires at once (the row and its generation stay, so the next
    holder's generation is still higher than every earlier one)."""
    at = (now or datetime.now(UTC)) - timedelta(seconds=1)
    with engine.begin() as conn:
        conn.execute(
            update(LEASES)
            .where(LEASES.c.name == name, LEASES.c.holder == holder)
            .values(expires_at=at)
        )


def holder_state(engine: Engine, name: str) -> LeaseState | None:
    with engine.connect() as conn:
        row = conn.execute(select(LEASES).where(LEASES.c.name == name)).first()
    return LeaseState(row.holder, row.expires_at, row.generation) if row else None


def holder_of(engine: Engine, name: str) -> tuple[str, datetime] | None:
    state = holder_state(engine, name)
    return (state.holder, state.expires_at) if state else None


def fence(conn: Any, lease: Lease | None) -> None:
    """Refuse the write of this transaction unless ``lease`` is still held as taken.

    Call it inside the transaction, before (or among) its writes: on PostgreSQL the lease row
    is read ``FOR SHARE``, so a takeover waits until this transaction ends and a write can
    never commit after another holder took over. Raises :class:`FencedWrite` (roll back).
    """
    if lease is None:
        raise FencedWrite("this replica does not hold the scheduler lease")
    query = select(LEASES.c.generation).where(
        LEASES.c.name == lease.name,
        LEASES.c.holder == lease.holder,
        LEASES.c.generation == lease.generation,
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    if conn.execute(query).first() is None:
        raise FencedWrite(
            f"lease {lease.name!r} generation {lease.generation} is no longer held by "
            f"{lease.holder}: write refused"
        )


class LeaseKeeper:
    """This process's view of one lease: renewed by :meth:`renew`, trusted only until a local
    monotonic deadline, and the fence for every write made under it.

    Thread-safe: writes fenced from worker threads read ``lease`` while the loop renews it.
    """

    def __init__(
        self,
        engine: Engine,
        name: str,
        holder: str,
        heartbeat: timedelta,
        monotonic: Callable[[], float] = time.monotonic,
        on_takeover: Callable[[], None] = lambda: None,
        on_refusal: Callable[[], None] = lambda: None,
    ) -> None:
        self.engine = engine
        self._on_takeover = on_takeover
        self._on_refusal = on_refusal
        self.name = name
        self.holder = holder
        self.heartbeat = heartbeat
        self.ttl = heartbeat * 2
        # stop trusting the lease this long before it expires in the database
        self.margin = heartbeat / 2
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._lease: Lease | None = None
        self._deadline = 0.0
        self._generation = 0
        self.last_seen: LeaseState | None = None
        self.takeovers = 0  # times this process took the lease from another holder (or none)
        self.refusals = 0  # writes refused by the fence

    @property
    def lease(self) -> Lease | None:
        """The lease while it is trusted locally, else None."""
        with self._lock:
            if self._lease is not None and self._monotonic() < self._deadline:
                return self._lease
            return None

    @property
    def held(self) -> bool:
        return self.lease is not None

    def seconds_left(self) -> float:
        """How long the lease is still trusted locally (0 when not held)."""
        with self._lock:
            return max(0.0, self._deadline - self._monotonic()) if self._lease else 0.0

    def renew(self, now: datetime) -> bool:
        """Take or renew the lease (blocking: run it in a worker thread); True when held."""
        started = self._monotonic()
        lease, state = take(self.engine, self.name, self.holder, now, self.ttl)
        with self._lock:
            self.last_seen = state
            if lease is None:
                self._lease = None
                return False
            if lease.generation != self._generation:
                self.takeovers += 1  # a new generation: this process became the holder
                self._generation = lease.generation
                self._on_takeover()
            self._lease = lease
            self._deadline = started + (self.ttl - self.margin).total_seconds()
            return True

    def drop(self) -> None:
        """Stop trusting the lease (renewal failed past the deadline, or stopping)."""
        with self._lock:
            self._lease = None

    def fence(self, conn: Any) -> None:
        """:func:`fence` with the lease as trusted now; counts refusals.

        On PostgreSQL the transaction may not sit idle longer than the lease's TTL: a holder
        frozen inside it (SIGSTOP) loses its session and so its ``FOR SHARE`` lock on the
        lease, and cannot hold up the takeover.
        """
        if conn.dialect.name == "postgresql":
            ms = int(self.ttl.total_seconds() * 1000)
            conn.exec_driver_sql(f"SET LOCAL idle_in_transaction_session_timeout = {ms}")
        try:
            fence(conn, self.lease)
        except FencedWrite:
            with self._lock:
                self.refusals += 1
            self._on_refusal()
            raise

    def wait_before_retry(self, now: datetime) -> float:
        """Seconds a replica without the lease sleeps before trying again: until the holder's
        lease expires (so a dead holder is replaced as soon as it may be), at most a
        heartbeat."""
        beat = self.heartbeat.total_seconds()
        seen = self.last_seen
        if seen is None:
            return beat
        until = (seen.expires_at - now).total_seconds() + 0.02
        return max(0.02, min(beat, until))
