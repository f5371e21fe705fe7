"""Teams in the storm: the Bot Connector answers 5xx, 429 with ``Retry-After``, hangs past the
client's timeout, then resets connections, each for a while, while incidents keep opening.

The bot runs in this process (the real Agents SDK over HTTP to the loopback connector; the
multi-process storm in tests/chaos/storm.py would need an Entra ID token service for Teams),
on a clock the test moves. Must hold: every card reaches Teams exactly once after the
connector recovers; a 429's ``Retry-After`` sets the next attempt; while deliveries fail,
/ready names ``surface:teams`` with since when, and /metrics has the seconds; recovered,
/ready is ok again. Fast: part of the normal suite.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.pipeline.ingest import ingest
from bot.store.repo import OUTBOX
from tests.builders import alert
from tests.conftest import FakeClock
from tests.fakes.faults import Fault
from tests.fakes.teams import TeamsBot, teams_bot

pytestmark = pytest.mark.chaos

RETRY_AFTER_S = 7.0
KINDS = [Fault.ERROR, Fault.THROTTLE, Fault.HANG, Fault.REFUSE]


def open_incidents(bot: TeamsBot, clock: FakeClock, names: list[str]) -> list[int]:
    alerts = [alert(clock.now(), service=name) for name in names]
    with bot.runtime.engine.begin() as conn:
        return ingest(conn, alerts, clock.now(), bot.policy()).created


def waiting(bot: TeamsBot) -> list[tuple[int, str]]:
    """(attempts, next attempt ISO time) of the Teams messages still pending."""
    with bot.runtime.engine.connect() as conn:
        rows = conn.execute(
            select(OUTBOX.c.attempts, OUTBOX.c.next_attempt_at).where(
                OUTBOX.c.surface == "teams", OUTBOX.c.status == "pending"
            )
        ).all()
    return [(r[0], _utc(r[1]).isoformat()) for r in rows]


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def teams_check(bot: TeamsBot) -> dict[str, object]:
    answer = await bot.client.get("/ready")
    assert answer.status_code == 200
    found: dict[str, object] = answer.json()["checks"]["surface:teams"]
    return found


async def test_teams_failing_each_way_loses_and_doubles_no_card(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with teams_bot(tmp_path, clock, connector_timeout=0.5) as bot:
        await bot.send(bot.activity("conversation_update_team_added"))
        bot.connector.calls.clear()  # the welcome message
        services: list[str] = []
        for kind in KINDS:
            names = [f"teams-{kind.value}-{n}" for n in range(2)]
            services += names
            open_incidents(bot, clock, names)
            bot.connector.faults.set(kind, seconds=60, retry_after=RETRY_AFTER_S)
            failed_at = clock.now()
            await bot.outbox.deliver_due()
            check = await teams_check(bot)
            assert check["status"] == "down", (kind, check)
            assert check["failing_since"] == failed_at.isoformat(), kind

            if kind is Fault.THROTTLE:  # the next attempt waits for Retry-After, no sooner
                due = failed_at.timestamp() + RETRY_AFTER_S
                assert all(
                    a == 1 and datetime.fromisoformat(at).timestamp() == pytest.approx(due)
                    for a, at in waiting(bot)
                ), waiting(bot)
                served = bot.connector.faults.served[Fault.THROTTLE]
                clock.advance(RETRY_AFTER_S - 1)
                await bot.outbox.deliver_due()
                assert bot.connector.faults.served[Fault.THROTTLE] == served
            else:
                clock.advance(RETRY_AFTER_S - 1)
            check = await teams_check(bot)
            assert check["failing_for_s"] == RETRY_AFTER_S - 1, kind
            assert f"failing for {RETRY_AFTER_S - 1:.0f}s" in str(check["reason"])
            metrics = (await bot.client.get("/metrics")).text
            seconds = f"{RETRY_AFTER_S - 1:.1f}"
            assert f'bot_dependency_failing_seconds{{dependency="surface:teams"}} {seconds}' in (
                metrics
            )

            bot.connector.faults.clear()
            for _ in range(6):  # recovered: catch up (each retry after its backoff)
                clock.advance(120)
                await bot.outbox.deliver_due()
                if not waiting(bot):
                    break
            assert not waiting(bot), (kind, waiting(bot))
            check = await teams_check(bot)
            assert check["status"] == "ok" and "failing_since" not in check, (kind, check)

        posted = Counter(
            name
            for call in bot.connector.of_kind("post")
            for name in services
            if f"5xx burst on {name}" in json.dumps(call.body)
        )
        assert set(posted) == set(services), sorted(set(services) - set(posted))
        assert all(n == 1 for n in posted.values()), posted
        assert bot.connector.faults.served.keys() == set(KINDS)
