"""Moving a run and everything that goes with each move, in one transaction.

A move changes the run's status (optimistic: from the version read), writes its audit entry and
timeline line, updates the incident's card in place, and, when the run ends, sends the owner and
the presser a direct message (when the category wants it) and feeds the circuit breaker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from bot.domain.incident import Command, CommandKind
from bot.errors import BotError
from bot.interactions import Interactions
from bot.pipeline.notify import Router
from bot.ports import Clock, Executor, SearchBackend
from bot.redaction import Redactor
from bot.store import runs
from bot.store.breakers import disable_playbook, disabled_playbooks
from bot.store.runtime_config import read_category
from detectors.model import Rule
from playbooks import notify
from playbooks.facts import load_subject
from playbooks.model import LIVE, RunStatus
from playbooks.plan import StoredPlan
from playbooks.registry import Registry

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Limits:
    max_concurrent: int = 10
    approval_window: timedelta = timedelta(minutes=15)
    breaker_failures: int = 3
    breaker_window: timedelta = timedelta(hours=1)
    embedded: bool = True


@dataclass(slots=True)
class Deps:
    """What the engine, its chores and the service share (built once by the wiring)."""

    engine: Engine
    registry: Registry
    executors: Mapping[str, Executor]
    rules: Mapping[str, Rule]
    backend: SearchBackend
    interactions: Interactions
    router: Router
    clock: Clock
    redactor: Redactor
    limits: Limits = field(default_factory=Limits)
    holder: str = ""
    direct_surfaces: tuple[str, ...] = ("console",)
    paging: bool = False  # a pager is set up: failed runs page
    on_commit: Callable[[], None] = lambda: None  # new outbox rows: wake the worker
    on_outcome: Callable[[str, str, str], None] = lambda playbook, category, outcome: None
    on_refusal: Callable[[str], None] = lambda reason: None


def describe(row: Any) -> str:
    """A run in one line for messages: ``restart-web (run 5) on ecs:prod/web``."""
    return f"{row.playbook_id} (run {row.id}) on {row.target}"


def move_sync(
    deps: Deps,
    row: Any,
    status: RunStatus | None,
    action: str,
    detail: str,
    data: Mapping[str, Any] | None = None,
    actor: str = "",
    surface: str = notify.SURFACE,
    tell: str = "",
    result: str = "applied",
    **values: Any,
) -> Any:
    """Move ``row`` (None if another process moved it first); ``tell``: a direct message to
    the owner and the requester (when the run's category says notify)."""
    now = deps.clock.now()
    if status is not None:
        values.setdefault("detail", detail)
    with deps.engine.begin() as conn:
        moved = runs.move(conn, row, status, now, **values)
        if moved is None:
            return None
        subject = load_subject(conn, row.incident_id)
        who = actor or f"playbook:{row.playbook_id}"
        notify.record(
            conn,
            now,
            who,
            surface,
            action,
            row.incident_id,
            result,
            detail,
            {"run": row.id, "playbook": row.playbook_id, "target": row.target, **(data or {})},
            before=row.status,
            after=moved.status,
            correlation_id=f"run-{row.id}",
        )
        if status is not None and status.value != row.status:
            notify.timeline(conn, row.incident_id, now, who, "remediation", detail)
        notify.card_updates(conn, subject.incident, deps.router, f"{row.id}:{moved.version}", now)
        if tell and read_category(conn, row.category).notify_required:
            people = [subject.incident.owner, row.requested_by]
            sent = notify.direct_messages(
                conn,
                subject.incident,
                people,
                tell,
                f"{row.id}:{moved.status}",
                now,
                deps.direct_surfaces,
            )
            if sent:
                notify.record(
                    conn,
                    now,
                    who,
                    surface,
                    "playbook_notified",
                    row.incident_id,
                    "applied",
                    f"told {', '.join(sent)}: {tell}",
                    {"run": row.id, "to": sent},
                    correlation_id=f"run-{row.id}",
                )
    deps.on_commit()
    if status is not None and status not in LIVE:
        deps.on_outcome(row.playbook_id, row.category, status.value)
    return moved


async def move(
    deps: Deps, row: Any, status: RunStatus | None, action: str, detail: str, **kw: Any
) -> Any:
    return await asyncio.to_thread(move_sync, deps, row, status, action, detail, **kw)


def outcome_text(row: Any, plan: StoredPlan, status: RunStatus, detail: str) -> str:
    steps = ", ".join(s.step.name for s in plan.steps)
    return (
        f"{row.playbook_id} ran on {row.target} for INC-{row.incident_id} "
        f"(requested by {row.requested_by or 'automatic mode'}; steps: {steps}). "
        f"Outcome: {status.value.replace('_', ' ')}: {detail}"
    )


async def page(deps: Deps, row: Any, reason: str, why: str = "failed") -> bool:
    """Page a person about the run's incident through the escalation policy (if any)."""
    if not deps.paging:
        return False
    command = Command(
        CommandKind.PAGE,
        actor=f"playbook:{row.playbook_id}",
        surface=notify.SURFACE,
        reason=reason,
        idempotency_key=f"run:{row.id}:page:{why}",
    )
    try:
        await deps.interactions.execute(row.incident_id, command)
    except BotError as exc:  # resolved meanwhile, or paged already: nothing more to do
        log.info("run %s: no page for INC-%s: %s", row.id, row.incident_id, exc)
        return False
    return True


async def feed_breaker(deps: Deps, row: Any) -> str:
    """After a failed run: open the playbook's breaker when it failed too often; answers why."""
    limits = deps.limits
    now = deps.clock.now()

    def check() -> str:
        with deps.engine.connect() as conn:
            if row.playbook_id in disabled_playbooks(conn):
                return ""
            failures = runs.failures_since(conn, row.playbook_id, now - limits.breaker_window)
        if failures < limits.breaker_failures:
            return ""
        reason = (
            f"{failures} failed runs within {limits.breaker_window} "
            f"(breaker_failures {limits.breaker_failures})"
        )
        disable_playbook(deps.engine, row.playbook_id, reason, now)
        return reason

    reason = await asyncio.to_thread(check)
    if reason:
        log.warning("playbook %s disabled by its circuit breaker: %s", row.playbook_id, reason)
        await page(
            deps,
            row,
            f"playbook {row.playbook_id} disabled by its circuit breaker: {reason}",
            "breaker",
        )
    return reason
