"""Postmortems and the noise report through the HTTP API (a fake clock) and the CLI (run_bot.py in
a subprocess): golden files under tests/fixtures/postmortem and tests/fixtures/report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from bot.server import create_app
from bot.settings import load_settings
from bot.store import audit
from bot.wiring import Runtime
from tests.conftest import FakeClock
from tests.unit.test_postmortem import at, entry, seed_full_story, seed_incident

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
VIC = {"X-Bot-User": "vic"}  # a viewer reads postmortems and reports
DAY = 60 * 24


def seed_week(engine: Engine) -> None:
    """INC-1..3 (the postmortem story), a flapping disk alert and two noisy-but-handled ones."""
    seed_full_story(engine)
    for n in range(4, 9):  # disk-full on db-1 clears by itself five times
        opened = -DAY * 3 + n * 60
        seed_incident(
            engine,
            n,
            rule="disk-full",
            service="db",
            group="host=db-1",
            opened=opened,
            resolved=opened + 7,
            resolved_by="bot",
        )
        with engine.begin() as conn:
            audit.append(
                conn,
                [
                    entry(opened, "rule:disk-full", "detect", n, after_state="open", data={}),
                    entry(
                        opened + 7,
                        "bot",
                        "clear",
                        n,
                        surface="scheduler",
                        before_state="open",
                        after_state="resolved",
                    ),
                ],
            )
    for n, minutes in ((9, 3), (10, 9), (11, 30)):  # api-latency: acknowledged, then resolved
        opened = -DAY * 2 + n * 60
        seed_incident(
            engine,
            n,
            rule="api-latency",
            service="api",
            group=f"route=/v{n}",
            opened=opened,
            resolved=opened + minutes * 2,
            resolved_by="slack:U9",
            muted_by="silence:deploy" if n == 11 else None,
        )
        with engine.begin() as conn:
            audit.append(
                conn,
                [
                    entry(
                        opened + minutes, "slack:U9", "acknowledge", n, after_state="acknowledged"
                    ),
                    entry(opened + minutes * 2, "slack:U9", "resolve", n, after_state="resolved"),
                ],
            )
    seed_incident(
        engine,
        12,
        rule="disk-full",
        service="db",
        group="host=db-1",
        opened=-DAY * 30,
        resolved=-DAY * 30 + 5,
        resolved_by="bot",
    )  # out of range


def golden(path: Path, text: str) -> None:
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{path.name} changed: UPDATE_GOLDEN=1 rewrites it"


@pytest.fixture
async def served(
    tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    config = load_settings(
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        local_events_path=tmp_path / "events.db",
        generator=False,
    )
    runtime = Runtime(config, clock=clock)
    await runtime.connect(attempts=1)
    seed_week(runtime.engine)
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://bot.test") as c:
        yield c, runtime
    runtime.engine.dispose()
    if runtime.event_store is not None:
        runtime.event_store.close()


async def test_the_postmortem_api_serves_the_golden_draft(
    served: tuple[httpx.AsyncClient, Runtime], clock: FakeClock
) -> None:
    client, _ = served
    clock.at = at(30)
    md = await client.get("/api/v1/incidents/INC-3/postmortem?format=md", headers=VIC)
    assert md.status_code == 200, md.text
    assert md.headers["content-type"].startswith("text/markdown")
    assert md.text == (FIXTURES / "postmortem" / "INC-3.md").read_text()
    as_json = await client.get("/api/v1/incidents/INC-3/postmortem?format=json", headers=VIC)
    expected = json.loads((FIXTURES / "postmortem" / "INC-3.json").read_text())
    assert as_json.json() == expected
    missing = await client.get("/api/v1/incidents/INC-99/postmortem", headers=VIC)
    assert missing.status_code == 404
    assert "no incident INC-99" in missing.json()["error"]
    wrong = await client.get("/api/v1/incidents/INC-3/postmortem?format=pdf", headers=VIC)
    assert wrong.status_code in (400, 422) and "format" in wrong.text


async def test_the_report_api_matches_the_golden_report(
    served: tuple[httpx.AsyncClient, Runtime], clock: FakeClock
) -> None:
    client, _ = served
    clock.at = at(DAY)
    answer = await client.get("/api/v1/report?since=7d", headers=VIC)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    golden(FIXTURES / "report" / "7d.json", json.dumps(report, indent=2) + "\n")
    rules = {r["rule"]: r for r in report["rules"]}
    assert rules["disk-full"]["incidents"] == 5  # the one 30 days ago is outside the week
    assert rules["disk-full"]["recommendation"] == (
        "100% resolved with no action: raise the threshold or set realert"
    )
    assert rules["web-5xx-burst"]["auto_resolved"] == 1
    assert (
        rules["api-latency"]["suppressed"] == 1 and rules["api-latency"]["resolved_no_action"] == 0
    )
    api = next(s for s in report["services"] if s["service"] == "api")
    assert api["time_to_acknowledge"] == {"median_s": 540.0, "p90_s": 1800.0, "count": 3}
    assert report["noisiest_keys"][0] == {
        "group_key": "disk-full|host=db-1",
        "rule": "disk-full",
        "incidents": 5,
    }
    bad = await client.get("/api/v1/report?since=soon", headers=VIC)
    assert bad.status_code == 400 and "since" in bad.json()["error"]


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "SPLUNK_"))}
    env.update(
        BOT_DATABASE_URL=f"sqlite:///{folder / 'bot.db'}",
        BOT_LOCAL_EVENTS_PATH=str(folder / "events.db"),
        BOT_GENERATOR="false",
    )
    return subprocess.run(
        [sys.executable, str(ROOT / "run_bot.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


async def test_the_cli_exports_and_reports(
    served: tuple[httpx.AsyncClient, Runtime], tmp_path: Path
) -> None:
    until = at(DAY).isoformat()
    text = cli(tmp_path, "report", "--since", "7d", "--until", until)
    assert text.returncode == 0, text.stderr
    golden(FIXTURES / "report" / "7d.txt", text.stdout)
    as_json = cli(tmp_path, "report", "--since", "7d", "--until", until, "--json")
    assert json.loads(as_json.stdout) == json.loads((FIXTURES / "report" / "7d.json").read_text())
    exported = cli(tmp_path, "incidents", "export", "INC-3", "--format", "md")
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.startswith("# INC-3: 5xx burst on checkout\n")
    for section in ("## Detection", "## Root cause", "## Playbook runs", "## Follow-ups"):
        assert section in exported.stdout
    data = json.loads(cli(tmp_path, "incidents", "export", "INC-3", "--format", "json").stdout)
    assert data["time_to_resolve_s"] == 720.0 and data["playbook_runs"][0]["outcome"] == "succeeded"
    missing = cli(tmp_path, "incidents", "export", "INC-99")
    assert missing.returncode == 1 and "no incident INC-99" in missing.stderr


async def test_the_console_shows_the_report(
    served: tuple[httpx.AsyncClient, Runtime], clock: FakeClock
) -> None:
    client, _ = served
    clock.at = at(DAY)
    page = await client.get("/report?since=7d", headers=VIC)
    assert page.status_code == 200, page.text
    assert "11 incidents opened 2026-11-16T10:00 to 2026-11-23T10:00 UTC" in page.text
    assert "100% resolved with no action: raise the threshold or set realert" in page.text
    assert "<td>disk-full|host=db-1</td><td>disk-full</td><td>5</td>" in page.text
    assert "<td>9m</td><td>30m</td>" in page.text  # api: acknowledged in 9m (median), 30m (p90)
