"""Scheduler: many rules on one interval, start drift and CPU.

The real ``Scheduler`` (APScheduler jobs, ``max_instances=1``, coalescing) drives the real
``RuleRunner`` on a SQLite file; the search backend answers at once with no hits, so what is
measured is the scheduling and the per-run bookkeeping (rule state read, run transaction, success
record). The ``rule-next-runs`` chore the bot runs every 30 s is scheduled too.

Start drift of a run = when its search started - the time APScheduler planned for it (the
``scheduled_run_times`` of the job's submission event). The trigger's jitter is already part of
the planned time, so with the default jitter (``BOT_SCHEDULE_JITTER``, 2 s) this is pure lateness.
CPU = process CPU time (all threads) / wall time. The first interval is warm-up (every rule's
first run, with its full look-back window); the next ``--minutes`` are measured, and each measured
interval is reported on its own (median, min, max over intervals).

    python bench/scheduler.py [--rules 1000] [--interval 60] [--minutes 3] [--jitter 2]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from _common import emit, median, percentile, run_child, spread, sqlite_url
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
)
from sqlalchemy import func, select

from bot.domain.hits import Hit, SearchQuery
from bot.metrics import Metrics
from bot.pipeline.ingest import IngestPolicy
from bot.pipeline.notify import Router, Target
from bot.ports import Health, HealthStatus, SystemClock
from bot.redaction import Redactor
from bot.scheduler import RuleRunner, Scheduler
from bot.settings import Settings
from bot.store.db import make_engine, migrate
from bot.store.repo import RULE_STATE
from detectors.model import Rule
from detectors.types.threshold import ThresholdRule

TARGET_DRIFT_P99_S = 1.0
TARGET_CPU = 0.10
DEFAULT_JITTER = Settings.model_fields["schedule_jitter"].default.total_seconds()


class Recorder:
    """Pairs each rule job's planned time with the moment its search started."""

    def __init__(self) -> None:
        self.planned: dict[str, collections.deque[datetime]] = collections.defaultdict(
            collections.deque
        )
        self.starts: list[tuple[datetime, float]] = []  # (planned, drift seconds)
        self.executed: list[datetime] = []
        self.skipped: list[datetime] = []
        self.missed = 0
        self.errors = 0

    def on_event(self, event: JobEvent) -> None:
        if not event.job_id.startswith("rule:"):
            return
        rule_id = event.job_id.removeprefix("rule:")
        if event.code == EVENT_JOB_SUBMITTED:
            self.planned[rule_id].append(event.scheduled_run_times[-1])  # type: ignore[attr-defined]
        elif event.code == EVENT_JOB_EXECUTED:
            self.executed.append(event.scheduled_run_time)  # type: ignore[attr-defined]
        elif event.code == EVENT_JOB_ERROR:
            self.errors += 1
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            self.skipped.append(event.scheduled_run_times[-1])  # type: ignore[attr-defined]
        elif event.code == EVENT_JOB_MISSED:
            self.missed += 1

    def search_started(self, rule_id: str) -> None:
        now = datetime.now(UTC)
        queue = self.planned.get(rule_id)
        if queue:
            planned = queue.popleft()
            self.starts.append((planned, (now - planned).total_seconds()))


class InstantBackend:
    """Answers every search at once with no hits, noting when each rule's search started."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    async def search(self, query: SearchQuery) -> list[Hit]:
        self._recorder.search_started(query.text.rsplit("=", 1)[-1])
        return []

    async def check(self) -> Health:
        return Health(HealthStatus.OK)


def make_rules(count: int, interval: float) -> list[Rule]:
    return [
        ThresholdRule.model_validate(
            {
                "id": f"rule-{i:05d}",
                "title": "Errors on {service}",
                "query": f"index=app level=error rule=rule-{i:05d}",
                "severity": "medium",
                "category": "application",
                "group_by": ("service",),
                "threshold": {"op": ">=", "value": 5},
                "interval": f"{interval:g}s",
            }
        )
        for i in range(count)
    ]


async def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    engine = make_engine(url)
    await asyncio.to_thread(migrate, engine)
    recorder = Recorder()
    router = Router(rules=(), defaults=(Target("console", "console"),))

    def policy_for(rule: Rule) -> IngestPolicy:
        return IngestPolicy(
            router, timedelta(minutes=30), timedelta(seconds=60), realert=rule.realert
        )

    runner = RuleRunner(
        engine,
        InstantBackend(recorder),
        make_rules(args.rules, args.interval),
        SystemClock(),
        Redactor("balanced").redact,
        policy_for,
        Metrics(),
    )
    scheduler: Scheduler

    async def record_next_runs() -> None:
        await asyncio.to_thread(runner.record_next_runs, scheduler.next_runs())

    scheduler = Scheduler(
        runner,
        timedelta(seconds=args.jitter),
        chores=[("rule-next-runs", timedelta(seconds=30), record_next_runs)],
    )
    scheduler._aps.add_listener(
        recorder.on_event,
        EVENT_JOB_SUBMITTED
        | EVENT_JOB_EXECUTED
        | EVENT_JOB_ERROR
        | EVENT_JOB_MAX_INSTANCES
        | EVENT_JOB_MISSED,
    )
    started = datetime.now(UTC)
    scheduler.start()
    await asyncio.sleep(args.interval)  # warm-up: every rule's first run
    marks = [(datetime.now(UTC), time.perf_counter(), time.process_time())]
    intervals = max(1, round(args.minutes * 60 / args.interval))
    for _ in range(intervals):
        await asyncio.sleep(args.interval)
        marks.append((datetime.now(UTC), time.perf_counter(), time.process_time()))
    scheduler.shutdown()
    await asyncio.sleep(0.5)  # let runs already started finish
    with engine.connect() as conn:
        runs, errors, skipped = conn.execute(
            select(
                func.sum(RULE_STATE.c.runs),
                func.sum(RULE_STATE.c.errors),
                func.sum(RULE_STATE.c.skipped),
            )
        ).one()
    engine.dispose()

    per_interval = []
    for (t0, w0, c0), (t1, w1, c1) in itertools.pairwise(marks):
        drifts = [d for planned, d in recorder.starts if t0 <= planned < t1]
        per_interval.append(
            {
                "runs": len(drifts),
                "executed": sum(1 for p in recorder.executed if t0 <= p < t1),
                "skipped": sum(1 for p in recorder.skipped if t0 <= p < t1),
                "drift_p50_s": percentile(drifts, 50) if drifts else 0.0,
                "drift_p99_s": percentile(drifts, 99) if drifts else 0.0,
                "drift_max_s": max(drifts) if drifts else 0.0,
                "cpu_fraction": (c1 - c0) / (w1 - w0),
            }
        )
    first, last = marks[0][0], marks[-1][0]
    measured = [d for planned, d in recorder.starts if first <= planned < last]
    warmup = [d for planned, d in recorder.starts if planned < first]
    return {
        "intervals": per_interval,
        "drift_p50_s": percentile(measured, 50),
        "drift_p99_s": percentile(measured, 99),
        "drift_max_s": max(measured),
        "cpu_fraction": (marks[-1][2] - marks[0][2]) / (marks[-1][1] - marks[0][1]),
        "runs_measured": len(measured),
        "skipped_measured": sum(1 for p in recorder.skipped if first <= p < last),
        "warmup_runs": len(warmup),
        "warmup_drift_p99_s": percentile(warmup, 99) if warmup else 0.0,
        "warmup_drift_max_s": max(warmup) if warmup else 0.0,
        "runs_total": int(runs or 0),
        "errors_total": int(errors or 0) + recorder.errors,
        "skipped_total": int(skipped or 0),
        "missed": recorder.missed,
        "seconds": (datetime.now(UTC) - started).total_seconds(),
    }


def child(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-scheduler-") as folder:
        return asyncio.run(measure(sqlite_url(folder), args))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1_000)
    parser.add_argument("--interval", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument(
        "--minutes", type=float, default=3.0, help="measured time, after one warm-up interval"
    )
    parser.add_argument(
        "--jitter",
        type=float,
        default=DEFAULT_JITTER,
        help=f"schedule jitter in seconds (default: the bot's default, {DEFAULT_JITTER:g})",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="fresh processes and databases (default 1: each measured interval is a repetition)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rules < 1 or args.interval <= 0 or args.minutes <= 0:
        parser.error("--rules, --interval and --minutes must be positive")
    if args.child:
        emit(child(args))
        return 0

    total_s = args.interval + args.minutes * 60
    print(
        f"scheduler: {args.rules} rules every {args.interval:g} s, jitter {args.jitter:g} s, "
        f"{args.runs} run(s) of {total_s / 60:.1f} min (first interval is warm-up)"
    )
    child_args = [
        f"--rules={args.rules}",
        f"--interval={args.interval}",
        f"--minutes={args.minutes}",
        f"--jitter={args.jitter}",
    ]
    runs = [run_child(__file__, child_args, timeout=total_s + 300) for _ in range(args.runs)]
    intervals = [i for r in runs for i in r["intervals"]]
    for n, run in enumerate(runs, 1):
        print(
            f"  run {n}: warm-up: {run['warmup_runs']} runs, drift p99 "
            f"{run['warmup_drift_p99_s']:.3f} s, max {run['warmup_drift_max_s']:.3f} s"
        )
        for k, i in enumerate(run["intervals"], 1):
            print(
                f"    interval {k}: {i['runs']} runs, {i['skipped']} skipped, drift p50 "
                f"{i['drift_p50_s']:.3f} s, p99 {i['drift_p99_s']:.3f} s, max "
                f"{i['drift_max_s']:.3f} s, CPU {i['cpu_fraction']:.1%}"
            )
    print("over the measured intervals:")
    for key, label in (
        ("drift_p50_s", "drift p50"),
        ("drift_p99_s", "drift p99"),
        ("drift_max_s", "drift max"),
    ):
        print(f"  {label}: {spread([i[key] for i in intervals], ' s')}")
    print(f"  CPU (fraction of one core): {spread([i['cpu_fraction'] for i in intervals])}")
    print(f"  runs per interval: {spread([i['runs'] for i in intervals], '', 0)}")
    measured = sum(r["runs_measured"] for r in runs)
    skipped = sum(r["skipped_measured"] for r in runs)
    print(
        f"runs completed (measured): {measured}; skipped (previous run still going): {skipped}; "
        f"over the whole run: {sum(r['runs_total'] for r in runs)} runs, "
        f"{sum(r['skipped_total'] for r in runs)} skipped, "
        f"{sum(r['errors_total'] for r in runs)} errors, {sum(r['missed'] for r in runs)} missed"
    )
    drift_p99 = median([r["drift_p99_s"] for r in runs])
    cpu = median([r["cpu_fraction"] for r in runs])
    print(
        f"whole measured period: drift p99 {drift_p99:.3f} s, CPU {cpu:.1%}; targets: "
        f"drift p99 <= {TARGET_DRIFT_P99_S:g} s "
        f"({'met' if drift_p99 <= TARGET_DRIFT_P99_S else 'MISSED'}), "
        f"CPU <= {TARGET_CPU:.0%} ({'met' if cpu <= TARGET_CPU else 'MISSED'})"
    )
    emit(
        {
            "bench": "scheduler",
            "rules": args.rules,
            "drift_p99_s": round(drift_p99, 4),
            "cpu_fraction": round(cpu, 4),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
