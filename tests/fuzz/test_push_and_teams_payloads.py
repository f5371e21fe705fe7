"""Alertmanager pushes, Splunk alert actions and Teams activities with fields replaced or
removed, through the bot's HTTP app: the protocol's own 4xx answers, never a 5xx, no exception
escaping a handler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.store.repo import AUDIT
from tests.conftest import FakeClock
from tests.fakes.teams import TeamsBot, teams_activity, teams_bot
from tests.fuzz.mutate import FUZZ, JSON, escaped, mutated
from tests.push_env import bearer, fixture, push_client

TEAMS = Path(__file__).parent.parent / "fixtures" / "teams" / "activities"
ACTIVITIES = sorted(p.stem for p in TEAMS.glob("*.json"))


@pytest.fixture
async def push(tmp_path: Path, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    async for client, _ in push_client(f"sqlite:///{tmp_path / 'bot.db'}", tmp_path, clock):
        yield client


@pytest.fixture
async def teams(tmp_path: Path, clock: FakeClock) -> AsyncIterator[TeamsBot]:
    async with teams_bot(tmp_path, clock) as running:
        yield running


ALERTS = st.sampled_from(
    ["prometheus_firing.json", "prometheus_resolved.json", "grafana_firing.json"]
)


@FUZZ
@given(alerts=ALERTS.map(fixture).flatmap(mutated) | JSON)
async def test_mangled_alertmanager_pushes(
    push: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, alerts: Any
) -> None:
    caplog.clear()
    answer = await push.post("/api/v2/alerts", json=alerts, headers=bearer())
    assert answer.status_code in (200, 400, 422, 429), answer.text  # 429: the sender's budget
    assert not escaped(caplog)


@FUZZ
@given(body=st.binary(max_size=200))
async def test_any_bytes_pushed(push: httpx.AsyncClient, body: bytes) -> None:
    answer = await push.post("/api/v2/alerts", content=body, headers=bearer())
    assert answer.status_code in (200, 400, 422, 429), answer.text  # 429: the sender's budget


@FUZZ
@given(action=st.just("splunk_alert_action.json").map(fixture).flatmap(mutated) | JSON)
async def test_mangled_splunk_alert_actions(
    push: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, action: Any
) -> None:
    caplog.clear()
    answer = await push.post("/webhooks/splunk", json=action, headers=bearer())
    assert answer.status_code in (200, 400, 404, 429), answer.text
    assert not escaped(caplog)


def audited(bot: TeamsBot) -> int:
    with bot.runtime.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(AUDIT)).scalar_one())


SERVICE_URL = "http://connector.invalid/teams/"
BASES = [teams_activity(name, SERVICE_URL) for name in ACTIVITIES]


@FUZZ
@given(activity=st.sampled_from(BASES).flatmap(mutated))
async def test_mangled_teams_activities(
    teams: TeamsBot, caplog: pytest.LogCaptureFixture, activity: Any
) -> None:
    if isinstance(activity, dict) and activity.get("serviceUrl") == SERVICE_URL:
        activity = {**activity, "serviceUrl": teams.connector.url}  # replies reach the fake
    before = audited(teams)
    caplog.clear()
    answer = await teams.client.post("/api/messages", json=activity)
    assert answer.status_code < 500, answer.text
    assert not escaped(caplog)
    if answer.status_code >= 400:
        assert audited(teams) == before
