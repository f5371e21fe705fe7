"""PagerDuty webhook events (v3) with fields replaced or removed, signed with the current
secret: an answer below 500, no exception escaping, and a refused event changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.store.repo import AUDIT, INCIDENTS
from tests.fuzz.mutate import FUZZ, escaped, mutated
from tests.integration.test_pagerduty_webhooks import SECRET, Bot, bot, tls

__all__ = ["bot", "tls"]  # the fixtures, shared with the webhook tests

FIXTURES = Path(__file__).parent.parent / "fixtures" / "pagerduty"
EVENTS = [
    json.loads((FIXTURES / name).read_text())
    for name in (
        "webhook_incident_acknowledged.json",
        "webhook_incident_annotated.json",
        "webhook_incident_reassigned.json",
        "webhook_pagey_ping.json",
    )
]


def counts(bot: Bot) -> tuple[int, int]:
    with bot.runtime.engine.connect() as conn:
        audited = conn.execute(select(func.count()).select_from(AUDIT)).scalar_one()
        versions = conn.execute(select(func.sum(INCIDENTS.c.version))).scalar_one() or 0
    return audited, int(versions)


@FUZZ
@given(event=st.sampled_from(EVENTS).flatmap(mutated))
async def test_mangled_webhook_events(
    bot: Bot, caplog: pytest.LogCaptureFixture, event: Any
) -> None:
    before = counts(bot)
    caplog.clear()
    answer = await bot.post(json.dumps(event).encode(), SECRET)
    assert answer.status_code < 500, answer.text
    assert not escaped(caplog)
    if answer.status_code >= 400:
        assert counts(bot) == before


@FUZZ
@given(body=st.binary(max_size=200))
async def test_any_signed_bytes(bot: Bot, body: bytes) -> None:
    answer = await bot.post(body, SECRET)
    assert 200 <= answer.status_code < 500, answer.text
    unsigned = await bot.post(body)
    assert unsigned.status_code == 401
