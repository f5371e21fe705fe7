"""What the gate is told: the incident as remediation sees it, and the shared state around it.

Everything here reads the database in the caller's connection; nothing changes it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from bot.domain.incident import Incident
from bot.domain.rca import RcaReport
from bot.errors import NotFound, PermanentError
from bot.pipeline.ingest_rows import labels_of_incident
from bot.store import runs
from bot.store.breakers import disabled_playbooks
from bot.store.cards import rca_from_json
from bot.store.repo import INCIDENTS, to_incident
from bot.store.runtime_config import (
    KillSwitch,
    read_category,
    read_kill_switch,
    read_max_concurrent,
)
from bot.store.tables import AlertRow
from detectors.model import Rule
from playbooks.confidence import confidence
from playbooks.gate import GateFacts
from playbooks.model import Confidence, RunMode
from playbooks.registry import Registry
from playbooks.spec import Playbook

ALERTS = AlertRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Subject:
    """An incident with what remediation needs of it."""

    incident: Incident
    labels: dict[str, str]
    rca: RcaReport | None
    evidence_ids: frozenset[str]


def load_subject(conn: Connection, incident_id: int, evidence: bool = True) -> Subject:
    """The incident, its labels and analysis; ``evidence``: also its evidence ids (what an
    analysis may cite for its confidence to count)."""
    row = conn.execute(select(INCIDENTS).where(INCIDENTS.c.id == incident_id)).first()
    if row is None:
        raise NotFound(f"no incident INC-{incident_id}; list the incidents to find its id")
    ids: set[str] = set()
    for (text,) in (
        conn.execute(select(ALERTS.c.evidence_json).where(ALERTS.c.incident_id == incident_id))
        if evidence
        else ()
    ):
        ids.update(str(e.get("id", "")) for e in json.loads(text or "[]") if isinstance(e, dict))
    return Subject(
        to_incident(row), labels_of_incident(row), rca_from_json(row.rca_json), frozenset(ids)
    )


def choose(
    registry: Registry, subject: Subject, playbook_id: str | None
) -> tuple[Playbook, tuple[str, ...]]:
    """The playbook to plan (the one named, or the best match) and the other matches."""
    incident = subject.incident
    found = registry.matching(incident.rule_id, incident.category.value, subject.labels)
    suggested = subject.rca.suggested_playbook if subject.rca else None
    if suggested and any(p.id == suggested for p in found):
        found.sort(key=lambda p: p.id != suggested)  # the model may only reorder the matches
    if playbook_id:
        chosen = registry.get(playbook_id)
        if chosen is None:
            known = ", ".join(registry.ids()) or "none"
            raise NotFound(f"no playbook {playbook_id!r} (playbooks here: {known})")
        if chosen not in found:
            raise PermanentError(
                f"playbook {playbook_id} does not apply to {incident.human_id} "
                f"(rule {incident.rule_id}, category {incident.category.value})"
            )
    elif found:
        chosen = found[0]
    else:
        raise NotFound(
            f"no playbook applies to {incident.human_id} (rule {incident.rule_id}, "
            f"category {incident.category.value}); fix it by hand"
        )
    return chosen, tuple(p.id for p in found if p.id != chosen.id)


def confidence_of(
    subject: Subject, rule: Rule | None, playbook: Playbook, threshold: float
) -> Confidence:
    incident = subject.incident
    return confidence(
        rule.confidence if rule is not None else 0.0,
        incident.hit_count,
        incident.alert_count,
        subject.rca,
        playbook.id,
        threshold,
        subject.evidence_ids,
    )


@dataclass(frozen=True, slots=True)
class Ask:
    """Who asks for what, in which mode (the parts of the facts that are not shared state)."""

    playbook: Playbook
    mode: RunMode
    actor: str
    role_ok: bool
    requested_by: str
    approver: str = ""
    confidence: Confidence = field(default_factory=lambda: Confidence(0.0, ()))
    rule_auto: bool = False


def gate_facts(
    conn: Connection,
    ask: Ask,
    category: str,
    target: str,
    now: datetime,
    max_concurrent_default: int,
    embedded: bool,
    own_run: int | None = None,
    kill: KillSwitch | None = None,
) -> GateFacts:
    """The facts for :func:`playbooks.gate.decide`; ``own_run``: the run being decided,
    left out of the counts (its next step is being decided)."""
    live = runs.live_count(conn)
    busy_row: Any = runs.live_on_target(conn, target)
    busy = busy_row is not None and busy_row.id != own_run
    if own_run is not None and live > 0:
        live -= 1
    last = runs.last_finished_on_target(conn, target) if own_run is None else None
    return GateFacts(
        playbook=ask.playbook,
        mode=ask.mode,
        actor=ask.actor,
        role_ok=ask.role_ok,
        requested_by=ask.requested_by,
        approver=ask.approver,
        kill=kill if kill is not None else read_kill_switch(conn),
        policy=read_category(conn, category),
        confidence=ask.confidence,
        rule_auto=ask.rule_auto,
        live_runs=live,
        max_concurrent=read_max_concurrent(conn, max_concurrent_default),
        target_busy=busy,
        last_finished_on_target=last,
        breaker_reason=disabled_playbooks(conn).get(ask.playbook.id, ""),
        now=now,
        embedded=embedded,
    )


def rule_of(rules: Mapping[str, Rule], incident: Incident) -> Rule | None:
    return rules.get(incident.rule_id)
