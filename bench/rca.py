"""RCA storm: 1,000 new incidents analysed by Bedrock while cards keep going out.

The real ``Enricher`` runs ``BedrockRcaEngine`` (real boto3, over HTTP) against the loopback
fake Bedrock, started as its own process, answering in 2-8 s and enforcing a 50 RPM quota with
429s. On the same event loop, the real ``OutboxWorker`` delivers to a recording surface, and a
probe opens one new incident every ``--probe-ms`` and times its card from commit to ``post``:
first with RCA idle, then while the storm is analysed. The same storm analysed by a stand-in
engine (same pacing and latency, no Bedrock) shows what the pipeline itself costs the cards
(reports stored, cards updated); the difference is the engine's own cost. Figures: card p99
(target <= 20 ms), event-loop lag, the most Bedrock requests the fake saw in any minute (target
<= 40, ``BEDROCK_RPM``), RCA end to end (from the storm's start to each report) p50/p95, and how
many reports came from the fallback engine.

Time is scaled so a run takes minutes: with ``--scale 0.05`` a minute lasts 3 s, latencies and
timeouts shrink 20 times and rates grow 20 times. Figures are reported in unscaled units.

    python bench/rca.py [--incidents 1000] [--scale 0.05] [--evidence 20] [--workers 4]
                        [--no-compare]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from _common import ROOT, emit, percentile, sqlite_url

from bot.domain.hits import Alert, Category, Evidence, Severity
from bot.domain.incident import Incident
from bot.domain.rca import RcaReport, RcaStatus
from bot.outbox import OutboxWorker
from bot.pipeline.enrich import Enricher
from bot.pipeline.ingest import IngestPolicy, ingest
from bot.pipeline.notify import Router, Target
from bot.ports import Health, HealthStatus, MessageRef, RcaContext, SystemClock
from bot.redaction import Redactor
from bot.store.db import make_engine, migrate
from integrations.bedrock import BedrockRcaEngine, load_bedrock_settings
from integrations.bedrock.throttle import RpmThrottle
from integrations.heuristic import HeuristicRcaEngine

TARGET_CARD_P99_MS = 20.0
RPM = 40
QUOTA = 50
LATENCY = (2.0, 8.0)
TIMEOUT = 30.0
CONSOLE = "http://127.0.0.1:8080"
LINES = (
    "{at} host={host} service={service} status=503 path=/api/orders upstream=payments "
    'latency_ms=30012 msg="upstream timed out"',
    '{at} host={host} service={service} level=error msg="connection pool exhausted (max=50)"',
    "{at} host={host} metric=cpu_pct value=97.5",
    "{at} host={host} service={service} status=200 path=/health latency_ms=3",
)


class Surface:
    """A chat surface noting when each incident's card is posted."""

    name = "console"

    def __init__(self) -> None:
        self.posted: dict[int, float] = {}
        self.updates = 0
        self.arrived = asyncio.Event()

    async def post(self, card: object, channel: str) -> MessageRef:
        incident_id = int(getattr(card, "incident_id", 0))
        self.posted[incident_id] = time.perf_counter()
        self.arrived.set()
        return MessageRef(self.name, channel, f"msg-{incident_id}")

    async def update(self, ref: MessageRef, card: object) -> None:
        self.updates += 1

    async def reply(self, ref: MessageRef, text: str) -> None:
        return None

    async def check(self) -> Health:
        return Health(HealthStatus.OK)


class Timed:
    """An RcaEngine wrapper noting when each report is ready."""

    def __init__(self, engine: BedrockRcaEngine) -> None:
        self.engine = engine
        self.ready: dict[int, float] = {}
        self.took: list[float] = []

    async def explain(
        self, incident: Incident, evidence: Sequence[Evidence], context: RcaContext
    ) -> RcaReport:
        started = time.perf_counter()
        report = await self.engine.explain(incident, evidence, context)
        self.ready[incident.id] = time.perf_counter()
        self.took.append(self.ready[incident.id] - started)
        return report


def alert(n: int, lines: int, clock: SystemClock) -> Alert:
    now = clock.now()
    service, host = f"svc-{n:05d}", f"node-{n % 250:03d}"
    evidence = tuple(
        Evidence(
            f"ev-{n:05d}-{i:03d}",
            now - timedelta(seconds=i),
            LINES[(n + i) % len(LINES)].format(
                at=f"{now - timedelta(seconds=i):%Y-%m-%dT%H:%M:%S}Z", host=host, service=service
            ),
        )
        for i in range(lines)
    )
    return Alert(
        rule_id="storm",
        group=(("service", service),),
        title=f"Errors on {service}",
        severity=Severity.HIGH,
        category=Category.APPLICATION,
        service=service,
        host=host,
        owner="oncall",
        first_seen=now - timedelta(minutes=5),
        last_seen=now,
        new_events=lines,
        value=float(lines),
        evidence=evidence,
        events=lines,
    )


def start_fake(scale: float) -> tuple[subprocess.Popen[str], str]:
    low, high = (v * scale for v in LATENCY)
    window = 60 * scale
    command = [sys.executable, "-m", "tests.fakes.bedrock", "--latency", str(low), str(high)]
    command += ["--quota", str(QUOTA), "--window", str(window)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    first = process.stdout.readline().split()
    if len(first) != 2 or first[0] != "port":
        process.kill()
        raise SystemExit("rca: the fake Bedrock did not start")
    return process, f"http://127.0.0.1:{first[1]}"


def fake_log(url: str) -> list[tuple[float, str, int]]:
    with urllib.request.urlopen(f"{url}/_log", timeout=10) as answer:
        return [tuple(row) for row in json.load(answer)["log"]]  # type: ignore[misc]


def busiest_window(times: list[float], window: float) -> int:
    """The most requests that started within any ``window`` seconds."""
    ordered, most, first = sorted(times), 0, 0
    for last, at in enumerate(ordered):
        while at - ordered[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


async def probe(
    engine: Any, policy: IngestPolicy, box: OutboxWorker, surface: Surface, number: int
) -> float:
    """Open one incident, deliver its card; seconds from commit to ``post``."""
    clock = SystemClock()

    def commit() -> int:
        with engine.begin() as conn:
            return ingest(conn, [alert(number, 3, clock)], clock.now(), policy).created[0]

    incident_id = await asyncio.to_thread(commit)
    committed = time.perf_counter()
    box.wake()
    while incident_id not in surface.posted:
        surface.arrived.clear()
        async with asyncio.timeout(10):
            await surface.arrived.wait()
    return surface.posted[incident_id] - committed


class StandIn:
    """The same pacing and latency as Bedrock here, with no network and no model: what the
    pipeline itself (reports stored, card updates delivered) costs the cards."""

    def __init__(self, rpm: int, scale: float) -> None:
        self.throttle = RpmThrottle(rpm)
        self.low, self.high = (v * scale for v in LATENCY)
        self.rng = random.Random(7)

    async def explain(
        self, incident: Incident, evidence: Sequence[Evidence], context: RcaContext
    ) -> RcaReport:
        await self.throttle.acquire()
        await asyncio.sleep(self.rng.uniform(self.low, self.high))
        return RcaReport(RcaStatus.OK, "stand-in analysis", confidence=0.5, engine="stand-in")


async def loop_lag(stop: asyncio.Event, lags: list[float], tick: float = 0.005) -> None:
    """How late the event loop wakes a sleeper: any blocking call on the loop shows here."""
    while not stop.is_set():
        due = time.perf_counter() + tick
        await asyncio.sleep(tick)
        lags.append(max(0.0, time.perf_counter() - due))


async def phase(args: argparse.Namespace, url: str, folder: str, kind: str) -> dict[str, Any]:
    """One storm on a fresh database, analysed by ``kind`` (``bedrock`` or ``stand-in``)."""
    scale = args.scale
    db = make_engine(sqlite_url(folder))
    await asyncio.to_thread(migrate, db)
    clock = SystemClock()
    router = Router(rules=(), defaults=(Target("console", "console"),))
    policy = IngestPolicy(router, timedelta(minutes=30), timedelta(seconds=60))
    surface = Surface()
    box = OutboxWorker(db, {"console": surface}, clock, CONSOLE)
    stop = asyncio.Event()
    outbox = asyncio.create_task(box.run(stop, poll=0.5))

    def storm() -> list[int]:
        with db.begin() as conn:
            alerts = [alert(n, args.evidence, clock) for n in range(args.incidents)]
            return ingest(conn, alerts, clock.now(), policy).created

    created = await asyncio.to_thread(storm)
    box.wake()
    while len(surface.posted) < len(created):
        surface.arrived.clear()
        async with asyncio.timeout(60):
            await surface.arrived.wait()
    number = args.incidents
    baseline: list[float] = []
    idle_lags: list[float] = []
    lag_stop = asyncio.Event()
    lagging = asyncio.create_task(loop_lag(lag_stop, idle_lags))
    for _ in range(args.baseline):
        number += 1
        baseline.append(await probe(db, policy, box, surface, number))
        await asyncio.sleep(args.probe_ms / 1000)
    lag_stop.set()
    await lagging

    rpm = max(1, round(RPM / scale))
    bedrock: BedrockRcaEngine | None = None
    inner: Any
    if kind == "bedrock":
        settings = load_bedrock_settings(
            model_id="bench-model",
            endpoint_url=url,
            region="us-east-1",
            rpm=rpm,
            timeout=TIMEOUT * scale,
        )
        inner = bedrock = BedrockRcaEngine(settings, HeuristicRcaEngine(), Redactor("balanced"))
    else:
        inner = StandIn(rpm, scale)
    timed = Timed(inner)
    enricher = Enricher(
        db, timed, router, clock, timedelta(seconds=(TIMEOUT + 5) * scale), workers=args.workers
    )
    started = time.perf_counter()
    lags: list[float] = []
    lagging = asyncio.create_task(loop_lag(stop, lags))
    analysing = asyncio.create_task(enricher.run(stop))
    during: list[float] = []
    pending = len(created) + len(baseline)  # the baseline's incidents are analysed too
    while enricher.done < pending:
        number += 1
        during.append(await probe(db, policy, box, surface, number))
        await asyncio.sleep(args.probe_ms / 1000)
    took = time.perf_counter() - started
    stop.set()
    await asyncio.gather(outbox, analysing, lagging)
    if bedrock is not None:
        bedrock.close()
    db.dispose()
    return {
        "baseline_ms": [s * 1000 for s in baseline],
        "during_ms": [s * 1000 for s in during],
        "idle_lag_ms": [s * 1000 for s in idle_lags],
        "lag_ms": [s * 1000 for s in lags],
        "e2e": [(timed.ready[i] - started) / scale for i in created if i in timed.ready],
        "each": [t / scale for t in timed.took],
        "took_s": took,
        "stats": bedrock.stats.snapshot() if bedrock is not None else {},
        "unavailable": enricher.done - len(timed.ready),
    }


def cards(label: str, values: list[float], lags: list[float]) -> str:
    return (
        f"{label}: p50 {percentile(values, 50):.2f} ms, p99 {percentile(values, 99):.2f} ms, "
        f"max {max(values):.2f} ms ({len(values)} probes); event-loop lag p99 "
        f"{percentile(lags, 99):.2f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--scale", type=float, default=0.05, help="time scale (default 0.05)")
    parser.add_argument("--evidence", type=int, default=20, help="evidence lines per incident")
    parser.add_argument("--workers", type=int, default=4, help="enricher workers (default 4)")
    parser.add_argument("--baseline", type=int, default=200, help="card probes with RCA idle")
    parser.add_argument("--probe-ms", type=float, default=50.0, help="pause between probes")
    parser.add_argument(
        "--no-compare",
        dest="compare",
        action="store_false",
        help="skip the storm analysed by a stand-in engine (same pacing, no Bedrock)",
    )
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1:
        parser.error("--scale must be in (0, 1]")
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench-access-key-id",
        AWS_SECRET_ACCESS_KEY="bench-secret-access-key",
        AWS_EC2_METADATA_DISABLED="true",
    )
    print(
        f"rca: {args.incidents} incidents, scale {args.scale} (a minute lasts "
        f"{60 * args.scale:g} s), fake Bedrock {LATENCY[0]:g}-{LATENCY[1]:g} s latency and a "
        f"{QUOTA} RPM quota, BEDROCK_RPM={RPM}, {args.workers} enricher workers"
    )
    fake, url = start_fake(args.scale)
    try:
        kinds = ["stand-in", "bedrock"] if args.compare else ["bedrock"]
        results = {}
        for kind in kinds:
            with tempfile.TemporaryDirectory(prefix="bench-rca-") as folder:
                results[kind] = asyncio.run(phase(args, url, folder, kind))
        log = fake_log(url)
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    result = results["bedrock"]
    rpm_max = busiest_window([at for at, _, _ in log], 60 * args.scale)
    throttled = sum(1 for _, _, status in log if status == 429)
    for kind, found in results.items():
        print(f"{kind}:")
        print("  " + cards("cards, RCA idle ", found["baseline_ms"], found["idle_lag_ms"]))
        print("  " + cards("cards, RCA storm", found["during_ms"], found["lag_ms"]))
    stats = result["stats"]
    fallbacks = sum(stats["fallbacks"].values()) + result["unavailable"]
    card_p99 = percentile(result["during_ms"], 99)
    print(
        f"bedrock: {len(log)} requests, busiest minute {rpm_max}, {throttled} answered 429; "
        f"engine stats {stats}"
    )
    e2e, each = result["e2e"], result["each"]
    print(
        f"rca end to end (from the storm's start): p50 {percentile(e2e, 50):.1f} s, "
        f"p95 {percentile(e2e, 95):.1f} s; one analysis: p50 {percentile(each, 50):.2f} s, "
        f"p95 {percentile(each, 95):.2f} s; all done in {result['took_s'] / args.scale:.0f} s "
        f"({result['took_s']:.1f} s real)"
    )
    print(
        f"targets: card p99 <= {TARGET_CARD_P99_MS:.0f} ms "
        f"({'met' if card_p99 <= TARGET_CARD_P99_MS else 'MISSED'}), requests/min <= {RPM} "
        f"({'met' if rpm_max <= RPM else 'MISSED'})"
    )
    emit(
        {
            "bench": "rca",
            "card_p99_ms": round(card_p99, 3),
            "bedrock_rpm_max": rpm_max,
            "rca_p50_s": round(percentile(e2e, 50), 1),
            "rca_p95_s": round(percentile(e2e, 95), 1),
            "fallbacks": fallbacks,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
