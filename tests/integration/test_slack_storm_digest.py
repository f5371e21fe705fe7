"""The storm digest with two replicas delivering from one database (SQLite and PostgreSQL),
through the real slack-sdk client against the Slack fake with its rate limits on."""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine

from tests.conftest import FakeClock
from tests.integration.test_storm_delivery import (
    card_posts,
    is_digest,
    limited_fake,
    open_storm,
    slack_worker,
    storm_policy,
    waiting_cards,
)


async def test_two_replicas_keep_one_digest_per_channel_and_either_one_closes_it(
    engine: Engine, clock: FakeClock
) -> None:
    fake = await limited_fake(clock).start()
    try:
        created = open_storm(engine, clock, 40, storm_policy())
        one, two = (
            slack_worker(engine, clock, fake, digest_after={"slack": 10}, holder=name)
            for name in ("replica-1", "replica-2")
        )
        for _ in range(2 * 20):  # twenty seconds: both replicas deliver at once
            await asyncio.gather(one.deliver_due(), two.deliver_due())
            clock.advance(0.5)
        assert waiting_cards(engine) > 10  # the storm is still on
        for _ in range(2 * 40):  # the first replica is gone; the second one goes on alone
            await two.deliver_due()
            clock.advance(0.5)
        digests = [c for c in fake.calls if is_digest(c)]
        posted = [c for c in digests if c.method == "chat.postMessage"]
        assert len(posted) == 1  # one digest in the channel, not one per replica
        edits = [c for c in digests if c.method == "chat.update"]
        assert len(edits) >= 5  # kept live all along the storm, by both replicas
        assert len({c.args["ts"] for c in edits}) == 1  # always the one digest
        # the second replica closes the digest the first one posted
        assert edits[-1].args["text"].startswith(":white_check_mark: Storm over")
        assert len(card_posts(fake)) == len(created) and waiting_cards(engine) == 0
        assert fake.rejected["chat.postMessage"] == 0 and fake.rejected["chat.update"] == 0
    finally:
        await fake.stop()
