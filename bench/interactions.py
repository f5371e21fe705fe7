"""Slack interactions under load: signed button clicks while a storm of cards is being posted.

Three processes, so that no one's work slows another's clock:

* the bot (the real runtime pieces, ``build_slack``, the outbox worker with per-channel buckets,
  uvicorn on 127.0.0.1);
* the people: one process that only signs and sends clicks and times the answers (over
  connections opened beforehand, as a load balancer keeps them);
* Slack (this process): the loopback Slack Web API in a thread, enforcing Slack's limits
  (``chat.postMessage`` 1/s per channel with a burst of 3, ``chat.update`` about 50/min).

1. The bot opens ``--clicks`` incidents over four channels and posts their cards (limits off).
2. Limits on; the bot starts a storm (``--storm-rate`` new incidents per second for
   ``--seconds``); meanwhile every card's Acknowledge button is clicked once, the clicks
   starting evenly over ``--spread`` seconds (0: all at once), ``--twins`` of them twice.
3. Figures: acknowledgement latency (sent to answered, at the clicker; and arrival to answer
   inside the bot), whether every click applied exactly once (audit rows and states in the
   bot's database), Slack calls per channel per second, and how many 429s Slack answered.

    python bench/interactions.py [--clicks 200] [--twins 20] [--spread 1] [--seconds 12]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import uvicorn
import yaml
from _common import ROOT, emit, median, percentile
from fastapi import FastAPI
from sqlalchemy import Engine, create_engine, func, select

from bot.authz import Roles
from bot.interactions import Interactions
from bot.operations import Operations
from bot.outbox import OutboxWorker
from bot.pipeline.ingest import IngestPolicy, ingest
from bot.pipeline.notify import Router, RouteRule, Target
from bot.ports import SystemClock
from bot.store.db import make_engine, migrate
from bot.store.repo import AUDIT, INCIDENTS, OUTBOX
from integrations.slack import SlackSettings, build_slack, load_slack_settings
from tests.builders import alert
from tests.fakes.slack import (
    BOT_TOKEN,
    SIGNING_SECRET,
    Call,
    FakeSlack,
    Limit,
    payload,
    signature,
)

CHANNELS = ("C0STORM01", "C0STORM02", "C0STORM03", "C0STORM04")
RESPONDER = "U0RESP001"
CONSOLE = "http://127.0.0.1:8080"
TARGET_P99_MS = 30.0
STORM_HEAD_START = 1.0  # seconds of storm before the first click


# the bot ---------------------------------------------------------------------------------------


class ServerTimes:
    """ASGI wrapper: milliseconds from a request's arrival to its response's first byte."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.times: list[float] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        began = time.perf_counter()

        async def timed_send(message: Any) -> None:
            if message["type"] == "http.response.start" and scope.get("method") == "POST":
                self.times.append((time.perf_counter() - began) * 1000)
            await send(message)

        await self.app(scope, receive, timed_send)


def storm_router() -> Router:
    """Incidents spread over four channels by service (svc-0 -> first, svc-1 -> second …)."""
    rules = tuple(
        RouteRule(Target("slack", ch), service=frozenset(f"svc-{i}" for i in range(n, 20_000, 4)))
        for n, ch in enumerate(CHANNELS)
    )
    return Router(rules, ())


def pending(engine: Engine) -> bool:
    query = select(OUTBOX.c.id).where(OUTBOX.c.status == "pending")
    with engine.connect() as conn:
        return conn.execute(query).first() is not None


async def run_bot(folder: Path, api_url: str, args: argparse.Namespace) -> None:
    """Serve Slack's requests; post the first cards; on "go", run the storm."""
    clock = SystemClock()
    engine = make_engine(f"sqlite:///{folder / 'bot.db'}")
    migrate(engine)
    roles_file = folder / "roles.yaml"
    roles_file.write_text(yaml.safe_dump({"roles": {"responder": [f"slack:{RESPONDER}"]}}))
    roles = Roles.load(roles_file)
    router = storm_router()
    storm: list[OutboxWorker] = []
    interactions = Interactions(
        engine, roles, router, clock, on_commit=lambda: [w.wake() for w in storm] and None
    )
    operations = Operations(engine, interactions, roles, clock, CONSOLE)
    settings = load_slack_settings(
        bot_token=BOT_TOKEN, signing_secret=SIGNING_SECRET, api_url=api_url, role_groups=False
    )
    slack = build_slack(settings, operations, CONSOLE)
    app = FastAPI()
    app.include_router(slack.router)
    timed = ServerTimes(app)
    server = uvicorn.Server(
        uvicorn.Config(timed, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the bot's HTTP server did not start"
        await asyncio.sleep(0.01)
    await slack.start()
    policy = IngestPolicy(router, timedelta(minutes=30), timedelta(seconds=60), timedelta(0))

    def open_incidents(first: int, n: int) -> None:
        now = clock.now()
        alerts = [alert(now, service=f"svc-{i}") for i in range(first, first + n)]
        with engine.begin() as conn:
            ingest(conn, alerts, now, policy)

    surfaces = {"slack": slack.surface}
    open_incidents(0, args.clicks)
    setup = OutboxWorker(engine, surfaces, clock, CONSOLE)
    while pending(engine):
        await setup.deliver_due()
    port = server.servers[0].sockets[0].getsockname()[1]
    print(json.dumps({"ready": f"http://127.0.0.1:{port}"}), flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # "go": Slack's limits are on
    timed.times.clear()

    limits = SlackSettings().outbox_rate_limits()  # the budgets the bot ships with
    outbox = OutboxWorker(engine, surfaces, clock, CONSOLE, limits, digest_after={"slack": 10})
    storm.append(outbox)
    stop = asyncio.Event()
    lags: list[float] = []

    async def watch_loop() -> None:
        """How late the bot's event loop wakes a 5 ms sleep (its responsiveness)."""
        while not stop.is_set():
            began = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append((time.perf_counter() - began - 0.005) * 1000)

    watching = asyncio.create_task(watch_loop())
    delivering = asyncio.create_task(outbox.run(stop, poll=0.2))
    created, started = args.clicks, time.monotonic()
    while (elapsed := time.monotonic() - started) < args.seconds:
        due = args.clicks + int(args.storm_rate * elapsed) - created
        if due > 0:
            await asyncio.to_thread(open_incidents, created, due)
            created += due
            outbox.wake()
        await asyncio.sleep(0.1)
    stop.set()
    await delivering
    await watching
    await slack.stop()
    server.should_exit = True
    await serving
    with engine.connect() as conn:
        rows = conn.execute(select(OUTBOX.c.status, func.count()).group_by(OUTBOX.c.status))
        counts = {str(status): int(n) for status, n in rows}
    times = timed.times or [0.0]
    inside = {"p50": median(times), "p99": percentile(times, 99)}
    lag = {"p99": percentile(lags or [0.0], 99), "max": max(lags or [0.0])}
    print(
        json.dumps({"incidents": created, "outbox": counts, "inside_ms": inside, "lag_ms": lag}),
        flush=True,
    )


# the people ------------------------------------------------------------------------------------


async def run_clicker(url: str, bodies: list[dict[str, Any]], spread: float) -> None:
    """Open a connection per click, then click; print the latencies (ms) as JSON."""
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=len(bodies), keepalive_timeout=60)
    async with aiohttp.ClientSession(url, connector=connector) as session:

        async def warm() -> None:
            async with session.get("/health") as response:
                await response.read()

        await asyncio.gather(*(warm() for _ in bodies))  # connections open, as an ALB keeps them
        print(json.dumps({"warm": len(bodies)}), flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # "go": the storm is on

        async def one(data: dict[str, Any], delay: float) -> None:
            await asyncio.sleep(delay)
            body = urlencode({"payload": json.dumps(data)}).encode()
            stamp = str(int(time.time()))
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": signature(SIGNING_SECRET, stamp, body),
            }
            began = time.perf_counter()
            async with session.post("/slack/events", data=body, headers=headers) as response:
                await response.read()
            latencies.append((time.perf_counter() - began) * 1000)
            assert response.status == 200, response.status

        step = spread / max(len(bodies), 1)
        await asyncio.gather(*(one(b, i * step) for i, b in enumerate(bodies)))
    print(json.dumps(latencies), flush=True)


# Slack and the figures -------------------------------------------------------------------------


def clicks_for(fake: FakeSlack, twins: int) -> list[dict[str, Any]]:
    """One Acknowledge press per card Slack holds, plus ``twins`` presses pressed twice."""
    cards = []
    for (channel, ts), message in list(fake.messages.items()):
        metadata = message.get("metadata") or {}
        if metadata.get("event_type") == "incident_card":
            value = message["blocks"][-1]["elements"][0]["value"]
            cards.append((metadata["event_payload"]["incident_id"], channel, ts, value))
    cards += random.Random(7).sample(cards, min(twins, len(cards)))
    return [
        payload(
            "block_actions",
            action_id="acknowledge",
            value=value,
            user=RESPONDER,
            channel=channel,
            message_ts=ts,
            trigger_id=f"t{incident}",
            action_ts=f"{time.time():.6f}",
            response_url=fake.response_url(f"r{incident}"),
        )
        for incident, channel, ts, value in cards
    ]


def slack_rates(calls: list[Call]) -> tuple[int, float]:
    """chat.postMessage per channel-second: the busiest, and the mean over busy seconds."""
    per: Counter[tuple[str, int]] = Counter()
    for call in calls:
        if call.method == "chat.postMessage" and not call.error:
            per[(str(call.args.get("channel")), int(call.at))] += 1
    values = list(per.values()) or [0]
    return max(values), sum(values) / len(values)


def check_database(folder: Path, clicks: int) -> tuple[int, int, int]:
    """(applied acknowledgements, other acknowledge audit rows, cards acknowledged)."""
    engine = create_engine(f"sqlite:///{folder / 'bot.db'}")
    acks = select(func.count()).where(AUDIT.c.action == "acknowledge")
    acked = select(func.count()).where(
        INCIDENTS.c.id <= clicks, INCIDENTS.c.state == "acknowledged"
    )
    with engine.connect() as conn:
        applied = conn.execute(acks.where(AUDIT.c.result == "applied")).scalar_one()
        other = conn.execute(acks.where(AUDIT.c.result != "applied")).scalar_one()
        done = conn.execute(acked).scalar_one()
    engine.dispose()
    return int(applied), int(other), int(done)


async def child(*arguments: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        *arguments,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )


async def bench(args: argparse.Namespace) -> None:
    fake = FakeSlack().start_in_thread()
    options = ["--clicks", str(args.clicks), "--storm-rate", str(args.storm_rate)]
    with tempfile.TemporaryDirectory() as folder:
        bot = await child("--bot", folder, fake.api_url, *options, "--seconds", str(args.seconds))
        assert bot.stdin is not None and bot.stdout is not None
        ready = json.loads(await bot.stdout.readline())
        clicks_file = Path(folder) / "clicks.json"
        clicks_file.write_text(json.dumps(clicks_for(fake, args.twins)))
        people = await child("--clicker", ready["ready"], str(clicks_file), str(args.spread))
        assert people.stdin is not None and people.stdout is not None
        await people.stdout.readline()  # connections are open
        fake.post_limit, fake.update_limit = Limit(1, 3), Limit(50 / 60, 5)
        setup_calls = len(fake.calls)
        for process in (bot, people):
            process.stdin.write(b"go\n")  # type: ignore[union-attr]
            await process.stdin.drain()  # type: ignore[union-attr]
            await asyncio.sleep(STORM_HEAD_START)
        latencies: list[float] = json.loads(await people.stdout.readline())
        result = json.loads(await bot.stdout.readline())
        await people.wait()
        await bot.wait()
        applied, other, acked = check_database(Path(folder), args.clicks)
    fake.stop_thread()
    report(args, latencies, result, (applied, other, acked), fake, setup_calls)


def report(
    args: argparse.Namespace,
    latencies: list[float],
    result: dict[str, Any],
    database: tuple[int, int, int],
    fake: FakeSlack,
    setup_calls: int,
) -> None:
    applied, other, acked = database
    busiest, mean_rate = slack_rates(fake.calls[setup_calls:])
    rejected = sum(fake.rejected.values())
    p50, p99 = median(latencies), percentile(latencies, 99)
    inside = result["inside_ms"]
    storm = result["incidents"] - args.clicks
    print(
        f"clicks: {len(latencies)} on {args.clicks} cards ({args.twins} double clicks), "
        f"started over {args.spread:g}s while {storm} new incidents arrived in {args.seconds:g}s"
    )
    verdict = "met" if p99 <= TARGET_P99_MS else "MISSED"
    print(
        f"ack latency at the clicker: p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {max(latencies):.1f}"
        f" ms (target p99 <= {TARGET_P99_MS:.0f} ms: {verdict})"
    )
    lag = result["lag_ms"]
    print(
        f"ack latency inside the bot: p50 {inside['p50']:.1f} ms, p99 {inside['p99']:.1f} ms; "
        f"its event loop lagged p99 {lag['p99']:.1f} ms, max {lag['max']:.1f} ms"
    )
    print(
        f"applied exactly once: {applied == args.clicks == acked} ({applied} applied, "
        f"{acked} cards acknowledged, {other} other acknowledge audit rows)"
    )
    print(
        f"Slack chat.postMessage per channel-second: max {busiest}, mean {mean_rate:.2f}; "
        f"429 answers: {rejected} {dict(fake.rejected)}; outbox when the storm stopped: "
        f"{result['outbox']}"
    )
    emit(
        {
            "bench": "interactions",
            "clicks": len(latencies),
            "applied": applied,
            "ack_p50_ms": round(p50, 1),
            "ack_p99_ms": round(p99, 1),
            "slack_429": rejected,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clicks", type=int, default=200)
    parser.add_argument("--twins", type=int, default=20)
    parser.add_argument("--spread", type=float, default=1.0)
    parser.add_argument("--storm-rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--bot", nargs=2, metavar=("FOLDER", "API_URL"))
    parser.add_argument("--clicker", nargs=3, metavar=("URL", "CLICKS_FILE", "SPREAD"))
    args = parser.parse_args()
    if args.bot:
        asyncio.run(run_bot(Path(args.bot[0]), args.bot[1], args))
    elif args.clicker:
        url, clicks_file, spread = args.clicker
        bodies = json.loads(Path(clicks_file).read_text())
        asyncio.run(run_clicker(url, bodies, float(spread)))
    else:
        asyncio.run(bench(args))


if __name__ == "__main__":
    main()
