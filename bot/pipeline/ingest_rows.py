"""The rows one ingest writes: new incidents, alerts (deduplicated, evidence merged), incident
counters and the notification log. Batched in chunks: a storm is a handful of statements."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from bot.domain.hits import Alert, Evidence
from bot.domain.incident import Incident, State
from bot.pipeline.group import GroupBatch, merge_evidence
from bot.store.repo import ALERTS, INCIDENTS, evidence_json
from bot.store.tables import NotificationLogRow

NOTIFICATION_LOG = NotificationLogRow.__table__  # type: ignore[attr-defined]
CHUNK = 500


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def labels_of(alert: Alert) -> dict[str, str]:
    """What silences match on: the group-by fields plus the incident's own labels."""
    labels = dict(alert.group)
    labels.update(alert.labels)
    labels.update(
        rule=alert.rule_id,
        severity=alert.severity.value,
        category=alert.category.value,
        service=alert.service,
        host=alert.host,
    )
    return labels


def labels_of_incident(row: Any) -> dict[str, str]:
    """Silence labels of a stored incident, the same names :func:`labels_of` gives an alert."""
    labels: dict[str, str] = json.loads(row.labels_json or "{}")
    labels.update(
        rule=row.rule_id,
        severity=row.severity,
        category=row.category,
        service=row.service,
        host=row.host,
    )
    return labels


def new_incident_row(
    batch: GroupBatch, now: datetime, rca_json: str | None = None
) -> dict[str, Any]:
    head = batch.head
    return {
        "group_key": batch.key,
        "active_key": batch.key,
        "rule_id": head.rule_id,
        "title": head.title[:500],
        "severity": head.severity.value,
        "category": head.category.value,
        "service": head.service,
        "host": head.host,
        "owner": head.owner,
        "state": State.OPEN.value,
        "previous_state": None,
        "suppressed_until": None,
        "state_changed_by": f"rule:{head.rule_id}",
        "state_changed_at": now,
        "resolved_at": None,
        "assignee": "",
        "runbook": head.runbook,
        "labels_json": json.dumps(labels_of(head), separators=(",", ":")),
        "search_link": head.search_link,
        "created_at": now,
        "updated_at": now,
        "first_seen": batch.first_seen,
        "last_seen": batch.last_seen,
        "hit_count": batch.events,
        "alert_count": len(batch.alerts),
        "rca_status": "pending" if rca_json is None else json.loads(rca_json)["status"],
        "rca_json": rca_json,
        "muted_by": None,
        "version": 1,
    }


def upsert_alerts(
    conn: Connection,
    batches: Sequence[GroupBatch],
    incident_of: dict[str, Incident],
    now: datetime,
    new_incidents: set[int],
) -> None:
    wanted: dict[tuple[int, str], Alert] = {}
    for batch in batches:
        incident_id = incident_of[batch.key].id
        for alert in batch.alerts:
            wanted[(incident_id, alert.fingerprint)] = alert
    existing: dict[tuple[int, str], Any] = {}
    # a new incident has no alerts yet; the others are read by fingerprint (an incident with
    # many alerts is not read whole for the few this run brings)
    fps = sorted({fp for incident_id, fp in wanted if incident_id not in new_incidents})
    for chunk in chunks(fps):
        for found in conn.execute(
            select(
                ALERTS.c.id,
                ALERTS.c.incident_id,
                ALERTS.c.fingerprint,
                ALERTS.c.evidence_json,
                ALERTS.c.first_seen,
            ).where(ALERTS.c.fingerprint.in_(chunk))
        ):
            if (found.incident_id, found.fingerprint) in wanted:
                existing[(found.incident_id, found.fingerprint)] = found
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for (incident_id, fp), alert in wanted.items():
        row = existing.get((incident_id, fp))
        if row is None:
            inserts.append(
                {
                    "incident_id": incident_id,
                    "fingerprint": fp,
                    "rule_id": alert.rule_id,
                    "group_json": json.dumps(dict(alert.group), separators=(",", ":")),
                    "count": max(alert.new_events, alert.events),
                    "value": alert.value,
                    "first_seen": alert.first_seen,
                    "last_seen": alert.last_seen,
                    "evidence_json": evidence_json(alert.evidence),
                }
            )
            continue
        if not alert.new_events and not alert.evidence:
            continue
        merged = row.evidence_json  # no new lines: the stored ones stay as they are
        if alert.evidence:
            old = [evidence_of(item) for item in json.loads(row.evidence_json)]
            merged = evidence_json(merge_evidence(old, alert.evidence))
        updates.append(
            {
                "b_id": row.id,
                "b_add": alert.new_events,
                "b_value": alert.value,
                "b_last": alert.last_seen,
                "b_evidence": merged,
            }
        )
    if inserts:
        conn.execute(ALERTS.insert(), inserts)
    if updates:
        conn.execute(
            update(ALERTS)
            .where(ALERTS.c.id == bindparam("b_id"))
            .values(
                count=ALERTS.c.count + bindparam("b_add"),
                value=bindparam("b_value"),
                last_seen=bindparam("b_last"),
                evidence_json=bindparam("b_evidence"),
            ),
            updates,
        )


def evidence_of(item: dict[str, str]) -> Evidence:
    return Evidence(item["id"], datetime.fromisoformat(item["time"]), item["text"])


def bump_counters(
    conn: Connection,
    batches: Sequence[GroupBatch],
    incident_of: dict[str, Incident],
    existing_ids: set[int],
    now: datetime,
) -> None:
    """Existing and reopened incidents count the new events (atomic increments, no version)."""
    rows = []
    for batch in batches:
        incident = incident_of[batch.key]
        if incident.id in existing_ids:
            rows.append(
                {
                    "b_id": incident.id,
                    "b_add": batch.new_events,
                    "b_last": batch.last_seen,
                }
            )
    if rows:
        conn.execute(
            update(INCIDENTS)
            .where(INCIDENTS.c.id == bindparam("b_id"))
            .values(
                hit_count=INCIDENTS.c.hit_count + bindparam("b_add"),
                last_seen=bindparam("b_last"),
                updated_at=now,
            ),
            rows,
        )


def last_notified(conn: Connection, keys: Sequence[str]) -> dict[str, datetime]:
    out: dict[str, datetime] = {}
    for chunk in chunks(list(keys)):
        for row in conn.execute(
            select(NOTIFICATION_LOG).where(NOTIFICATION_LOG.c.group_key.in_(chunk))
        ):
            out[row.group_key] = row.last_notified_at
    return out


def record_notified(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    keys = [r["group_key"] for r in rows]
    for chunk in chunks(keys):
        conn.execute(NOTIFICATION_LOG.delete().where(NOTIFICATION_LOG.c.group_key.in_(chunk)))
    conn.execute(NOTIFICATION_LOG.insert(), list(rows))


__all__ = [
    "CHUNK",
    "NOTIFICATION_LOG",
    "bump_counters",
    "chunks",
    "evidence_of",
    "labels_of",
    "labels_of_incident",
    "last_notified",
    "new_incident_row",
    "record_notified",
    "upsert_alerts",
]
