"""Alert storm: N hits over G groups through detector -> alerts -> incidents -> outbox.

One run is exactly what one scheduler run of one rule does with a storm in its window: the real
threshold evaluator (``run_rule``) over hits a stub backend returns, then one ``ingest``
transaction (``engine.begin()``) that opens one incident per group and queues its card for the
console. The hits are built before the clock starts. Each run is a fresh interpreter on a fresh
database (a SQLite file in a temporary folder, or a fresh PostgreSQL schema), so peak memory is
that run's alone. Afterwards the database is checked: one incident per group, one pending card
message per incident, no duplicates.

    python bench/storm.py [--hits 100000] [--groups 1000] [--runs 5]
                          [--database-url postgresql+psycopg://user@127.0.0.1:5432/db]
    python bench/storm.py --profile      # one profiled run: where the time goes
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import pstats
import sys
import tempfile
import time
from datetime import timedelta
from typing import Any

from _common import (
    START,
    emit,
    median,
    peak_rss_mib,
    postgres_schema,
    run_child,
    spread,
    sqlite_url,
)
from sqlalchemy import Engine, func, select

from bot.domain.hits import Hit, SearchQuery
from bot.pipeline.ingest import IngestPolicy, IngestResult, ingest
from bot.pipeline.notify import Router, Target
from bot.ports import Health, HealthStatus
from bot.redaction import Redactor
from bot.store.db import make_engine, migrate
from bot.store.repo import INCIDENTS, OUTBOX
from detectors.runner import run_rule
from detectors.types.threshold import ThresholdRule
from detectors.window import Window

WINDOW = timedelta(minutes=5)
END = START + WINDOW
TARGETS = {1_000: (0.5, 200.0), 10_000: (2.0, 300.0)}  # groups: (seconds, MiB)


class PreparedBackend:
    """A search backend that answers one query with prepared hits and then forgets them, as a
    real backend does: the caller owns the result, and it is freed once the run is done with it."""

    def __init__(self, hits: list[Hit]) -> None:
        self._hits = hits

    async def search(self, query: SearchQuery) -> list[Hit]:
        hits, self._hits = self._hits, []
        return hits

    async def check(self) -> Health:
        return Health(HealthStatus.OK)


def build_hits(count: int, groups: int, rule_tag: str = "") -> list[Hit]:
    """``count`` error events spread evenly over the window, round-robin over ``groups``."""
    start = END - WINDOW
    step = WINDOW / max(count, 1)
    hits = []
    for i in range(count):
        g = i % groups
        at = start + step * i
        service = f"svc-{rule_tag}{g:05d}"
        host = f"node-{g % 250:03d}"
        hits.append(
            Hit(
                time=at,
                fields={"service": service, "host": host},
                raw=(
                    f"{at:%Y-%m-%dT%H:%M:%S.%fZ} {host} {service}[{1000 + g % 9000}]: ERROR "
                    f"upstream request failed status=503 path=/api/v1/orders/{i} "
                    f"latency_ms={100 + i % 900} attempt={1 + i % 3}"
                ),
            )
        )
    return hits


def storm_rule(rule_id: str, hits: int) -> ThresholdRule:
    return ThresholdRule.model_validate(
        {
            "id": rule_id,
            "title": "Errors on {service}",
            "query": "index=app level=error | fields _time service host",
            "severity": "high",
            "category": "application",
            "group_by": ("service",),
            "threshold": {"op": ">=", "value": 1},
            "window": "5m",
            "max_results": min(max(hits, 1), 1_000_000),
        }
    )


def policy() -> IngestPolicy:
    router = Router(rules=(), defaults=(Target("console", "console"),))
    return IngestPolicy(
        router, flap_window=timedelta(minutes=30), card_refresh=timedelta(seconds=60)
    )


class GcPauses:
    """Total time spent in cyclic garbage collection while installed."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.full = 0
        self._started = 0.0

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.seconds += time.perf_counter() - self._started
        self.full += info["generation"] == 2


def one_run(
    engine: Engine, rule: ThresholdRule, backend: PreparedBackend, loop: asyncio.AbstractEventLoop
) -> tuple[IngestResult, float, float]:
    """Evaluate and ingest; return the result, evaluation seconds and total seconds."""
    window = Window(start=END - WINDOW, end=END, new_since=END - WINDOW)
    redact = Redactor("balanced").redact
    started = time.perf_counter()
    outcome = loop.run_until_complete(run_rule(rule, backend, window, redact))
    evaluated = time.perf_counter()
    with engine.begin() as conn:
        result = ingest(conn, outcome.alerts, END, policy())
    done = time.perf_counter()
    return result, evaluated - started, done - started


def verify(engine: Engine, rule_id: str, groups: int, result: IngestResult) -> dict[str, int]:
    """What the database holds for ``rule_id``; exits when it is not one card per group."""
    with engine.connect() as conn:
        incidents = conn.execute(
            select(func.count()).where(INCIDENTS.c.rule_id == rule_id)
        ).scalar_one()
        ids = select(INCIDENTS.c.id).where(INCIDENTS.c.rule_id == rule_id)
        rows, keys, cards, pending = conn.execute(
            select(
                func.count(),
                func.count(OUTBOX.c.idempotency_key.distinct()),
                func.count(OUTBOX.c.incident_id.distinct()),
                func.count().filter(OUTBOX.c.status == "pending"),
            ).where(OUTBOX.c.incident_id.in_(ids))
        ).one()
    found = {
        "incidents": int(incidents),
        "outbox": int(rows),
        "distinct_keys": int(keys),
        "cards": int(cards),
        "pending": int(pending),
    }
    wrong = [name for name, value in found.items() if value != groups]
    if len(result.created) != groups:
        wrong.append("created")
    if wrong:
        raise SystemExit(f"storm: expected {groups} of each, got {found} (wrong: {wrong})")
    return found


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One isolated run in this interpreter."""
    backend = PreparedBackend(build_hits(args.hits, args.groups))
    loop = asyncio.new_event_loop()
    with tempfile.TemporaryDirectory(prefix="bench-storm-") as folder:
        engine = make_engine(args.url or sqlite_url(folder))
        migrate(engine)
        if args.warmup:  # compile the statements once, as a running bot has
            small = storm_rule("storm-warmup", 100)
            one_run(engine, small, PreparedBackend(build_hits(100, 20, "w")), loop)
        rss_ready = peak_rss_mib()
        rule = storm_rule("storm", args.hits)
        profiler = cProfile.Profile() if args.profile else None
        if profiler is not None:
            profiler.enable()
        with GcPauses() as pauses:
            result, evaluate_s, seconds = one_run(engine, rule, backend, loop)
        if profiler is not None:
            profiler.disable()
        rss = peak_rss_mib()
        found = verify(engine, rule.id, args.groups, result)
        engine.dispose()
    loop.close()
    if profiler is not None:
        show_profile(profiler)
    return {
        "seconds": seconds,
        "evaluate_s": evaluate_s,
        "ingest_s": seconds - evaluate_s,
        "gc_s": pauses.seconds,
        "gc_full": pauses.full,
        "rss_ready_mib": rss_ready,
        "peak_rss_mib": rss,
        **found,
    }


def show_profile(profiler: cProfile.Profile) -> None:
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats(order).print_stats(25)
        print(f"--- profile, by {order} ---")
        print(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hits", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL URL (each run gets a fresh schema); default: a SQLite file per run",
    )
    parser.add_argument(
        "--no-warmup",
        dest="warmup",
        action="store_false",
        help="do not run a small storm first (measures a cold process)",
    )
    parser.add_argument("--profile", action="store_true", help="one run in-process, profiled")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.groups < 1 or args.hits < args.groups:
        parser.error("need --hits >= --groups >= 1")

    if args.child or args.profile:
        if args.profile and args.database_url:
            with postgres_schema(args.database_url) as url:
                args.url = url
                result = child(args)
        else:
            result = child(args)
        if args.child:
            emit(result)
            return 0
        runs = [result]
    else:
        runs = []
        backend = "postgresql" if args.database_url else "sqlite"
        print(
            f"storm: {args.hits} hits over {args.groups} groups, {args.runs} runs on {backend}"
            f"{'' if args.warmup else ' (cold process)'}"
        )
        for i in range(args.runs):
            child_args = [f"--hits={args.hits}", f"--groups={args.groups}"]
            if not args.warmup:
                child_args.append("--no-warmup")
            if args.database_url:
                with postgres_schema(args.database_url) as url:
                    run = run_child(__file__, [*child_args, f"--url={url}"])
            else:
                run = run_child(__file__, child_args)
            runs.append(run)
            print(
                f"  run {i + 1}: {run['seconds']:.3f} s "
                f"(evaluate {run['evaluate_s']:.3f} s, ingest {run['ingest_s']:.3f} s), "
                f"{args.hits / run['seconds']:,.0f} hits/s, peak RSS {run['peak_rss_mib']:.0f} MiB"
            )

    seconds = [r["seconds"] for r in runs]
    rate = [args.hits / s for s in seconds]
    rss = [r["peak_rss_mib"] for r in runs]
    print(f"seconds until every incident is durable and its card queued: {spread(seconds, ' s')}")
    print(f"  of which evaluation: {spread([r['evaluate_s'] for r in runs], ' s')}")
    print(f"  of which ingest:     {spread([r['ingest_s'] for r in runs], ' s')}")
    print(
        f"  (both include cyclic GC pauses: {spread([r['gc_s'] for r in runs], ' s')}, "
        f"{median([r['gc_full'] for r in runs]):.0f} full collection(s))"
    )
    print(f"hits/s: {spread(rate, '', 0)}")
    print(f"incidents: {runs[0]['incidents']}, outbox messages: {runs[0]['outbox']} (all pending)")
    print(f"peak RSS: {spread(rss, ' MiB', 1)}")
    ready = [r["rss_ready_mib"] for r in runs]
    print(f"  RSS with the hits built, before the run: {spread(ready, ' MiB', 1)}")
    target = TARGETS.get(args.groups)
    if target is not None:
        verdict = [
            "met" if ok else "MISSED"
            for ok in (median(seconds) <= target[0], median(rss) <= target[1])
        ]
        print(
            f"targets for {args.groups} groups: <= {target[0]} s ({verdict[0]}),"
            f" <= {target[1]:.0f} MiB ({verdict[1]})"
        )
    emit(
        {
            "bench": "storm",
            "hits": args.hits,
            "groups": args.groups,
            "incidents": runs[0]["incidents"],
            "outbox": runs[0]["outbox"],
            "seconds_to_all_queued": round(median(seconds), 4),
            "hits_per_s": round(median(rate)),
            "peak_rss_mib": round(median(rss), 1),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
