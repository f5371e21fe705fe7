"""The outbox's Slack budgets as the bot ships them, through the real slack-sdk client against the
Slack fake enforcing Slack's limits (HTTP 429 with Retry-After when exceeded)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, update

from bot.ratelimit import BUDGETS, Budget, SharedBucket, SlidingWindow
from integrations.slack import load_slack_settings
from tests.conftest import FakeClock
from tests.fakes.slack import BOT_TOKEN, CHANNEL, FakeSlack, Limit
from tests.integration.test_storm_delivery import (
    card_posts,
    open_storm,
    seconds_of,
    slack_worker,
    storm_policy,
)


async def test_a_post_that_reaches_slack_late_does_not_push_the_next_ones_over_its_limit(
    sqlite_engine: Engine, clock: FakeClock
) -> None:
    # Slack counts a post when it arrives (one a second per channel, bursts of 3); the bot
    # decides when it sends. The first cards (the bot's burst, sent together) reach Slack 0.9 s
    # after the bot sent them (a slow network, a busy process): the posts after them must still
    # fit Slack's count.
    fake = await FakeSlack(post_limit=Limit(1, 3), clock=seconds_of(clock)).start()
    try:
        created = open_storm(sqlite_engine, clock, 8, storm_policy())
        limits = load_slack_settings(
            bot_token=BOT_TOKEN, signing_secret="s", api_url=fake.api_url, default_channel=CHANNEL
        ).outbox_rate_limits()
        box = slack_worker(sqlite_engine, clock, fake, rate_limits=limits)
        fake.hold("chat.postMessage")
        first = asyncio.create_task(box.deliver_due())
        await fake.wait_for(lambda: fake.held("chat.postMessage") >= 1)
        clock.advance(0.9)
        fake.release("chat.postMessage")
        await first
        for _ in range(4 * 12):  # twelve seconds
            await box.deliver_due()
            clock.advance(0.25)
        assert len(card_posts(fake)) == len(created)
        assert fake.rejected["chat.postMessage"] == 0
    finally:
        await fake.stop()


def test_a_token_taken_while_the_database_is_busy_counts_from_when_it_is_taken(
    engine: Engine,
) -> None:
    now = [1000.0]
    bucket = SharedBucket(engine, "slack:C1", rate=1, burst=1, now=lambda: now[0])
    assert bucket.try_take() == 0.0  # a post at 1000.0
    now[0] = 1001.0  # the next one is due
    with ThreadPoolExecutor(1) as pool:
        with engine.begin() as busy:  # another replica's transaction holds the lane meanwhile
            busy.execute(
                update(BUDGETS).where(BUDGETS.c.lane == "slack:C1").values(tokens=BUDGETS.c.tokens)
            )
            taking = pool.submit(bucket.try_take)
            time.sleep(0.3)  # the take waits for the database
            now[0] = 1001.6
        assert taking.result(10) == 0.0  # the post goes at 1001.6, once the lane is free
    now[0] = 1002.2  # 0.6 s later: too soon for Slack, so too soon for the budget
    assert bucket.try_take() == pytest.approx(0.4)


def test_a_batch_takes_what_the_budget_has_and_says_when_the_rest_may_go(engine: Engine) -> None:
    now = [1000.0]
    bucket = SharedBucket(engine, "slack:C2", rate=2, burst=3, now=lambda: now[0])
    assert bucket.room(10) == 3 and bucket.room(10) == 3  # looking takes nothing
    assert bucket.take(10) == (3, pytest.approx(0.5))  # the burst; the next in half a second
    assert bucket.take(1) == (0, pytest.approx(0.5))
    now[0] += 1.0
    assert bucket.take(5) == (2, pytest.approx(0.5))


def test_a_batch_never_exceeds_a_rolling_window(engine: Engine) -> None:
    now = [1000.0]
    budget = Budget(
        SharedBucket(engine, "slack:*update*", rate=10, burst=10, now=lambda: now[0]),
        SlidingWindow(engine, "slack:*update*@window", 4, 60.0, lambda: now[0]),
    )
    assert budget.take(3) == (3, 0.0)
    now[0] += 10
    assert budget.room(5) == 1
    taken, wait = budget.take(5)
    assert taken == 1 and wait == pytest.approx(50.0)  # the first of the four ends at 1060
    now[0] += 50
    assert budget.take(5)[0] == 3  # 1060: the three sent at 1000 left the window
