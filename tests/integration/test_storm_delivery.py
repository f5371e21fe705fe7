"""Delivery in a storm, through the real slack-sdk client against the Slack fake with its rate
limits on (HTTP 429 with Retry-After when exceeded)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine, select

from bot.authz import Roles
from bot.domain.hits import Alert, Severity
from bot.domain.incident import Command, CommandKind
from bot.interactions import Interactions
from bot.outbox import OutboxWorker
from bot.pipeline.enrich import Enricher
from bot.pipeline.ingest import IngestPolicy, ingest
from bot.pipeline.notify import Router, RouteRule, Target
from bot.settings import RateLimit
from bot.store.repo import CARD_REFS, OUTBOX
from integrations.heuristic import HeuristicRcaEngine
from integrations.slack import SlackChatSurface, load_slack_settings
from tests.builders import alert, console_policy, mark_cards_posted
from tests.conftest import FakeClock
from tests.fakes.slack import BOT_TOKEN, CHANNEL, Call, FakeSlack, Limit, slack_bot

CONSOLE = "https://bot.example.org"
UPDATES = RateLimit(rate=48 / 60, burst=1)


async def test_start_up_says_nothing_about_an_unused_token(
    tmp_path: Path,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # SLACK_BOT_TOKEN in the environment is how people configure the bot; bolt reads it too
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    caplog.set_level(logging.INFO)
    async with slack_bot(tmp_path, clock) as bot:
        (incident,) = bot.open_incidents()
        await bot.settle()
        assert bot.card_ts(incident)
    said = [r.getMessage() for r in caplog.records]
    assert not [m for m in said if "will be unused" in m or "will be ignored" in m], said
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], said


# a storm into Slack channels at Slack's own limits ---------------------------------------------


def seconds_of(clock: FakeClock) -> Callable[[], float]:
    return lambda: clock.now().timestamp()


def storm_policy(channels: int = 0) -> IngestPolicy:
    """Services svc-0 … svc-<channels-1> to channels C0000 …, everything else to CHANNEL."""
    rules = tuple(
        RouteRule(Target("slack", f"C{n:04d}"), service=frozenset({f"svc-{n}"}))
        for n in range(channels)
    )
    base = console_policy()
    return IngestPolicy(
        router=Router(rules, (Target("slack", CHANNEL),)),
        flap_window=base.flap_window,
        card_refresh=base.card_refresh,
        realert=base.realert,
    )


def storm_alert(
    clock: FakeClock, service: int, host: int, severity: Severity = Severity.HIGH
) -> Alert:
    """One incident per (service, host): the same rule firing on many hosts."""
    name, where = f"svc-{service}", f"web-{host}"
    group = (("service", name), ("host", where))
    return alert(clock.now(), service=name, host=where, severity=severity, group=group)


def open_storm(engine: Engine, clock: FakeClock, n: int, policy: IngestPolicy) -> list[int]:
    with engine.begin() as conn:
        alerts = [storm_alert(clock, i, i) for i in range(n)]
        return ingest(conn, alerts, clock.now(), policy).created


def slack_worker(engine: Engine, clock: FakeClock, fake: FakeSlack, **kw: Any) -> OutboxWorker:
    """The outbox through slack-sdk, spending Slack's budgets as the fake enforces them."""
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake.api_url, timeout=5)
    return OutboxWorker(
        engine,
        {"slack": SlackChatSurface(client, CONSOLE, 5, secrets=[BOT_TOKEN])},
        clock,
        CONSOLE,
        monotonic=seconds_of(clock),
        **{"rate_limits": {"slack": RateLimit(rate=1, burst=1), "slack.update": UPDATES}, **kw},
    )


def limited_fake(clock: FakeClock) -> FakeSlack:
    return FakeSlack(
        post_limit=Limit(rate=1, burst=1), update_limit=Limit(50 / 60, 5), clock=seconds_of(clock)
    )


def card_posts(fake: FakeSlack) -> list[Call]:
    return [c for c in fake.calls_to("chat.postMessage") if not c.error and "metadata" in c.args]


def is_reply(call: Call) -> bool:
    return call.method == "chat.postMessage" and not call.error and "thread_ts" in call.args


async def test_a_press_is_answered_before_the_channels_backlog_of_card_posts(
    sqlite_engine: Engine, clock: FakeClock
) -> None:
    fake = await limited_fake(clock).start()
    try:
        created = open_storm(sqlite_engine, clock, 200, storm_policy())
        box = slack_worker(sqlite_engine, clock, fake)
        while len(card_posts(fake)) < 3:  # the storm is under way: three cards are out
            await box.deliver_due()
            clock.advance(0.25)
        pressed = created[0]
        outcome = Interactions(
            sqlite_engine, Roles.embedded_default(), storm_policy().router, clock
        ).execute_sync(
            pressed, Command(CommandKind.ACKNOWLEDGE, actor="console:alice", surface="slack")
        )
        assert outcome.incident.state.value == "acknowledged"
        posted_before = len(card_posts(fake))
        for _ in range(40):  # ten seconds of storm
            await box.deliver_due()
            clock.advance(0.25)
        replies = [c for c in fake.calls if is_reply(c)]
        assert [r.args["text"] for r in replies] == ["acknowledged by console:alice"]
        at = fake.calls.index(replies[0])
        posts_first = [c for c in card_posts(fake) if fake.calls.index(c) < at]
        # the reply took the channel's next post slot: at most one card post went before it
        assert len(posts_first) - posted_before <= 1
        assert len(card_posts(fake)) < 200  # and the backlog was still there
        assert fake.rejected["chat.postMessage"] == 0
    finally:
        await fake.stop()


async def test_every_channel_sends_at_its_own_rate_whatever_the_backlog_elsewhere(
    engine: Engine, clock: FakeClock
) -> None:
    # 5,000 cards: 4,550 high ones for one channel sort before all the others' low ones
    with engine.begin() as conn:
        alerts = [storm_alert(clock, 0, i) for i in range(4550)]
        alerts += [storm_alert(clock, c, i, Severity.LOW) for c in range(1, 10) for i in range(50)]
        created = ingest(conn, alerts, clock.now(), storm_policy(channels=10)).created
    assert len(created) == 5000
    fake = await limited_fake(clock).start()
    try:
        box = slack_worker(engine, clock, fake)
        for second in range(3):
            for _ in range(4):
                await box.deliver_due()
                clock.advance(0.25)
            per_channel = Counter(c.args["channel"] for c in card_posts(fake))
            # from the first second on, each of the ten channels got its one post a second
            assert per_channel == {f"C{n:04d}": second + 1 for n in range(10)}
        assert fake.rejected["chat.postMessage"] == 0
    finally:
        await fake.stop()


@pytest.mark.rate
async def test_card_updates_never_exceed_48_in_any_rolling_minute(
    engine: Engine, clock: FakeClock
) -> None:
    created = open_storm(engine, clock, 60, storm_policy())
    fake = await FakeSlack(update_limit=Limit(50 / 60, 5), clock=seconds_of(clock)).start()
    try:
        # Slack's budgets as the bot ships them, posts unlimited for the test
        limits = load_slack_settings(
            bot_token=BOT_TOKEN, signing_secret="s", api_url=fake.api_url, default_channel=CHANNEL
        ).outbox_rate_limits()
        box = slack_worker(
            engine, clock, fake, rate_limits={**limits, "slack": RateLimit(rate=1000, burst=1000)}
        )
        await box.deliver_due()
        assert len(card_posts(fake)) == 60
        router = storm_policy().router
        people = Interactions(engine, Roles.embedded_default(), router, clock)
        for incident in created:  # 60 acknowledgements and 60 resolutions: 120 card updates
            people.execute_sync(
                incident, Command(CommandKind.ACKNOWLEDGE, actor="console:alice", surface="api")
            )
        resolved = False
        for _ in range(2 * 150):  # two and a half minutes
            if not resolved and len(fake.calls_to("chat.update")) >= 50:
                resolved = True
                for incident in created:
                    people.execute_sync(
                        incident,
                        Command(CommandKind.RESOLVE, actor="console:alice", surface="api"),
                    )
            await box.deliver_due()
            clock.advance(0.5)
        updates = sorted(c.at for c in fake.calls_to("chat.update") if not c.error)
        most = max(sum(1 for t in updates if start <= t < start + 60) for start in updates)
        assert len(updates) > 48 and most <= 48
        assert fake.rejected["chat.update"] == 0
    finally:
        await fake.stop()


def updates_for_unposted_cards(engine: Engine) -> list[str]:
    """Update rows written after the post of their card while that post is still waiting, or
    for a card that never was on Slack."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(OUTBOX.c.id, OUTBOX.c.order_key, OUTBOX.c.kind, OUTBOX.c.status).order_by(
                OUTBOX.c.id
            )
        ).all()
        refs = {
            f"{r.surface}:{r.channel}:{r.incident_id}"
            for r in conn.execute(
                select(CARD_REFS.c.surface, CARD_REFS.c.channel, CARD_REFS.c.incident_id)
            )
        }
    waiting: set[str] = set()
    found = []
    for row in rows:
        if row.kind == "post" and row.status == "pending":
            waiting.add(row.order_key)
        elif row.kind == "update" and (row.order_key in waiting or row.order_key not in refs):
            found.append(f"{row.order_key} (row {row.id})")
    return found


@pytest.mark.rate
async def test_no_update_is_queued_for_a_card_that_is_not_posted_yet(
    sqlite_engine: Engine, clock: FakeClock
) -> None:
    engine, policy = sqlite_engine, storm_policy()
    fake = await limited_fake(clock).start()
    try:
        created = open_storm(engine, clock, 200, policy)
        box = slack_worker(engine, clock, fake)
        enricher = Enricher(
            engine, HeuristicRcaEngine(), policy.router, clock, timedelta(seconds=5)
        )
        people = Interactions(engine, Roles.embedded_default(), policy.router, clock)
        presses = rcas = 0
        for tick in range(2 * 120):  # two minutes of storm, a round every 0.5 s
            if rcas < len(created):  # root causes arrive, two a second
                await enricher.analyse(created[rcas])
                rcas += 1
            if tick % 20 == 10:  # every ten seconds someone acknowledges or resolves a card
                pressed = created[presses * 13]
                command = CommandKind.ACKNOWLEDGE if presses % 2 == 0 else CommandKind.RESOLVE
                people.execute_sync(
                    pressed, Command(command, actor="console:alice", surface="slack")
                )
                presses += 1
            if tick % 60 == 30:  # the storm goes on: new events refresh the counts
                with engine.begin() as conn:
                    alerts = [storm_alert(clock, i, i) for i in range(200)]
                    ingest(conn, alerts, clock.now(), policy)
            assert updates_for_unposted_cards(engine) == [], tick
            await box.deliver_due()
            clock.advance(0.5)
        posts = len(card_posts(fake))
        # every press got its thread reply, under its card's post (a reply follows its post)
        with engine.connect() as conn:
            posted = set(conn.execute(select(CARD_REFS.c.message_id)).scalars())
        replies = [c for c in fake.calls if is_reply(c)]
        assert len(replies) == presses and {r.args["thread_ts"] for r in replies} <= posted
        updates = [c for c in fake.calls_to("chat.update") if not c.error]
        assert posts >= 100 and rcas == 200 and presses == 12
        # every update shows something a person could not see yet: a press, a root cause
        assert 0 < len(updates) <= posts + presses + rcas
        assert fake.rejected["chat.postMessage"] == 0 and fake.rejected["chat.update"] == 0
    finally:
        await fake.stop()


def is_digest(call: Call) -> bool:
    return (
        call.method in ("chat.postMessage", "chat.update")
        and not call.error
        and str(call.args.get("text", "")).startswith((":ocean: Storm", ":white_check_mark: Storm"))
    )


def waiting_cards(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(
            conn.execute(
                select(OUTBOX.c.id).where(OUTBOX.c.kind == "post", OUTBOX.c.status == "pending")
            ).all()
        )


async def test_the_storm_digest_is_never_more_than_ten_seconds_old(
    sqlite_engine: Engine, clock: FakeClock
) -> None:
    engine, policy = sqlite_engine, storm_policy()
    fake = await limited_fake(clock).start()
    try:
        created = open_storm(engine, clock, 60, policy)
        box = slack_worker(engine, clock, fake, digest_after={"slack": 10})
        enricher = Enricher(
            engine, HeuristicRcaEngine(), policy.router, clock, timedelta(seconds=5)
        )
        analysed: set[int] = set()
        ages: list[float] = []
        for _ in range(2 * 75):  # 75 s, a round every 0.5 s
            # root causes land on every card that is out: routine updates compete for the
            # same chat.update budget as the digest
            with engine.connect() as conn:
                out = set(conn.execute(select(CARD_REFS.c.incident_id)).scalars())
            for incident in sorted(out - analysed)[:2]:
                await enricher.analyse(incident)
                analysed.add(incident)
            waiting = waiting_cards(engine)
            await box.deliver_due()
            edits = [c.at for c in fake.calls if is_digest(c)]
            if waiting and edits:
                ages.append(clock.now().timestamp() - edits[-1])
            clock.advance(0.5)
        digests = [c for c in fake.calls if is_digest(c)]
        assert ages and max(ages) <= 10, max(ages)
        assert len(digests) >= 8  # edited all along the storm, not just posted
        first = digests[0]
        assert first.method == "chat.postMessage"
        assert "waiting for a card" in first.args["text"] and "High" in json.dumps(
            first.args["blocks"]
        )
        assert all(c.args["ts"] for c in digests[1:])
        assert digests[-1].args["text"].startswith(":white_check_mark: Storm over")
        assert len(card_posts(fake)) == len(created) and waiting_cards(engine) == 0
        assert fake.rejected["chat.postMessage"] == 0 and fake.rejected["chat.update"] == 0
    finally:
        await fake.stop()


def test_a_cards_waiting_updates_coalesce_and_a_press_moves_them_up(
    engine: Engine, clock: FakeClock
) -> None:
    policy = storm_policy()
    (incident,) = open_storm(engine, clock, 1, policy)
    mark_cards_posted(engine, clock.now())
    for _ in range(3):  # new events for a posted card: one refresh waits, the others coalesce
        clock.advance(61)
        with engine.begin() as conn:
            ingest(conn, [storm_alert(clock, 0, 0)], clock.now(), policy)
    Interactions(engine, Roles.embedded_default(), policy.router, clock).execute_sync(
        incident, Command(CommandKind.ACKNOWLEDGE, actor="console:alice", surface="slack")
    )
    with engine.connect() as conn:
        rows = conn.execute(
            select(OUTBOX.c.kind, OUTBOX.c.priority)
            .where(OUTBOX.c.status == "pending")
            .order_by(OUTBOX.c.id)
        ).all()
    # one update shows it all, and it now goes in the press's lane, before its reply
    assert [tuple(r) for r in rows] == [("update", 0), ("reply", 0)]
