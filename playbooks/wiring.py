"""Remediation's parts for the composition root: one call, a few attributes.

``bot/wiring.py`` builds the executors (integrations are its business) and hands them in with
what the core already has; :func:`from_settings` answers the registry, the
:class:`~playbooks.service.Remediation` service, the scheduler chores (verifications due,
approvals that expired) and what to do on taking the scheduler lease (mark runs a dead process
left behind as interrupted).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine

from bot.authz import Roles
from bot.interactions import Interactions
from bot.pipeline.notify import Router
from bot.ports import Clock, Executor, SearchBackend
from bot.redaction import Redactor
from bot.settings import Settings
from detectors.model import Rule
from playbooks.chores import KillSwitchCards, expire_approvals, interrupt_stranded, verify_due
from playbooks.loader import load_playbooks
from playbooks.outcome import Deps, Limits
from playbooks.registry import Registry
from playbooks.service import Remediation

log = logging.getLogger(__name__)
VERIFY_EVERY = timedelta(seconds=5)
EXPIRE_EVERY = timedelta(seconds=15)
KILL_SWITCH_EVERY = timedelta(seconds=1)


@dataclass(slots=True)
class RemediationParts:
    registry: Registry
    remediation: Remediation
    chores: list[tuple[str, timedelta, Callable[[], Any]]]
    alive_within: timedelta

    async def on_lead(self) -> int:
        """This replica took the scheduler lease: runs a dead process left become interrupted."""
        return await interrupt_stranded(self.remediation.engine, self.alive_within)

    async def after_analysis(self, incident_id: int) -> None:
        """An incident was analysed: start its automatic run if everything allows it."""
        await self.remediation.auto(incident_id)

    async def stop(self) -> None:
        await self.remediation.engine.stop()


def load_registry(settings: Settings, rules: Sequence[Rule], embedded: bool) -> Registry:
    return load_playbooks(
        settings.playbook_paths,
        include_shipped=settings.shipped_playbooks,
        rules=rules,
        embedded=embedded,
    )


def from_settings(
    settings: Settings,
    *,
    engine: Engine,
    registry: Registry,
    executors: Mapping[str, Executor],
    rules: Sequence[Rule],
    backend: SearchBackend,
    interactions: Interactions,
    router: Router,
    clock: Clock,
    redactor: Redactor,
    roles: Roles,
    holder: str,
    direct_surfaces: Sequence[str],
    paging: bool,
    embedded: bool,
    on_commit: Callable[[], None] = lambda: None,
    on_outcome: Callable[[str, str, str], None] = lambda playbook, category, outcome: None,
    on_refusal: Callable[[str], None] = lambda reason: None,
) -> RemediationParts:
    deps = Deps(
        engine=engine,
        registry=registry,
        executors=dict(executors),
        rules={r.id: r for r in rules},
        backend=backend,
        interactions=interactions,
        router=router,
        clock=clock,
        redactor=redactor,
        limits=Limits(
            max_concurrent=settings.max_concurrent_resolutions,
            approval_window=settings.approval_window,
            breaker_failures=settings.breaker_failures,
            breaker_window=settings.breaker_window,
            embedded=embedded,
        ),
        holder=holder,
        direct_surfaces=tuple(direct_surfaces),
        paging=paging,
        on_commit=on_commit,
        on_outcome=on_outcome,
        on_refusal=on_refusal,
    )
    remediation = Remediation(deps, roles)
    run_engine = remediation.engine
    log.info("%d playbooks loaded; executors: %s", len(registry), ", ".join(sorted(executors)))
    return RemediationParts(
        registry=registry,
        remediation=remediation,
        chores=[
            ("verify-runs", VERIFY_EVERY, lambda: verify_due(run_engine)),
            ("expire-approvals", EXPIRE_EVERY, lambda: expire_approvals(run_engine)),
            ("kill-switch-cards", KILL_SWITCH_EVERY, KillSwitchCards(run_engine)),
        ],
        alive_within=settings.lease_heartbeat * 3,
    )
