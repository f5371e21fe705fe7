"""The bot configured for Splunk: a shipped rule fires through splunk-sdk against the fake,
the incident links to its search in Splunk Web, and /ready reports Splunk."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.settings import load_settings
from bot.store.repo import INCIDENTS
from bot.wiring import Runtime
from integrations.local.scenarios import SCENARIOS
from integrations.splunk import SplunkSearchBackend
from tests.conftest import FakeClock
from tests.fakes.splunk import FakeSplunk

TOKEN = "eyJrIjoiZmFrZS1zcGx1bmstdG9rZW4tZm9yLXRlc3RzIn0"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSplunk]:
    for name in list(os.environ):
        if name.startswith(("SPLUNK_", "BOT_")):
            monkeypatch.delenv(name)
    with FakeSplunk(token=TOKEN) as server:
        monkeypatch.setenv("SPLUNK_HOST", server.host)
        monkeypatch.setenv("SPLUNK_PORT", str(server.port))
        monkeypatch.setenv("SPLUNK_SCHEME", "http")
        monkeypatch.setenv("SPLUNK_TOKEN", TOKEN)
        yield server


async def test_a_shipped_rule_fires_through_splunk_and_links_its_search(
    fake: FakeSplunk, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    fake.add_events(SCENARIOS["web-5xx-burst"].events(now, random.Random(7)))
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'bot.db'}")
    assert settings.search_backend == "splunk" and not settings.generator_enabled
    runtime = Runtime(settings, clock=FakeClock(now))
    assert isinstance(runtime.backend, SplunkSearchBackend) and runtime.generator is None
    await runtime.connect(attempts=1)
    assert await runtime.acquire_lease()  # rule runs write under the scheduler lease
    summary = await runtime.runner.run("web-5xx-burst")
    assert summary.error == "" and len(summary.result.created) == 1
    with runtime.engine.connect() as conn:
        incident = conn.execute(select(INCIDENTS)).one()
    assert incident.title == "HTTP 5xx burst on checkout"
    assert "/app/search/search?q=search" in incident.search_link
    assert "earliest=" in incident.search_link and "latest=" in incident.search_link
    ready = await runtime.readiness()
    assert ready["checks"]["search"]["status"] == "ok"
    assert "Splunk 9" in ready["checks"]["search"]["reason"]
    assert fake.exports, "the search went through the export endpoint"
    runtime.engine.dispose()
