"""Maintenance windows as people manage them: list, add, remove (responder role; audited).

Every surface (REST API, console, ``/incident maintenance …`` in Slack and Teams,
``run_bot.py maintenance …``) builds a :class:`WindowSpec` and calls :class:`Maintenance`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from bot.authz import Role, Roles
from bot.domain.durations import format_duration, parse_duration
from bot.errors import PermanentError
from bot.pipeline.maintenance import MaintenanceWindow, check_name, cron, weekly
from bot.pipeline.matchers import parse_matchers
from bot.ports import Clock
from bot.store import maintenance as store
from bot.textcommands import WindowRequest


class WindowSpec(BaseModel):
    """A window as a person writes it: ``days`` + ``start`` or ``cron``, for ``duration``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64)
    matchers: tuple[str, ...] = Field(min_length=1)
    duration: str
    timezone: str = "UTC"
    days: str = ""
    start: str = ""
    cron: str = ""
    include_critical: bool = False
    reason: str = ""

    def build(self, actor: str) -> MaintenanceWindow:
        """The validated window; PermanentError names what is wrong."""
        try:
            length = parse_duration(self.duration)
        except ValueError:
            raise PermanentError(
                f"bad duration {self.duration!r}: use forms like 30m, 4h, 1d"
            ) from None
        if self.cron and (self.days or self.start):
            raise PermanentError("give either cron or days and start, not both")
        if self.cron:
            schedule = cron(self.cron, length, self.timezone)
        elif self.days and self.start:
            schedule = weekly(self.days, self.start, length, self.timezone)
        else:
            raise PermanentError(
                "a maintenance window needs days and start (sun 02:00) or a cron expression"
            )
        return MaintenanceWindow(
            id=0,
            name=check_name(self.name),
            schedule=schedule,
            matchers=parse_matchers(self.matchers, "a maintenance window"),
            include_critical=self.include_critical,
            reason=self.reason.strip(),
            created_by=actor,
        )


@dataclass(frozen=True, slots=True)
class WindowView:
    """A window and, at the time asked, whether it runs and when it ends or next starts."""

    window: MaintenanceWindow
    active_until: datetime | None
    next_start: datetime

    def line(self) -> str:
        w = self.window
        matchers = " ".join(str(m) for m in w.matchers)
        crit = ", critical too" if w.include_critical else ""
        zone = w.schedule.zone
        if self.active_until is not None:
            when = f"running until {self.active_until.astimezone(zone):%a %H:%M}"
        else:
            when = f"next {self.next_start.astimezone(zone):%a %Y-%m-%d %H:%M}"
        return f"{w.name}: {w.schedule.describe()} · {matchers}{crit} · {when}"

    def as_json(self) -> dict[str, object]:
        w, s = self.window, self.window.schedule
        return {
            "id": w.id,
            "name": w.name,
            "kind": s.kind.value,
            "days": list(s.days),
            "start": f"{s.start:%H:%M}" if s.days else "",
            "cron": s.cron,
            "duration": format_duration(s.duration),
            "timezone": s.timezone,
            "matchers": [str(m) for m in w.matchers],
            "include_critical": w.include_critical,
            "reason": w.reason,
            "created_by": w.created_by,
            "active": self.active_until is not None,
            "active_until": self.active_until.isoformat() if self.active_until else None,
            "next_start": self.next_start.isoformat(),
            "schedule": s.describe(),
        }


def view(window: MaintenanceWindow, now: datetime) -> WindowView:
    span = window.schedule.occurrence_at(now)
    return WindowView(window, span[1] if span else None, window.schedule.next_start(now))


class Maintenance:
    def __init__(
        self,
        engine: Engine,
        roles: Roles,
        clock: Clock,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._engine = engine
        self._roles = roles
        self._clock = clock
        self._on_change = on_change

    async def list(self) -> list[WindowView]:
        def load() -> list[WindowView]:
            now = self._clock.now()
            with self._engine.connect() as conn:
                return [view(w, now) for w in store.windows(conn)]

        return await asyncio.to_thread(load)

    async def add(
        self, spec: WindowSpec, actor: str, surface: str, groups: Iterable[str] = ()
    ) -> WindowView:
        self._roles.require(actor, Role.RESPONDER, groups)
        window = spec.build(actor)

        def save() -> WindowView:
            now = self._clock.now()
            with self._engine.begin() as conn:
                return view(store.add(conn, window, now, surface), now)

        made = await asyncio.to_thread(save)
        self._on_change()
        return made

    async def remove(
        self, ref: str, actor: str, surface: str, groups: Iterable[str] = ()
    ) -> MaintenanceWindow:
        self._roles.require(actor, Role.RESPONDER, groups)

        def drop() -> MaintenanceWindow:
            with self._engine.begin() as conn:
                return store.remove(conn, ref, actor, self._clock.now(), surface)

        gone = await asyncio.to_thread(drop)
        self._on_change()
        return gone


async def chat_answer(
    service: Maintenance,
    request: WindowRequest,
    matchers: Sequence[str],
    reason: str,
    actor: str,
    surface: str,
    groups: Iterable[str] = (),
) -> str:
    """What ``/incident maintenance …`` answers on any chat surface."""
    if request.action == "list":
        views = await service.list()
        if not views:
            return "No maintenance windows."
        return "Maintenance windows:\n" + "\n".join(f"• {v.line()}" for v in views)
    if request.action == "remove":
        gone = await service.remove(request.name, actor, surface, groups)
        return f"Removed maintenance window '{gone.name}'."
    spec = WindowSpec(
        name=request.name,
        matchers=tuple(matchers),
        duration=request.duration,
        timezone=request.timezone,
        days=request.days,
        start=request.start,
        cron=request.cron,
        include_critical=request.include_critical,
        reason=reason,
    )
    made = await service.add(spec, actor, surface, groups)
    return f"Added maintenance window {made.line()}."


__all__ = ["Maintenance", "WindowSpec", "WindowView", "chat_answer", "view"]
