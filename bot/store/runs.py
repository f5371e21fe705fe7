"""Remediation runs and their steps (``playbook_runs``, ``playbook_steps``).

A run is created in one transaction that also checks the two limits every replica shares: one
live run per target (the unique ``active_target`` column) and at most ``max_concurrent`` live
runs in all (counted inside the creating transaction, serialised by an advisory lock on
PostgreSQL and by SQLite's single writer). Every later status move names the version it read
(optimistic concurrency): two replicas can never both move one run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, text, update

from bot.errors import Conflict, PolicyViolation
from bot.store.tables import PlaybookRunRow, PlaybookStepRow, ReplicaRow
from playbooks.model import LIVE, RunMode, RunStatus, RunView, StepView

RUNS = PlaybookRunRow.__table__  # type: ignore[attr-defined]
STEPS = PlaybookStepRow.__table__  # type: ignore[attr-defined]
REPLICAS = ReplicaRow.__table__  # type: ignore[attr-defined]
#: serialises run creation on PostgreSQL ("runs" in ASCII)
LOCK_KEY = 0x72756E73
LIVE_VALUES = tuple(s.value for s in LIVE)
#: statuses a process is carrying out in memory (verifying is driven from the database)
IN_FLIGHT = (RunStatus.RUNNING.value, RunStatus.ROLLING_BACK.value)
OUTPUT_CAP = 4000


class TargetBusy(Conflict):
    """Another live run already acts on this target."""


class TooManyRuns(PolicyViolation):
    """``max_concurrent_resolutions`` runs are live already."""


@dataclass(frozen=True, slots=True)
class NewRun:
    incident_id: int
    playbook_id: str
    category: str
    target: str
    mode: RunMode
    status: RunStatus
    plan_json: str
    fingerprint: str
    confidence: float
    requested_by: str
    surface: str
    approval_expires_at: datetime | None = None
    idempotency_key: str | None = None
    detail: str = ""
    claimed_by: str = ""  # the process carrying it out


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})


def live_count(conn: Connection) -> int:
    return int(
        conn.execute(select(func.count()).where(RUNS.c.status.in_(LIVE_VALUES))).scalar_one()
    )


def create(conn: Connection, new: NewRun, now: datetime, max_concurrent: int) -> int:
    """Insert a run in the caller's transaction; raise TooManyRuns, or IntegrityError when its
    target has a live run or its idempotency key was used (roll back, then tell them apart).

    The row goes in first (on SQLite that takes the write lock, so the count that follows sees
    every other writer's committed runs), then the live runs are counted with it.
    """
    _lock(conn)
    live = new.status in LIVE
    values = {
        "incident_id": new.incident_id,
        "playbook_id": new.playbook_id,
        "category": new.category,
        "target": new.target,
        "active_target": new.target if live else None,
        "mode": new.mode.value,
        "status": new.status.value,
        "plan_json": new.plan_json,
        "plan_fingerprint": new.fingerprint,
        "confidence": new.confidence,
        "requested_by": new.requested_by,
        "surface": new.surface,
        "approval_required": new.status is RunStatus.AWAITING_APPROVAL,
        "approval_expires_at": new.approval_expires_at,
        "idempotency_key": new.idempotency_key,
        "detail": new.detail,
        "claimed_by": new.claimed_by,
        "created_at": now,
        "updated_at": now,
        "started_at": now if new.status is RunStatus.RUNNING else None,
        "finished_at": None if live else now,
        "version": 1,
    }
    # a duplicate active target or idempotency key raises IntegrityError: the caller's
    # transaction is then void (see :func:`busy`)
    inserted = conn.execute(RUNS.insert().values(**values)).inserted_primary_key
    run_id = int(inserted[0])  # type: ignore[index]
    if live and live_count(conn) > max_concurrent:
        raise TooManyRuns(
            f"{max_concurrent} remediation runs are live already "
            "(max_concurrent_resolutions); try again when one finishes"
        )
    return run_id


def busy(target: str) -> TargetBusy:
    return TargetBusy(f"another run is already live on {target}; wait for it or cancel it")


def get(conn: Connection, run_id: int) -> Any:
    return conn.execute(select(RUNS).where(RUNS.c.id == run_id)).first()


def by_key(conn: Connection, key: str) -> Any:
    return conn.execute(select(RUNS).where(RUNS.c.idempotency_key == key)).first()


def of_incident(conn: Connection, incident_id: int) -> list[Any]:
    return list(
        conn.execute(
            select(RUNS).where(RUNS.c.incident_id == incident_id).order_by(RUNS.c.id.desc())
        )
    )


def live_on_target(conn: Connection, target: str) -> Any:
    return conn.execute(select(RUNS).where(RUNS.c.active_target == target)).first()


def last_finished_on_target(conn: Connection, target: str) -> datetime | None:
    """When the last run on ``target`` that changed something finished (for the cooldown)."""
    value = conn.execute(
        select(func.max(RUNS.c.finished_at)).where(
            RUNS.c.target == target,
            RUNS.c.started_at.is_not(None),
        )
    ).scalar()
    return value if isinstance(value, datetime) else None


def failures_since(conn: Connection, playbook_id: str, since: datetime) -> int:
    """Failed or rolled-back runs of a playbook that finished since ``since`` (the breaker)."""
    return int(
        conn.execute(
            select(func.count()).where(
                RUNS.c.playbook_id == playbook_id,
                RUNS.c.status.in_((RunStatus.FAILED.value, RunStatus.ROLLED_BACK.value)),
                RUNS.c.finished_at >= since,
            )
        ).scalar_one()
    )


def move(conn: Connection, row: Any, status: RunStatus | None, now: datetime, **values: Any) -> Any:
    """Move a run from the version in ``row``; return the new row, or None if it changed."""
    changes: dict[str, Any] = {"updated_at": now, "version": row.version + 1, **values}
    if status is not None:
        changes["status"] = status.value
        if status not in LIVE:
            changes["active_target"] = None
            changes.setdefault("finished_at", now)
    done = conn.execute(
        update(RUNS).where(RUNS.c.id == row.id, RUNS.c.version == row.version).values(**changes)
    )
    if done.rowcount != 1:
        return None
    return get(conn, row.id)


def start_step(
    conn: Connection, run_id: int, phase: str, idx: int, name: str, executor: str, now: datetime
) -> None:
    existing = conn.execute(
        select(STEPS.c.id).where(
            STEPS.c.run_id == run_id, STEPS.c.phase == phase, STEPS.c.idx == idx
        )
    ).first()
    if existing is None:
        conn.execute(
            STEPS.insert().values(
                run_id=run_id,
                phase=phase,
                idx=idx,
                name=name[:200],
                executor=executor[:32],
                status="running",
                attempts=0,
                started_at=now,
            )
        )
    else:
        conn.execute(
            update(STEPS).where(STEPS.c.id == existing.id).values(status="running", started_at=now)
        )


def finish_step(
    conn: Connection,
    run_id: int,
    phase: str,
    idx: int,
    status: str,
    attempts: int,
    output: str,
    error: str,
    duration_ms: float,
    now: datetime,
) -> None:
    conn.execute(
        update(STEPS)
        .where(STEPS.c.run_id == run_id, STEPS.c.phase == phase, STEPS.c.idx == idx)
        .values(
            status=status,
            attempts=attempts,
            output=output[:OUTPUT_CAP],
            error=error[:OUTPUT_CAP],
            duration_ms=duration_ms,
            finished_at=now,
        )
    )


def steps_of(conn: Connection, run_ids: Sequence[int]) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {i: [] for i in run_ids}
    if not run_ids:
        return out
    rows = conn.execute(
        select(STEPS).where(STEPS.c.run_id.in_(run_ids)).order_by(STEPS.c.phase.desc(), STEPS.c.idx)
    )
    for row in rows:
        out[row.run_id].append(row)
    return out


def stranded(conn: Connection, me: str, alive_since: datetime) -> list[Any]:
    """Runs a process was carrying out (running, rolling back) whose process is gone: not
    this one, and without a replica heartbeat since ``alive_since``."""
    alive = {
        r.holder
        for r in conn.execute(select(REPLICAS.c.holder).where(REPLICAS.c.seen_at >= alive_since))
    }
    rows = conn.execute(select(RUNS).where(RUNS.c.status.in_(IN_FLIGHT)))
    return [r for r in rows if r.claimed_by != me and r.claimed_by not in alive]


def due_verifications(conn: Connection, now: datetime) -> list[Any]:
    return list(
        conn.execute(
            select(RUNS).where(
                RUNS.c.status == RunStatus.VERIFYING.value, RUNS.c.verify_due_at <= now
            )
        )
    )


def expired_approvals(conn: Connection, now: datetime) -> list[Any]:
    return list(
        conn.execute(
            select(RUNS).where(
                RUNS.c.status == RunStatus.AWAITING_APPROVAL.value,
                RUNS.c.approval_expires_at <= now,
            )
        )
    )


def to_view(row: Any, steps: Sequence[Any] = ()) -> RunView:
    return RunView(
        id=row.id,
        incident_id=row.incident_id,
        playbook_id=row.playbook_id,
        status=RunStatus(row.status),
        mode=RunMode(row.mode),
        target=row.target,
        requested_by=row.requested_by,
        approver=row.approver,
        approval_expires_at=row.approval_expires_at,
        fingerprint=row.plan_fingerprint,
        detail=row.detail,
        created_at=row.created_at,
        finished_at=row.finished_at,
        steps=tuple(
            StepView(
                phase=s.phase,
                index=s.idx,
                name=s.name,
                status=s.status,
                attempts=s.attempts,
                output=s.output,
                error=s.error,
                duration_ms=s.duration_ms,
            )
            for s in steps
        ),
    )


def plan_of(row: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(row.plan_json or "{}")
    return data
