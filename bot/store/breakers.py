"""Playbooks turned off: by the circuit breaker (too many failed runs) or by an admin.

Kept in ``settings_kv`` as ``playbook_disabled:<id>`` with why, when and by whom, so every
replica's gate sees it; turning one off or on again is audited in the same transaction.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, Engine, select

from bot.errors import PermanentError
from bot.store.settings_kv import SETTINGS, audit_entry, read_locked, write_value

DISABLED_PREFIX = "playbook_disabled:"


def disable_playbook(
    engine: Engine,
    playbook_id: str,
    reason: str,
    now: datetime,
    actor: str = "bot:breaker",
    surface: str = "engine",
) -> None:
    """Turn a playbook off (the circuit breaker opened, or an admin did it), with why."""
    if not reason.strip():
        raise PermanentError("disabling a playbook needs a reason")
    key = DISABLED_PREFIX + playbook_id
    with engine.begin() as conn:
        before = read_locked(conn, key, now)
        value = {"reason": reason.strip(), "at": now.isoformat(), "by": actor}
        write_value(conn, key, value, actor, now)
        audit_entry(
            conn,
            now,
            actor,
            surface,
            "playbook_disabled",
            reason.strip(),
            {"playbook": playbook_id, "before": before, "after": value},
            detail=f"playbook {playbook_id} disabled: {reason.strip()}",
        )


def enable_playbook(
    engine: Engine,
    playbook_id: str,
    reason: str,
    now: datetime,
    actor: str = "bot:breaker",
    surface: str = "engine",
) -> bool:
    """Turn a disabled playbook back on; False when it was not disabled."""
    key = DISABLED_PREFIX + playbook_id
    with engine.begin() as conn:
        before = read_locked(conn, key, now)
        conn.execute(SETTINGS.delete().where(SETTINGS.c.key == key))
        if before is None:
            return False
        audit_entry(
            conn,
            now,
            actor,
            surface,
            "playbook_enabled",
            reason.strip(),
            {"playbook": playbook_id, "before": before, "after": None},
            detail=f"playbook {playbook_id} enabled again",
        )
    return True


def disabled_playbooks(conn_or_engine: Engine | Connection) -> dict[str, str]:
    """Playbook id -> why it is disabled (the circuit breaker's state)."""
    if not isinstance(conn_or_engine, Connection):
        with conn_or_engine.connect() as conn:
            return disabled_playbooks(conn)
    rows = conn_or_engine.execute(
        select(SETTINGS.c.key, SETTINGS.c.value_json).where(
            SETTINGS.c.key.startswith(DISABLED_PREFIX, autoescape=True)
        )
    )
    out: dict[str, str] = {}
    for row in rows:
        value = json.loads(row.value_json)
        if isinstance(value, dict):
            out[row.key[len(DISABLED_PREFIX) :]] = str(value.get("reason", "disabled"))
    return out
