"""Notify: where an incident's card goes, and the outbox messages that carry it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Any

from sqlalchemy import Connection, select, update

from bot.domain.incident import Incident
from bot.store.repo import CARD_REFS, OUTBOX, insert_ignore


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


def enqueue(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Write outbox rows, leaving out card updates nobody would see; answers rows offered.

    A card is rendered from the database when it is delivered, so an update is written only
    for a card that is already on its surface (``card_refs``) or whose post is being delivered
    right now (claimed by a worker: it may have rendered before this change). A card whose
    post is still waiting gets no update (the post will show the latest state), and neither
    does a card with an update still waiting (that one will): pending updates of a card
    coalesce into one, which takes the higher priority of the two. Other kinds go as they are.
    """
    updates = [r for r in rows if r["kind"] == MessageKind.UPDATE.value]
    if not updates:
        insert_ignore(conn, OUTBOX, rows, "idempotency_key")
        return len(rows)
    keys = sorted({r["order_key"] for r in updates})
    posted: set[str] = set()
    waiting: dict[str, int] = {}  # order_key -> id of its pending, unclaimed update
    blocked: set[str] = set()  # a pending post will render the latest state
    in_flight: set[str] = set()  # a post claimed by a worker
    ids = sorted({int(r["incident_id"]) for r in updates})
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        posted.update(
            f"{s}:{c}:{i}"
            for s, c, i in conn.execute(
                select(CARD_REFS.c.surface, CARD_REFS.c.channel, CARD_REFS.c.incident_id).where(
                    CARD_REFS.c.incident_id.in_(chunk)
                )
            )
        )
    for start in range(0, len(keys), 500):
        query = select(OUTBOX.c.id, OUTBOX.c.order_key, OUTBOX.c.kind, OUTBOX.c.claimed_by).where(
            OUTBOX.c.status == "pending",
            OUTBOX.c.order_key.in_(keys[start : start + 500]),
            OUTBOX.c.kind.in_([MessageKind.POST.value, MessageKind.UPDATE.value]),
        )
        if conn.dialect.name == "postgresql":  # a worker cannot claim them until we commit
            query = query.order_by(OUTBOX.c.id).with_for_update(of=OUTBOX)  # in one order
        for row_id, key, kind, claimed_by in conn.execute(query):
            if kind == MessageKind.POST.value:
                (in_flight if claimed_by else blocked).add(key)
            elif not claimed_by:
                waiting.setdefault(key, row_id)
    keep: list[dict[str, Any]] = []
    kept: dict[str, dict[str, Any]] = {}  # this batch's update of a card
    person: set[int] = set()
    for row in rows:
        key = row["order_key"]
        if row["kind"] != MessageKind.UPDATE.value:
            keep.append(row)
        elif key in kept:  # coalesced into this batch's earlier update of the card
            kept[key]["priority"] = min(kept[key].get("priority", 1), row.get("priority", 1))
        elif key in waiting:
            if row.get("priority", 1) < Priority.ROUTINE:
                person.add(waiting[key])
        elif key not in blocked and (key in posted or key in in_flight):
            kept[key] = dict(row)
            keep.append(kept[key])
    insert_ignore(conn, OUTBOX, keep, "idempotency_key")
    if person:
        conn.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id.in_(sorted(person)))
            .values(priority=int(Priority.PERSON))
        )
    return len(keep)
