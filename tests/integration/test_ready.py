"""/ready says since when a dependency has been failing, and learns it from real calls: a
search that fails marks Splunk failing at once (no 15-second check in between), a Bedrock
analysis that gets a 5xx or no answer marks Bedrock failing, and the next answered call clears
it. /metrics has the same figure as ``bot_dependency_failing_seconds``. Nothing is called only
to find out: the fakes count every request."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest

from bot.health import Readiness
from bot.pipeline.ingest import ingest
from bot.ports import Health, HealthStatus
from bot.server import create_app
from bot.settings import load_settings
from bot.wiring import Runtime
from tests.builders import alert, console_policy, mark_cards_posted
from tests.cluster import write_rules
from tests.conftest import FakeClock
from tests.fakes.bedrock import FakeBedrock, aws_test_env, good
from tests.fakes.faults import Fault
from tests.fakes.splunk import FakeSplunk

TOKEN = "eyJrIjoiZmFrZS1zcGx1bmstdG9rZW4tZm9yLXJlYWR5In0"


def failing_seconds(runtime: Runtime, dependency: str) -> float:
    text = generate_latest(runtime.metrics.registry).decode()
    prefix = f'bot_dependency_failing_seconds{{dependency="{dependency}"}} '
    found = [line for line in text.splitlines() if line.startswith(prefix)]
    assert found, f"no {prefix.strip()} in /metrics"
    return float(found[0].rsplit(" ", 1)[1])


@pytest.fixture
def splunk(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSplunk]:
    for name in list(os.environ):
        if name.startswith(("SPLUNK_", "BOT_")):
            monkeypatch.delenv(name)
    with FakeSplunk(token=TOKEN) as server:
        monkeypatch.setenv("SPLUNK_HOST", server.host)
        monkeypatch.setenv("SPLUNK_PORT", str(server.port))
        monkeypatch.setenv("SPLUNK_SCHEME", "http")
        monkeypatch.setenv("SPLUNK_TOKEN", TOKEN)
        yield server


def test_a_failing_dependency_keeps_the_moment_it_started_failing() -> None:
    clock = FakeClock(datetime(2026, 12, 5, 23, 0, tzinfo=UTC))
    board = Readiness(clock)
    board.observe("surface:slack", Health(HealthStatus.DOWN, "Slack answered 503"))
    clock.advance(20)
    board.observe("surface:slack", Health(HealthStatus.DOWN, "Slack answered 429"))
    clock.advance(5)
    status, checks = board.report(["surface:slack", "search"])
    assert status is HealthStatus.DOWN and list(checks) == ["surface:slack"]
    assert checks["surface:slack"] == {
        "status": "down",
        "reason": "Slack answered 429 (failing for 25s, since 2026-12-05 23:00:00Z)",
        "failing_since": "2026-12-05T23:00:00+00:00",
        "failing_for_s": 25.0,
    }
    board.observe("surface:slack", Health(HealthStatus.OK, "team T1"))
    assert board.report(["surface:slack"])[1]["surface:slack"] == {
        "status": "ok",
        "reason": "team T1",
    }
    clock.advance(3)
    board.observe("surface:slack", Health(HealthStatus.DOWN, "refused"))
    assert board.report(["surface:slack"])[1]["surface:slack"]["failing_for_s"] == 0.0


async def test_a_failed_search_marks_splunk_failing_at_once_and_the_next_clears_it(
    splunk: FakeSplunk, tmp_path: Path
) -> None:
    clock = FakeClock(datetime.now(UTC))
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        rules_path=str(write_rules(tmp_path / "rules")),
        shipped_rules=False,
        shared_searches=False,  # the rule's own search: no feed backoff between the runs
    )
    runtime = Runtime(settings, clock=clock)
    await runtime.connect(attempts=1)
    assert await runtime.acquire_lease()
    try:
        ready = await runtime.readiness()
        assert ready["checks"]["search"]["status"] == "ok"
        assert "failing_since" not in ready["checks"]["search"]

        splunk.faults.set(Fault.ERROR, seconds=30)
        clock.advance(2)
        failed_at = clock.now()
        summary = await runtime.runner.run("burst")
        assert summary.error
        splunk.faults.clear()
        clock.advance(4)  # well within the 15 s between Splunk checks
        asked = len(splunk.requests)
        ready = await runtime.readiness()
        assert len(splunk.requests) == asked  # no check, no search: the failed search told it
        search = ready["checks"]["search"]
        assert search["status"] == "down" and ready["status"] == "down"
        assert "503" in search["reason"] and "failing for 4s" in search["reason"]
        assert search["failing_since"] == failed_at.isoformat()
        assert search["failing_for_s"] == 4.0
        assert failing_seconds(runtime, "search") == 4.0

        clock.advance(1)
        summary = await runtime.runner.run("burst")
        assert summary.error == ""
        ready = await runtime.readiness()
        assert ready["checks"]["search"]["status"] == "ok"
        assert "failing_since" not in ready["checks"]["search"]
        assert failing_seconds(runtime, "search") == 0.0
    finally:
        runtime.engine.dispose()


async def test_bedrock_failing_shows_on_ready_from_real_analyses_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clock = FakeClock(datetime.now(UTC))
    aws_test_env(monkeypatch, tmp_path)
    with FakeBedrock(default=good(confidence=0.8)) as fake:
        monkeypatch.setenv("BEDROCK_MODEL_ID", "anthropic.claude-test-v1:0")
        monkeypatch.setenv("BEDROCK_ENDPOINT_URL", fake.url)
        monkeypatch.setenv("BEDROCK_TIMEOUT", "1s")
        monkeypatch.setenv("BEDROCK_RPM", "6000")
        settings = load_settings(
            database_url=f"sqlite:///{tmp_path / 'bot.db'}",
            local_events_path=tmp_path / "events.db",
            generator=False,
            rca="bedrock",
        )
        runtime = Runtime(settings, clock=clock)
        await runtime.connect(attempts=1)
        app = create_app(runtime)
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://bot.test") as api:
                ready = (await api.get("/ready")).json()
                assert ready["checks"]["rca:bedrock"] == {
                    "status": "ok",
                    "reason": "no analysis asked yet",
                }
                with runtime.engine.begin() as conn:
                    (incident,) = ingest(
                        conn, [alert(clock.now(), evidence=6)], clock.now(), console_policy()
                    ).created
                mark_cards_posted(runtime.engine, clock.now())

                fake.faults.set(Fault.ERROR, seconds=30)
                report = await runtime.enricher.analyse(incident)
                assert report is not None and not report.engine.startswith("bedrock:")
                fake.faults.clear()
                failed_at = clock.now()
                clock.advance(12)
                answer = await api.get("/ready")
                bedrock = answer.json()["checks"]["rca:bedrock"]
                assert answer.status_code == 200  # only the database makes /ready refuse
                assert bedrock["status"] == "down" and "HTTP 503" in bedrock["reason"]
                assert "failing for 12s" in bedrock["reason"]
                assert bedrock["failing_since"] == failed_at.isoformat()
                metrics = (await api.get("/metrics")).text
                assert 'bot_dependency_failing_seconds{dependency="rca:bedrock"} 12.0' in metrics

                fake.faults.set(Fault.HANG, seconds=2.0)  # past BEDROCK_TIMEOUT (1 s)
                await runtime.enricher.analyse(incident)
                fake.faults.clear()
                bedrock = (await api.get("/ready")).json()["checks"]["rca:bedrock"]
                assert "no answer within 1s" in bedrock["reason"]
                assert bedrock["failing_since"] == failed_at.isoformat()  # still the first

                calls = sum(fake.faults.served.values()) + len(fake.requests)
                await api.get("/ready")
                await api.get("/metrics")
                assert sum(fake.faults.served.values()) + len(fake.requests) == calls

                report = await runtime.enricher.analyse(incident)
                assert report is not None and report.engine.startswith("bedrock:")
                bedrock = (await api.get("/ready")).json()["checks"]["rca:bedrock"]
                assert bedrock == {
                    "status": "ok",
                    "reason": "anthropic.claude-test-v1:0 answered the last analysis",
                }
                assert failing_seconds(runtime, "rca:bedrock") == 0.0
        finally:
            runtime.engine.dispose()
