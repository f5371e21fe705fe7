"""Schedules: detector runs, suppression expiry, retention; under the scheduler lease.

APScheduler 3's ``AsyncIOScheduler`` with in-memory jobs: what must survive a restart (each
rule's last window end, run counts, errors) lives in the ``rule_state`` table, so the job store
holds nothing worth keeping. Job functions are module-level functions of this module. What one
run does is :class:`bot.runner.RuleRunner`'s.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    JobExecutionEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.runner import DEFAULT_MAX_INDEX_LAG, IndexLag, RuleRunner, RunSummary
from bot.store.rule_state import RULE_MEMORY, read_memory, save_memory
from detectors.planning import plan_windows

log = logging.getLogger(__name__)
#: fed rules run this long after each tick of their interval (whole seconds of index time)
FEED_TICK_OFFSET_S = 0.3


# jobs: module-level functions, referenced by APScheduler -------------------------------------


async def run_rule_job(runner: RuleRunner, rule_id: str) -> None:
    await runner.run(rule_id)


async def run_maintenance_job(task: Callable[[], Any]) -> None:
    try:
        result = task()
        if asyncio.iscoroutine(result):
            await result
    except Exception:  # one failing chore must not stop the scheduler
        log.exception("maintenance job failed")


class Scheduler:
    """Owns the APScheduler instance: one job per enabled rule plus maintenance chores."""

    def __init__(
        self,
        runner: RuleRunner,
        jitter: timedelta,
        chores: Sequence[tuple[str, timedelta, Callable[[], Any]]] = (),
        rng: random.Random | None = None,
    ) -> None:
        self._runner = runner
        self._jitter = jitter.total_seconds()
        self._chores = chores
        self._rng = rng or random.Random()
        self._aps = AsyncIOScheduler(timezone=UTC)
        self._aps.add_listener(self._on_max_instances, EVENT_JOB_MAX_INSTANCES)
        self._aps.add_listener(self._on_done, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        self.running = False

    def start(self) -> None:
        now = datetime.now(UTC)
        feeds = self._runner.feeds
        for rule in self._runner.rules.values():
            if not rule.enabled:
                continue
            trigger: Any
            first: dict[str, Any] = {}  # no next_run_time: the trigger's first time
            if rule.schedule:
                trigger = CronTrigger.from_crontab(rule.schedule, timezone=UTC)
            elif feeds is not None and feeds.fed(rule.id):
                # the rules of one feed run right after the same ticks, so one fetch serves
                # them all; a first run now fetches the feed's windows once
                assert rule.interval is not None
                period = rule.interval.total_seconds()
                base = math.floor(now.timestamp() / period) * period + FEED_TICK_OFFSET_S
                trigger = IntervalTrigger(
                    seconds=period, start_date=datetime.fromtimestamp(base, UTC)
                )
                self._aps.add_job(
                    run_rule_job,
                    DateTrigger(now + timedelta(seconds=self._rng.uniform(0.2, 1.0))),
                    args=[self._runner, rule.id],
                    id=f"first:{rule.id}",
                    name=rule.id,
                    misfire_grace_time=None,
                )
            else:
                assert rule.interval is not None
                trigger = IntervalTrigger(
                    seconds=rule.interval.total_seconds(), jitter=self._jitter or None
                )
                first["next_run_time"] = now + timedelta(
                    seconds=self._rng.uniform(0.2, 1.0 + self._jitter)
                )
            self._aps.add_job(
                run_rule_job,
                trigger,
                args=[self._runner, rule.id],
                id=f"rule:{rule.id}",
                name=rule.id,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                **first,
            )
        for name, every, task in self._chores:
            self._aps.add_job(
                run_maintenance_job,
                IntervalTrigger(seconds=every.total_seconds()),
                args=[task],
                id=f"chore:{name}",
                max_instances=1,
                coalesce=True,
                next_run_time=now + timedelta(seconds=1),
            )
        self._aps.start()
        self.running = True

    def pause(self) -> None:
        if self.running:
            self._aps.pause()

    def resume(self) -> None:
        if self.running:
            self._aps.resume()

    def shutdown(self) -> None:
        if self.running:
            self._aps.shutdown(wait=False)
            self.running = False

    def next_runs(self) -> dict[str, datetime | None]:
        return {
            job.name: job.next_run_time
            for job in self._aps.get_jobs()
            if job.id.startswith("rule:")
        }

    def _on_done(self, event: JobExecutionEvent) -> None:
        """Record the rule's next run as soon as its run ends (the rules page shows it)."""
        if not event.job_id.startswith("rule:"):
            return
        job = self._aps.get_job(event.job_id)
        if job is not None:
            rule_id = event.job_id.removeprefix("rule:")
            asyncio.get_running_loop().run_in_executor(
                None, self._runner.record_next_runs, {rule_id: job.next_run_time}
            )

    def _on_max_instances(self, event: JobExecutionEvent) -> None:
        if event.job_id.startswith("rule:"):
            rule_id = event.job_id.removeprefix("rule:")
            log.warning("rule %s: previous run still going; this run is skipped", rule_id)
            asyncio.get_running_loop().run_in_executor(None, self._runner.record_skip, rule_id)


__all__ = [
    "DEFAULT_MAX_INDEX_LAG",
    "RULE_MEMORY",
    "IndexLag",
    "RuleRunner",
    "RunSummary",
    "Scheduler",
    "plan_windows",
    "read_memory",
    "save_memory",
]
