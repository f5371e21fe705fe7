"""Reads and small writes shared by the pipeline, commands, the API and the console."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlmodel import col

from bot.domain.hits import Category, Evidence, Severity
from bot.domain.incident import Incident, State
from bot.errors import NotFound
from bot.ports import MessageRef
from bot.store.tables import (
    AlertRow,
    AuditRow,
    CardRefRow,
    IncidentRow,
    OutboxRow,
    RuleStateRow,
    SilenceRow,
    TimelineRow,
)

INCIDENTS = IncidentRow.__table__  # type: ignore[attr-defined]
ALERTS = AlertRow.__table__  # type: ignore[attr-defined]
TIMELINE = TimelineRow.__table__  # type: ignore[attr-defined]
AUDIT = AuditRow.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxRow.__table__  # type: ignore[attr-defined]
CARD_REFS = CardRefRow.__table__  # type: ignore[attr-defined]
SILENCES = SilenceRow.__table__  # type: ignore[attr-defined]
RULE_STATE = RuleStateRow.__table__  # type: ignore[attr-defined]


def to_incident(row: Any) -> Incident:
    """Build the domain value from an ORM row or a Core row mapping."""
    m: Any = row
    if not isinstance(row, dict):
        m = row._mapping if hasattr(row, "_mapping") else row.__dict__
    return Incident(
        id=m["id"],
        group_key=m["group_key"],
        rule_id=m["rule_id"],
        title=m["title"],
        severity=Severity(m["severity"]),
        category=Category(m["category"]),
        service=m["service"],
        host=m["host"],
        owner=m["owner"],
        state=State(m["state"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        first_seen=m["first_seen"],
        last_seen=m["last_seen"],
        hit_count=m["hit_count"],
        alert_count=m["alert_count"],
        previous_state=State(m["previous_state"]) if m["previous_state"] else None,
        suppressed_until=m["suppressed_until"],
        state_changed_by=m["state_changed_by"],
        state_changed_at=m["state_changed_at"],
        resolved_at=m["resolved_at"],
        assignee=m["assignee"],
        runbook=m["runbook"],
        version=m["version"],
    )


def state_columns(incident: Incident) -> dict[str, Any]:
    """The columns a transition may change."""
    return {
        "state": incident.state.value,
        "previous_state": incident.previous_state.value if incident.previous_state else None,
        "suppressed_until": incident.suppressed_until,
        "state_changed_by": incident.state_changed_by,
        "state_changed_at": incident.state_changed_at,
        "resolved_at": incident.resolved_at,
        "assignee": incident.assignee,
        "updated_at": incident.updated_at,
        "active_key": None if incident.state is State.RESOLVED else incident.group_key,
    }


def insert_ignore(
    conn: Connection, table: Any, rows: Sequence[dict[str, Any]], key: str | Sequence[str]
) -> None:
    """INSERT rows, skipping those whose unique ``key`` (a column, or the columns of a composite
    key) already exists (SQLite and PostgreSQL)."""
    if not rows:
        return
    columns = [key] if isinstance(key, str) else list(key)
    dialect = conn.dialect.name
    if dialect == "sqlite":
        stmt: Any = sqlite.insert(table).on_conflict_do_nothing(index_elements=columns)
    elif dialect == "postgresql":
        stmt = postgresql.insert(table).on_conflict_do_nothing(index_elements=columns)
    else:  # pragma: no cover
        stmt = insert(table)
    conn.execute(stmt, list(rows))


def get_incident_row(session: Session, incident_id: int) -> IncidentRow:
    row = session.get(IncidentRow, incident_id)
    if row is None:
        raise NotFound(f"no incident INC-{incident_id}")
    return row


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    state: Sequence[str] = ()
    severity: Sequence[str] = ()
    service: str = ""
    host: str = ""
    rule_id: str = ""
    text: str = ""


def list_incidents(
    session: Session,
    flt: IncidentFilter,
    limit: int = 50,
    offset: int = 0,
    ids: Sequence[int] = (),
) -> tuple[list[Incident], int]:
    c = INCIDENTS.c
    query = select(INCIDENTS)
    if ids:
        query = query.where(c.id.in_(list(ids)))
    if flt.state:
        query = query.where(c.state.in_(list(flt.state)))
    if flt.severity:
        query = query.where(c.severity.in_(list(flt.severity)))
    if flt.service:
        query = query.where(c.service == flt.service)
    if flt.host:
        query = query.where(c.host == flt.host)
    if flt.rule_id:
        query = query.where(c.rule_id == flt.rule_id)
    if flt.text:
        like = f"%{flt.text}%"
        query = query.where(or_(c.title.ilike(like), c.group_key.ilike(like)))
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(query.order_by(c.id.desc()).limit(limit).offset(offset))
    return [to_incident(r) for r in rows], int(total)


def evidence_of(session: Session, incident_id: int, limit: int = 50) -> list[Evidence]:
    """The incident's evidence lines, newest first, de-duplicated by id."""
    seen: dict[str, Evidence] = {}
    for (payload,) in session.execute(
        select(ALERTS.c.evidence_json).where(ALERTS.c.incident_id == incident_id)
    ):
        for item in json.loads(payload):
            seen.setdefault(
                item["id"],
                Evidence(item["id"], datetime.fromisoformat(item["time"]), item["text"]),
            )
    return sorted(seen.values(), key=lambda e: e.time, reverse=True)[:limit]


def timeline_of(session: Session, incident_id: int) -> list[TimelineRow]:
    return list(
        session.execute(
            select(TimelineRow)
            .where(col(TimelineRow.incident_id) == incident_id)
            .order_by(col(TimelineRow.id))
        ).scalars()
    )


def audit_rows(
    session: Session, incident_id: int | None = None, limit: int = 100, offset: int = 0
) -> tuple[list[AuditRow], int]:
    query = select(AuditRow)
    if incident_id is not None:
        query = query.where(col(AuditRow.incident_id) == incident_id)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(
        query.order_by(col(AuditRow.id).desc()).limit(limit).offset(offset)
    ).scalars()
    return list(rows), int(total)


def evidence_json(items: Iterable[Evidence]) -> str:
    return json.dumps(
        [{"id": e.id, "time": e.time.isoformat(), "text": e.text} for e in items],
        separators=(",", ":"),
    )


def card_ref(conn: Connection, row: Any) -> MessageRef | None:
    """Where an outbox row's card is on its surface (None: it was never posted)."""
    found = conn.execute(
        select(CARD_REFS.c.message_id, CARD_REFS.c.ref_channel).where(
            CARD_REFS.c.incident_id == row.incident_id,
            CARD_REFS.c.surface == row.surface,
            CARD_REFS.c.channel == row.channel,
        )
    ).first()
    if found is None:
        return None
    return MessageRef(row.surface, found.ref_channel or row.channel, found.message_id)
