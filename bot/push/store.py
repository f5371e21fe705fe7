"""The pushed alerts' own record (``push_alerts``): each label set's latest time range, so a
group resolves when every alert in it has ended, and ``GET /api/v2/alerts`` can list them.

Batched like the pipeline: one read of the known fingerprints, one multi-row insert, one
executemany update per request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, bindparam, func, select, update
from sqlmodel import SQLModel

from bot.store.repo import INCIDENTS

PUSH_ALERTS = sa.Table(
    "push_alerts",
    SQLModel.metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("fingerprint", sa.String(40), nullable=False, unique=True),
    sa.Column("rule_id", sa.String(200), nullable=False),
    sa.Column("group_key", sa.Text, nullable=False, index=True),
    sa.Column("route", sa.String(100), nullable=False),
    sa.Column("sender", sa.String(100), nullable=False),
    sa.Column("labels_json", sa.Text, nullable=False),
    sa.Column("annotations_json", sa.Text, nullable=False),
    sa.Column("generator_url", sa.Text, nullable=False),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("timeout", sa.Boolean, nullable=False),
)
CHUNK = 500


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class StoredAlert:
    fingerprint: str
    route: str
    labels: dict[str, str]
    annotations: dict[str, str]
    generator_url: str
    starts_at: datetime
    ends_at: datetime
    updated_at: datetime


def known_ends(conn: Connection, fingerprints: Sequence[str]) -> dict[str, datetime]:
    """Each known fingerprint's stored end (one query per 500)."""
    out: dict[str, datetime] = {}
    for chunk in _chunks(fingerprints):
        query = select(PUSH_ALERTS.c.fingerprint, PUSH_ALERTS.c.ends_at).where(
            PUSH_ALERTS.c.fingerprint.in_(chunk)
        )
        for fp, ends in conn.execute(query):
            out[fp] = aware(ends)
    return out


def write(conn: Connection, rows: Sequence[dict[str, Any]], known: set[str]) -> None:
    """Insert the new fingerprints, update the known ones (keys as the table's columns)."""
    inserts = [
        {**r, "labels_json": _labels_json(r["labels_json"])}
        for r in rows
        if r["fingerprint"] not in known
    ]
    updates = [
        {
            "b_fp": r["fingerprint"],
            "b_group": r["group_key"],
            "b_route": r["route"],
            "b_rule": r["rule_id"],
            "b_sender": r["sender"],
            "b_notes": r["annotations_json"],
            "b_url": r["generator_url"],
            "b_starts": r["starts_at"],
            "b_ends": r["ends_at"],
            "b_updated": r["updated_at"],
            "b_timeout": r["timeout"],
        }
        for r in rows
        if r["fingerprint"] in known
    ]
    if inserts:
        conn.execute(PUSH_ALERTS.insert(), inserts)
    if updates:
        conn.execute(
            update(PUSH_ALERTS)
            .where(PUSH_ALERTS.c.fingerprint == bindparam("b_fp"))
            .values(
                group_key=bindparam("b_group"),
                route=bindparam("b_route"),
                rule_id=bindparam("b_rule"),
                sender=bindparam("b_sender"),
                annotations_json=bindparam("b_notes"),
                generator_url=bindparam("b_url"),
                starts_at=bindparam("b_starts"),
                ends_at=bindparam("b_ends"),
                updated_at=bindparam("b_updated"),
                timeout=bindparam("b_timeout"),
            ),
            updates,
        )


def _labels_json(labels: dict[str, str]) -> str:
    return json.dumps(labels, separators=(",", ":"), sort_keys=True)


def row(
    fp: str,
    rule_id: str,
    key: str,
    route: str,
    sender: str,
    labels: dict[str, str],
    annotations: dict[str, str],
    generator_url: str,
    starts_at: datetime,
    ends_at: datetime,
    now: datetime,
    timeout: bool,
) -> dict[str, Any]:
    return {
        "fingerprint": fp,
        "rule_id": rule_id,
        "group_key": key,
        "route": route,
        "sender": sender,
        "labels_json": labels,  # encoded only when inserted (a label set never changes)
        "annotations_json": json.dumps(annotations, separators=(",", ":"), sort_keys=True),
        "generator_url": generator_url,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "updated_at": now,
        "timeout": timeout,
    }


def active_groups(conn: Connection, keys: Sequence[str]) -> set[str]:
    """The keys that have an active incident."""
    out: set[str] = set()
    for chunk in _chunks(keys):
        query = select(INCIDENTS.c.active_key).where(INCIDENTS.c.active_key.in_(chunk))
        out.update(r[0] for r in conn.execute(query))
    return out


def ended_incidents(
    conn: Connection, now: datetime, keys: Sequence[str] | None = None
) -> list[int]:
    """Active incidents of push groups whose every alert has ended by ``now`` (of ``keys``
    only, when given)."""
    ended = (
        select(PUSH_ALERTS.c.group_key)
        .group_by(PUSH_ALERTS.c.group_key)
        .having(func.max(PUSH_ALERTS.c.ends_at) <= now)
    )
    out: list[int] = []
    chunks: Iterator[Sequence[str] | None] = (
        _chunks(list(keys)) if keys is not None else iter([None])
    )
    for chunk in chunks:
        query = ended if chunk is None else ended.where(PUSH_ALERTS.c.group_key.in_(chunk))
        sub = query.subquery()
        out.extend(
            r[0]
            for r in conn.execute(
                select(INCIDENTS.c.id).where(INCIDENTS.c.active_key.in_(select(sub.c.group_key)))
            )
        )
    return sorted(out)


def active(conn: Connection, now: datetime, limit: int = 10_000) -> list[StoredAlert]:
    """Alerts not yet ended, oldest first (what ``GET /api/v2/alerts`` lists)."""
    query = (
        select(PUSH_ALERTS)
        .where(PUSH_ALERTS.c.ends_at > now)
        .order_by(PUSH_ALERTS.c.starts_at, PUSH_ALERTS.c.id)
        .limit(limit)
    )
    return [
        StoredAlert(
            r.fingerprint,
            r.route,
            json.loads(r.labels_json),
            json.loads(r.annotations_json),
            r.generator_url,
            aware(r.starts_at),
            aware(r.ends_at),
            aware(r.updated_at),
        )
        for r in conn.execute(query)
    ]


def forget_ended(conn: Connection, before: datetime) -> int:
    """Drop alerts that ended before ``before`` (a later push of one starts it afresh)."""
    done = conn.execute(PUSH_ALERTS.delete().where(PUSH_ALERTS.c.ends_at < before))
    return done.rowcount or 0
