"""Notify: where an incident's card goes, and the outbox messages that carry it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Any

from bot.domain.incident import Incident


class MessageKind(StrEnum):
    POST = "post"
    UPDATE = "update"
    REPLY = "reply"
    DIRECT = "direct"  # a direct message to one person (channel = their id on the surface)
    # pager messages
    TRIGGER = "trigger"
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"
    NOTE = "note"  # a comment made here, as a note on the pager's incident


class Priority(IntEnum):
    """Which messages of a lane go first: a person's action never waits behind the bot's own
    backlog (card posts, refreshes), only for the surface's own limit."""

    PERSON = 0  # caused by a press, a command, a console or API call
    ROUTINE = 1


#: actors that are the bot itself (the scheduler, a rule, a playbook step)
BOT_ACTORS = ("bot", "rule:", "playbook")


def priority_of(actor: str) -> Priority:
    """A person's action, unless the actor is the bot itself (or unknown)."""
    if not actor or actor.startswith(BOT_ACTORS):
        return Priority.ROUTINE
    return Priority.PERSON


@dataclass(frozen=True, slots=True)
class Target:
    surface: str
    channel: str


@dataclass(frozen=True, slots=True)
class RouteRule:
    target: Target
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
class Router:
    """First matching route per surface wins; surfaces without a match use their default."""

    rules: tuple[RouteRule, ...]
    defaults: tuple[Target, ...]

    def targets(self, incident: Incident) -> list[Target]:
        chosen: dict[str, Target] = {}
        for rule in self.rules:
            if rule.target.surface not in chosen and rule.matches(incident):
                chosen[rule.target.surface] = rule.target
        for target in self.defaults:
            chosen.setdefault(target.surface, target)
        return list(chosen.values())


def order_key(incident_id: int, target: Target) -> str:
    return f"{target.surface}:{target.channel}:{incident_id}"


def message(
    kind: MessageKind,
    incident: Incident,
    target: Target,
    key: str,
    now: datetime,
    payload: dict[str, Any] | None = None,
    priority: Priority = Priority.ROUTINE,
) -> dict[str, Any]:
    """One outbox row (as column values)."""
    return {
        "idempotency_key": key,
        "surface": target.surface,
        "channel": target.channel,
        "kind": kind.value,
        "incident_id": incident.id,
        "order_key": order_key(incident.id, target),
        "payload_json": json.dumps(payload or {}, separators=(",", ":")),
        "severity_rank": incident.severity.rank,
        "priority": int(priority),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "sent_at": None,
        "last_error": "",
    }


def card_posts(
    incident: Incident, targets: Sequence[Target], now: datetime
) -> list[dict[str, Any]]:
    """Post the card once per target; a reopened incident posts again (new key)."""
    tag = f"{incident.id}:{incident.version}:{int(incident.updated_at.timestamp())}"
    return [
        message(MessageKind.POST, incident, t, f"post:{t.surface}:{t.channel}:{tag}", now)
        for t in targets
    ]


def card_refreshes(
    incident: Incident, targets: Sequence[Target], now: datetime, every: timedelta
) -> list[dict[str, Any]]:
    """At most one count refresh per card per ``every`` (the key names the time bucket)."""
    bucket = int(now.timestamp() // max(every.total_seconds(), 1))
    return [
        message(
            MessageKind.UPDATE,
            incident,
            t,
            f"refresh:{t.surface}:{t.channel}:{incident.id}:{bucket}",
            now,
        )
        for t in targets
    ]


def state_change(
    incident: Incident,
    targets: Sequence[Target],
    summary: str,
    change_id: str,
    now: datetime,
    by: str = "",
) -> list[dict[str, Any]]:
    """After a change: update the card in place, then reply in its thread with the summary.

    A change ``by`` a person goes in its lane's priority lane (:func:`priority_of`)."""
    first = priority_of(by)
    out = []
    for t in targets:
        base = f"{t.surface}:{t.channel}:{incident.id}:{change_id}"
        out.append(message(MessageKind.UPDATE, incident, t, f"update:{base}", now, None, first))
        text = {"text": summary}
        out.append(message(MessageKind.REPLY, incident, t, f"reply:{base}", now, text, first))
    return out
