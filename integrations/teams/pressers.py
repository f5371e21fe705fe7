"""Who last pressed a button on each incident's Teams card, kept in the database.

A card's ``refresh`` clause names the last presser (see :mod:`integrations.teams.views`). Every
replica renders cards (the outbox's posts and updates, the answers to presses and refreshes),
and a press may reach one replica while another one delivers the updated card: the presser is
kept in the ``teams_pressers`` table so that any replica, and a restarted one, names them.
A row goes with its incident.
"""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import SQLModel

from bot.ports import Clock
from bot.store.repo import INCIDENTS, insert_ignore
from bot.store.types import UTCDateTime

log = logging.getLogger(__name__)

PRESSERS = sa.Table(
    "teams_pressers",
    SQLModel.metadata,
    sa.Column(
        "incident_id",
        sa.Integer,
        sa.ForeignKey("incidents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("user_id", sa.String(255), nullable=False),  # the ``from.id`` Teams gave
    sa.Column("pressed_at", UTCDateTime(), nullable=False),
)


def not_noted(incident_id: int, error: SQLAlchemyError) -> str:
    return f"could not note who pressed the Teams card of INC-{incident_id}: {error}"


def not_read(incident_id: int, error: SQLAlchemyError) -> str:
    return f"could not read who pressed the Teams card of INC-{incident_id}: {error}"


class LastPressers:
    """The Teams id of the last person who pressed a button on each incident's card."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    async def note(self, incident_id: int, user: str) -> None:
        """Remember ``user`` for the incident's card (nothing for an unknown incident; a
        database that is away costs the refresh its presser, never the press)."""
        if not user:
            return
        try:
            await asyncio.to_thread(self._note, incident_id, user[:255])
        except SQLAlchemyError as exc:
            log.warning(not_noted(incident_id, exc))

    async def of(self, incident_id: int) -> str:
        """The last presser's Teams id, "" when nobody pressed (or the database is away)."""
        try:
            return await asyncio.to_thread(self._of, incident_id)
        except SQLAlchemyError as exc:
            log.warning(not_read(incident_id, exc))
            return ""

    def _note(self, incident_id: int, user: str) -> None:
        now = self._clock.now()
        with self._engine.begin() as conn:
            known = conn.execute(
                select(INCIDENTS.c.id).where(INCIDENTS.c.id == incident_id)
            ).first()
            if known is None:
                return
            changed = conn.execute(
                update(PRESSERS)
                .where(PRESSERS.c.incident_id == incident_id)
                .values(user_id=user, pressed_at=now)
            )
            if changed.rowcount == 0:
                row = {"incident_id": incident_id, "user_id": user, "pressed_at": now}
                insert_ignore(conn, PRESSERS, [row], "incident_id")

    def _of(self, incident_id: int) -> str:
        with self._engine.connect() as conn:
            found = conn.execute(
                select(PRESSERS.c.user_id).where(PRESSERS.c.incident_id == incident_id)
            ).scalar()
        return str(found or "")
