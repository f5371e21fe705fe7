"""Rules on Splunk: the bot's own cost per rule run, result parsing speed, concurrency, memory.

500 rules (the shipped rules, cloned with new ids: threshold, frequency, stats pipelines,
dedup/where/table, anomaly, …) run through the real ``run_rule`` and ``SplunkSearchBackend``
against the loopback fake of splunkd (``tests/fakes/splunk.py``), which answers with the local
SPL engine over two hours of generated fleet logs plus every staged scenario. The fake runs in
this process; the bot side runs in child interpreters, so its figures are its own.

* overhead per run = time in ``run_rule`` - time inside the backend's blocking search call (the
  worker thread: HTTP, JSON parsing, building hits), rules run one after another;
* rows/s = export result lines (100,000 rows, fetched once) parsed into hits, per second;
* peak concurrent searches = the fake's own count, while 500 rules are started at once;
* RSS over 10,000 rule runs (current resident set, after warm-up and at the end);
* field extraction in the embedded backend: rows/s of ``stats count by src`` over 100,000 real
  sshd/pam lines (``linux_secure``) with the sourcetype's extraction on, and of the same
  search with it off (``key=value`` pairs only); and a search that asks only built-in fields
  (``stats count by host``), on and off, to show that events a query does not ask for a field
  cost nothing. Rates are rows per CPU second of this process (the scan and the pipeline run
  in one thread, so a busy machine does not count against them; the wall-clock rate is
  printed too), medians over ``--runs``, on and off alternating in the same run.

    python bench/rules.py [--rules 500] [--runs 3] [--rss-runs 10000] [--extraction-only]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from _common import emit, median, percentile, run_child, spread
from pydantic import SecretStr

from bot.redaction import Redactor
from detectors.fields import DEFAULT as DEFAULT_EXTRACTOR
from detectors.fields import FieldExtractor
from detectors.model import Rule
from detectors.rules import load_rules
from detectors.runner import run_rule
from detectors.window import Window
from integrations.local import Event
from integrations.local.generator import Generator
from integrations.local.scenarios import SCENARIOS
from integrations.splunk import SplunkSearchBackend, SplunkSettings
from integrations.splunk.results import read_results, to_hit
from tests.fakes.splunk import FakeSplunk

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
TOKEN = "bench-token"
BULK_ROWS = 100_000
MAX_CONCURRENT = 3
TARGET_OVERHEAD_P99_MS = 20.0
TARGET_ROWS_PER_S = 50_000
EXTRACT_ROWS = 100_000
SSHD_FORMS = (
    "Failed password for root from {ip} port {port} ssh2",
    "Failed password for invalid user {user} from {ip} port {port} ssh2",
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser="
    " rhost={ip}  user=root",
    "Invalid user {user} from {ip} port {port}",
    "Connection closed by authenticating user root {ip} port {port} [preauth]",
    "Received disconnect from {ip} port {port}:11: Bye Bye [preauth]",
    "Accepted publickey for ops from {ip} port {port} ssh2",
)


def make_rules(count: int) -> list[Rule]:
    shipped = load_rules([])
    return [
        shipped[i % len(shipped)].model_copy(update={"id": f"{shipped[i % len(shipped)].id}-{i}"})
        for i in range(count)
    ]


def window(rule: Rule) -> Window:
    return Window.sliding(NOW, rule.window, previous_end=None)


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


# the bot side (child interpreter) -----------------------------------------------------------


def backend(port: int) -> SplunkSearchBackend:
    return SplunkSearchBackend(
        SplunkSettings(
            host="127.0.0.1",
            port=port,
            scheme="http",
            token=SecretStr(TOKEN),
            max_concurrent=MAX_CONCURRENT,
            max_results=BULK_ROWS,
        )
    )


async def overhead(port: int, rules: list[Rule]) -> dict[str, Any]:
    splunk = backend(port)
    redact = Redactor("balanced").redact
    fired = 0
    for rule in rules:  # warm-up: connections, parse caches, imports
        fired += bool((await run_rule(rule, splunk, window(rule), redact)).alerts)
    costs = []
    for rule in rules:
        blocked = splunk.counters.blocking_seconds
        started = time.perf_counter()
        await run_rule(rule, splunk, window(rule), redact)
        elapsed = time.perf_counter() - started
        costs.append((elapsed - (splunk.counters.blocking_seconds - blocked)) * 1000)
    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for rule in rules:
            group.create_task(run_rule(rule, splunk, window(rule), redact))
    burst_s = time.perf_counter() - started
    return {
        "overhead_p50_ms": percentile(costs, 50),
        "overhead_p99_ms": percentile(costs, 99),
        "rules_fired": fired,
        "burst_s": burst_s,
        "max_active": splunk.counters.max_active,
    }


def parse_rate(port: int, repeats: int = 5) -> dict[str, Any]:
    params = {
        "search": "search index=bulk",
        "output_mode": "json",
        "earliest_time": str(int((NOW - timedelta(hours=1)).timestamp())),
        "latest_time": str(int(NOW.timestamp())),
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/services/search/v2/jobs/export",
        data=urlencode(params).encode(),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        body = response.read()
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        result = read_results(io.BytesIO(body), BULK_ROWS)  # type: ignore[arg-type]
        hits = [to_hit(row, NOW) for row in result.rows]
        rates.append(len(hits) / (time.perf_counter() - started))
        if len(hits) != BULK_ROWS:
            raise SystemExit(f"rules: expected {BULK_ROWS} rows, parsed {len(hits)}")
    return {"rows_per_s": median(rates), "export_mib": len(body) / 2**20}


async def memory(port: int, rules: list[Rule], runs: int) -> dict[str, Any]:
    splunk = backend(port)
    redact = Redactor("balanced").redact
    batches = max(1, runs // len(rules))

    async def batch() -> None:
        async with asyncio.TaskGroup() as group:
            for rule in rules:
                group.create_task(run_rule(rule, splunk, window(rule), redact))

    await batch()  # warm-up
    start = rss_mib()
    started = time.perf_counter()
    for _ in range(batches):
        await batch()
    return {
        "rss_start_mib": start,
        "rss_end_mib": rss_mib(),
        "runs": batches * len(rules),
        "runs_per_s": batches * len(rules) / (time.perf_counter() - started),
    }


def child(args: argparse.Namespace) -> dict[str, Any]:
    rules = make_rules(args.rules)
    if args.mode == "rss":
        return asyncio.run(memory(args.port, rules, args.rss_runs))
    result = asyncio.run(overhead(args.port, rules))
    result.update(parse_rate(args.port))
    return result


# the Splunk side (this process) -------------------------------------------------------------


def seed(fake: FakeSplunk) -> int:
    generator = Generator(fake.store, seed=11)
    events = generator.noise(NOW, 2 * 3600)
    for scenario in SCENARIOS.values():
        events.extend(scenario.events(NOW - timedelta(minutes=1), random.Random(3)))
    rng = random.Random(5)
    events.extend(
        Event(
            time=NOW - timedelta(seconds=3000 * i / BULK_ROWS + 0.001),
            raw=f"user=u{rng.randint(1, 999)} action=view item={i} ms={rng.randint(1, 900)}",
            index="bulk",
            sourcetype="bench",
            host=f"app-{i % 7}",
        )
        for i in range(BULK_ROWS)
    )
    return fake.add_events(events)


# field extraction in the embedded backend (this process) --------------------------------------


def sshd_events(count: int) -> list[Event]:
    rng = random.Random(13)
    events = []
    for i in range(count):
        t = NOW - timedelta(seconds=3000 * i / count + 0.001)
        message = rng.choice(SSHD_FORMS).format(
            ip=f"203.0.113.{rng.randint(1, 60)}",
            port=rng.randint(1024, 65000),
            user=f"u{rng.randint(1, 99)}",
        )
        raw = f"{t:%b %e %H:%M:%S} LabSZ sshd[{rng.randint(1000, 30000)}]: {message}"
        events.append(Event(t, raw, index="os", sourcetype="linux_secure", host="LabSZ"))
    return events


def extraction(runs: int) -> dict[str, float]:
    from integrations.local import parse, run
    from integrations.local.events import EventStore

    start, end = NOW - timedelta(hours=1), NOW
    with tempfile.TemporaryDirectory() as folder:
        store = EventStore(Path(folder) / "events.db")
        store.add(sshd_events(EXTRACT_ROWS))

        wall: list[float] = []

        def rate(text: str, extractor: FieldExtractor | None) -> float:
            pipeline = parse(text)
            began, clock = time.process_time(), time.perf_counter()
            rows = run(
                pipeline, store.scan(start, end, newest_first=True), start, end, extractor=extractor
            )
            spent = time.process_time() - began
            if extractor is not None:
                if not rows:
                    raise SystemExit(f"rules: {text!r} returned nothing")
                wall.append(EXTRACT_ROWS / (time.perf_counter() - clock))
            return EXTRACT_ROWS / spent

        by_src = "index=os sourcetype=linux_secure | stats count by src"
        by_host = "index=os sourcetype=linux_secure | stats count by host"
        figures: dict[str, list[float]] = {"on": [], "off": [], "host_on": [], "host_off": []}
        rate(by_src, DEFAULT_EXTRACTOR)  # warm-up: page cache, regex compilation
        wall.clear()
        for _ in range(runs):
            figures["on"].append(rate(by_src, DEFAULT_EXTRACTOR))
            figures["on_wall"] = [*figures.get("on_wall", []), wall.pop()]
            figures["off"].append(rate(by_src, None))
            figures["host_on"].append(rate(by_host, DEFAULT_EXTRACTOR))
            figures["host_off"].append(rate(by_host, None))
        store.close()
    print(
        f"extraction (linux_secure, {EXTRACT_ROWS:,} rows, per CPU second): "
        f"stats by src {spread(figures['on'], ' rows/s', 0)} with extraction, "
        f"{spread(figures['off'], ' rows/s', 0)} without; stats by host (no field asked) "
        f"{spread(figures['host_on'], ' rows/s', 0)} with, "
        f"{spread(figures['host_off'], ' rows/s', 0)} without; by the wall clock, stats by src "
        f"with extraction {spread(figures['on_wall'], ' rows/s', 0)}"
    )
    return {name: median(values) for name, values in figures.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3, help="child runs to take medians over")
    parser.add_argument("--rss-runs", type=int, default=10_000)
    parser.add_argument(
        "--extraction-only", action="store_true", help="only the field extraction figures"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="overhead", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        emit(child(args))
        return 0
    if args.extraction_only:
        emit({"bench": "rules", **extraction_figures(args.runs)})
        return 0

    with FakeSplunk(token=TOKEN) as fake:
        seeded = seed(fake)
        print(
            f"rules: {args.rules} rules against the fake Splunk ({seeded} events), "
            f"SPLUNK_MAX_CONCURRENT={MAX_CONCURRENT}, {args.runs} runs"
        )
        common = [f"--port={fake.port}", f"--rules={args.rules}"]
        runs = []
        for i in range(args.runs):
            run = run_child(__file__, [*common, "--mode=overhead"])
            runs.append(run)
            print(
                f"  run {i + 1}: overhead p50 {run['overhead_p50_ms']:.2f} ms, "
                f"p99 {run['overhead_p99_ms']:.2f} ms; {run['rows_per_s']:,.0f} rows/s; "
                f"{args.rules} rules at once in {run['burst_s']:.2f} s "
                f"({run['rules_fired']} fired)"
            )
        rss = run_child(__file__, [*common, "--mode=rss", f"--rss-runs={args.rss_runs}"])
        peak = fake.max_concurrent_seen

    p50 = median([r["overhead_p50_ms"] for r in runs])
    p99 = median([r["overhead_p99_ms"] for r in runs])
    rows = median([r["rows_per_s"] for r in runs])
    print(f"overhead per rule run, p50: {spread([r['overhead_p50_ms'] for r in runs], ' ms', 2)}")
    print(f"overhead per rule run, p99: {spread([r['overhead_p99_ms'] for r in runs], ' ms', 2)}")
    print(
        f"export parsing: {spread([r['rows_per_s'] for r in runs], ' rows/s', 0)} "
        f"({runs[0]['export_mib']:.1f} MiB for {BULK_ROWS:,} rows)"
    )
    print(f"peak concurrent searches seen by Splunk: {peak} (limit {MAX_CONCURRENT})")
    print(
        f"RSS over {rss['runs']:,} runs: {rss['rss_start_mib']:.1f} MiB -> "
        f"{rss['rss_end_mib']:.1f} MiB ({rss['runs_per_s']:.0f} runs/s)"
    )
    print(
        f"targets: overhead p99 <= {TARGET_OVERHEAD_P99_MS:.0f} ms "
        f"({'met' if p99 <= TARGET_OVERHEAD_P99_MS else 'MISSED'}), "
        f">= {TARGET_ROWS_PER_S:,} rows/s ({'met' if rows >= TARGET_ROWS_PER_S else 'MISSED'}), "
        f"peak <= {MAX_CONCURRENT} ({'met' if peak <= MAX_CONCURRENT else 'MISSED'})"
    )
    emit(
        {
            "bench": "rules",
            **extraction_figures(args.runs),
            "overhead_p50_ms": round(p50, 3),
            "overhead_p99_ms": round(p99, 3),
            "rows_per_s": round(rows),
            "max_concurrent_searches": peak,
            "rss_start_mib": round(rss["rss_start_mib"], 1),
            "rss_end_mib": round(rss["rss_end_mib"], 1),
        }
    )
    return 0


def extraction_figures(runs: int) -> dict[str, Any]:
    rates = extraction(runs)
    met = rates["on"] >= TARGET_ROWS_PER_S
    print(
        f"target: >= {TARGET_ROWS_PER_S:,} rows/s with extraction on ({'met' if met else 'MISSED'})"
    )
    return {
        "extract_rows_per_s": round(rates["on"]),
        "extract_off_rows_per_s": round(rates["off"]),
        "extract_wall_rows_per_s": round(rates["on_wall"]),
        "untouched_rows_per_s": round(rates["host_on"]),
        "untouched_off_rows_per_s": round(rates["host_off"]),
    }


if __name__ == "__main__":
    sys.exit(main())
