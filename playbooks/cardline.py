"""The remediation part of an incident's card: one line and the buttons that go with it.

Built from the database whenever a card is rendered (so every surface shows the same thing):
the run in progress step by step, who an approval waits on, how the last run ended, or, when
nothing runs, the playbook that would, its confidence with reasons and the gate's verdict.
Surfaces decide how a refused button looks (kept but disabled, with the reason).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection

from bot.domain.card import ActionKind, CardAction, RemediationPart
from bot.domain.incident import State
from bot.errors import BotError
from bot.store import runs
from bot.store.runtime_config import read_category, read_kill_switch
from playbooks.facts import Ask, choose, confidence_of, gate_facts, load_subject
from playbooks.gate import decide
from playbooks.model import Decision, RunMode, RunStatus
from playbooks.outcome import Deps
from playbooks.plan import fill, parameters, safe_labels

APPROVE = CardAction(ActionKind.APPROVE_RUN, "Approve", "primary")
CANCEL = CardAction(ActionKind.CANCEL_RUN, "Cancel run", "danger")


def short(identity: str) -> str:
    """``console:ann`` -> ``ann`` (how people are named on a card)."""
    return identity.partition(":")[2] or identity


def _progress(conn: Connection, row: Any) -> str:
    total = len(json.loads(row.plan_json or "{}").get("steps", []))
    steps = runs.steps_of(conn, [row.id])[row.id]
    done = [s for s in steps if s.phase == "step" and s.status == "succeeded"]
    now = [s for s in steps if s.status == "running"]
    parts = [f"{len(done)} of {total} steps done"]
    if now:
        label = "rolling back" if now[-1].phase == "rollback" else f"step {now[-1].idx + 1}"
        parts.append(f"{label} ({now[-1].name}) running")
    return "; ".join(parts)


def _live(conn: Connection, row: Any) -> RemediationPart:
    pb = row.playbook_id
    status = RunStatus(row.status)
    if status is RunStatus.AWAITING_APPROVAL:
        until = row.approval_expires_at
        by = f" until {until:%H:%M} UTC" if until else ""
        line = (
            f"{pb}: waiting for a second responder to approve "
            f"(requested by {short(row.requested_by)}){by}"
        )
        return RemediationPart(line, (APPROVE, CANCEL), row.id)
    if status is RunStatus.VERIFYING:
        due = row.verify_due_at
        at = f" at {due:%H:%M:%S} UTC" if due else ""
        return RemediationPart(f"{pb}: {_progress(conn, row)}; verifying{at}", (), row.id)
    if status is RunStatus.ROLLING_BACK:
        return RemediationPart(f"{pb}: rolling back ({row.detail})", (), row.id)
    return RemediationPart(f"{pb} running: {_progress(conn, row)}", (CANCEL,), row.id)


def card_part(deps: Deps, conn: Connection, incident_id: int) -> RemediationPart:
    try:
        return _card_part(deps, conn, incident_id)
    except BotError as exc:  # a card always renders; the line says what is wrong
        return RemediationPart(f"Auto-resolve unavailable: {exc}")


def _card_part(deps: Deps, conn: Connection, incident_id: int) -> RemediationPart:
    found = runs.of_incident(conn, incident_id)
    latest = found[0] if found else None
    if latest is not None and RunStatus(latest.status).live:
        part = _live(conn, latest)
        kill = read_kill_switch(conn)
        if kill.on:
            part = RemediationPart(
                f"{part.line} · kill switch on: {kill.reason}", part.actions, part.run_id
            )
        return part
    subject = load_subject(conn, incident_id, evidence=False)
    if subject.incident.state is State.RESOLVED:
        if latest is not None and latest.status == RunStatus.SUCCEEDED.value:
            return RemediationPart(latest.detail.split(": rule ")[0], (), latest.id)
        return RemediationPart()
    before = ""
    if latest is not None:
        if latest.status == RunStatus.INTERRUPTED.value:
            line = f"{latest.playbook_id} run {latest.detail}"
            return RemediationPart(
                line, (CardAction(ActionKind.AUTO_RESOLVE, "Re-plan", "primary"),), latest.id
            )
        before = (
            f"last run {latest.playbook_id} {latest.status.replace('_', ' ')}: {latest.detail} · "
        )
    try:
        playbook, _ = choose(deps.registry, subject, None)
    except BotError:
        return RemediationPart(before.removesuffix(" · "))
    subject = load_subject(conn, incident_id)  # with its evidence, for the confidence
    rule = deps.rules.get(subject.incident.rule_id)
    category = subject.incident.category.value
    policy = read_category(conn, category)
    conf = confidence_of(subject, rule, playbook, policy.threshold)
    try:
        values = {**safe_labels(subject.labels), **parameters(playbook, subject.labels)}
        target = fill(playbook.target, values, "target")
    except BotError as exc:
        refused = CardAction(ActionKind.AUTO_RESOLVE, "Auto-resolve", refused=str(exc))
        return RemediationPart(f"{before}{playbook.id}: {exc}", (refused,))
    ask = Ask(playbook, RunMode.MANUAL, "", True, "", confidence=conf)
    now = deps.clock.now()
    facts = gate_facts(
        conn, ask, category, target, now, deps.limits.max_concurrent, deps.limits.embedded
    )
    verdict = decide(facts)
    reasons = "; ".join(conf.reasons)
    head = (
        f"{before}Auto-resolve with {playbook.id} on {target} · "
        f"confidence {conf.value:.2f} ({reasons})"
    )
    if verdict.decision is Decision.RUN:
        action = CardAction(ActionKind.AUTO_RESOLVE, "Auto-resolve", "primary")
        return RemediationPart(f"{head} · ready", (action,))
    if verdict.decision is Decision.NEEDS_APPROVAL:
        action = CardAction(ActionKind.AUTO_RESOLVE, "Run with approval", "primary")
        return RemediationPart(f"{head} · {verdict.reason}", (action,))
    first = verdict.failed[0]
    text = f"kill switch on: {facts.kill.reason}" if first.code == "kill_switch" else first.text
    action = CardAction(ActionKind.AUTO_RESOLVE, "Auto-resolve", refused=text)
    return RemediationPart(f"{head} · refused: {text}", (action,))
