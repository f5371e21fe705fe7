"""The outbox's Slack budgets as the bot ships them, through the real slack-sdk client against the
Slack fake enforcing Slack's limits (HTTP 429 with Retry-After when exceeded)."""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine

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
    # decides when it sends. The first card reaches Slack 0.9 s after the bot sent it (a slow
    # network, a busy process): the posts after it must still fit Slack's count.
    fake = await FakeSlack(post_limit=Limit(1, 3), clock=seconds_of(clock)).start()
    try:
        created = open_storm(sqlite_engine, clock, 8, storm_policy())
        limits = load_slack_settings(
            bot_token=BOT_TOKEN, signing_secret="s", api_url=fake.api_url, default_channel=CHANNEL
        ).outbox_rate_limits()
        box = slack_worker(sqlite_engine, clock, fake, rate_limits=limits)
        fake.hold("chat.postMessage")
        first = asyncio.create_task(box.deliver_due())
        await fake.wait_for(lambda: fake.held("chat.postMessage") == 1)
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
