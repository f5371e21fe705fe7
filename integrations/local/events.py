"""Events on disk: a SQLite file the local search backend scans by time window.

Times are stored as integer microseconds since the epoch; rows come back with ``_time`` and
``_indextime`` (when the event became searchable) as float epoch seconds, the way Splunk exposes
them to searches. A search sees only what was indexed before its index-time bound, so a writer
that sets ``Event.indexed`` later than ``Event.time`` simulates indexing lag.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

log = logging.getLogger(__name__)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    time_us INTEGER NOT NULL,
    index_name TEXT NOT NULL COLLATE NOCASE,
    sourcetype TEXT NOT NULL COLLATE NOCASE,
    source TEXT NOT NULL COLLATE NOCASE,
    host TEXT NOT NULL COLLATE NOCASE,
    raw TEXT NOT NULL,
    fields TEXT,
    index_us INTEGER
);
CREATE INDEX IF NOT EXISTS events_time ON events (time_us);
CREATE INDEX IF NOT EXISTS events_index_time ON events (index_name, time_us);
"""

_BUSY_TIMEOUT_MS = 10_000
_FETCH_BATCH = 512


@dataclass(frozen=True, slots=True)
class Event:
    """One log event. ``time`` must be timezone-aware; it is kept in UTC.

    ``fields`` are explicit extra fields; at search time they win over ``key=value`` pairs
    extracted from ``raw``, and lose to the built-in fields (``_time``, ``index``, …).
    ``indexed`` is when the event became searchable; by default its own ``time`` (no lag: the
    store is mostly fed with events after the fact, by tests, backtests and replays, which must
    not all look freshly indexed).
    """

    time: datetime
    raw: str
    index: str = "main"
    sourcetype: str = ""
    source: str = ""
    host: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)
    indexed: datetime | None = None

    def __post_init__(self) -> None:
        if self.time.tzinfo is None or self.time.utcoffset() is None:
            raise ValueError(f"event time must be timezone-aware, got {self.time!r}")
        object.__setattr__(self, "time", self.time.astimezone(UTC))
        if self.indexed is not None:
            if self.indexed.tzinfo is None or self.indexed.utcoffset() is None:
                raise ValueError(f"index time must be timezone-aware, got {self.indexed!r}")
            object.__setattr__(self, "indexed", self.indexed.astimezone(UTC))
        frozen = {str(k): str(v) for k, v in self.fields.items()}
        object.__setattr__(self, "fields", MappingProxyType(frozen))


def _to_us(t: datetime) -> int:
    if t.tzinfo is None:
        raise ValueError(f"time must be timezone-aware, got {t!r}")
    delta = t - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


class EventStore:
    """A SQLite file of events (WAL mode), safe to share between threads and processes.

    Each thread gets its own connection; ``":memory:"`` uses one shared connection behind a lock.
    """

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        self._memory = self._path == ":memory:"
        if not self._memory:
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.RLock()
        self._connections: list[sqlite3.Connection] = []
        self._shared = self._open() if self._memory else None
        with self._connection() as conn:
            conn.executescript(_SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
            if "index_us" not in columns:  # a store written before index times were kept
                conn.execute("ALTER TABLE events ADD COLUMN index_us INTEGER")

    @property
    def path(self) -> str:
        return self._path

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path,
            timeout=_BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
        conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        if not self._memory:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        with self._lock:
            self._connections.append(conn)
        return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if self._shared is not None:
            with self._lock:
                yield self._shared
            return
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        yield conn

    def add(self, events: Iterable[Event]) -> int:
        """Insert events in one transaction; returns how many were inserted."""
        rows = [
            (
                _to_us(e.time),
                e.index,
                e.sourcetype,
                e.source,
                e.host,
                e.raw,
                json.dumps(dict(e.fields), separators=(",", ":")) if e.fields else None,
                _to_us(e.indexed or e.time),
            )
            for e in events
        ]
        if not rows:
            return 0
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT INTO events"
                    " (time_us, index_name, sourcetype, source, host, raw, fields, index_us)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return len(rows)

    def scan(
        self,
        earliest: datetime,
        latest: datetime,
        index: str | None = None,
        sourcetype: str | None = None,
        host: str | None = None,
        *,
        contains: Sequence[Sequence[str]] = (),
        newest_first: bool = False,
        index_earliest: datetime | None = None,
        index_latest: datetime | None = None,
    ) -> Iterator[dict]:
        """Rows with ``earliest <= _time < latest`` in time order (oldest first unless asked),
        and ``index_earliest <= _indextime < index_latest`` where those are given.

        Each row has ``_time`` (float epoch seconds), ``_raw``, ``index``, ``sourcetype``,
        ``source``, ``host`` and the event's explicit fields. ``index``, ``sourcetype`` and
        ``host`` filter by case-insensitive equality. ``contains`` keeps only rows whose
        ``_raw`` holds, for every group, at least one of its substrings (ASCII letters match
        case-insensitively).
        """
        sql = [
            "SELECT time_us, raw, index_name, sourcetype, source, host, fields,"
            " COALESCE(index_us, time_us) FROM events",
            "WHERE time_us >= ? AND time_us < ?",
        ]
        params: list[object] = [_to_us(earliest), _to_us(latest)]
        if index_earliest is not None:
            sql.append("AND COALESCE(index_us, time_us) >= ?")
            params.append(_to_us(index_earliest))
        if index_latest is not None:
            sql.append("AND COALESCE(index_us, time_us) < ?")
            params.append(_to_us(index_latest))
        for column, value in (("index_name", index), ("sourcetype", sourcetype), ("host", host)):
            if value is not None:
                sql.append(f"AND {column} = ?")
                params.append(value)
        for group in contains:
            if not group:
                continue
            sql.append("AND (" + " OR ".join(["raw LIKE ? ESCAPE '\\'"] * len(group)) + ")")
            params.extend(f"%{_like_escape(needle)}%" for needle in group)
        sql.append("ORDER BY time_us DESC, id DESC" if newest_first else "ORDER BY time_us, id")
        query = " ".join(sql)
        if self._shared is not None:
            with self._connection() as conn:
                fetched = conn.execute(query, params).fetchall()
            yield from map(_row, fetched)
            return
        with self._connection() as conn:
            cursor = conn.execute(query, params)
            try:
                while batch := cursor.fetchmany(_FETCH_BATCH):
                    yield from map(_row, batch)
            finally:
                cursor.close()

    def count(self) -> int:
        with self._connection() as conn:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])

    def purge_before(self, t: datetime) -> int:
        """Delete events older than ``t``; returns how many were deleted."""
        with self._connection() as conn:
            cursor = conn.execute("DELETE FROM events WHERE time_us < ?", (_to_us(t),))
            return cursor.rowcount

    def close(self) -> None:
        """Close every connection this store opened (in any thread)."""
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
            self._local = threading.local()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _row(record: tuple) -> dict:
    time_us, raw, index, sourcetype, source, host, fields, index_us = record
    row: dict = {
        "_time": time_us / 1_000_000,
        "_indextime": index_us / 1_000_000,
        "_raw": raw,
        "index": index,
        "sourcetype": sourcetype,
        "source": source,
        "host": host,
    }
    if fields:
        for key, value in json.loads(fields).items():
            row.setdefault(key, value)
    return row
