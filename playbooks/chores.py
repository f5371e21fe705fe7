"""What the scheduler lease holder does for runs: verify those due, expire unanswered approvals,
and mark runs a dead process left behind as interrupted (nothing re-runs by itself)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.pipeline.notify import MessageKind
from bot.store import runs
from bot.store.repo import CARD_REFS, INCIDENTS, OUTBOX, insert_ignore
from bot.store.runtime_config import read_kill_switch
from playbooks.engine import RunEngine
from playbooks.model import RunStatus
from playbooks.outcome import move
from playbooks.plan import StoredPlan

log = logging.getLogger(__name__)


async def verify_due(engine: RunEngine) -> int:
    """Verify every run whose wait is over; answers how many were looked at. A run whose
    search failed stays due and is tried again at the next tick, until its verify timeout
    (counted from its due time, which never moves)."""
    deps = engine.deps
    now = deps.clock.now()

    def claim() -> list[Any]:
        claimed = []
        with deps.engine.begin() as conn:
            for row in runs.due_verifications(conn, now):
                moved = runs.move(conn, row, None, now, claimed_by=deps.holder)
                if moved is not None:
                    claimed.append(moved)
        return claimed

    claimed = await asyncio.to_thread(claim)
    for row in claimed:
        try:
            await engine.verify(row)
        except Exception:  # one run's trouble must not stop the others
            log.exception("run %s: verification failed unexpectedly", row.id)
    return len(claimed)


async def expire_approvals(engine: RunEngine) -> int:
    deps = engine.deps
    now = deps.clock.now()

    def due() -> list[Any]:
        with deps.engine.connect() as conn:
            return runs.expired_approvals(conn, now)

    expired = 0
    for row in await asyncio.to_thread(due):
        window = deps.limits.approval_window
        detail = (
            f"nobody approved {row.playbook_id} within {int(window.total_seconds() // 60)}m "
            f"(requested by {row.requested_by}); expired: press Auto-resolve to ask again"
        )
        if await move(deps, row, RunStatus.EXPIRED, "playbook_expired", detail, tell=detail):
            expired += 1
    return expired


async def interrupt_stranded(engine: RunEngine, alive_within: timedelta) -> int:
    """Runs left running or rolling back by a process that is gone become ``interrupted``."""
    deps = engine.deps
    now = deps.clock.now()

    def stranded() -> list[Any]:
        with deps.engine.begin() as conn:
            rows = runs.stranded(conn, deps.holder, now - alive_within)
            for row in rows:
                conn.execute(
                    runs.STEPS.update()
                    .where(runs.STEPS.c.run_id == row.id, runs.STEPS.c.status == "running")
                    .values(status="interrupted", finished_at=now)
                )
            return rows

    count = 0
    for row in await asyncio.to_thread(stranded):
        total = len(StoredPlan.parse(row.plan_json).steps)
        if row.status == RunStatus.ROLLING_BACK.value:
            detail = "interrupted while rolling back: check the target, then re-plan"
        else:
            detail = f"interrupted at step {row.step_index + 1} of {total}: re-plan"
        if await move(
            deps, row, RunStatus.INTERRUPTED, "playbook_interrupted", detail, tell=detail
        ):
            count += 1
    if count:
        log.warning("%d remediation run(s) were interrupted by a stopped process", count)
    return count


class KillSwitchCards:
    """When the kill switch flips, every active incident's cards are updated, so their buttons
    say why nothing runs (or that runs may start again). Keys name the switch's change, so a
    new lease holder looking again enqueues nothing twice."""

    def __init__(self, engine: RunEngine) -> None:
        self._engine = engine
        self._seen: tuple[bool, str] | None = None

    async def __call__(self) -> int:
        deps = self._engine.deps
        switch = await asyncio.to_thread(read_kill_switch, deps.engine)
        state = (switch.on, switch.at.isoformat() if switch.at else "")
        if state == self._seen:
            return 0
        self._seen = state
        if not switch.at:
            return 0  # never switched: the cards are as they were drawn
        return await asyncio.to_thread(self._refresh, f"kill:{int(switch.on)}:{state[1]}")

    def _refresh(self, key: str) -> int:
        deps = self._engine.deps
        now = deps.clock.now()
        with deps.engine.begin() as conn:
            refs = conn.execute(
                select(CARD_REFS.c.surface, CARD_REFS.c.channel, CARD_REFS.c.incident_id)
                .join(INCIDENTS, INCIDENTS.c.id == CARD_REFS.c.incident_id)
                .where(INCIDENTS.c.active_key.is_not(None))
            ).all()
            rows = []
            for surface, channel, incident_id in refs:
                base = f"{surface}:{channel}:{incident_id}"
                rows.append(
                    {
                        "idempotency_key": f"{key}:{base}"[:255],
                        "surface": surface,
                        "channel": channel,
                        "kind": MessageKind.UPDATE.value,
                        "incident_id": incident_id,
                        "order_key": base,
                        "payload_json": "{}",
                        "severity_rank": 3,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                        "sent_at": None,
                        "last_error": "",
                    }
                )
            insert_ignore(conn, OUTBOX, rows, "idempotency_key")
        if rows:
            deps.on_commit()
        return len(rows)
