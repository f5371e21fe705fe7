"""Escalate: when an incident pages, and the pager messages that follow its state.

The policy (settings ``escalation``) maps severity, category and service to a delay: page at
once (``0s``), after N minutes still open (not acknowledged, suppressed or resolved), or never.
Timers are rows in the ``escalations`` table, so they survive restarts; the scheduler lease
holder checks them. Acknowledge and resolve follow the incident from any surface, except
changes that came from the pager itself (no echo loops).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update

from bot.domain.durations import format_duration
from bot.domain.incident import Incident, State
from bot.domain.page import PageAction, dedup_key
from bot.pipeline.notify import MessageKind, Target, message
from bot.store.repo import INCIDENTS, OUTBOX, TIMELINE, insert_ignore, to_incident
from bot.store.tables import EscalationRow

ESCALATIONS = EscalationRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class EscalationRule:
    after: timedelta | None  # None: never page
    channel: str = "default"
    severity: frozenset[str] = frozenset()
    category: frozenset[str] = frozenset()
    service: frozenset[str] = frozenset()

    def matches(self, incident: Incident) -> bool:
        return (
            (not self.severity or incident.severity.value in self.severity)
            and (not self.category or incident.category.value in self.category)
            and (not self.service or incident.service in self.service)
        )


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    pager: str
    rules: tuple[EscalationRule, ...]

    def rule_for(self, incident: Incident) -> EscalationRule | None:
        """The first matching rule; None when no rule matches or it says never."""
        for rule in self.rules:
            if rule.matches(incident):
                return rule if rule.after is not None else None
        return None

    def target(self, channel: str) -> Target:
        return Target(self.pager, channel)


def timer_row(incident: Incident, rule: EscalationRule, now: datetime) -> dict[str, Any]:
    assert rule.after is not None
    return {
        "incident_id": incident.id,
        "policy": rule.channel,
        "due_at": now + rule.after,
        "status": "pending",
        "paged_at": None,
        "created_at": now,
    }


def page_messages(
    incident: Incident,
    policy: EscalationPolicy,
    action: PageAction,
    channel: str,
    change_id: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """One pager message; rendered from the database when it is delivered."""
    target = policy.target(channel)
    key = f"page:{action.value}:{channel}:{incident.id}:{change_id}"
    row = message(MessageKind(action.value), incident, target, key, now)
    row["severity_rank"] = 0  # pages go before anything else in their lane
    return [row]


def follow_state(
    incident: Incident,
    page_ref: str,
    channel: str,
    policy: EscalationPolicy,
    surface: str,
    change_id: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """Pager messages that mirror a state change made on another surface."""
    if not page_ref or surface == policy.pager:
        return []
    action = {
        "acknowledged": PageAction.ACKNOWLEDGE,
        "resolved": PageAction.RESOLVE,
    }.get(incident.state.value)
    if action is None:
        return []
    return page_messages(incident, policy, action, channel, change_id, now)


def note_messages(
    incident: Incident,
    page_ref: str,
    channel: str,
    policy: EscalationPolicy,
    surface: str,
    text: str,
    change_id: str,
    now: datetime,
) -> list[dict[str, Any]]:
    """A comment made on another surface, as a note on the pager's incident (once paged)."""
    if not page_ref or surface == policy.pager or not text.strip():
        return []
    key = f"page:note:{channel}:{incident.id}:{change_id}"
    row = message(MessageKind.NOTE, incident, policy.target(channel), key, now, {"text": text})
    row["severity_rank"] = 0  # behind the trigger (older), ahead of the cards
    return [row]


def page_key(incident: Incident) -> str:
    return dedup_key(incident)


def page_due(engine: Engine, policy: EscalationPolicy, now: datetime) -> list[int]:
    """Page every incident whose timer ran out while it stayed open; drop resolved ones.

    Acknowledged and suppressed incidents keep their timer: should they go back to open
    (unacknowledged, suppression over) after it ran out, they page at the next check."""
    paged: list[int] = []
    with engine.begin() as conn:
        rows = conn.execute(
            select(
                INCIDENTS,
                ESCALATIONS.c.policy.label("esc_channel"),
                ESCALATIONS.c.created_at.label("esc_armed_at"),
            )
            .join(ESCALATIONS, INCIDENTS.c.id == ESCALATIONS.c.incident_id)
            .where(ESCALATIONS.c.status == "pending", ESCALATIONS.c.due_at <= now)
        ).all()
        for row in rows:
            incident = to_incident(row)
            if incident.state is State.RESOLVED:
                conn.execute(
                    update(ESCALATIONS)
                    .where(ESCALATIONS.c.incident_id == incident.id)
                    .values(status="cancelled")
                )
                continue
            if incident.state is not State.OPEN:
                continue
            waited = now - row.esc_armed_at
            conn.execute(
                update(ESCALATIONS)
                .where(ESCALATIONS.c.incident_id == incident.id)
                .values(status="paged", paged_at=now)
            )
            conn.execute(
                update(INCIDENTS)
                .where(INCIDENTS.c.id == incident.id)
                .values(page_ref=page_key(incident), updated_at=now)
            )
            conn.execute(
                TIMELINE.insert(),
                [
                    {
                        "incident_id": incident.id,
                        "at": now,
                        "actor": "bot",
                        "surface": "scheduler",
                        "kind": "page",
                        "text": f"paged {policy.pager} ({row.esc_channel}): still open after "
                        f"{format_duration(waited)}",
                    }
                ],
            )
            insert_ignore(
                conn,
                OUTBOX,
                page_messages(incident, policy, PageAction.TRIGGER, row.esc_channel, "timer", now),
                "idempotency_key",
            )
            paged.append(incident.id)
    return paged
