"""Slack interactions and slash commands with fields replaced or removed, signed as Slack signs
them, through the bot's HTTP server: an answer below 500, no exception escaping a listener, and
a broken payload changes nothing (no state change, no audit entry)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.store.repo import AUDIT, INCIDENTS
from tests.conftest import FakeClock
from tests.fakes.slack import CHANNEL, SlackBot, payload, slack_bot
from tests.fuzz.mutate import FUZZ, escaped, mutated

RESPONDER = "U0RESP001"
ROLES = {"default_role": "viewer", "roles": {"responder": [f"slack:{RESPONDER}"]}}


@pytest.fixture
async def bot(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SlackBot]:
    async with slack_bot(tmp_path, clock, ROLES) as running:
        running.open_incidents(1)
        await running.outbox.deliver_due()
        yield running


@pytest.fixture
def pressed(bot: SlackBot) -> dict[str, Any]:
    """The Acknowledge press on INC-1's first card (fixed: examples mutate the same payload)."""
    return press(bot)


def press(bot: SlackBot) -> dict[str, Any]:
    ts = bot.card_ts(1)
    blocks = bot.fake.messages[(CHANNEL, ts)]["blocks"]
    button = next(e for e in blocks[-1]["elements"] if e["action_id"] == "acknowledge")
    return payload(
        "block_actions",
        action_id="acknowledge",
        value=button.get("value", ""),
        user=RESPONDER,
        channel=CHANNEL,
        message_ts=ts,
        trigger_id="trigger-fuzz",
        action_ts="1790000999.000001",
        response_url=bot.fake.response_url("fuzz"),
    )


def slash_fields(bot: SlackBot, text: str) -> dict[str, Any]:
    return payload(
        "slash_command",
        channel=CHANNEL,
        user=RESPONDER,
        command="/incident",
        text=text,
        response_url=bot.fake.response_url("fuzz"),
        trigger_id="trigger-fuzz",
    )


def snapshot(bot: SlackBot) -> tuple[Any, ...]:
    with bot.runtime.engine.connect() as conn:
        audited = conn.execute(select(func.count()).select_from(AUDIT)).scalar_one()
        states = tuple(conn.execute(select(INCIDENTS.c.state, INCIDENTS.c.version)).all())
    return audited, states


@FUZZ
@given(data=st.data())
async def test_mangled_button_presses(
    bot: SlackBot, pressed: dict[str, Any], caplog: pytest.LogCaptureFixture, data: st.DataObject
) -> None:
    before = snapshot(bot)
    press_data = data.draw(mutated(pressed))
    caplog.clear()
    answer = await bot.slack.interaction(press_data)
    await bot.settle()
    assert answer.status_code < 500, answer.text
    assert not escaped(caplog)
    if answer.status_code >= 400:
        assert snapshot(bot) == before


@FUZZ
@given(
    text=st.text(max_size=80) | st.sampled_from(["ack INC-1", "silence 99999999999d x=y", "help"]),
    changes=st.dictionaries(
        st.sampled_from(["user_id", "channel_id", "command", "trigger_id", "response_url"]),
        st.text(max_size=20),
        max_size=2,
    ),
)
async def test_any_slash_command_text(
    bot: SlackBot, caplog: pytest.LogCaptureFixture, text: str, changes: dict[str, str]
) -> None:
    fields = {**slash_fields(bot, text), **changes}
    caplog.clear()
    answer = await bot.slack.command(fields)
    await bot.settle()
    assert answer.status_code < 500, answer.text
    assert not escaped(caplog)


async def test_a_forged_signature_changes_nothing(bot: SlackBot) -> None:
    before = snapshot(bot)
    answer = await bot.slack.interaction(press(bot), secret="not-the-signing-secret")
    assert answer.status_code == 401
    raw = await bot.slack.send(b"payload=" + json.dumps({"type": 1}).encode(), "text/plain")
    assert raw.status_code < 500
    assert snapshot(bot) == before
