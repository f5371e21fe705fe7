"""The stored side of the index: one row per resolved incident (its document and how it ended).

``similar_docs`` is written when an incident is seen resolved (again: a reopened incident that
resolves a second time is rewritten) and read back whole at start; the in-memory index is a
cache of it. Rows go with their incident (``ON DELETE CASCADE``, so retention prunes them too).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, and_, delete, select
from sqlalchemy.engine import Connection

from bot.similar.document import Profile, document
from bot.store.cards import rca_from_json
from bot.store.repo import AUDIT, INCIDENTS
from bot.store.tables import PlaybookRunRow
from bot.store.types import UTCDateTime

SIMILAR_DOCS = Table(
    "similar_docs",
    MetaData(),
    Column("incident_id", Integer, primary_key=True),
    Column("rule_id", String(200), nullable=False),
    Column("document", Text, nullable=False),
    Column("resolved_at", UTCDateTime(), nullable=False),
    Column("outcome_json", Text, nullable=False),
)
RUNS = PlaybookRunRow.__table__  # type: ignore[attr-defined]
RESOLVING = ("resolve", "auto_resolve", "clear")


@dataclass(frozen=True, slots=True)
class Ending:
    """How a past incident ended."""

    incident_id: int
    title: str
    resolved_at: datetime
    opened_at: datetime
    resolved_by: str
    note: str = ""
    playbook: str = ""

    @property
    def minutes(self) -> int:
        """Time to resolve in whole minutes (at least 1)."""
        return max(1, round((self.resolved_at - self.opened_at).total_seconds() / 60))

    def to_json(self) -> str:
        data = asdict(self)
        data["resolved_at"] = self.resolved_at.isoformat()
        data["opened_at"] = self.opened_at.isoformat()
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Ending:
        data = json.loads(text)
        data["resolved_at"] = datetime.fromisoformat(data["resolved_at"])
        data["opened_at"] = datetime.fromisoformat(data["opened_at"])
        return cls(**data)


def profile_of(row: Any) -> Profile:
    """An incident row's profile: rule, title, labels, templates and root-cause text."""
    labels = json.loads(row.labels_json or "{}")
    if row.service:
        labels.setdefault("service", row.service)
    rca = rca_from_json(row.rca_json)
    templates: tuple[tuple[str, int], ...] = ()
    text = ""
    if rca is not None:
        templates = rca.templates
        text = " ".join([rca.summary, *(c.text for c in rca.causes)])
    return Profile.of(row.rule_id, row.title, labels, templates, text)


def ending_of(conn: Connection, row: Any) -> Ending:
    """How a resolved incident ended: who, when, the note and the playbook that fixed it."""
    note = conn.execute(
        select(AUDIT.c.reason)
        .where(
            and_(
                AUDIT.c.incident_id == row.id,
                AUDIT.c.action.in_(RESOLVING),
                AUDIT.c.result == "applied",
            )
        )
        .order_by(AUDIT.c.id.desc())
        .limit(1)
    ).scalar()
    playbook = conn.execute(
        select(RUNS.c.playbook_id)
        .where(and_(RUNS.c.incident_id == row.id, RUNS.c.status == "succeeded"))
        .order_by(RUNS.c.id.desc())
        .limit(1)
    ).scalar()
    return Ending(
        incident_id=row.id,
        title=row.title,
        resolved_at=row.resolved_at,
        opened_at=row.created_at,
        resolved_by=row.state_changed_by or "",
        note=note or "",
        playbook=playbook or "",
    )


def resolved_since(conn: Connection, since: datetime | None) -> list[Any]:
    """Resolved incident rows with ``resolved_at >= since`` (all of them when None), by id.

    With ``since`` the search goes by ``resolved_at`` alone (its index: a few rows) and the
    state is checked here; a search by state too would read every resolved incident on SQLite.
    """
    if since is None:
        query = select(INCIDENTS).where(INCIDENTS.c.state == "resolved")
        return list(conn.execute(query.order_by(INCIDENTS.c.id)))
    rows = conn.execute(select(INCIDENTS).where(INCIDENTS.c.resolved_at >= since))
    return sorted((r for r in rows if r.state == "resolved"), key=lambda r: r.id)


def write(conn: Connection, row: Any) -> tuple[str, datetime]:
    """Store (or rewrite) the document of a resolved incident row; returns it and its time."""
    doc = document(profile_of(row))
    ending = ending_of(conn, row)
    conn.execute(delete(SIMILAR_DOCS).where(SIMILAR_DOCS.c.incident_id == row.id))
    conn.execute(
        SIMILAR_DOCS.insert(),
        [
            {
                "incident_id": row.id,
                "rule_id": row.rule_id,
                "document": doc,
                "resolved_at": row.resolved_at,
                "outcome_json": ending.to_json(),
            }
        ],
    )
    return doc, row.resolved_at


def stored(conn: Connection) -> Iterator[tuple[int, str, datetime]]:
    """Every stored document as ``(incident_id, document, resolved_at)``, oldest id first."""
    query = select(SIMILAR_DOCS.c.incident_id, SIMILAR_DOCS.c.document, SIMILAR_DOCS.c.resolved_at)
    for r in conn.execute(query.order_by(SIMILAR_DOCS.c.incident_id)):
        yield r.incident_id, r.document, r.resolved_at


def endings(conn: Connection, ids: list[int]) -> dict[int, Ending]:
    if not ids:
        return {}
    query = select(SIMILAR_DOCS.c.incident_id, SIMILAR_DOCS.c.outcome_json).where(
        SIMILAR_DOCS.c.incident_id.in_(ids)
    )
    return {r.incident_id: Ending.from_json(r.outcome_json) for r in conn.execute(query)}


__all__ = [
    "SIMILAR_DOCS",
    "Ending",
    "ending_of",
    "endings",
    "profile_of",
    "resolved_since",
    "stored",
    "write",
]
