"""This process as one replica: the name it holds the scheduler lease under, the lease, the
engine its writes as lease holder go through (fenced: see docs/replicas.md), its heartbeat in
the replicas table, and the loop that says when it leads the schedules and when it must stop."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, event

from bot.ports import Clock
from bot.store import leases, replicas

log = logging.getLogger(__name__)
SCHEDULER_LEASE = "scheduler"


@dataclass(slots=True)
class Replica:
    engine: Engine
    holder: str
    lease: leases.LeaseKeeper
    #: every write a lease holder makes goes through it (or calls ``lease.fence(conn)`` in its
    #: transaction)
    fenced_engine: Engine
    #: this replica runs the schedules (it holds a lease it still trusts)
    leader: bool = field(default=False, init=False)

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

    async def leave(self, now: datetime) -> None:
        """Release the lease when leading (the next holder takes over at once) and leave the
        replicas table."""
        if self.leader:
            await asyncio.to_thread(leases.release, self.engine, SCHEDULER_LEASE, self.holder, now)
        await asyncio.to_thread(replicas.forget, self.engine, self.holder)

    async def lead(
        self,
        stop: asyncio.Event,
        clock: Clock,
        on_gain: Callable[[], None],
        on_loss: Callable[[], None],
    ) -> None:
        """Renew the lease every heartbeat until ``stop``: ``on_gain`` when this replica takes
        it, ``on_loss`` the moment it is no longer trusted (before anyone else may take it)."""
        beat = self.lease.heartbeat.total_seconds()
        while not stop.is_set():
            started = asyncio.get_running_loop().time()
            renewing = asyncio.ensure_future(self._renew(clock, beat))
            if self.leader:  # a slow renewal must not keep the schedules past the deadline
                await asyncio.wait({renewing}, timeout=self.lease.seconds_left() + 0.01)
                self._check(on_loss)
            held = await renewing
            if held and not self.leader:
                self.leader = True
                on_gain()
            self._check(on_loss)
            if held:  # renew a heartbeat after the last try; pause in time if it fails
                wait = beat - (asyncio.get_running_loop().time() - started)
                wait = min(wait, self.lease.seconds_left() + 0.01)
            else:  # try again the moment the holder's lease expires
                wait = self.lease.wait_before_retry(clock.now())
            try:
                async with asyncio.timeout(max(0.01, wait)):
                    await stop.wait()
            except TimeoutError:
                pass

    async def _renew(self, clock: Clock, beat: float) -> bool:
        return await self.heartbeat(clock.now(), beat, self.lease.heartbeat * 20)

    def _check(self, on_loss: Callable[[], None]) -> None:
        """A holder whose lease is no longer trusted stops scheduling before anyone else may
        start (in-flight writes are refused by the fence)."""
        if self.leader and not self.lease.held:
            self.leader = False
            self.lease.drop()
            log.warning("scheduler lease lost or not renewed in time; pausing schedules")
            on_loss()
