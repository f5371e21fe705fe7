"""The scheduler's own chores, besides the rules: suppressions that ran out, escalation timers,
retention, and when each rule runs next. They run on the replica holding the scheduler lease;
writes go through the fenced engine (see docs/replicas.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, select

from bot.domain.incident import Command, CommandKind, State
from bot.errors import Conflict
from bot.interactions import Interactions
from bot.pipeline.escalate import EscalationPolicy, page_due
from bot.ports import Clock
from bot.retention import purge
from bot.runner import RuleRunner
from bot.settings import Settings
from bot.store.repo import INCIDENTS

Chore = tuple[str, timedelta, Callable[[], Any]]


class PurgedStore(Protocol):
    """The embedded log store, as far as retention goes."""

    def purge_before(self, cutoff: datetime, /) -> int: ...


@dataclass(slots=True)
class Chores:
    engine: Engine
    fenced_engine: Engine
    interactions: Interactions
    escalation: EscalationPolicy | None
    clock: Clock
    settings: Settings
    event_store: PurgedStore | None
    runner: RuleRunner
    next_runs: Callable[[], Mapping[str, datetime | None]]
    #: tells the outbox that messages wait (pages were queued)
    wake: Callable[[], None]

    def schedule(self) -> list[Chore]:
        return [
            ("expire-suppressions", timedelta(seconds=15), self.expire_suppressions),
            ("retention", timedelta(days=1), self.retention),
            ("rule-next-runs", timedelta(seconds=30), self.record_next_runs),
            ("page-due", timedelta(seconds=10), self.page_due),
        ]

    async def expire_suppressions(self) -> int:
        """Suppressed incidents whose time ran out go back to open."""
        now = self.clock.now()

        def due() -> list[int]:
            with self.engine.connect() as conn:
                return [
                    r[0]
                    for r in conn.execute(
                        select(INCIDENTS.c.id).where(
                            INCIDENTS.c.state == State.SUPPRESSED.value,
                            INCIDENTS.c.suppressed_until <= now,
                        )
                    )
                ]

        expired = 0
        for incident_id in await asyncio.to_thread(due):
            try:
                await self.interactions.execute(
                    incident_id, Command(CommandKind.EXPIRE, actor="bot", surface="scheduler")
                )
                expired += 1
            except Conflict:
                continue
        return expired

    async def page_due(self) -> list[int]:
        """Page incidents whose escalation timer ran out while they stayed open."""
        if self.escalation is None:
            return []
        paged = await asyncio.to_thread(
            page_due, self.fenced_engine, self.escalation, self.clock.now()
        )
        if paged:
            self.wake()
        return paged

    async def retention(self) -> None:
        """Delete what is past retention (:func:`bot.retention.purge`) and older local events."""
        now = self.clock.now()
        s = self.settings
        await asyncio.to_thread(
            purge, self.fenced_engine, now, s.retention_days, s.audit_retention_days
        )
        if self.event_store is not None:
            await asyncio.to_thread(
                self.event_store.purge_before, now - timedelta(days=s.retention_days)
            )

    async def record_next_runs(self) -> None:
        """When each rule runs next, for the rules page."""
        await asyncio.to_thread(self.runner.record_next_runs, self.next_runs())
