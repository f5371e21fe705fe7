"""The slash command and mentions of the bot, signed like Slack, over HTTP to the real app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeClock
from tests.fakes.slack import APP_TOKEN, CHANNEL, FakeSlack, SlackBot, payload, slack_bot

RESPONDER, VIEWER = "U0RESP001", "U0VIEW001"
ROLES = {"default_role": "viewer", "roles": {"responder": [f"slack:{RESPONDER}"]}}


@pytest.fixture
async def bot(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SlackBot]:
    async with slack_bot(tmp_path, clock, ROLES) as running:
        running.open_incidents(3)
        await running.outbox.deliver_due()
        yield running


def command_fields(bot: SlackBot, text: str, user: str, name: str) -> dict[str, Any]:
    return payload(
        "slash_command",
        channel=CHANNEL,
        user=user,
        command="/incident",
        text=text,
        response_url=bot.fake.response_url(name),
        trigger_id=f"trigger-{name}",
    )


async def slash(bot: SlackBot, text: str, user: str = RESPONDER, name: str = "c1") -> str:
    """Run ``/incident <text>``; answer what the person sees (the ack's or the later answer)."""
    response = await bot.slack.command(command_fields(bot, text, user, name))
    assert response.status_code == 200, response.text
    if response.content:
        return str(response.json()["text"])
    await bot.settle()
    (answer,) = bot.fake.responses[name]
    assert answer["response_type"] == "ephemeral"
    return str(answer["text"])


async def test_help_and_unknown_subcommands_answer_at_once(bot: SlackBot) -> None:
    assert "`/incident suppress INC-12 1h reason…`" in await slash(bot, "help")
    assert (await slash(bot, "")).startswith("*/incident* works on incidents")
    assert (await slash(bot, "dance")).startswith("I don't know `dance`.")
    assert bot.fake.responses == {}  # answered in the acknowledgement itself


async def test_mistakes_are_explained_in_the_acknowledgement(bot: SlackBot) -> None:
    said = await slash(bot, "suppress INC-1 soon")
    assert said == (
        "'soon' is not a duration; use forms like 30m, 1h, 4h, 1d. "
        "Usage: `/incident suppress INC-12 1h reason…`"
    )


async def test_list_show_and_rules(bot: SlackBot) -> None:
    listed = await slash(bot, "list", name="list")
    assert listed.startswith("*Incidents not resolved* (3 shown)")
    assert "<http://127.0.0.1:8080/incidents/3|INC-3> 5xx burst on svc-2" in listed
    assert (
        await slash(bot, "list acked", name="acked")
        == "No incidents acknowledged right now. :relieved:"
    )
    shown = await slash(bot, "show INC-2", name="show")
    assert shown.startswith("INC-2 [high] 5xx burst on svc-1")
    assert bot.fake.responses["show"][0]["blocks"][0]["type"] == "header"
    rules = await slash(bot, "rules", name="rules")
    assert rules.startswith("*Detection rules*") and ":hourglass: not run yet" in rules
    missing = await slash(bot, "show INC-99", name="missing")
    assert missing.startswith(":grey_question: no incident INC-99")


async def test_state_changes_from_the_command_line(bot: SlackBot) -> None:
    assert await slash(bot, "ack INC-1", name="a") == f"INC-1: acknowledged by <@{RESPONDER}>"
    said = await slash(bot, "suppress INC-2 2h deploy of v2", name="s")
    assert said.startswith(f"INC-2: suppressed by <@{RESPONDER}> until 2026-11-22 12:00 UTC")
    assert await slash(bot, "resolve INC-3 rolled back", name="r") == (
        f"INC-3: resolved by <@{RESPONDER}>: rolled back"
    )
    assert await slash(bot, "reopen INC-3", name="o") == f"INC-3: reopened by <@{RESPONDER}>"
    assert await slash(bot, "unsuppress INC-2", name="u") == (
        f"INC-2: unsuppressed by <@{RESPONDER}>; back to open"
    )
    assert await slash(bot, "ack INC-1", name="again") == (
        f":warning: INC-1 is already acknowledged by <@{RESPONDER}>"
    )
    assert (await slash(bot, "escalate INC-1", name="e")).endswith("no pager is set up")
    assert [bot.state(i) for i in (1, 2, 3)] == ["acknowledged", "open", "open"]


async def test_a_viewer_is_refused_and_it_is_audited(bot: SlackBot) -> None:
    said = await slash(bot, "ack INC-1", user=VIEWER)
    assert "you need the responder role (you are viewer)" in said
    assert bot.state(1) == "open"
    assert bot.audit() == [(f"slack:{VIEWER}", "acknowledge", "refused", 1)]
    refused = await slash(bot, "silence service=svc-1 1h test", user=VIEWER, name="s")
    assert "you need the responder role" in refused


async def test_silence_answers_how_many_incidents_it_covers(bot: SlackBot) -> None:
    said = await slash(bot, "silence service=svc-* host!=db-* 2h load test")
    assert said.startswith(":shushing_face: Silence #1 on `service=svc-*` `host!=db-*` until")
    assert said.endswith("It covers *3* active incidents right now.")


async def test_a_redelivered_command_applies_once(bot: SlackBot) -> None:
    fields = command_fields(bot, "ack INC-1", RESPONDER, "c1")
    for _ in range(2):
        assert (await bot.slack.command(fields)).status_code == 200
        await bot.settle()
    assert [a[2] for a in bot.audit()] == ["applied"]
    assert len(bot.fake.responses["c1"]) == 1


def mention(text: str, event_id: str) -> dict[str, Any]:
    return payload(
        "app_mention",
        text=text,
        user=RESPONDER,
        ts="1790000500.000100",
        channel=CHANNEL,
        event_id=event_id,
    )


async def test_mentions_work_like_the_command_and_redeliveries_apply_once(bot: SlackBot) -> None:
    event = mention("<@U0BOT0001> ack INC-2", "Ev0001")
    first = await bot.slack.event(event)
    again = await bot.slack.event(event, retry=1)
    assert first.status_code == again.status_code == 200
    await bot.settle()
    assert bot.state(2) == "acknowledged"
    assert [a[1:3] for a in bot.audit()] == [("acknowledge", "applied")]
    (told,) = bot.fake.calls_to("chat.postEphemeral")
    assert told.args["user"] == RESPONDER and told.args["text"] == (
        f"INC-2: acknowledged by <@{RESPONDER}>"
    )


async def test_the_events_url_is_verified(bot: SlackBot) -> None:
    answer = await bot.slack.event(
        {
            "token": "x",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    )
    assert answer.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


async def test_socket_mode_serves_the_same_listeners(tmp_path: Path, clock: FakeClock) -> None:
    async with slack_bot(tmp_path, clock, ROLES, FakeSlack(), app_token=APP_TOKEN) as bot:
        bot.open_incidents(1)
        await bot.fake.wait_for(lambda: bool(bot.fake.calls_to("apps.connections.open")))
        (opened,) = bot.fake.calls_to("apps.connections.open")
        assert opened.authorization == f"Bearer {APP_TOKEN}"
        ack = await bot.fake.envelope("slash_commands", command_fields(bot, "help", RESPONDER, "s"))
        assert "`/incident ack INC-12`" in ack["payload"]["text"]
        await bot.fake.envelope("slash_commands", command_fields(bot, "ack INC-1", RESPONDER, "sm"))
        await bot.settle()
        assert bot.state(1) == "acknowledged"
        assert bot.fake.responses["sm"][0]["text"] == f"INC-1: acknowledged by <@{RESPONDER}>"
