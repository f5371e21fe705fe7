"""One incident, every surface: a press in Slack updates the Teams card and the console, and a
click in Teams updates the Slack card, through the core and the outbox."""

from __future__ import annotations

import uuid
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import select

from bot.store.repo import OUTBOX
from integrations.teams import TeamsSettings
from tests.conftest import FakeClock
from tests.fakes.slack import CHANNEL, payload, slack_bot
from tests.fakes.teams import (
    APP_ID,
    PASSWORD,
    TENANT_ID,
    FakeBotConnector,
    StaticTokenProvider,
    teams_activity,
)

SLACK_USER = "U0RESP001"
TEAMS_USER = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"  # Ann in the recorded Teams activities
ROLES = {
    "default_role": "viewer",
    "roles": {"responder": [f"slack:{SLACK_USER}", f"teams:{TEAMS_USER}"]},
}


def teams_header(card: dict | None) -> str:  # type: ignore[type-arg]
    assert card is not None
    return str(next(b for b in card["body"] if b.get("bleed"))["items"][0]["text"])


async def test_slack_and_teams_cards_follow_each_other(tmp_path: Path, clock: FakeClock) -> None:
    connector = await FakeBotConnector().start()
    teams = TeamsSettings(
        app_id=APP_ID,
        app_password=SecretStr(PASSWORD),
        tenant_id=TENANT_ID,
        anonymous=True,
        default_channel="sre/general",
        timeout=5,
    )
    options = {"teams": teams, "teams_tokens": StaticTokenProvider()}
    try:
        async with slack_bot(tmp_path, clock, ROLES, runtime_options=options) as bot:
            http = bot.slack.client
            installed = await http.post(
                "/api/messages",
                json=teams_activity("conversation_update_team_added", connector.url),
            )
            assert installed.status_code == 202
            (incident,) = bot.open_incidents(1)
            await bot.settle()
            assert len(bot.fake.calls_to("chat.postMessage")) == 1
            assert [c.kind for c in connector.calls if c.kind == "post"] == ["post"]

            # Acknowledge pressed in Slack: the Teams card and the console card follow
            ts = bot.card_ts(incident)
            value = next(
                e["value"]
                for e in bot.fake.messages[(CHANNEL, ts)]["blocks"][-1]["elements"]
                if e["action_id"] == "acknowledge"
            )
            press = payload(
                "block_actions",
                action_id="acknowledge",
                value=value,
                user=SLACK_USER,
                channel=CHANNEL,
                message_ts=ts,
                trigger_id="trigger-x1",
                action_ts="1790000999.000001",
                response_url=bot.fake.response_url("x1"),
            )
            assert (await bot.slack.interaction(press)).status_code == 200
            await bot.settle()
            await bot.settle()
            teams_updates = [c for c in connector.calls if c.kind == "update"]
            assert teams_updates and "acknowledged" in teams_header(teams_updates[-1].card)
            with bot.runtime.engine.connect() as conn:
                console = conn.execute(
                    select(OUTBOX.c.status).where(
                        OUTBOX.c.surface == "console", OUTBOX.c.kind == "update"
                    )
                ).all()
            assert console and {r.status for r in console} == {"sent"}

            # Unacknowledge clicked in Teams: the Slack card follows
            click = teams_activity("invoke_action_execute", connector.url, id=f"f:{uuid.uuid4()}")
            click["value"]["action"]["verb"] = "unacknowledge"
            click["value"]["action"]["data"] = {"incident_id": incident, "version": "2"}
            assert (await http.post("/api/messages", json=click)).status_code == 200
            assert bot.state(incident) == "open"
            await bot.settle()
            await bot.settle()
            replies = [c for c in bot.fake.calls_to("chat.postMessage") if c.args.get("thread_ts")]
            assert f"unacknowledged by teams:{TEAMS_USER}" in str(replies[-1].args)
            assert (
                bot.fake.messages[(CHANNEL, ts)]["blocks"][-1]["elements"][0]["action_id"]
                == "acknowledge"
            )  # the Slack card offers Acknowledge again
    finally:
        await connector.stop()
