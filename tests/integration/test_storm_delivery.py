"""Delivery in a storm, through the real slack-sdk client against the Slack fake with its rate
limits on (HTTP 429 with Retry-After when exceeded)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.conftest import FakeClock
from tests.fakes.slack import BOT_TOKEN, slack_bot


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
