"""Latency: one new hit -> its card handed to the chat surface, with durable commits.

The real ``RuleRunner`` and ``OutboxWorker`` run in one event loop on a SQLite file (WAL,
``synchronous=FULL``, as ``make_engine`` configures it), wired as the bot wires them: a run that
queued messages wakes the outbox. The search backend returns one hit of a new group on every
search, so every run opens an incident and queues its card; a recording surface notes the moment
``post`` is called. Each sample: note t0, run the rule (the clock moves one interval first, so
each run has a fresh window), wait for the post; latency = post time - t0. The root-cause
enricher is not running. Each run is a fresh interpreter on a fresh database.

    python bench/latency.py [--samples 300] [--runs 5] [--gap-ms 30]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import timedelta
from typing import Any

from _common import (
    CONSOLE_URL,
    StepClock,
    emit,
    median,
    percentile,
    run_child,
    spread,
    sqlite_url,
)

from bot.domain.hits import Hit, SearchQuery
from bot.metrics import Metrics
from bot.outbox import OutboxWorker
from bot.pipeline.ingest import IngestPolicy, IngestResult
from bot.pipeline.notify import Router, Target
from bot.ports import Health, HealthStatus, MessageRef
from bot.redaction import Redactor
from bot.scheduler import RuleRunner
from bot.store.db import make_engine, migrate
from detectors.model import Rule
from detectors.types.threshold import ThresholdRule

INTERVAL = 60.0
TARGET_P50_MS = 5.0
TARGET_P99_MS = 20.0


class NewGroupBackend:
    """Every search finds one error event of a service not seen before."""

    def __init__(self) -> None:
        self.searches = 0
        self.searched_at = 0.0

    async def search(self, query: SearchQuery) -> list[Hit]:
        self.searched_at = time.perf_counter()
        self.searches += 1
        service = f"svc-{self.searches:06d}"
        at = query.latest - timedelta(seconds=1)
        return [
            Hit(
                time=at,
                fields={"service": service, "host": "node-001"},
                raw=f"{at:%Y-%m-%dT%H:%M:%S}Z node-001 {service}: ERROR disk full on /var",
            )
        ]

    async def check(self) -> Health:
        return Health(HealthStatus.OK)


class RecordingSurface:
    """A chat surface that notes when each card arrives."""

    name = "console"

    def __init__(self) -> None:
        self.posted = asyncio.Event()
        self.posted_at = 0.0
        self.posts = 0

    async def post(self, card: object, channel: str) -> MessageRef:
        self.posted_at = time.perf_counter()
        self.posts += 1
        self.posted.set()
        return MessageRef(self.name, channel, f"msg-{self.posts}")

    async def update(self, ref: MessageRef, card: object) -> None:
        return None

    async def reply(self, ref: MessageRef, text: str) -> None:
        return None

    async def check(self) -> Health:
        return Health(HealthStatus.OK)


RULE = ThresholdRule.model_validate(
    {
        "id": "disk-full",
        "title": "Disk full on {service}",
        "query": "index=app disk full",
        "severity": "critical",
        "category": "infrastructure",
        "group_by": ("service",),
        "threshold": {"op": ">=", "value": 1},
        "interval": "60s",
    }
)


async def measure(url: str, samples: int, warmup: int, gap: float) -> dict[str, list[float]]:
    engine = make_engine(url)
    await asyncio.to_thread(migrate, engine)
    clock = StepClock()
    surface = RecordingSurface()
    outbox = OutboxWorker(engine, {surface.name: surface}, clock, CONSOLE_URL)
    router = Router(rules=(), defaults=(Target("console", "console"),))
    ingested_at = 0.0

    def policy_for(rule: Rule) -> IngestPolicy:
        return IngestPolicy(
            router, timedelta(minutes=30), timedelta(seconds=60), realert=rule.realert
        )

    def on_ingested(result: IngestResult) -> None:
        nonlocal ingested_at
        ingested_at = time.perf_counter()
        if result.messages:
            outbox.wake()

    backend = NewGroupBackend()
    runner = RuleRunner(
        engine,
        backend,
        [RULE],
        clock,
        Redactor("balanced").redact,
        policy_for,
        Metrics(),
        on_ingested=on_ingested,
    )
    stop = asyncio.Event()
    worker = asyncio.create_task(outbox.run(stop))
    await asyncio.sleep(0.05)  # the worker's first (empty) round
    out: dict[str, list[float]] = {"total": [], "search": [], "commit": [], "deliver": []}
    try:
        for i in range(warmup + samples):
            clock.advance(INTERVAL)
            surface.posted.clear()
            started = time.perf_counter()
            run = asyncio.create_task(runner.run(RULE.id))
            async with asyncio.timeout(10):
                await surface.posted.wait()
            summary = await run
            if summary.error or len(summary.result.created) != 1:
                raise SystemExit(f"latency: run {i} did not open one incident: {summary}")
            if i >= warmup:
                out["total"].append(surface.posted_at - started)
                out["search"].append(backend.searched_at - started)
                out["commit"].append(ingested_at - backend.searched_at)
                out["deliver"].append(surface.posted_at - ingested_at)
            await asyncio.sleep(gap)
    finally:
        stop.set()
        await worker
        engine.dispose()
    return out


def child(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as folder:
        parts = asyncio.run(
            measure(sqlite_url(folder), args.samples, args.warmup, args.gap_ms / 1000)
        )
    total = [s * 1000 for s in parts["total"]]
    result: dict[str, Any] = {
        "p50_ms": percentile(total, 50),
        "p90_ms": percentile(total, 90),
        "p99_ms": percentile(total, 99),
        "max_ms": max(total),
    }
    for name in ("search", "commit", "deliver"):
        result[f"{name}_p50_ms"] = percentile([s * 1000 for s in parts[name]], 50)
        result[f"{name}_p99_ms"] = percentile([s * 1000 for s in parts[name]], 99)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--warmup", type=int, default=10, help="samples run first and not counted (default 10)"
    )
    parser.add_argument(
        "--gap-ms", type=float, default=30.0, help="pause between samples (default 30 ms)"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error("--samples must be at least 1")
    if args.child:
        emit(child(args))
        return 0

    print(
        f"latency: new hit -> card posted, {args.samples} samples x {args.runs} runs "
        f"(SQLite, WAL, synchronous=FULL)"
    )
    runs = []
    for i in range(args.runs):
        run = run_child(
            __file__,
            [f"--samples={args.samples}", f"--warmup={args.warmup}", f"--gap-ms={args.gap_ms}"],
        )
        runs.append(run)
        print(
            f"  run {i + 1}: p50 {run['p50_ms']:.2f} ms, p90 {run['p90_ms']:.2f} ms, "
            f"p99 {run['p99_ms']:.2f} ms, max {run['max_ms']:.2f} ms"
        )
    for key in ("p50", "p90", "p99", "max"):
        print(f"{key}: {spread([r[f'{key}_ms'] for r in runs], ' ms', 2)}")
    print("where it goes (p50 / p99 of each step, medians over runs):")
    steps = {
        "search": "run start -> search (read the rule's state)",
        "commit": "search -> committed (evaluate, ingest, durable commit)",
        "deliver": "committed -> post (wake, read due rows, render card)",
    }
    for name, label in steps.items():
        p50 = median([r[f"{name}_p50_ms"] for r in runs])
        p99 = median([r[f"{name}_p99_ms"] for r in runs])
        print(f"  {label}: {p50:.2f} ms / {p99:.2f} ms")
    p50 = median([r["p50_ms"] for r in runs])
    p99 = median([r["p99_ms"] for r in runs])
    print(
        f"targets: p50 <= {TARGET_P50_MS:.0f} ms ({'met' if p50 <= TARGET_P50_MS else 'MISSED'}), "
        f"p99 <= {TARGET_P99_MS:.0f} ms ({'met' if p99 <= TARGET_P99_MS else 'MISSED'})"
    )
    emit({"bench": "latency", "p50_ms": round(p50, 3), "p99_ms": round(p99, 3)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
