"""This process as one replica: the name it holds the scheduler lease under, the lease, the
engine its writes as lease holder go through (fenced: see docs/replicas.md) and its heartbeat
in the replicas table."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, event

from bot.store import leases, replicas

log = logging.getLogger(__name__)
SCHEDULER_LEASE = "scheduler"


@dataclass(frozen=True, slots=True)
class Replica:
    engine: Engine
    holder: str
    lease: leases.LeaseKeeper
    #: every write a lease holder makes goes through it (or calls ``lease.fence(conn)`` in its
    #: transaction)
    fenced_engine: Engine

    @classmethod
    def join(
        cls,
        engine: Engine,
        heartbeat: timedelta,
        on_takeover: Callable[[], None],
        on_refusal: Callable[[], None],
    ) -> Replica:
        """A new holder name (host, process, random); the lease is not taken yet."""
        holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        lease = leases.LeaseKeeper(
            engine,
            SCHEDULER_LEASE,
            holder,
            heartbeat,
            on_takeover=on_takeover,
            on_refusal=on_refusal,
        )
        fenced_engine = engine.execution_options(fenced=SCHEDULER_LEASE)
        event.listen(fenced_engine, "begin", lease.fence)
        return cls(engine, holder, lease, fenced_engine)

    async def heartbeat(self, now: datetime, beat: float, alive_for: timedelta) -> bool:
        """One heartbeat: renew (or try to take) the lease and say this replica is alive."""
        try:
            async with asyncio.timeout(beat):
                held = await asyncio.to_thread(self.lease.renew, now)
        except Exception as exc:  # the database went away: keep serving, try again
            log.warning("lease renewal failed: %s", exc)
            held = self.lease.held  # still trusted until the local deadline
        try:
            async with asyncio.timeout(beat):
                await asyncio.to_thread(
                    replicas.beat,
                    self.engine,
                    self.holder,
                    now,
                    "leader" if held else "",
                    alive_for,
                )
        except Exception as exc:
            log.debug("replica heartbeat not recorded: %s", exc)
        return held

    async def leave(self, leader: bool, now: datetime) -> None:
        """Release the lease when holding it (the next holder takes over at once) and leave
        the replicas table."""
        if leader:
            await asyncio.to_thread(leases.release, self.engine, SCHEDULER_LEASE, self.holder, now)
        await asyncio.to_thread(replicas.forget, self.engine, self.holder)
