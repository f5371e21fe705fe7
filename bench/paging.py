"""Paging: a storm of escalations through the real outbox to a rate-limited PagerDuty.

``--escalations`` critical incidents (500) are opened at once, half on each of two routing keys
(channels ``oncall-a`` and ``oncall-b``), each paged at once by the escalation policy. The real
``OutboxWorker`` delivers the triggers through the real ``PagerDutyPager`` (python-pagerduty over
HTTPS) to the loopback fake PagerDuty, which answers 429 past 120 events per minute per routing
key, as PagerDuty does. The outbox spends ``PAGERDUTY_EVENTS_PER_MINUTE`` (96) per channel as a
token bucket (burst 10): the budget that keeps a storm under PagerDuty's limit.

``--scale S`` runs S times faster: the fake's minute lasts 60/S seconds and every budget is S
times larger, so the shape of the run is the same and "per minute" means per scaled minute. With
the defaults (S = 2) a run takes a bit over a minute; ``--scale 1`` is real time.

Printed: events the fake received, accepted (202), refused with 429, lost (incidents whose
trigger was never accepted, and outbox rows given up), the most events accepted in any
(scaled) minute for one key, and incident -> accepted latency: the first page (the bot's own
overhead: outbox, pager, HTTPS), p50 and p99 (seconds of the scaled run; times S for real
time). In a storm p99 is the wait for budget: the last of 250 pages per key waits its turn.

    python bench/paging.py [--escalations 500] [--scale 2] [--events-per-minute 96] [--runs 1]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
import time
from collections import defaultdict, deque
from datetime import timedelta
from pathlib import Path
from typing import Any

from _common import CONSOLE_URL, emit, median, percentile, run_child, spread, sqlite_url
from sqlalchemy import func, select

from bot.domain.hits import Alert, Category, Severity
from bot.outbox import OutboxWorker
from bot.pipeline.escalate import EscalationPolicy, EscalationRule
from bot.pipeline.ingest import IngestPolicy, ingest
from bot.pipeline.notify import Router
from bot.ports import SystemClock
from bot.store.db import make_engine, migrate
from bot.store.repo import OUTBOX
from integrations.pagerduty import PagerDutyPager, PagerDutySettings
from integrations.pagerduty.settings import BURST
from tests.fakes.pagerduty import FakePagerDuty, make_tls

KEYS = {
    "oncall-a": "R0UT1NGKEYA00000000000000000000A",
    "oncall-b": "R0UT1NGKEYB00000000000000000000B",
}
PAGERDUTY_LIMIT = 120
INCIDENT = re.compile(r"incident-bot/INC-(\d+)/")


def alerts(count: int) -> list[Alert]:
    now = SystemClock().now()
    return [
        Alert(
            rule_id="bench-paging",
            group=(("service", f"svc-{'ab'[i % 2]}"), ("host", f"host-{i}")),
            title=f"host-{i} is down",
            severity=Severity.CRITICAL,
            category=Category.INFRASTRUCTURE,
            service=f"svc-{'ab'[i % 2]}",
            host=f"host-{i}",
            owner="oncall",
            first_seen=now - timedelta(minutes=1),
            last_seen=now,
            new_events=1,
            value=1.0,
            events=1,
        )
        for i in range(count)
    ]


def max_in_window(stamps: list[float], window: float) -> int:
    best, recent = 0, deque[float]()
    for at in sorted(stamps):
        recent.append(at)
        while recent[0] <= at - window:
            recent.popleft()
        best = max(best, len(recent))
    return best


async def measure(folder: str, count: int, scale: float, per_minute: int) -> dict[str, Any]:
    tls = make_tls(Path(folder))
    window = 60.0 / scale
    engine = make_engine(sqlite_url(folder))
    migrate(engine)
    with FakePagerDuty(tls, rate_limit=PAGERDUTY_LIMIT, window=window) as fake:
        settings = PagerDutySettings(
            routing_keys=KEYS,  # type: ignore[arg-type]
            events_url=fake.url,
            ca_file=tls.ca_file,
            events_per_minute=round(per_minute * scale),
        )
        pager = PagerDutyPager(settings)
        limit = settings.outbox_rate_limit()["pagerduty"]  # what the bot configures
        outbox = OutboxWorker(
            engine,
            {},
            SystemClock(),
            CONSOLE_URL,
            {"pagerduty": limit},
            pagers={"pagerduty": pager},
        )
        paging = EscalationPolicy(
            "pagerduty",
            tuple(
                EscalationRule(timedelta(0), channel, service=frozenset({f"svc-{channel[-1]}"}))
                for channel in KEYS
            ),
        )
        policy = IngestPolicy(
            Router((), ()), timedelta(minutes=30), timedelta(seconds=60), escalation=paging
        )
        stop = asyncio.Event()
        worker = asyncio.create_task(outbox.run(stop, poll=0.1))
        batch = alerts(count)

        def storm() -> list[int]:
            with engine.begin() as conn:
                return ingest(conn, batch, SystemClock().now(), policy).paged

        started = time.monotonic()
        paged = await asyncio.to_thread(storm)
        opened = time.monotonic()
        outbox.wake()
        expected = count / len(KEYS) / limit.rate
        deadline = opened + expected * 2 + 30
        while time.monotonic() < deadline:  # the fake is polled: it runs in another thread
            if len(fake.accepted("trigger")) >= len(paged):
                break
            await asyncio.sleep(0.1)
        drained = time.monotonic()
        stop.set()
        await worker
        pager.close()
    accepted = fake.accepted("trigger")
    reached = {int(m.group(1)) for e in accepted if (m := INCIDENT.match(e.dedup_key))}
    first_accept: dict[int, float] = {}
    for e in accepted:
        m = INCIDENT.match(e.dedup_key)
        if m:
            first_accept.setdefault(int(m.group(1)), e.at)
    latency = [first_accept[i] - opened for i in first_accept]
    by_key: dict[str, list[float]] = defaultdict(list)
    for e in accepted:
        by_key[e.routing_key].append(e.at)
    with engine.connect() as conn:
        dead = conn.execute(select(func.count()).where(OUTBOX.c.status == "dead")).scalar_one()
    engine.dispose()
    return {
        "escalations": count,
        "paged": len(paged),
        "events": len(fake.events),
        "accepted": len(accepted),
        "throttled": sum(1 for e in fake.events if e.status == 429),
        "lost": len(set(paged) - reached) + dead,
        "max_per_min_per_key": max(max_in_window(v, window) for v in by_key.values()),
        "first_ms": min(latency) * 1000,
        "enqueue_p50_ms": percentile(latency, 50) * 1000,
        "enqueue_p99_ms": percentile(latency, 99) * 1000,
        "open_s": opened - started,
        "drain_s": drained - opened,
    }


def child(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-paging-") as folder:
        return asyncio.run(measure(folder, args.escalations, args.scale, args.events_per_minute))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--escalations", type=int, default=500)
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="time runs S times faster (bursts do not scale: above 1, per-minute reads high)",
    )
    parser.add_argument("--events-per-minute", type=int, default=96, help="per routing key")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.escalations < 2 or args.scale <= 0 or args.events_per_minute < 1:
        parser.error("--escalations >= 2, --scale > 0 and --events-per-minute >= 1")
    if args.child:
        emit(child(args))
        return 0
    print(
        f"paging: {args.escalations} escalations over {len(KEYS)} routing keys, PagerDuty limit "
        f"{PAGERDUTY_LIMIT}/min per key, budget {args.events_per_minute}/min (burst {BURST}), "
        f"time x{args.scale:g}"
    )
    runs = []
    for i in range(args.runs):
        run = run_child(
            __file__,
            [
                f"--escalations={args.escalations}",
                f"--scale={args.scale}",
                f"--events-per-minute={args.events_per_minute}",
            ],
        )
        runs.append(run)
        print(
            f"  run {i + 1}: {run['accepted']}/{run['paged']} accepted, {run['throttled']} x 429, "
            f"{run['lost']} lost, max {run['max_per_min_per_key']}/min/key, "
            f"first page {run['first_ms']:.0f} ms, p50 {run['enqueue_p50_ms'] / 1000:.1f} s, "
            f"p99 {run['enqueue_p99_ms'] / 1000:.1f} s, "
            f"drained in {run['drain_s']:.1f} s"
        )
    print(
        f"incident -> accepted p99: {spread([r['enqueue_p99_ms'] / 1000 for r in runs], ' s', 1)}"
    )
    lost = max(r["lost"] for r in runs)
    peak = max(r["max_per_min_per_key"] for r in runs)
    print(
        f"targets: 0 lost ({'met' if lost == 0 else 'MISSED'}), "
        f"<= {PAGERDUTY_LIMIT}/min per key ({'met' if peak <= PAGERDUTY_LIMIT else 'MISSED'})"
    )
    emit(
        {
            "bench": "paging",
            "events": int(median([r["events"] for r in runs])),
            "accepted": int(median([r["accepted"] for r in runs])),
            "lost": lost,
            "max_per_min_per_key": peak,
            "enqueue_p99_ms": round(median([r["enqueue_p99_ms"] for r in runs]), 1),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
