"""The push journal: a push is durable once its alerts are written here, before it is answered.

The receiver applies journal entries to alerts and incidents afterwards, several queued
entries in one transaction, so a sender pushing back to back is answered at the speed of one
small write, not of the pipeline, and the pipeline's cost follows groups, not pushes.

Where it lives:

* **SQLite**: a file of its own next to the database (``bot.db`` -> ``bot-push-journal.db``),
  so a push is never queued behind the pipeline's or the outbox's transactions (SQLite has one
  writer per file). The database keeps the last applied entry's id (``settings_kv``,
  ``push.journal_applied``) in the transaction that applies it, so after a crash an entry is
  applied exactly once: later ones are applied at the next start, earlier ones deleted.
  Ids never repeat (``AUTOINCREMENT``, and the sequence starts past the applied id if the
  journal file is lost).
* **PostgreSQL**: a table of the database (migration 0013); the transaction that applies
  entries deletes them, under an advisory lock, so replicas take turns and each entry is
  applied once whichever replica received it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, delete, func, select, text

from bot.push.mapping import PushedAlert
from bot.store.db import make_engine
from bot.store.repo import insert_ignore
from bot.store.settings_kv import SETTINGS, read_value, write_value

JOURNAL_META = sa.MetaData()
PUSH_JOURNAL = sa.Table(
    "push_journal",
    JOURNAL_META,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sender", sa.String(100), nullable=False),
    sa.Column("alerts", sa.Text, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sqlite_autoincrement=True,
)
APPLIED_KEY = "push.journal_applied"
APPLY_LOCK = 0x626F745F707368  # pg_advisory_xact_lock key: "bot_psh"
#: entries one transaction applies at most, and their alerts at most (a storm's backlog is
#: applied in steps, so card posts and clicks get the database between them)
MAX_ENTRIES = 64
MAX_ALERTS = 5_000


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    sender: str
    alerts: list[PushedAlert]


def encode(alerts: Sequence[PushedAlert]) -> str:
    return json.dumps(
        [
            [
                dict(a.labels),
                dict(a.annotations),
                a.starts_at.isoformat(),
                a.ends_at.isoformat(),
                a.generator_url,
                a.timeout,
            ]
            for a in alerts
        ],
        separators=(",", ":"),
    )


def decode(raw: str) -> list[PushedAlert]:
    parse = datetime.fromisoformat
    return [
        PushedAlert(labels, notes, parse(starts), parse(ends), url, timeout)
        for labels, notes, starts, ends, url, timeout in json.loads(raw)
    ]


def side_path(database: str) -> Path:
    path = Path(database)
    return path.with_name(f"{path.stem}-push-journal{path.suffix or '.db'}")


class Journal:
    """Where pushes wait to be applied (see the module's text for the two databases)."""

    def __init__(self, engine: Engine) -> None:
        self.main = engine
        self.shared = engine.dialect.name != "sqlite"  # PostgreSQL: the database's own table
        database = engine.url.database or ""
        if self.shared or database in ("", ":memory:"):
            self.engine = engine
        else:
            self.engine = make_engine(f"sqlite:///{side_path(database)}")
        self._applied: int | None = None  # SQLite: the last applied id, once read
        self.opened = self.shared  # PostgreSQL's table comes with the migrations

    def open(self) -> None:
        """Create the SQLite journal if missing; its ids start past the applied one."""
        if self.opened:
            return
        PUSH_JOURNAL.create(self.engine, checkfirst=True)
        applied = self.applied_id()
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO sqlite_sequence (name, seq) SELECT 'push_journal', 0 "
                    "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'push_journal')"
                )
            )
            conn.execute(
                text(
                    "UPDATE sqlite_sequence SET seq = :seq "
                    "WHERE name = 'push_journal' AND seq < :seq"
                ),
                {"seq": applied},
            )
            conn.execute(delete(PUSH_JOURNAL).where(PUSH_JOURNAL.c.id <= applied))
        self.opened = True

    def close(self) -> None:
        if self.engine is not self.main:
            self.engine.dispose()

    def append(self, sender: str, alerts: Sequence[PushedAlert], now: datetime) -> int:
        """Write one push; answers its entry id once committed."""
        row = {"received_at": now, "sender": sender, "alerts": encode(alerts), "size": len(alerts)}
        with self.engine.begin() as conn:
            key = conn.execute(PUSH_JOURNAL.insert().values(**row)).inserted_primary_key
            assert key is not None
            return int(key[0])

    def applied_id(self) -> int:
        if self._applied is None:
            with self.main.connect() as conn:
                self._applied = int(read_value(conn, APPLIED_KEY) or 0)
        return self._applied

    def lock(self, conn: Connection) -> None:
        """PostgreSQL: one applier at a time across replicas (held until ``conn`` commits)."""
        if self.shared:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": APPLY_LOCK})

    def pending(self, conn: Connection) -> list[Entry]:
        """The oldest entries not applied yet, at most :data:`MAX_ENTRIES` or about
        :data:`MAX_ALERTS` alerts (always at least one). ``conn`` is the applying transaction."""
        journal = PUSH_JOURNAL.c
        query = select(journal.id, journal.sender, journal.size, journal.alerts)
        query = query.order_by(PUSH_JOURNAL.c.id).limit(MAX_ENTRIES)
        if self.shared:
            rows: Sequence[Any] = conn.execute(query.with_for_update()).all()
        else:
            with self.engine.connect() as side:
                rows = side.execute(query.where(PUSH_JOURNAL.c.id > self.applied_id())).all()
        entries: list[Entry] = []
        count = 0
        for entry_id, sender, size, raw in rows:
            if entries and count + size > MAX_ALERTS:
                break  # read, not decoded: the next step takes it
            entries.append(Entry(entry_id, sender, decode(raw)))
            count += size
        return entries

    def mark_applied(self, conn: Connection, entries: Sequence[Entry], now: datetime) -> None:
        """In the applying transaction: PostgreSQL deletes the entries, SQLite moves the mark."""
        if not entries:
            return
        if self.shared:
            ids = [e.id for e in entries]
            conn.execute(delete(PUSH_JOURNAL).where(PUSH_JOURNAL.c.id.in_(ids)))
            return
        last = max(e.id for e in entries)
        value = {"key": APPLIED_KEY, "value_json": "0", "updated_at": now}
        insert_ignore(conn, SETTINGS, [value], "key")
        write_value(conn, APPLIED_KEY, last, "push", now)

    def committed(self, entries: Sequence[Entry]) -> None:
        """After the applying transaction committed: SQLite moves its mark and forgets the
        applied entries (if it stops before, the next start forgets them)."""
        if self.shared or not entries:
            return
        last = max(e.id for e in entries)
        self._applied = max(self.applied_id(), last)
        self.forget(last)

    def forget(self, last: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(PUSH_JOURNAL).where(PUSH_JOURNAL.c.id <= last))

    def backlog(self, now: datetime) -> tuple[int, float]:
        """Alerts waiting to be applied, and the oldest one's wait in seconds (0: none)."""
        query = select(
            func.coalesce(func.sum(PUSH_JOURNAL.c.size), 0), func.min(PUSH_JOURNAL.c.received_at)
        )
        if not self.shared:
            query = query.where(PUSH_JOURNAL.c.id > self.applied_id())
        with self.engine.connect() as conn:
            waiting, oldest = conn.execute(query).one()
        if oldest is None:
            return int(waiting), 0.0
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=now.tzinfo)
        return int(waiting), max(0.0, (now - oldest).total_seconds())

    def rolled_back(self) -> None:
        """The applying transaction failed: read the mark again before the next try."""
        self._applied = None
