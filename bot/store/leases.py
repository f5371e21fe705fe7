"""Leases: one replica at a time holds a named lease (the scheduler's) until it expires."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from bot.store.tables import LeaseRow

LEASES = LeaseRow.__table__  # type: ignore[attr-defined]


def acquire(engine: Engine, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take or renew the lease; True when ``holder`` holds it until ``now + ttl``."""
    expires = now + ttl
    with engine.begin() as conn:
        done = conn.execute(
            update(LEASES)
            .where(LEASES.c.name == name)
            .where((LEASES.c.holder == holder) | (LEASES.c.expires_at < now))
            .values(holder=holder, expires_at=expires)
        )
        if done.rowcount == 1:
            return True
        exists = conn.execute(select(LEASES.c.name).where(LEASES.c.name == name)).first()
        if exists is not None:
            return False
    try:
        with engine.begin() as conn:
            conn.execute(LEASES.insert(), [{"name": name, "holder": holder, "expires_at": expires}])
        return True
    except IntegrityError:  # another replica inserted it first
        return False


def release(engine: Engine, name: str, holder: str) -> None:
    with engine.begin() as conn:
        conn.execute(LEASES.delete().where(LEASES.c.name == name, LEASES.c.holder == holder))


def holder_of(engine: Engine, name: str) -> tuple[str, datetime] | None:
    with engine.connect() as conn:
        row = conn.execute(select(LEASES).where(LEASES.c.name == name)).first()
    return (row.holder, row.expires_at) if row else None
