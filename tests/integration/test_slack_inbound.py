"""Signed Slack requests over HTTP to the real FastAPI app and bolt, Slack's Web API faked.

Each test starts the bot (a real ``Runtime`` on a SQLite file, ``create_app`` plus the Slack
router, served by uvicorn on 127.0.0.1), posts a card to the fake Slack through the outbox, and
then acts as Slack: button presses, dialog submissions, slash commands, events.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.domain.incident import Command, CommandKind
from tests.conftest import FakeClock
from tests.fakes.slack import CHANNEL, FakeSlack, SlackBot, payload, slack_bot

RESPONDER, VIEWER, ON_CALL = "U0RESP001", "U0VIEW001", "U0ONCALL1"
ROLES = {
    "default_role": "viewer",
    "roles": {"responder": [f"slack:{RESPONDER}", "slack-group:S0ONCALL", "console:alice"]},
}


@pytest.fixture
async def bot(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SlackBot]:
    fake = FakeSlack(usergroups={"S0ONCALL": [ON_CALL], "S0OTHERS": [VIEWER]})
    async with slack_bot(tmp_path, clock, ROLES, fake) as running:
        running.open_incidents(2)
        await running.outbox.deliver_due()
        yield running


def button(bot: SlackBot, incident_id: int, action_id: str) -> tuple[str, str]:
    """(message ts, value) of a button on the incident's card as Slack shows it now."""
    ts = bot.card_ts(incident_id)
    blocks = bot.fake.messages[(CHANNEL, ts)]["blocks"]
    for element in blocks[-1]["elements"]:
        if element["action_id"] == action_id:
            return ts, element.get("value", "")
    raise AssertionError(f"no {action_id} button on INC-{incident_id}: {blocks[-1]}")


def press_payload(
    bot: SlackBot, incident_id: int, action_id: str, user: str = RESPONDER, name: str = "p1"
) -> dict[str, Any]:
    ts, value = button(bot, incident_id, action_id)
    return payload(
        "block_actions",
        action_id=action_id,
        value=value,
        user=user,
        channel=CHANNEL,
        message_ts=ts,
        trigger_id=f"trigger-{name}",
        action_ts="1790000999.000001",
        response_url=bot.fake.response_url(name),
    )


async def press(bot: SlackBot, incident_id: int, action_id: str, **who: str) -> Any:
    response = await bot.slack.interaction(press_payload(bot, incident_id, action_id, **who))
    assert response.status_code == 200, response.text
    await bot.settle()
    return response


def submission(bot: SlackBot, view: dict[str, Any], values: dict[str, Any], user: str) -> Any:
    data = payload(
        "view_submission",
        user=user,
        view_id=view["id"],
        callback_id=view["callback_id"],
        private_metadata=view["private_metadata"],
        trigger_id="trigger-submit",
    )
    data["view"]["state"]["values"] = values
    return data


def text_input(block: str, value: str | None) -> dict[str, Any]:
    return {block: {block: {"type": "plain_text_input", "value": value}}}


def choice(value: str) -> dict[str, Any]:
    option = {"text": {"type": "plain_text", "text": value}, "value": value}
    return {"duration": {"duration": {"type": "static_select", "selected_option": option}}}


def ephemeral(bot: SlackBot, name: str = "p1") -> list[str]:
    return [str(r.get("text", "")) for r in bot.fake.responses.get(name, [])]


# buttons ---------------------------------------------------------------------------------------


async def test_acknowledge_applies_once_for_a_double_click_and_a_retry(bot: SlackBot) -> None:
    data = press_payload(bot, 1, "acknowledge")
    answers = await asyncio.gather(*(bot.slack.interaction(data) for _ in range(3)))
    assert [a.status_code for a in answers] == [200, 200, 200]
    await bot.settle()
    assert bot.state(1) == "acknowledged"
    assert [a for a in bot.audit() if a[1] == "acknowledge"] == [
        (f"slack:{RESPONDER}", "acknowledge", "applied", 1)
    ]
    assert ephemeral(bot) == []  # nothing to tell: the card and its thread show it
    await bot.outbox.deliver_due()
    ts, _ = button(bot, 1, "unacknowledge")
    replies = [c for c in bot.fake.calls_to("chat.postMessage") if c.args.get("thread_ts") == ts]
    assert [r.args["text"] for r in replies] == [f"acknowledged by <@{RESPONDER}>"]


async def test_each_button_acts_and_the_card_follows(bot: SlackBot, clock: FakeClock) -> None:
    await press(bot, 1, "acknowledge")
    await bot.outbox.deliver_due()
    clock.advance(60)
    await press(bot, 1, "unacknowledge")
    assert bot.state(1) == "open"
    await bot.outbox.deliver_due()
    await press(bot, 1, "acknowledge")  # the card changed: a new press, not a duplicate
    assert bot.state(1) == "acknowledged"
    results = [(a[1], a[2]) for a in bot.audit()]
    assert results == [
        ("acknowledge", "applied"),
        ("unacknowledge", "applied"),
        ("acknowledge", "applied"),
    ]


async def before(bot: SlackBot, kind: CommandKind, **fields: Any) -> None:
    """Put INC-1 into a state from elsewhere (the console), and let its card follow."""
    command = Command(kind, "console:alice", "console", **fields)
    await bot.operations.execute(1, command)
    await bot.outbox.deliver_due()


@pytest.mark.parametrize(
    ("setup", "action", "after"),
    [
        (
            (CommandKind.SUPPRESS, {"duration": timedelta(hours=1), "reason": "x"}),
            "unsuppress",
            "open",
        ),
        ((CommandKind.RESOLVE, {}), "reopen", "open"),
        ((CommandKind.ACKNOWLEDGE, {}), "unacknowledge", "open"),
    ],
)
async def test_the_other_buttons_act_at_once(
    bot: SlackBot, setup: tuple[CommandKind, dict[str, Any]], action: str, after: str
) -> None:
    await before(bot, setup[0], **setup[1])
    await press(bot, 1, action)
    assert bot.state(1) == after
    assert bot.audit()[-1] == (f"slack:{RESPONDER}", action, "applied", 1)


async def test_escalate_without_a_pager_is_explained(bot: SlackBot) -> None:
    data = press_payload(bot, 1, "acknowledge")
    data["actions"][0]["action_id"] = "escalate"
    await bot.slack.interaction(data)
    await bot.settle()
    assert ephemeral(bot) == [":warning: INC-1 cannot be escalated: no pager is set up"]


async def test_a_viewer_is_refused_privately_and_nothing_changes(bot: SlackBot) -> None:
    await press(bot, 1, "acknowledge", user=VIEWER)
    assert bot.state(1) == "open"
    (said,) = ephemeral(bot)
    assert "you need the responder role" in said
    response = bot.fake.responses["p1"][0]
    assert response["response_type"] == "ephemeral" and response["replace_original"] is False
    assert bot.audit() == [(f"slack:{VIEWER}", "acknowledge", "refused", 1)]


async def test_user_group_members_get_the_groups_role(bot: SlackBot) -> None:
    await press(bot, 1, "acknowledge", user=ON_CALL)
    await press(bot, 2, "acknowledge", user=ON_CALL, name="p2")
    assert bot.state(1) == bot.state(2) == "acknowledged"
    assert len(bot.fake.calls_to("usergroups.list")) == 1  # cached
    assert bot.fake.calls_to("usergroups.list")[0].args["include_users"] in ("1", "true")


async def test_a_stale_card_gets_a_private_explanation(bot: SlackBot) -> None:
    stale = press_payload(bot, 1, "acknowledge", user=ON_CALL, name="late")
    await press(bot, 1, "acknowledge")
    await bot.slack.interaction(stale)
    await bot.settle()
    (said,) = ephemeral(bot, "late")
    assert said == f":warning: INC-1 is already acknowledged by <@{RESPONDER}>"


# dialogs ---------------------------------------------------------------------------------------


async def test_suppress_opens_a_dialog_then_previews_and_applies_once(bot: SlackBot) -> None:
    await press(bot, 1, "suppress")
    (opened,) = bot.fake.calls_to("views.open")
    assert opened.args["trigger_id"] == "trigger-p1"
    await bot.fake.wait_for(lambda: bool(bot.fake.calls_to("views.update")))
    view = next(iter(bot.fake.views.values()))  # as views.update left it
    assert "hides *1* open alert of INC-1" in json.dumps(view["blocks"][-1])
    assert bot.state(1) == "open"

    bad = submission(
        bot,
        view,
        {**choice("custom"), **text_input("custom", "soon"), **text_input("reason", "x")},
        RESPONDER,
    )
    answer = await bot.slack.interaction(bad)
    assert answer.status_code == 200 and answer.json()["response_action"] == "errors"
    assert "“soon” is not a duration" in answer.json()["errors"]["custom"]
    assert bot.state(1) == "open"

    good = submission(
        bot,
        view,
        {**choice("4h"), **text_input("custom", None), **text_input("reason", "deploy")},
        RESPONDER,
    )
    for _ in range(2):  # a second submit of the same press is a duplicate
        assert (await bot.slack.interaction(good)).status_code == 200
        await bot.settle()
    assert bot.state(1) == "suppressed"
    assert [(a[1], a[2]) for a in bot.audit()] == [("suppress", "applied")]


async def test_resolve_dialog_takes_an_optional_note(bot: SlackBot) -> None:
    await press(bot, 2, "resolve")
    view = next(iter(bot.fake.views.values()))
    assert view["callback_id"] == "resolve-modal"
    await bot.slack.interaction(submission(bot, view, text_input("note", "rolled back"), RESPONDER))
    await bot.settle()
    assert bot.state(2) == "resolved"
    await bot.outbox.deliver_due()
    ts, _ = button(bot, 2, "reopen")
    replies = [
        c.args["text"]
        for c in bot.fake.calls_to("chat.postMessage")
        if c.args.get("thread_ts") == ts
    ]
    assert replies == [f"resolved by <@{RESPONDER}>: rolled back"]


async def test_a_viewers_dialog_submission_is_refused_in_the_channel(bot: SlackBot) -> None:
    await press(bot, 2, "resolve", user=VIEWER)
    view = next(iter(bot.fake.views.values()))
    await bot.slack.interaction(submission(bot, view, text_input("note", None), VIEWER))
    await bot.settle()
    assert bot.state(2) == "open"
    (told,) = bot.fake.calls_to("chat.postEphemeral")
    assert told.args["user"] == VIEWER and told.args["channel"] == CHANNEL
    assert "you need the responder role" in told.args["text"]


async def test_the_ack_does_not_wait_for_the_dialog(bot: SlackBot) -> None:
    bot.fake.hold("views.open")
    response = await bot.slack.interaction(press_payload(bot, 1, "suppress"))
    assert response.status_code == 200  # answered while views.open is still unanswered
    await bot.fake.wait_for(lambda: bot.fake.held("views.open") == 1)
    assert bot.fake.calls_to("views.open") == []
    bot.fake.release("views.open")
    await bot.settle()
    assert len(bot.fake.calls_to("views.open")) == 1
    await bot.fake.wait_for(lambda: len(bot.fake.calls_to("views.update")) == 1)


# requests Slack would never send -----------------------------------------------------------------


async def test_forged_and_stale_requests_are_refused(bot: SlackBot) -> None:
    data = press_payload(bot, 1, "acknowledge")
    forged = await bot.slack.interaction(data, secret="not-the-signing-secret")
    stale = await bot.slack.interaction(data, age=6 * 60)
    assert forged.status_code == 401 and stale.status_code == 401
    await bot.settle()
    assert bot.state(1) == "open" and bot.audit() == []


async def test_malformed_payload_is_a_bad_request(bot: SlackBot) -> None:
    answer = await bot.slack.send(b"payload=%7Bnot+json", "application/x-www-form-urlencoded")
    assert answer.status_code == 400
    forged = await bot.slack.send(
        b"payload=%7Bnot+json", "application/x-www-form-urlencoded", secret="wrong"
    )
    assert forged.status_code == 401


async def test_unknown_button_is_acknowledged_ignored_and_logged(
    bot: SlackBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="integrations.slack")
    data = press_payload(bot, 1, "acknowledge")
    data["actions"][0]["action_id"] = "self_destruct"
    answer = await bot.slack.interaction(data)
    await bot.settle()
    assert answer.status_code == 200
    assert "acknowledged and ignored Slack action 'self_destruct'" in caplog.text
    assert bot.state(1) == "open" and bot.audit() == []


async def test_a_button_value_the_bot_did_not_make_changes_nothing(bot: SlackBot) -> None:
    data = press_payload(bot, 1, "acknowledge")
    data["actions"][0]["value"] = "1; DROP TABLE incidents"
    assert (await bot.slack.interaction(data)).status_code == 200
    await bot.settle()
    assert bot.state(1) == "open" and bot.audit() == []
