"""Splunk's webhook alert action: the recorded payload into an incident of the rule its
search name maps to; an unknown search name is named in a 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bot.domain.hits import Category, Severity
from bot.store.repo import ALERTS, INCIDENTS, OUTBOX
from bot.wiring import Runtime
from detectors.types.frequency import FrequencyRule, FrequencySettings
from tests.conftest import FakeClock
from tests.push_env import basic, bearer, fixture, push_client


@pytest.fixture
async def bot(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    async for pair in push_client(database_url, tmp_path, clock):
        yield pair


async def test_alert_action_opens_an_incident_of_the_declared_rule(
    bot: tuple[httpx.AsyncClient, Runtime],
) -> None:
    client, runtime = bot
    payload = fixture("splunk_alert_action.json")
    answer = await client.post("/webhooks/splunk", json=payload, headers=bearer())
    assert answer.status_code == 200
    assert answer.json() == {"rule": "splunk-web-5xx", "incident": "INC-1"}
    with runtime.engine.connect() as conn:
        incident = conn.execute(select(INCIDENTS)).one()
        alert = conn.execute(select(ALERTS)).one()
        kinds = [r.kind for r in conn.execute(select(OUTBOX))]
    assert incident.group_key == "splunk-web-5xx|host=web-3,service=checkout"
    assert incident.title == "Web - 5xx errors (service=checkout, host=web-3)"
    assert incident.severity == "high" and incident.search_link == payload["results_link"]
    assert "POST /cart/checkout" in alert.evidence_json and alert.value == 42.0
    assert kinds == ["post"]
    # the next alert action for the same group joins the incident
    again = await client.post("/webhooks/splunk", json=payload, headers=basic())
    assert again.json() == {"rule": "splunk-web-5xx", "incident": "INC-1"}
    with runtime.engine.connect() as conn:
        assert conn.execute(select(INCIDENTS.c.hit_count)).scalar_one() == 2


async def test_unknown_search_name_is_named_in_a_404(
    bot: tuple[httpx.AsyncClient, Runtime],
) -> None:
    client, _ = bot
    payload = {**fixture("splunk_alert_action.json"), "search_name": "Nobody knows me"}
    answer = await client.post("/webhooks/splunk", json=payload, headers=bearer())
    assert answer.status_code == 404 and "'Nobody knows me'" in answer.json()["error"]
    broken = await client.post("/webhooks/splunk", json={"sid": "x"}, headers=bearer())
    assert broken.status_code == 400 and "search_name" in broken.json()["error"]
    assert (await client.post("/webhooks/splunk", json=payload)).status_code == 401


async def test_an_imported_saved_search_is_found_by_its_title(
    tmp_path: Path, clock: FakeClock
) -> None:
    imported = FrequencyRule(
        id="disk-full",
        title="Disk full on a database host",
        query="index=os sourcetype=df use_pct>95",
        severity=Severity.CRITICAL,
        category=Category.INFRASTRUCTURE,
        group_by=("host",),
        frequency=FrequencySettings(num_events=1),
    )
    payload = {
        **fixture("splunk_alert_action.json"),
        "search_name": "Disk full on a database host",
        "result": {"host": "db-1", "use_pct": "97"},
    }
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    async for client, runtime in push_client(url, tmp_path, clock, rules=[imported]):
        answer = await client.post("/webhooks/splunk", json=payload, headers=bearer())
        assert answer.json() == {"rule": "disk-full", "incident": "INC-1"}
        with runtime.engine.connect() as conn:
            row = conn.execute(select(INCIDENTS)).one()
        assert row.severity == "critical" and row.group_key == "disk-full|host=db-1"
