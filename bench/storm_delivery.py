"""Delivery in a storm: 200 incidents into one Slack channel, 20 presses while cards wait.

The outbox delivers through the real slack-sdk client to the loopback Slack, which enforces
Slack's limits (``chat.postMessage`` 1/s per channel with bursts of 3, ``chat.update`` about
50/min) with HTTP 429 and ``Retry-After``; the bot spends the budgets it ships with
(``outbox_rate_limits``). Time is a fake clock moved by hand in rounds of 0.25 s, so a storm of
several minutes runs in seconds and runs are repeatable; the figures are in storm seconds.
While the storm is delivered, root causes land (heuristic engine, two a second, each an RCA
card update) and 20 people acknowledge or resolve a card (one every 5 s, through the same
``Interactions`` path a Slack button takes after its HTTP request).

Figures (medians of ``--runs`` runs):

* ``reply_p99_s``: press to its thread reply on Slack, 99th percentile;
* ``updates_per_60s_max``: most ``chat.update`` calls in any rolling 60 s;
* ``digest_age_max_s``: most seconds the storm digest went unedited while cards waited;
* ``updates_for_unposted``: update rows written for a card whose post was still waiting;
* ``slack_429``: answers 429 from Slack;
* ``rca_all_s``, ``bedrock_rpm_max``: from ``bench/storm_rca.py`` (1,000 incidents from 10
  rules, Bedrock fake at 40 requests a minute, real time), or null with the reason.

    python bench/storm_delivery.py [--runs 3] [--incidents 200] [--presses 20] [--no-rca]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from datetime import timedelta
from typing import Any

import _common
from _common import ROOT, StepClock, emit, median, percentile, sqlite_url
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot.authz import Roles
from bot.domain.hits import Severity
from bot.domain.incident import Command, CommandKind
from bot.interactions import Interactions
from bot.outbox import OutboxWorker
from bot.pipeline.enrich import Enricher
from bot.pipeline.ingest import ingest
from bot.pipeline.notify import Router, Target
from bot.store.db import make_engine, migrate
from bot.store.repo import CARD_REFS, OUTBOX
from integrations.heuristic import HeuristicRcaEngine
from integrations.slack import SlackChatSurface, load_slack_settings
from tests.builders import alert, console_policy
from tests.fakes.slack import BOT_TOKEN, CHANNEL, FakeSlack, Limit

ROUND = 0.25  # storm seconds per delivery round
CAP_S = 900.0  # a run stops here whatever is left
RCA_TIMEOUT = 600.0


def unposted_updates(engine: Any) -> set[int]:
    """Update rows written after their card's post while that post still waits, or for a card
    that never reached Slack."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(OUTBOX.c.id, OUTBOX.c.order_key, OUTBOX.c.kind, OUTBOX.c.status).order_by(
                OUTBOX.c.id
            )
        ).all()
        refs = {
            f"{s}:{c}:{i}"
            for s, c, i in conn.execute(
                select(CARD_REFS.c.surface, CARD_REFS.c.channel, CARD_REFS.c.incident_id)
            )
        }
    waiting: set[str] = set()
    found: set[int] = set()
    for row in rows:
        if row.kind == "post" and row.status == "pending":
            waiting.add(row.order_key)
        elif row.kind == "update" and (row.order_key in waiting or row.order_key not in refs):
            found.add(row.id)
    return found


def waiting_posts(engine: Any) -> int:
    with engine.connect() as conn:
        return len(
            conn.execute(
                select(OUTBOX.c.id).where(OUTBOX.c.kind == "post", OUTBOX.c.status == "pending")
            ).all()
        )


def is_digest(call: Any) -> bool:
    text = str(call.args.get("text", ""))
    return not call.error and text.startswith((":ocean: Storm", ":white_check_mark: Storm"))


async def one_run(incidents: int, presses: int) -> dict[str, float]:
    clock = StepClock()
    seconds = lambda: clock.now().timestamp()  # noqa: E731
    fake = await FakeSlack(
        post_limit=Limit(rate=1, burst=3), update_limit=Limit(50 / 60, 5), clock=seconds
    ).start()
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(sqlite_url(folder))
        migrate(engine)
        try:
            return await storm(engine, clock, fake, incidents, presses)
        finally:
            engine.dispose()
            await fake.stop()


async def storm(
    engine: Any, clock: StepClock, fake: FakeSlack, incidents: int, presses: int
) -> dict[str, float]:
    base = console_policy()
    policy = type(base)(
        router=Router((), (Target("slack", CHANNEL),)),
        flap_window=base.flap_window,
        card_refresh=base.card_refresh,
        realert=base.realert,
    )
    with engine.begin() as conn:
        alerts = [
            alert(
                clock.now(),
                service=f"svc-{n}",
                host=f"web-{n}",
                severity=(Severity.HIGH, Severity.MEDIUM, Severity.LOW)[n % 3],
                group=(("service", f"svc-{n}"), ("host", f"web-{n}")),
            )
            for n in range(incidents)
        ]
        created = ingest(conn, alerts, clock.now(), policy).created
    limits = load_slack_settings(
        bot_token=BOT_TOKEN, signing_secret="s", api_url=fake.api_url, default_channel=CHANNEL
    ).outbox_rate_limits()
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url, timeout=5)
    box = OutboxWorker(
        engine,
        {"slack": SlackChatSurface(client, _common.CONSOLE_URL, 5, secrets=[BOT_TOKEN])},
        clock,
        _common.CONSOLE_URL,
        rate_limits=limits,
        monotonic=lambda: clock.now().timestamp(),
        digest_after={"slack": 10},
    )
    enricher = Enricher(engine, HeuristicRcaEngine(), policy.router, clock, timedelta(seconds=5))
    people = Interactions(engine, Roles.embedded_default(), policy.router, clock)
    pressed: list[float] = []
    rcas, ages, unposted = 0, [0.0], set()
    start = clock.now().timestamp()
    tick = 0
    while clock.now().timestamp() - start < CAP_S:
        now = clock.now().timestamp()
        if tick % 2 == 0 and rcas < len(created):
            await enricher.analyse(created[rcas])
            rcas += 1
        if len(pressed) < presses and tick % 20 == 10:  # one press every 5 s
            target = created[(len(pressed) * 7) % len(created)]
            kind = CommandKind.ACKNOWLEDGE if len(pressed) % 2 == 0 else CommandKind.RESOLVE
            people.execute_sync(target, Command(kind, actor="console:alice", surface="slack"))
            pressed.append(now)
        unposted |= unposted_updates(engine)
        waiting = waiting_posts(engine)
        await box.deliver_due()
        edits = [c.at for c in fake.calls if is_digest(c)]
        if waiting and edits:
            ages.append(now - edits[-1])
        done = rcas >= len(created) and len(pressed) >= presses
        if done and not waiting and box.stats().pending == 0:
            break
        clock.advance(ROUND)
        tick += 1
    replies = sorted(
        c.at for c in fake.calls if c.method == "chat.postMessage" and "thread_ts" in c.args
    )
    waits = [r - p for p, r in zip(pressed, replies, strict=False)]
    if len(replies) < len(pressed):
        waits += [CAP_S] * (len(pressed) - len(replies))
    updates = sorted(c.at for c in fake.calls_to("chat.update") if not c.error)
    most = max((sum(1 for u in updates if t <= u < t + 60) for t in updates), default=0)
    return {
        "reply_p99_s": round(percentile(waits, 99), 2) if waits else 0.0,
        "updates_per_60s_max": most,
        "digest_age_max_s": round(max(ages), 2),
        "updates_for_unposted": len(unposted),
        "slack_429": sum(fake.rejected.values()),
        "storm_s": round(clock.now().timestamp() - start, 1),
    }


def rca_figures() -> tuple[Any, Any, str]:
    """rca_all_s and bedrock_rpm_max from bench/storm_rca.py, or nulls and why not."""
    try:
        done = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "storm_rca.py")],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=RCA_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, None, f"storm_rca.py took longer than {RCA_TIMEOUT:.0f} s"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return None, None, f"storm_rca.py failed (exit {done.returncode})"
    found = json.loads(lines[-1])
    return found.get("rca_all_s"), found.get("bedrock_rpm_max"), ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--incidents", type=int, default=200)
    parser.add_argument("--presses", type=int, default=20)
    parser.add_argument("--no-rca", action="store_true", help="skip bench/storm_rca.py")
    args = parser.parse_args()
    runs = [asyncio.run(one_run(args.incidents, args.presses)) for _ in range(args.runs)]
    for n, run in enumerate(runs, 1):
        print(f"run {n}: {run}", file=sys.stderr)
    result: dict[str, Any] = {"bench": "storm_delivery"}
    for key in ("reply_p99_s", "updates_per_60s_max", "digest_age_max_s"):
        result[key] = median([r[key] for r in runs])
    for key in ("updates_per_60s_max", "updates_for_unposted", "slack_429"):
        result[key] = int(median([r[key] for r in runs]))
    if args.no_rca:
        result["rca_all_s"], result["bedrock_rpm_max"] = None, None
        result["rca_null_reason"] = "--no-rca"
    else:
        rca_all, rpm, why = rca_figures()
        result["rca_all_s"], result["bedrock_rpm_max"] = rca_all, rpm
        if why:
            result["rca_null_reason"] = why
    emit(result)


if __name__ == "__main__":
    main()
