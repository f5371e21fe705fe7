"""Maintenance windows in the database, and the :class:`Muter` a run uses.

One row per window (its name is unique). Adding and removing write the audit entry in the same
transaction (``audit.append``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from bot.errors import Conflict, NotFound
from bot.pipeline.ingest_rows import labels_of_incident
from bot.pipeline.inhibit import Inhibitor, InhibitRule, Source
from bot.pipeline.maintenance import MaintenanceWindow, Schedule, ScheduleKind, open_windows
from bot.pipeline.matchers import parse_matchers
from bot.pipeline.mute import Muter, Silence
from bot.store.repo import INCIDENTS, SILENCES
from bot.store.settings_kv import audit_entry
from bot.store.types import UTCDateTime

WINDOWS = sa.Table(
    "maintenance_windows",
    SQLModel.metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("days", sa.String(64), nullable=False),
    sa.Column("start", sa.String(5), nullable=False),
    sa.Column("cron", sa.String(200), nullable=False),
    sa.Column("duration_s", sa.Integer, nullable=False),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("matchers_json", sa.Text, nullable=False),
    sa.Column("include_critical", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(255), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)


def _window(row: Any) -> MaintenanceWindow:
    hours, minutes = (int(part) for part in row.start.split(":"))
    schedule = Schedule(
        ScheduleKind(row.kind),
        timedelta(seconds=row.duration_s),
        row.timezone,
        days=tuple(d for d in row.days.split(",") if d),
        start=datetime.min.replace(hour=hours, minute=minutes).time(),
        cron=row.cron,
    )
    return MaintenanceWindow(
        id=row.id,
        name=row.name,
        schedule=schedule,
        matchers=parse_matchers(json.loads(row.matchers_json), "a maintenance window"),
        include_critical=bool(row.include_critical),
        reason=row.reason,
        created_by=row.created_by,
    )


def windows(conn: Connection) -> list[MaintenanceWindow]:
    return [_window(r) for r in conn.execute(select(WINDOWS).order_by(WINDOWS.c.name))]


def find(conn: Connection, ref: str) -> MaintenanceWindow:
    """A window by name, or by id (``3``)."""
    wanted = WINDOWS.c.id == int(ref) if ref.isdigit() else WINDOWS.c.name == ref.strip().lower()
    row = conn.execute(select(WINDOWS).where(wanted)).first()
    if row is None:
        raise NotFound(f"no maintenance window {ref!r}")
    return _window(row)


def add(
    conn: Connection, window: MaintenanceWindow, now: datetime, surface: str
) -> MaintenanceWindow:
    """Store ``window`` (its id is assigned) and audit it; Conflict when the name is taken."""
    schedule = window.schedule
    values = {
        "name": window.name,
        "kind": schedule.kind.value,
        "days": ",".join(schedule.days),
        "start": f"{schedule.start:%H:%M}",
        "cron": schedule.cron,
        "duration_s": int(schedule.duration.total_seconds()),
        "timezone": schedule.timezone,
        "matchers_json": json.dumps([str(m) for m in window.matchers]),
        "include_critical": window.include_critical,
        "reason": window.reason,
        "created_by": window.created_by,
        "created_at": now,
    }
    try:
        with conn.begin_nested():
            conn.execute(WINDOWS.insert().values(**values))
    except IntegrityError:
        raise Conflict(f"a maintenance window named {window.name!r} exists already") from None
    stored = find(conn, window.name)
    _audit(conn, "maintenance.add", stored, window.created_by, now, surface, values)
    return stored


def remove(
    conn: Connection, ref: str, actor: str, now: datetime, surface: str
) -> MaintenanceWindow:
    found = find(conn, ref)
    conn.execute(WINDOWS.delete().where(WINDOWS.c.id == found.id))
    _audit(conn, "maintenance.remove", found, actor, now, surface, {"name": found.name})
    return found


def _audit(
    conn: Connection,
    action: str,
    window: MaintenanceWindow,
    actor: str,
    now: datetime,
    surface: str,
    data: dict[str, Any],
) -> None:
    matchers = " ".join(str(m) for m in window.matchers)
    detail = f"maintenance window '{window.name}': {window.schedule.describe()}, {matchers}"
    audit_entry(conn, now, actor, surface, action, window.reason, data, detail=detail)


def inhibition_sources(conn: Connection) -> list[Source]:
    """Every active incident (open, acknowledged or suppressed) as a possible inhibitor."""
    c = INCIDENTS.c
    columns = (c.id, c.title, c.labels_json, c.rule_id, c.severity, c.category, c.service, c.host)
    rows = conn.execute(select(*columns).where(c.active_key.is_not(None)))
    return [Source(r.id, labels_of_incident(r), r.title) for r in rows]


def active_silences(conn: Connection, now: datetime) -> list[Silence]:
    """The silences in force at ``now``."""
    rows = conn.execute(
        select(SILENCES).where(SILENCES.c.starts_at <= now, SILENCES.c.ends_at > now)
    )
    return [
        Silence(
            id=r.id,
            matchers=parse_matchers(json.loads(r.matchers_json)),
            starts_at=r.starts_at,
            ends_at=r.ends_at,
            reason=r.reason,
            created_by=r.created_by,
        )
        for r in rows
    ]


def muter_for(
    conn: Connection,
    now: datetime,
    silences: Sequence[Silence],
    inhibit_rules: Sequence[InhibitRule] = (),
) -> Muter:
    """The Muter of one run: the silences given, the windows open now, and (only when there
    are inhibit rules) the active incidents as inhibition sources."""
    inhibitor = Inhibitor(inhibit_rules)
    if inhibit_rules:
        inhibitor.observe(inhibition_sources(conn))
    return Muter(silences, open_windows(windows(conn), now), inhibitor)


__all__ = [
    "WINDOWS",
    "active_silences",
    "add",
    "find",
    "inhibition_sources",
    "muter_for",
    "remove",
    "windows",
]
