"""Live replicas: every bot process writes a heartbeat row; /ready lists the live ones."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update

from bot.store.repo import insert_ignore
from bot.store.tables import ReplicaRow

REPLICAS = ReplicaRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Replica:
    holder: str
    started_at: datetime
    seen_at: datetime
    detail: str


def beat(
    engine: Engine,
    holder: str,
    now: datetime,
    detail: str = "",
    forget_after: timedelta | None = None,
) -> None:
    """Record that ``holder`` is alive at ``now``; rows silent for ``forget_after`` go."""
    with engine.begin() as conn:
        done = conn.execute(
            update(REPLICAS).where(REPLICAS.c.holder == holder).values(seen_at=now, detail=detail)
        )
        if done.rowcount == 0:
            insert_ignore(
                conn,
                REPLICAS,
                [{"holder": holder, "started_at": now, "seen_at": now, "detail": detail}],
                "holder",
            )
        if forget_after is not None:
            conn.execute(REPLICAS.delete().where(REPLICAS.c.seen_at < now - forget_after))


def live(engine: Engine, now: datetime, within: timedelta) -> list[Replica]:
    """Replicas seen within ``within`` of ``now``, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(REPLICAS)
            .where(REPLICAS.c.seen_at >= now - within)
            .order_by(REPLICAS.c.started_at, REPLICAS.c.holder)
        ).all()
    return [Replica(r.holder, r.started_at, r.seen_at, r.detail) for r in rows]


def forget(engine: Engine, holder: str) -> None:
    """A replica that stops cleanly leaves the list at once."""
    with engine.begin() as conn:
        conn.execute(REPLICAS.delete().where(REPLICAS.c.holder == holder))
