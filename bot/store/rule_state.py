"""Each rule's state rows: where its last run ended, its counters and its memory."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.pipeline.ingest import IngestResult
from bot.store.repo import RULE_STATE, insert_ignore
from bot.store.tables import RuleMemoryRow
from detectors.memory import RuleMemory

RULE_MEMORY = RuleMemoryRow.__table__  # type: ignore[attr-defined]


def success_values(now: datetime, hits: int, elapsed: float) -> dict[str, Any]:
    return {
        "last_run_at": now,
        "last_success_at": now,
        "last_duration_ms": elapsed * 1000,
        "last_hits": hits,
        "last_error": "",
        "consecutive_failures": 0,
        "runs": RULE_STATE.c.runs + 1,
    }


def read_memory(conn: Any, rule_id: str) -> RuleMemory:
    rows = conn.execute(
        select(RULE_MEMORY.c.key, RULE_MEMORY.c.value_json).where(RULE_MEMORY.c.rule_id == rule_id)
    )
    return RuleMemory({key: json.loads(value) for key, value in rows})


def save_memory(conn: Any, rule_id: str, memory: RuleMemory, now: datetime) -> None:
    """Write what the run changed; part of the run's transaction."""
    changed, deleted = memory.changes()
    gone = [*deleted, *changed]
    for start in range(0, len(gone), 500):
        conn.execute(
            RULE_MEMORY.delete().where(
                RULE_MEMORY.c.rule_id == rule_id, RULE_MEMORY.c.key.in_(gone[start : start + 500])
            )
        )
    if changed:
        conn.execute(
            RULE_MEMORY.insert(),
            [
                {"rule_id": rule_id, "key": k, "value_json": json.dumps(v), "updated_at": now}
                for k, v in changed.items()
            ],
        )
    memory.saved()


def merge_results(total: IngestResult, part: IngestResult) -> None:
    total.created += part.created
    total.reopened += part.reopened
    total.updated += part.updated
    total.muted += part.muted
    total.held_by_realert += part.held_by_realert
    total.messages += part.messages


def ensure_state(conn: Any, rule_id: str) -> None:
    insert_ignore(conn, RULE_STATE, [{"rule_id": rule_id}], "rule_id")


__all__ = [
    "RULE_MEMORY",
    "ensure_state",
    "merge_results",
    "read_memory",
    "save_memory",
    "success_values",
]
