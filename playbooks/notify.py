"""What a run tells people, written in the transaction of the change that causes it.

Card updates (rendered from the database when delivered, like every card update), timeline
lines, audit entries and direct messages to the incident's owner and to whoever pressed: all go
through the outbox or the audit chain, never straight to a surface.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from bot.domain.incident import Incident
from bot.pipeline.notify import MessageKind, Router, Target, enqueue, message
from bot.store import audit
from bot.store.repo import OUTBOX, TIMELINE, insert_ignore

SURFACE = "playbook"
#: identities whose first part names a surface a direct message can reach
DIRECT_SURFACES = ("slack", "teams", "console")
TEXT_CAP = 2000


def card_updates(
    conn: Connection, incident: Incident, router: Router, key: str, now: datetime
) -> None:
    """Update the incident's card in place on every surface it is routed to."""
    rows = [
        message(MessageKind.UPDATE, incident, t, f"run-card:{t.surface}:{t.channel}:{key}", now)
        for t in router.targets(incident)
    ]
    enqueue(conn, rows)


def person(identity: str) -> Target | None:
    """Where an identity (``slack:U123``, ``console:ann``) can get a direct message."""
    surface, _, user = identity.partition(":")
    if surface in DIRECT_SURFACES and user:
        return Target(surface, user)
    return None


def direct_messages(
    conn: Connection,
    incident: Incident,
    people: Iterable[str],
    text: str,
    key: str,
    now: datetime,
    surfaces: Iterable[str],
) -> list[str]:
    """A direct message to each person on a configured surface; answers who gets one."""
    usable = set(surfaces)
    rows = []
    sent: list[str] = []
    for identity in dict.fromkeys(p for p in people if p):
        target = person(identity)
        if target is None or target.surface not in usable:
            continue
        row = message(
            MessageKind.DIRECT,
            incident,
            target,
            f"direct:{target.surface}:{target.channel}:{key}",
            now,
            {"text": text[:TEXT_CAP]},
        )
        row["order_key"] = f"direct:{target.surface}:{target.channel}"
        rows.append(row)
        sent.append(identity)
    insert_ignore(conn, OUTBOX, rows, "idempotency_key")
    return sent


def timeline(
    conn: Connection, incident_id: int, now: datetime, actor: str, kind: str, text: str
) -> None:
    conn.execute(
        TIMELINE.insert(),
        [
            {
                "incident_id": incident_id,
                "at": now,
                "actor": actor,
                "surface": SURFACE,
                "kind": kind,
                "text": text[:TEXT_CAP],
            }
        ],
    )


def record(
    conn: Connection,
    now: datetime,
    actor: str,
    surface: str,
    action: str,
    incident_id: int | None,
    result: str,
    detail: str,
    data: Mapping[str, Any],
    before: str = "",
    after: str = "",
    reason: str = "",
    correlation_id: str = "",
) -> None:
    """One audit entry of a run (``action`` like ``playbook_step_started``). ``before`` and
    ``after`` are the run's statuses (kept in ``data``: the state columns are the incident's)."""
    extra = dict(data)
    if before or after:
        extra.update(run_status_before=before, run_status_after=after)
    audit.append(
        conn,
        [
            {
                "at": now,
                "actor": actor,
                "surface": surface,
                "action": action,
                "incident_id": incident_id,
                "reason": reason,
                "result": result,
                "detail": detail[:TEXT_CAP],
                "correlation_id": correlation_id,
                "data": json.loads(json.dumps(extra, default=str)),
            }
        ],
    )
