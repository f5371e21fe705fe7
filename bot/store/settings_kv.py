"""Rows of ``settings_kv``: runtime settings admins change, each change audited with it.

The small shared layer under :mod:`bot.store.runtime_config` (kill switch, categories, the
concurrency limit) and :mod:`bot.store.breakers` (playbooks turned off).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from bot.store import audit
from bot.store.repo import insert_ignore
from bot.store.tables import SettingRow

SETTINGS = SettingRow.__table__  # type: ignore[attr-defined]


def read_value(conn: Connection, key: str) -> Any:
    row = conn.execute(select(SETTINGS.c.value_json).where(SETTINGS.c.key == key)).first()
    return None if row is None else json.loads(row.value_json)


def read_locked(conn: Connection, key: str, now: datetime) -> Any:
    """The row's value under a row lock (PostgreSQL; SQLite serialises writers), created empty
    first so that two replicas changing it at once queue up instead of both inserting."""
    insert_ignore(conn, SETTINGS, [{"key": key, "value_json": "null", "updated_at": now}], "key")
    row = conn.execute(
        select(SETTINGS.c.value_json).where(SETTINGS.c.key == key).with_for_update()
    ).one()
    return json.loads(row.value_json)


def write_value(conn: Connection, key: str, value: Any, actor: str, now: datetime) -> None:
    conn.execute(
        update(SETTINGS)
        .where(SETTINGS.c.key == key)
        .values(value_json=json.dumps(value, sort_keys=True), updated_at=now, updated_by=actor)
    )


def audit_entry(
    conn: Connection,
    now: datetime,
    actor: str,
    surface: str,
    action: str,
    reason: str,
    data: Mapping[str, Any],
    result: str = "applied",
    detail: str = "",
) -> None:
    audit.append(
        conn,
        [
            {
                "at": now,
                "actor": actor,
                "surface": surface,
                "action": action,
                "reason": reason,
                "result": result,
                "detail": detail,
                "data": dict(data),
            }
        ],
    )
