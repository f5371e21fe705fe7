"""Carry out a run: step by step behind the gate, then verify, or roll back and page.

Before every step the gate is asked again (the kill switch, the category, the breaker …): a
refusal stops the run before that step begins. Each step is audited before and after (inputs;
outputs truncated and redacted; duration), has its timeout, and is retried on transient errors up
to the smaller of its own ``retries`` and the category's ``max_retries``. After the last step the
run waits ``verify.wait`` (a time kept in the database, so it survives restarts) and the
scheduler lease holder verifies it (:mod:`playbooks.chores`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import timedelta
from typing import Any

from bot.domain.incident import Command, CommandKind
from bot.errors import BotError, Conflict, TransientError
from bot.ports import StepResult
from bot.store import runs
from bot.store.runtime_config import read_category, read_kill_switch
from playbooks import notify
from playbooks.facts import Ask, gate_facts, load_subject
from playbooks.gate import decide
from playbooks.model import Check, Confidence, Decision, RunMode, RunStatus, Verdict
from playbooks.outcome import Deps, describe, feed_breaker, move, outcome_text, page
from playbooks.plan import StoredPlan, StoredStep
from playbooks.verify import Verification, verify_cleared

log = logging.getLogger(__name__)
GRACE_S = 5.0  # an executor's own timeout fires first; this one catches a hung executor
AUDIT_OUTPUT = 2000


class RunEngine:
    """Runs live in tasks of this process; their state lives in the database."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._tasks: dict[int, asyncio.Task[None]] = {}

    # tasks -----------------------------------------------------------------------------------

    def launch(self, run_id: int) -> None:
        task = asyncio.get_running_loop().create_task(self.execute(run_id), name=f"run-{run_id}")
        self._tasks[run_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(run_id, None))

    @property
    def busy(self) -> int:
        return len(self._tasks)

    async def idle(self) -> None:
        """Wait for every run this process carries out to stop (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def stop(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def execute(self, run_id: int) -> None:
        try:
            await self._execute(run_id)
        except asyncio.CancelledError:
            raise  # the process stops: the run is left running and becomes interrupted
        except Exception as exc:  # a bug must end the run visibly, never leave it hanging
            log.exception("run %s failed unexpectedly", run_id)
            row = await asyncio.to_thread(self._row, run_id)
            if row is not None and RunStatus(row.status).live:
                await move(
                    self.deps, row, RunStatus.FAILED, "playbook_failed", f"internal error: {exc}"
                )

    # the steps -------------------------------------------------------------------------------

    def _row(self, run_id: int) -> Any:
        with self.deps.engine.connect() as conn:
            return runs.get(conn, run_id)

    async def _execute(self, run_id: int) -> None:
        row = await asyncio.to_thread(self._row, run_id)
        if row is None or row.status != RunStatus.RUNNING.value:
            return
        plan = StoredPlan.parse(row.plan_json)
        completed: list[int] = []
        total = len(plan.steps)
        for index, stored in enumerate(plan.steps):
            row = await asyncio.to_thread(self._row, run_id)
            if row is None or row.status != RunStatus.RUNNING.value:
                return  # cancelled by a person: the step never begins
            verdict = await asyncio.to_thread(self._recheck, row)
            if verdict.decision is Decision.REFUSED:
                await self._stopped(row, plan, verdict, index)
                return
            row = await self._begin(row, stored, index, total)
            if row is None:
                return
            result, attempts, ms = await self._attempts(row, stored)
            row = await self._end(row, stored, result, attempts, ms, index, total)
            if row is None:
                return
            if not result.ok:
                why = f"step {index + 1} of {total} ({stored.step.name}) failed: {result.error}"
                # a failed step may have changed something before it failed: undo it too
                await self.fail(row, plan, [*completed, index], why)
                return
            completed.append(index)
        wait = plan.verify_wait_s
        due = self.deps.clock.now() + _seconds(wait)
        row = await move(
            self.deps,
            row,
            RunStatus.VERIFYING,
            "playbook_verifying",
            f"{total} of {total} steps done; verifying at {due:%H:%M:%S} UTC",
            verify_due_at=due,
        )
        if row is not None and wait <= 0:
            await self.verify(row)

    def _recheck(self, row: Any) -> Verdict:
        deps = self.deps
        playbook = deps.registry.get(row.playbook_id)
        if playbook is None:
            text = f"playbook {row.playbook_id} is no longer loaded"
            return Verdict(Decision.REFUSED, (Check("allowed", False, text),))
        ask = Ask(
            playbook=playbook,
            mode=RunMode(row.mode),
            actor=row.approver or row.requested_by or "bot",
            role_ok=True,  # checked when the run was asked for and approved
            requested_by=row.requested_by,
            approver=row.approver,
            confidence=Confidence(row.confidence, ()),
            rule_auto=row.mode == RunMode.AUTO.value,
        )
        kill = read_kill_switch(deps.engine)  # at most 0.5 s old on every replica
        with deps.engine.connect() as conn:
            facts = gate_facts(
                conn,
                ask,
                row.category,
                row.target,
                deps.clock.now(),
                deps.limits.max_concurrent,
                deps.limits.embedded,
                own_run=row.id,
                kill=kill,
            )
        verdict = decide(facts)
        if verdict.decision is Decision.NEEDS_APPROVAL and row.mode != RunMode.AUTO.value:
            # confidence and risk were settled when it was confirmed (and approved)
            return Verdict(Decision.RUN, verdict.checks)
        return verdict

    async def _stopped(self, row: Any, plan: StoredPlan, verdict: Verdict, index: int) -> None:
        first = verdict.failed[0]
        self.deps.on_refusal(first.code)
        if first.code == "kill_switch":
            detail = f"stopped by the kill switch before step {index + 1}: {first.text}"
        else:
            detail = f"stopped before step {index + 1}: {first.text}"
        await move(
            self.deps,
            row,
            RunStatus.CANCELLED,
            "playbook_stopped",
            detail,
            data={"checks": [[c.code, c.passed, c.text] for c in verdict.checks]},
            result="refused",
            tell=outcome_text(row, plan, RunStatus.CANCELLED, detail),
        )

    async def _begin(self, row: Any, stored: StoredStep, index: int, total: int) -> Any:
        deps, step = self.deps, stored.step
        params = {k: list(v) if isinstance(v, tuple) else v for k, v in step.plan.params}

        label = "rollback step" if step.phase == "rollback" else "step"
        moved = await move(
            deps,
            row,
            None,
            "playbook_step_started",
            f"{label} {index + 1} of {total} ({step.name}) started: {step.plan.description}",
            data={
                "phase": step.phase,
                "step": step.index,
                "name": step.name,
                "executor": step.plan.executor,
                "action": step.plan.action,
                "step_target": step.plan.target,
                "params": json.loads(deps.redactor.redact(json.dumps(params, default=str))),
                "timeout_s": step.plan.timeout_s,
            },
            step_index=index if step.phase == "step" else row.step_index,
            claimed_by=deps.holder,
        )
        if moved is None:
            return None  # cancelled meanwhile: the step does not begin

        def begin() -> None:
            with deps.engine.begin() as conn:
                runs.start_step(
                    conn,
                    row.id,
                    step.phase,
                    step.index,
                    step.name,
                    step.plan.executor,
                    deps.clock.now(),
                )

        await asyncio.to_thread(begin)
        return moved

    async def _attempts(self, row: Any, stored: StoredStep) -> tuple[StepResult, int, float]:
        step = stored.step
        policy = await asyncio.to_thread(read_category, self.deps.engine, row.category)
        tries = 1 + min(step.retries, policy.max_retries)
        executor = self.deps.executors.get(step.plan.executor)
        started = time.perf_counter()
        result = StepResult(False, error=f"the {step.plan.executor!r} executor is not set up here")
        attempt = 0
        for attempt in range(1, tries + 1):
            if executor is None:
                break
            try:
                async with asyncio.timeout(step.plan.timeout_s + GRACE_S):
                    result = await executor.run(step.plan)
            except TransientError as exc:
                result = StepResult(False, error=str(exc), transient=True)
            except TimeoutError:
                result = StepResult(False, error=f"timed out after {step.plan.timeout_s:.0f}s")
            except BotError as exc:
                result = StepResult(False, error=str(exc))
            except Exception as exc:  # an executor's bug is this step's failure, not the run's
                log.exception(
                    "run %s: step %s: executor %s failed", row.id, step.name, executor.name
                )
                result = StepResult(False, error=f"{type(exc).__name__}: {exc}")
            if result.ok or not result.transient or attempt == tries:
                break
            await asyncio.sleep(stored.retry_delay_s * 2 ** (attempt - 1))
        return result, max(attempt, 1), (time.perf_counter() - started) * 1000

    async def _end(
        self,
        row: Any,
        stored: StoredStep,
        result: StepResult,
        attempts: int,
        ms: float,
        index: int,
        total: int,
    ) -> Any:
        deps, step = self.deps, stored.step
        output = deps.redactor.redact(result.output)
        error = deps.redactor.redact(result.error)
        status = "succeeded" if result.ok else "failed"

        def end() -> None:
            with deps.engine.begin() as conn:
                runs.finish_step(
                    conn,
                    row.id,
                    step.phase,
                    step.index,
                    status,
                    attempts,
                    output,
                    error,
                    ms,
                    deps.clock.now(),
                )

        await asyncio.to_thread(end)
        label = "rollback step" if step.phase == "rollback" else "step"
        said = f"{label} {index + 1} of {total} ({step.name}) {status}"
        if attempts > 1:
            said += f" after {attempts} attempts"
        if error:
            said += f": {error}"
        data = {
            "phase": step.phase,
            "step": step.index,
            "name": step.name,
            "ok": result.ok,
            "attempts": attempts,
            "duration_ms": round(ms, 1),
            "output": output[:AUDIT_OUTPUT],
            "error": error[:AUDIT_OUTPUT],
        }
        outcome = "applied" if result.ok else "failed"
        moved = await move(
            deps, row, None, "playbook_step_finished", said, data=data, result=outcome
        )
        if moved is None:  # cancelled while the step ran: its end is on the record all the same
            fresh = await asyncio.to_thread(self._row, row.id)
            await move(deps, fresh, None, "playbook_step_finished", said, data=data, result=outcome)
        return moved

    # failure and verification ----------------------------------------------------------------

    async def fail(self, row: Any, plan: StoredPlan, completed: list[int], why: str) -> None:
        """Roll back what the completed steps did (if anything undoes them), page, tell."""
        undo = plan.rollback_for(completed)
        final, detail = RunStatus.FAILED, f"{why}; nothing to roll back"
        if undo:
            row = await move(
                self.deps,
                row,
                RunStatus.ROLLING_BACK,
                "playbook_rolling_back",
                f"{why}; rolling back",
            )
            if row is None:
                return
            failed = []
            for index, stored in enumerate(undo):
                row = await self._begin(row, stored, index, len(undo)) or row
                result, attempts, ms = await self._attempts(row, stored)
                row = await self._end(row, stored, result, attempts, ms, index, len(undo)) or row
                if not result.ok:
                    failed.append(stored.step.name)
            final = RunStatus.ROLLED_BACK
            detail = f"{why}; rolled back"
            if failed:
                detail += f" except {', '.join(failed)}: look at {row.target} by hand"
        ended = await move(
            self.deps,
            row,
            final,
            "playbook_failed" if final is RunStatus.FAILED else "playbook_rolled_back",
            detail,
            result="failed",
            tell=outcome_text(row, plan, final, detail),
        )
        if ended is None:
            return
        await page(self.deps, ended, f"auto-resolve {describe(ended)} did not fix it: {detail}")
        await feed_breaker(self.deps, ended)

    async def verify(self, row: Any) -> None:
        """Verify a run in ``verifying`` this process has claimed."""
        deps = self.deps
        plan = StoredPlan.parse(row.plan_json)
        subject = await asyncio.to_thread(self._subject, row.incident_id)
        rule = deps.rules.get(subject.incident.rule_id)
        completed = list(range(len(plan.steps)))
        if rule is None:
            await self.fail(
                row,
                plan,
                completed,
                f"rule {subject.incident.rule_id} is not loaded: cannot verify",
            )
            return
        now = deps.clock.now()
        window = _seconds(plan.verify_window_s) if plan.verify_window_s else None
        try:
            seen: Verification = await verify_cleared(
                rule,
                deps.backend,
                subject.incident.group_key,
                row.started_at or row.created_at,
                now,
                deps.redactor.redact,
                window,
            )
        except (BotError, OSError, TimeoutError) as exc:
            due = row.verify_due_at or now
            if now < due + _seconds(plan.verify_timeout_s):
                log.warning("run %s: verification search failed, trying again: %s", row.id, exc)
                return
            await self.fail(row, plan, completed, f"could not verify: {exc}")
            return
        if not seen.cleared:
            await self.fail(row, plan, completed, f"not verified: {seen.detail}")
            return
        note = f"auto-resolved by {row.playbook_id}, verified at {now:%H:%M}"
        command = Command(
            CommandKind.AUTO_RESOLVE,
            actor=f"playbook:{row.playbook_id}",
            surface=notify.SURFACE,
            note=note,
            idempotency_key=f"run:{row.id}:resolve",
        )
        try:
            await deps.interactions.execute(row.incident_id, command)
        except Conflict as exc:  # resolved by someone meanwhile: the run still worked
            log.info("run %s: %s", row.id, exc)
        await move(
            deps,
            row,
            RunStatus.SUCCEEDED,
            "playbook_verified",
            f"{note}: {seen.detail}",
            data={"hits": seen.hits, "from": seen.window.start, "to": seen.window.end},
            tell=outcome_text(row, plan, RunStatus.SUCCEEDED, note),
        )

    def _subject(self, incident_id: int) -> Any:
        with self.deps.engine.connect() as conn:
            return load_subject(conn, incident_id)


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
