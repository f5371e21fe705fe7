"""Choose a playbook for an incident, plan it, and ask the gate: what preview, start, approve
and automatic mode all begin with."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from bot.store.runtime_config import read_category
from playbooks.facts import Ask, Subject, choose, confidence_of, gate_facts, load_subject
from playbooks.gate import decide
from playbooks.model import Confidence, RunMode, RunPreview, Verdict
from playbooks.outcome import Deps
from playbooks.plan import Plan, plan_playbook


@dataclass(frozen=True, slots=True)
class Who:
    """Who asks, in which mode (what the gate is told besides the shared state)."""

    mode: RunMode
    actor: str
    role_ok: bool
    requested_by: str
    approver: str = ""


@dataclass(frozen=True, slots=True)
class Prepared:
    subject: Subject
    plan: Plan
    verdict: Verdict
    alternatives: tuple[str, ...]
    confidence: float
    reasons: tuple[str, ...]


async def prepare(
    deps: Deps, number: int, who: Who, playbook_id: str | None, own_run: int | None = None
) -> Prepared:
    """Choose the playbook, plan it for the incident, and ask the gate."""

    def subject() -> Subject:
        with deps.engine.connect() as conn:
            return load_subject(conn, number)

    found = await asyncio.to_thread(subject)
    playbook, alternatives = choose(deps.registry, found, playbook_id or None)
    plan = await plan_playbook(playbook, found.labels, deps.executors)
    rule = deps.rules.get(found.incident.rule_id)
    category = found.incident.category.value

    def judge() -> tuple[Verdict, Any]:
        with deps.engine.connect() as conn:
            policy = read_category(conn, category)
            conf = confidence_of(found, rule, playbook, policy.threshold)
            full = Ask(
                playbook=playbook,
                mode=who.mode,
                actor=who.actor,
                role_ok=who.role_ok,
                requested_by=who.requested_by,
                approver=who.approver,
                confidence=conf,
                rule_auto=bool(rule and rule.auto_resolve),
            )
            facts = gate_facts(
                conn,
                full,
                category,
                plan.target,
                deps.clock.now(),
                deps.limits.max_concurrent,
                deps.limits.embedded,
                own_run=own_run,
            )
        return decide(facts), conf

    verdict, conf = await asyncio.to_thread(judge)
    return Prepared(found, plan, verdict, alternatives, conf.value, conf.reasons)


def preview_of(p: Prepared) -> RunPreview:
    incident, plan = p.subject.incident, p.plan
    return RunPreview(
        incident_id=incident.id,
        human_id=incident.human_id,
        playbook_id=plan.playbook.id,
        playbook_title=plan.playbook.title,
        category=incident.category.value,
        risk=plan.playbook.risk.value,
        target=plan.target,
        steps=plan.steps,
        rollback=plan.rollback,
        confidence=Confidence(p.confidence, p.reasons),
        verdict=p.verdict,
        fingerprint=plan.fingerprint,
        verify_wait_s=plan.playbook.verify.wait.total_seconds(),
        alternatives=p.alternatives,
    )
