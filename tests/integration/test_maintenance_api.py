"""Maintenance windows over the REST API with the real runtime: roles, validation, audit, and
a window muting the next run's incidents."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bot.server import create_app
from bot.settings import load_settings
from bot.store.repo import AUDIT
from bot.wiring import Runtime
from tests.conftest import FakeClock

ROLES = """
default_role: viewer
roles:
  admin: [console:alice]
  responder: [console:bob]
"""
BOB = {"X-Bot-User": "bob"}  # responder
VIC = {"X-Bot-User": "vic"}  # viewer
WINDOW = {
    "name": "sunday-patching",
    "days": "sun",
    "start": "10:30",
    "duration": "4h",
    "timezone": "Europe/Berlin",
    "matchers": ["service=db*"],
    "reason": "OS patches",
}


@pytest.fixture
async def served(
    tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    roles = tmp_path / "roles.yaml"
    roles.write_text(ROLES)
    config = load_settings(
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        local_events_path=tmp_path / "events.db",
        generator=False,
        roles_file=roles,
    )
    runtime = Runtime(config, clock=clock)
    await runtime.connect(attempts=1)
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://bot.test") as c:
        yield c, runtime
    runtime.engine.dispose()
    if runtime.event_store is not None:
        runtime.event_store.close()


async def test_add_list_remove_audited(served: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, runtime = served
    made = await client.post("/api/v1/maintenance", json=WINDOW, headers=BOB)
    assert made.status_code == 201, made.text
    body = made.json()
    # the clock reads Sunday 10:00 UTC = 11:00 in Berlin: the window runs until 14:30 Berlin
    assert body["active"] is True and body["active_until"] == "2026-11-22T13:30:00+00:00"
    assert body["schedule"] == "sun 10:30 for 4h (Europe/Berlin)"
    assert body["created_by"] == "console:bob"
    listed = (await client.get("/api/v1/maintenance", headers=VIC)).json()["windows"]
    assert [w["name"] for w in listed] == ["sunday-patching"]
    again = await client.post("/api/v1/maintenance", json=WINDOW, headers=BOB)
    assert again.status_code == 409 and "exists already" in again.text
    gone = await client.delete("/api/v1/maintenance/sunday-patching", headers=BOB)
    assert gone.status_code == 200 and gone.json()["deleted"] == "sunday-patching"
    assert (
        await client.delete("/api/v1/maintenance/sunday-patching", headers=BOB)
    ).status_code == 404
    with runtime.engine.connect() as conn:
        rows = conn.execute(select(AUDIT).where(AUDIT.c.action.like("maintenance.%"))).all()
    assert [(r.action, r.actor, r.surface) for r in rows] == [
        ("maintenance.add", "console:bob", "api"),
        ("maintenance.remove", "console:bob", "api"),
    ]
    assert json.loads(rows[0].data_json)["matchers_json"] == '["service=db*"]'


async def test_viewers_may_not_add(served: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, _ = served
    refused = await client.post("/api/v1/maintenance", json=WINDOW, headers=VIC)
    assert refused.status_code == 403 and "responder role" in refused.text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"start": "25:00"}, "bad start time '25:00'"),
        ({"days": "", "start": ""}, "needs days and start"),
        ({"cron": "0 2 * * sun"}, "either cron or days and start"),
        ({"matchers": ["service"]}, "bad matcher 'service'"),
        ({"duration": "soon"}, "bad duration 'soon'"),
        ({"name": "Sunday patching!"}, "bad window name"),
    ],
)
async def test_bad_windows_say_what_is_wrong(
    served: tuple[httpx.AsyncClient, Runtime], change: dict[str, object], message: str
) -> None:
    client, _ = served
    answer = await client.post("/api/v1/maintenance", json={**WINDOW, **change}, headers=BOB)
    assert answer.status_code in (400, 422) and message in answer.text, answer.text


async def test_cron_windows(served: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, _ = served
    spec = {**WINDOW, "days": "", "start": "", "cron": "0 1 * * mon-fri", "duration": "2h"}
    body = (await client.post("/api/v1/maintenance", json=spec, headers=BOB)).json()
    assert body["active"] is False and body["next_start"] == "2026-11-23T00:00:00+00:00"


async def test_the_console_lists_windows(served: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, _ = served
    assert "No maintenance windows." in (await client.get("/maintenance", headers=VIC)).text
    await client.post("/api/v1/maintenance", json=WINDOW, headers=BOB)
    page = (await client.get("/maintenance", headers=VIC)).text
    assert "<b>sunday-patching</b>" in page and "sun 10:30 for 4h (Europe/Berlin)" in page
    assert "running until 2026-11-22 13:30 UTC" in page and "never muted" in page
    assert '<a href="/maintenance">Maintenance</a>' in page
