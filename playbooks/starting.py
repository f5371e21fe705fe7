"""Creating runs, and recording refusals: the writes a start makes."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError

from bot.errors import BotError
from bot.store import runs
from bot.store.runs import NewRun
from playbooks import notify
from playbooks.facts import load_subject
from playbooks.model import RunStatus
from playbooks.outcome import Deps


def refused_sync(
    deps: Deps,
    incident_id: int | None,
    actor: str,
    surface: str,
    action: str,
    reason: str,
    data: dict[str, Any],
) -> None:
    with deps.engine.begin() as conn:
        notify.record(
            conn,
            deps.clock.now(),
            actor,
            surface,
            action,
            incident_id,
            "refused",
            reason,
            data,
        )


def by_key_sync(deps: Deps, key: str) -> int | None:
    """The run an idempotency key started, if any."""
    with deps.engine.connect() as conn:
        row = runs.by_key(conn, key)
        return None if row is None else int(row.id)


def create_sync(
    deps: Deps, new: NewRun, actor: str, surface: str, detail: str, data: dict[str, Any]
) -> int:
    """Create a run with its audit entry, timeline line and card update, in one transaction;
    a run the database refuses (its target busy, too many live runs) is audited and raised."""
    now = deps.clock.now()
    try:
        with deps.engine.begin() as conn:
            run_id = runs.create(conn, new, now, deps.limits.max_concurrent)
            subject = load_subject(conn, new.incident_id)
            action = (
                "playbook_requested"
                if new.status is RunStatus.AWAITING_APPROVAL
                else "playbook_started"
            )
            notify.record(
                conn,
                now,
                actor,
                surface,
                action,
                new.incident_id,
                "applied",
                detail,
                {"run": run_id, **data},
                after=new.status.value,
                correlation_id=f"run-{run_id}",
            )
            notify.timeline(conn, new.incident_id, now, actor, "remediation", detail)
            notify.card_updates(conn, subject.incident, deps.router, f"{run_id}:1", now)
    except (IntegrityError, runs.TooManyRuns) as exc:
        refusal: BotError = exc if isinstance(exc, runs.TooManyRuns) else runs.busy(new.target)
        if isinstance(exc, IntegrityError) and new.idempotency_key:
            seen = by_key_sync(deps, new.idempotency_key)
            if seen is not None:
                return seen  # a twin of this press won the race: the same run
        code = "target_busy" if isinstance(refusal, runs.TargetBusy) else "concurrency"
        deps.on_refusal(code)
        refused_sync(
            deps,
            new.incident_id,
            actor,
            surface,
            "playbook_refused",
            str(refusal),
            {"playbook": new.playbook_id, "check": code},
        )
        raise refusal from None
    deps.on_commit()
    return run_id
