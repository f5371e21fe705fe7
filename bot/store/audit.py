"""The audit trail as a hash chain: each entry stores the previous entry's hash and its own.

``hash = sha256(prev_hash + canonical JSON of the entry's fields)``. Appends are serialised (a
PostgreSQL advisory lock held to the end of the transaction; SQLite writes one transaction at a
time), so replicas never fork the chain. :func:`verify` walks the chain in order and names the
first entry that was altered or whose predecessor was removed. Retention deletes the oldest
entries: the oldest remaining entry is then the chain's anchor.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, text

from bot.store.tables import AuditRow

AUDIT = AuditRow.__table__  # type: ignore[attr-defined]
#: the advisory lock key that serialises appends on PostgreSQL ("audit" in ASCII)
LOCK_KEY = 0x61756469
HASHED = (
    "at",
    "actor",
    "surface",
    "action",
    "incident_id",
    "before_state",
    "after_state",
    "reason",
    "result",
    "detail",
    "correlation_id",
    "data_json",
)
DEFAULTS: dict[str, Any] = {
    "surface": "",
    "incident_id": None,
    "before_state": "",
    "after_state": "",
    "reason": "",
    "detail": "",
    "correlation_id": "",
}


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat(timespec="microseconds")
    return value


def entry_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    body = json.dumps(
        {k: _canonical(row.get(k)) for k in HASHED}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


def _last_hash(conn: Connection) -> str:
    row = conn.execute(select(AUDIT.c.hash).order_by(AUDIT.c.id.desc()).limit(1)).first()
    return row.hash if row is not None else ""


def append(conn: Connection, entries: Sequence[Mapping[str, Any]]) -> None:
    """Append audit entries in this transaction, chained to the last one.

    Each entry has the ``audit`` columns (``at``, ``actor``, ``action``, ``result`` required);
    ``data`` (a JSON-able mapping, already redacted) is stored as ``data_json``.
    """
    if not entries:
        return
    _lock(conn)
    prev = _last_hash(conn)
    rows = []
    for entry in entries:
        row = {**DEFAULTS, **{k: v for k, v in entry.items() if k != "data"}}
        if "data" in entry:
            row["data_json"] = json.dumps(entry["data"], sort_keys=True, default=str)
        row.setdefault("data_json", "{}")
        row["prev_hash"] = prev
        row["hash"] = prev = entry_hash(prev, row)
        rows.append(row)
    # one statement for the batch (a storm opens thousands of incidents in one transaction); the
    # rows keep their order, so ids follow the chain
    conn.execute(AUDIT.insert(), rows)


@dataclass(frozen=True, slots=True)
class ChainReport:
    checked: int
    first_bad_id: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.first_bad_id is None


def _rows(engine: Engine, batch: int = 5000) -> Iterator[Any]:
    last = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(
                select(AUDIT).where(AUDIT.c.id > last).order_by(AUDIT.c.id).limit(batch)
            ).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].id


def verify(engine: Engine) -> ChainReport:
    """Walk the chain from its oldest remaining entry; report the first broken link."""
    checked = 0
    prev: str | None = None
    for row in _rows(engine):
        mapping = dict(row._mapping)
        if prev is not None and row.prev_hash != prev:
            return ChainReport(
                checked,
                row.id,
                f"audit entry {row.id} does not follow entry {prev[:12]}…: "
                "an entry before it was removed or altered",
            )
        if entry_hash(row.prev_hash, mapping) != row.hash:
            return ChainReport(
                checked, row.id, f"audit entry {row.id} was altered after it was written"
            )
        prev = row.hash
        checked += 1
    return ChainReport(checked)
