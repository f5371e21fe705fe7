"""Similar past incidents for a card line and the incident page.

:class:`Similar` keeps the in-memory index in step with the database: before each lookup it
indexes incidents resolved since the last one it saw (any replica, any path: a person, a
playbook, the rule's recovery), storing each document so a restart reloads instead of
recomputing. :meth:`Similar.rebuild` recomputes every document from the incidents.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.domain.incident import human_id
from bot.similar import store
from bot.similar.document import document
from bot.similar.index import SimilarIndex
from bot.store.repo import INCIDENTS

log = logging.getLogger(__name__)

TOP = 3
MIN_SCORE = 0.25  # below this two incidents share little more than common words
CATCH_UP_EVERY_S = 5.0  # new resolutions reach the index within this (renders read it)
SLACK = timedelta(minutes=5)  # replicas' clocks: look back this far past the last resolution


@dataclass(frozen=True, slots=True)
class Match:
    incident_id: int
    score: float
    ending: store.Ending

    @property
    def human_id(self) -> str:
        return human_id(self.incident_id)


def ago(then: datetime, now: datetime) -> str:
    """``6 min ago``, ``5 h ago``, ``3 days ago``."""
    minutes = max(0, int((now - then).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min ago"
    if minutes < 48 * 60:
        return f"{minutes // 60} h ago"
    days = minutes // (24 * 60)
    return f"{days} days ago"


def how_it_ended(ending: store.Ending) -> str:
    """``resolved by restart-web in 6 min`` (the playbook when one fixed it, else the person)."""
    by = ending.playbook or ending.resolved_by or "unknown"
    return f"resolved by {by} in {ending.minutes} min"


def card_line(matches: list[Match], now: datetime) -> str:
    """``Like INC-812 (3 days ago, resolved by restart-web in 6 min) and 2 more``; "" if none."""
    if not matches:
        return ""
    first = matches[0]
    line = f"Like {first.human_id} ({ago(first.ending.opened_at, now)}, "
    line += f"{how_it_ended(first.ending)})"
    if len(matches) > 1:
        line += f" and {len(matches) - 1} more"
    return line


class Similar:
    """The index of resolved incidents of one database, shared by the threads of a process.

    :meth:`for_engine` answers the one instance of a database (the card builder, the API and the
    console share it).
    """

    _instances: weakref.WeakKeyDictionary[Engine, Similar] = weakref.WeakKeyDictionary()
    _registry_lock = threading.Lock()

    @classmethod
    def for_engine(cls, engine: Engine) -> Similar:
        with cls._registry_lock:
            found = cls._instances.get(engine)
            if found is None:
                found = cls._instances[engine] = cls(engine)
            return found

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._index = SimilarIndex()
        self._seen: dict[int, datetime] = {}  # incident id -> resolved_at of its document
        self._latest: datetime | None = None  # the latest of those
        self._loaded = False
        self._lock = threading.RLock()
        self._caught_up_at = -CATCH_UP_EVERY_S  # time.monotonic() of the last catch-up

    @property
    def size(self) -> int:
        return len(self._index)

    def _load(self) -> None:
        with self._engine.connect() as conn:
            for incident_id, doc, resolved_at in store.stored(conn):
                self._index.add(incident_id, doc)
                self._saw(incident_id, resolved_at)
        self._loaded = True
        log.info("similar incidents: %d documents loaded", len(self._index))

    def _saw(self, incident_id: int, resolved_at: datetime) -> None:
        self._seen[incident_id] = resolved_at
        if self._latest is None or resolved_at > self._latest:
            self._latest = resolved_at

    def catch_up(self) -> int:
        """Index incidents resolved since the last one seen; returns how many were added."""
        with self._lock:
            self._caught_up_at = time.monotonic()
            if not self._loaded:
                self._load()
            since = self._latest - SLACK if self._latest is not None else None
            added = 0
            with self._engine.connect() as conn:
                rows = store.resolved_since(conn, since)
            for row in rows:
                if self._seen.get(row.id) == row.resolved_at:
                    continue
                try:
                    with self._engine.begin() as conn:
                        doc, resolved_at = store.write(conn, row)
                except SQLAlchemyError as exc:  # another replica stored it first: same document
                    log.info("similar incidents: INC-%d stored elsewhere (%s)", row.id, exc)
                    doc, resolved_at = document(store.profile_of(row)), row.resolved_at
                self._index.add(row.id, doc)
                self._saw(row.id, resolved_at)
                added += 1
            return added

    def rebuild(self) -> int:
        """Recompute every resolved incident's document and reload; returns how many."""
        with self._lock:
            with self._engine.begin() as conn:
                conn.execute(delete(store.SIMILAR_DOCS))
            self._index = SimilarIndex()
            self._seen = {}
            self._latest = None
            self._loaded = True
            return self.catch_up()

    def matches(self, conn: Connection, incident_id: int, k: int = TOP) -> list[Match]:
        """The ``k`` resolved incidents most like ``incident_id`` (itself excluded), best first."""
        row = conn.execute(select(INCIDENTS).where(INCIDENTS.c.id == incident_id)).first()
        if row is None:
            return []
        with self._lock:
            # a card render reads the index; new resolutions are taken in at most every few
            # seconds, not on every render (a storm renders a card per incident)
            if time.monotonic() - self._caught_up_at >= CATCH_UP_EVERY_S:
                self.catch_up()
            hits = self._index.query(document(store.profile_of(row)), k, exclude=incident_id)
        hits = [h for h in hits if h.score >= MIN_SCORE]
        ends = store.endings(conn, [h.incident_id for h in hits])
        return [
            Match(h.incident_id, h.score, ends[h.incident_id])
            for h in hits
            if h.incident_id in ends
        ]

    def card_line(self, conn: Connection, incident_id: int) -> str:
        """The card's one line about similar past incidents ("" when there are none)."""
        try:
            found = self.matches(conn, incident_id)
        except SQLAlchemyError:
            log.exception("similar incidents for INC-%d: lookup failed", incident_id)
            return ""
        if not found:
            return ""
        opened = conn.execute(
            select(INCIDENTS.c.created_at).where(INCIDENTS.c.id == incident_id)
        ).scalar_one()
        return card_line(found, opened)

    def page(self, conn: Connection, incident_id: int) -> list[dict[str, object]]:
        """The top matches for the incident page and the API, with how each ended."""
        return [
            {
                "id": m.human_id,
                "number": m.incident_id,
                "title": m.ending.title,
                "similarity": round(m.score, 3),
                "resolved_at": m.ending.resolved_at.isoformat(),
                "resolved_by": m.ending.resolved_by,
                "note": m.ending.note,
                "playbook": m.ending.playbook,
                "minutes_to_resolve": m.ending.minutes,
            }
            for m in self.matches(conn, incident_id)
        ]


__all__ = ["MIN_SCORE", "TOP", "Match", "Similar", "ago", "card_line", "how_it_ended"]
