"""Remediation as every surface reaches it (``operations.remediation``).

``preview`` is the dry run a person looks at before confirming: the steps, targets and
parameters, risk, confidence with its reasons, the gate's verdict and the plan's fingerprint.
``start`` is the confirmation: it plans again, and starts only if the fingerprint is the one the
person saw. A run that needs an approval waits for a second responder, whose approval binds to
the same fingerprint. Errors are sentences for people: NotFound, PolicyViolation (the gate said
no, with its reason), Conflict (the plan or the run changed), PermanentError (a bad parameter).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from bot.authz import Role, Roles
from bot.domain.card import RemediationPart
from bot.domain.incident import parse_human_id
from bot.errors import Conflict, NotFound, PermanentError, PolicyViolation
from bot.store import runs
from bot.store.runs import NewRun
from playbooks import notify
from playbooks.cardline import card_part, short
from playbooks.engine import RunEngine
from playbooks.facts import Subject, load_subject
from playbooks.model import (
    Decision,
    RunMode,
    RunPreview,
    RunStatus,
    RunView,
)
from playbooks.outcome import Deps, move
from playbooks.prepare import Prepared, Who, prepare, preview_of
from playbooks.starting import by_key_sync, create_sync, refused_sync

log = logging.getLogger(__name__)


def _number(incident_ref: str | int) -> int:
    number = incident_ref if isinstance(incident_ref, int) else parse_human_id(str(incident_ref))
    if number is None:
        raise NotFound(f"no incident {incident_ref!r}: ids look like INC-12")
    return number


class Remediation:
    def __init__(self, deps: Deps, roles: Roles) -> None:
        self.deps = deps
        self.roles = roles
        self.engine = RunEngine(deps)

    # reads -----------------------------------------------------------------------------------

    def _view(self, run_id: int) -> RunView:
        with self.deps.engine.connect() as conn:
            row = runs.get(conn, run_id)
            if row is None:
                raise NotFound(f"no run {run_id}; list an incident's runs to find one")
            return runs.to_view(row, runs.steps_of(conn, [run_id])[run_id])

    async def run(self, run_id: int) -> RunView:
        return await asyncio.to_thread(self._view, run_id)

    async def runs(self, incident_ref: str | int) -> list[RunView]:
        number = _number(incident_ref)

        def load() -> list[RunView]:
            with self.deps.engine.connect() as conn:
                load_subject(conn, number)  # NotFound for an unknown incident
                rows = runs.of_incident(conn, number)
                steps = runs.steps_of(conn, [r.id for r in rows])
                return [runs.to_view(r, steps[r.id]) for r in rows]

        return await asyncio.to_thread(load)

    def card_part(self, conn: Any, incident_id: int) -> RemediationPart:
        """The card's remediation line and buttons (``CardOptions.remediation``)."""
        return card_part(self.deps, conn, incident_id)

    async def remediation_line(self, incident_id: int) -> str:
        def load() -> str:
            with self.deps.engine.connect() as conn:
                return self.card_part(conn, incident_id).line

        return await asyncio.to_thread(load)

    # plan and decide -------------------------------------------------------------------------

    def _who(self, actor: str, groups: Iterable[str], mode: RunMode = RunMode.MANUAL) -> Who:
        role_ok = self.roles.role_of(actor, groups).allows(Role.RESPONDER)
        return Who(mode, actor, role_ok, actor)

    async def preview(
        self,
        incident_ref: str | int,
        actor: str,
        playbook_id: str | None = None,
        groups: Iterable[str] = (),
    ) -> RunPreview:
        prepared = await prepare(
            self.deps, _number(incident_ref), self._who(actor, groups), playbook_id
        )
        return preview_of(prepared)

    # start, approve, cancel ------------------------------------------------------------------

    async def start(
        self,
        incident_ref: str | int,
        actor: str,
        surface: str,
        fingerprint: str,
        playbook_id: str | None = None,
        idempotency_key: str | None = None,
        groups: Iterable[str] = (),
    ) -> RunView:
        if idempotency_key:
            seen = await asyncio.to_thread(by_key_sync, self.deps, idempotency_key)
            if seen is not None:
                return await self.run(seen)
        number = _number(incident_ref)
        prepared = await prepare(self.deps, number, self._who(actor, groups), playbook_id)
        if fingerprint != prepared.plan.fingerprint:
            raise Conflict(
                f"the plan changed since it was shown (it is now {prepared.plan.fingerprint[:12]}, "
                f"not {fingerprint[:12] or 'none'}): look at it again and confirm"
            )
        return await self._begin(prepared, actor, surface, idempotency_key, RunMode.MANUAL)

    async def _begin(
        self,
        prepared: Prepared,
        actor: str,
        surface: str,
        idempotency_key: str | None,
        mode: RunMode,
    ) -> RunView:
        deps = self.deps
        plan, verdict = prepared.plan, prepared.verdict
        number = prepared.subject.incident.id
        checks = [[c.code, c.passed, c.text] for c in verdict.checks]
        if verdict.decision is Decision.REFUSED:
            reason = verdict.reason
            deps.on_refusal(verdict.failed[0].code)
            await asyncio.to_thread(
                refused_sync,
                self.deps,
                number,
                actor,
                surface,
                "playbook_refused",
                reason,
                {"playbook": plan.playbook.id, "target": plan.target, "checks": checks},
            )
            raise PolicyViolation(
                f"{plan.playbook.id} cannot run on {prepared.subject.incident.human_id}: {reason}"
            )
        waiting = verdict.decision is Decision.NEEDS_APPROVAL
        now = deps.clock.now()
        new = NewRun(
            incident_id=number,
            playbook_id=plan.playbook.id,
            category=prepared.subject.incident.category.value,
            target=plan.target,
            mode=RunMode.APPROVAL if waiting else mode,
            status=RunStatus.AWAITING_APPROVAL if waiting else RunStatus.RUNNING,
            plan_json=plan.to_json(),
            fingerprint=plan.fingerprint,
            confidence=prepared.confidence,
            requested_by=actor,
            surface=surface,
            approval_expires_at=now + deps.limits.approval_window if waiting else None,
            idempotency_key=idempotency_key,
            claimed_by=deps.holder,
        )
        if waiting:
            detail = (
                f"{plan.playbook.id} on {plan.target}: waiting for a second responder to approve "
                f"(requested by {short(actor)}): {verdict.reason}"
            )
        else:
            detail = f"{plan.playbook.id} on {plan.target} started by {actor}"
        data = {
            "playbook": plan.playbook.id,
            "target": plan.target,
            "fingerprint": plan.fingerprint,
            "confidence": prepared.confidence,
            "confidence_reasons": list(prepared.reasons),
            "checks": checks,
            "decision": verdict.decision.value,
            "plan": json.loads(plan.to_json()),
        }
        run_id = await asyncio.to_thread(create_sync, self.deps, new, actor, surface, detail, data)
        if not waiting:
            self.engine.launch(run_id)
        return await self.run(run_id)

    async def approve(
        self, run_id: int, actor: str, surface: str, groups: Iterable[str] = ()
    ) -> RunView:
        deps = self.deps
        row = await asyncio.to_thread(self._row, run_id)
        if row.status != RunStatus.AWAITING_APPROVAL.value:
            raise Conflict(
                f"run {run_id} is {row.status.replace('_', ' ')}: "
                "only a run waiting for approval can be approved"
            )
        now = deps.clock.now()
        if row.approval_expires_at is not None and row.approval_expires_at <= now:
            detail = (
                f"the approval window closed at {row.approval_expires_at:%H:%M} UTC; "
                "press Auto-resolve to ask again"
            )
            await move(deps, row, RunStatus.EXPIRED, "playbook_expired", detail, tell=detail)
            raise Conflict(f"run {run_id}: {detail}")
        who = replace(
            self._who(actor, groups, RunMode.APPROVAL),
            requested_by=row.requested_by,
            approver=actor,
        )
        prepared = await prepare(self.deps, row.incident_id, who, row.playbook_id, own_run=row.id)
        if prepared.plan.fingerprint != row.plan_fingerprint:
            detail = (
                "the plan changed before it was approved: "
                "press Auto-resolve to look at it again and ask again"
            )
            await move(
                deps,
                row,
                RunStatus.CANCELLED,
                "playbook_plan_changed",
                detail,
                actor=actor,
                surface=surface,
                data={"approved": row.plan_fingerprint, "now": prepared.plan.fingerprint},
            )
            raise Conflict(f"run {run_id}: {detail}")
        verdict = prepared.verdict
        if verdict.decision is not Decision.RUN:
            failed = verdict.failed
            reason = failed[0].text if failed else verdict.reason
            deps.on_refusal(failed[0].code if failed else "approval")
            await asyncio.to_thread(
                refused_sync,
                self.deps,
                row.incident_id,
                actor,
                surface,
                "playbook_approval_refused",
                reason,
                {"run": run_id, "checks": [[c.code, c.passed, c.text] for c in verdict.checks]},
            )
            raise PolicyViolation(f"run {run_id} cannot be approved by {actor}: {reason}")
        moved = await move(
            deps,
            row,
            RunStatus.RUNNING,
            "playbook_approved",
            f"{row.playbook_id} on {row.target} approved by {actor} "
            f"(requested by {row.requested_by})",
            actor=actor,
            surface=surface,
            data={
                "fingerprint": row.plan_fingerprint,
                "checks": [[c.code, c.passed, c.text] for c in verdict.checks],
            },
            approver=actor,
            started_at=now,
            claimed_by=deps.holder,
        )
        if moved is None:
            raise Conflict(f"run {run_id} changed while it was being approved; look at it again")
        self.engine.launch(run_id)
        return await self.run(run_id)

    def _row(self, run_id: int) -> Any:
        with self.deps.engine.connect() as conn:
            row = runs.get(conn, run_id)
        if row is None:
            raise NotFound(f"no run {run_id}; list an incident's runs to find one")
        return row

    async def cancel(
        self, run_id: int, actor: str, surface: str, reason: str = "", groups: Iterable[str] = ()
    ) -> RunView:
        self.roles.require(actor, Role.RESPONDER, groups)
        row = await asyncio.to_thread(self._row, run_id)
        if not RunStatus(row.status).live:
            raise Conflict(f"run {run_id} is already {row.status.replace('_', ' ')}")
        if row.status == RunStatus.ROLLING_BACK.value:
            raise Conflict(f"run {run_id} is rolling back; a rollback is not stopped half-way")
        detail = f"cancelled by {actor}" + (f": {reason.strip()}" if reason.strip() else "")
        if row.status == RunStatus.RUNNING.value:
            detail += " (no further step begins)"
        moved = await move(
            self.deps,
            row,
            RunStatus.CANCELLED,
            "playbook_cancelled",
            detail,
            actor=actor,
            surface=surface,
            tell=detail,
        )
        if moved is None:
            raise Conflict(f"run {run_id} changed meanwhile; look at it again")
        return await self.run(run_id)

    # automatic mode --------------------------------------------------------------------------

    async def auto(self, incident_id: int) -> RunView | None:
        """After an incident's analysis: start a run without a press when the rule or the
        playbook says ``auto`` and every check of the gate passes. Answers the run, if any."""
        deps = self.deps

        def subject() -> Subject:
            with deps.engine.connect() as conn:
                return load_subject(conn, incident_id)

        try:
            found = await asyncio.to_thread(subject)
        except NotFound:
            return None
        incident = found.incident
        rule = deps.rules.get(incident.rule_id)
        rule_auto = rule is not None and rule.auto_resolve
        # the first match that may run by itself (a rule saying auto lets its best match run)
        candidates = deps.registry.matching(incident.rule_id, incident.category.value, found.labels)
        chosen = next((p for p in candidates if rule_auto or p.auto), None)
        if chosen is None or not incident.is_active:
            return None
        try:
            who = Who(RunMode.AUTO, "bot", True, "bot")
            prepared = await prepare(self.deps, incident_id, who, chosen.id)
        except (NotFound, PermanentError) as exc:
            log.info("INC-%s: no automatic remediation: %s", incident_id, exc)
            return None
        plan, verdict = prepared.plan, prepared.verdict
        key = f"auto:{incident_id}:{plan.fingerprint[:16]}"
        if await asyncio.to_thread(by_key_sync, self.deps, key) is not None:
            return None  # analysed again: this plan already ran (or runs) once
        if verdict.decision is not Decision.RUN:
            failed = verdict.failed
            deps.on_refusal(failed[0].code if failed else "approval")
            await asyncio.to_thread(
                refused_sync,
                self.deps,
                incident_id,
                "bot",
                notify.SURFACE,
                "playbook_auto_refused",
                verdict.reason,
                {
                    "playbook": plan.playbook.id,
                    "checks": [[c.code, c.passed, c.text] for c in verdict.checks],
                },
            )
            return None
        try:
            return await self._begin(prepared, "bot", notify.SURFACE, key, RunMode.AUTO)
        except (PolicyViolation, Conflict) as exc:
            log.info("INC-%s: automatic remediation not started: %s", incident_id, exc)
            return None
