"""The REST API and console over HTTP (in-process ASGI), with the real runtime behind it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bot.pipeline.ingest import ingest
from bot.server import create_app
from bot.settings import load_settings
from bot.store.repo import AUDIT
from bot.wiring import Runtime
from tests.builders import alert, console_policy
from tests.conftest import FakeClock

TOKEN = "s3cr3t-console-token-0123456789"


async def make_client(
    tmp_path: Path, clock: FakeClock, **settings: object
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    config = load_settings(
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        local_events_path=tmp_path / "events.db",
        generator=False,
        **settings,
    )
    runtime = Runtime(config, clock=clock)
    await runtime.connect(attempts=1)
    with runtime.engine.begin() as conn:
        ingest(
            conn,
            [alert(clock.now(), service=s) for s in ("checkout", "catalog", "search")],
            clock.now(),
            console_policy(),
        )
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://bot.test") as client:
        yield client, runtime
    runtime.engine.dispose()
    if runtime.event_store is not None:
        runtime.event_store.close()


@pytest.fixture
async def client(tmp_path: Path, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
    async for c, _ in make_client(tmp_path, clock):
        yield c


async def test_list_filters_and_pages(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/incidents")).json()
    assert body["total"] == 3 and [i["id"] for i in body["items"]] == ["INC-3", "INC-2", "INC-1"]
    page = (await client.get("/api/v1/incidents", params={"limit": 1, "offset": 1})).json()
    assert page["total"] == 3 and [i["id"] for i in page["items"]] == ["INC-2"]
    found = (await client.get("/api/v1/incidents", params={"q": "catalog"})).json()
    assert [i["service"] for i in found["items"]] == ["catalog"]
    none = (await client.get("/api/v1/incidents", params={"state": "resolved"})).json()
    assert none == {"items": [], "total": 0}


async def test_command_flow_with_idempotency_key(client: httpx.AsyncClient) -> None:
    url = "/api/v1/incidents/INC-1/commands"
    headers = {"Idempotency-Key": "click-1"}
    first = await client.post(url, json={"command": "acknowledge"}, headers=headers)
    again = await client.post(url, json={"command": "acknowledge"}, headers=headers)
    assert first.status_code == 200 and first.json()["incident"]["state"] == "acknowledged"
    assert again.status_code == 200 and again.json()["duplicate"] is True
    detail = (await client.get("/api/v1/incidents/INC-1")).json()
    assert [t["kind"] for t in detail["timeline"]] == ["open", "acknowledge"]
    assert [(a["actor"], a["before"], a["after"]) for a in detail["audit"]] == [
        ("console:local", "open", "acknowledged")
    ]
    assert detail["evidence"] and detail["evidence"][0]["id"].startswith("ev-")


async def test_bad_requests_get_clear_answers(client: httpx.AsyncClient) -> None:
    url = "/api/v1/incidents/INC-1/commands"
    missing = await client.post("/api/v1/incidents/INC-99/commands", json={"command": "resolve"})
    assert missing.status_code == 404 and "INC-99" in missing.json()["error"]
    bad_id = await client.get("/api/v1/incidents/nonsense")
    assert bad_id.status_code == 404 and "INC-12" in bad_id.json()["error"]
    unknown = await client.post(url, json={"command": "explode"})
    assert unknown.status_code == 400 and "command" in unknown.json()["error"]
    extra = await client.post(url, json={"command": "resolve", "force": True})
    assert extra.status_code == 400 and "force" in extra.json()["error"]
    malformed = await client.post(
        url, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 400
    bad_duration = await client.post(
        url, json={"command": "suppress", "duration": "5 minutes", "reason": "x"}
    )
    assert bad_duration.status_code == 400 and "bad duration" in bad_duration.json()["error"]
    no_reason = await client.post(url, json={"command": "suppress", "duration": "1h"})
    assert no_reason.status_code == 409 and "without a reason" in no_reason.json()["error"]
    resolved = await client.post(url, json={"command": "resolve", "note": "fixed"})
    assert resolved.status_code == 200
    illegal = await client.post(url, json={"command": "acknowledge"})
    assert illegal.status_code == 409 and "resolved" in illegal.json()["error"]
    huge = await client.post(
        url, content=b"x" * 2_000_000, headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413 and "larger than" in huge.json()["error"]
    assert (await client.get("/health")).status_code == 200


async def test_silences_round_trip(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/api/v1/silences",
        json={
            "matchers": ["service=checkout", "host!=web-9"],
            "duration": "2h",
            "reason": "deploy",
        },
    )
    assert created.status_code == 201
    silence = created.json()
    assert silence["matchers"] == ["service=checkout", "host!=web-9"]
    listed = (await client.get("/api/v1/silences")).json()
    assert [s["id"] for s in listed["items"]] == [silence["id"]]
    bad = await client.post(
        "/api/v1/silences", json={"matchers": ["service"], "duration": "2h", "reason": "x"}
    )
    assert bad.status_code == 400 and "field=value" in bad.json()["error"]
    assert (await client.delete(f"/api/v1/silences/{silence['id']}")).status_code == 200
    assert (await client.delete(f"/api/v1/silences/{silence['id']}")).status_code == 404


async def test_rules_audit_ready_metrics_and_docs(client: httpx.AsyncClient) -> None:
    rules = (await client.get("/api/v1/rules")).json()
    assert rules["total"] >= 9 and {"id", "state", "source"} <= set(rules["items"][0])
    await client.post("/api/v1/incidents/INC-2/commands", json={"command": "acknowledge"})
    audit = (await client.get("/api/v1/audit")).json()
    assert audit["total"] == 1 and audit["items"][0]["incident"] == "INC-2"
    ready = await client.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"]["database"]["status"] == "ok"
    metrics = (await client.get("/metrics")).text
    assert 'bot_incidents{state="open"} 2.0' in metrics
    assert 'bot_commands_total{command="acknowledge",result="applied",surface="api"}' in metrics
    assert (await client.get("/openapi.json")).status_code == 200


async def test_console_pages_render(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200 and page.text.count('class="card ') == 3
    assert 'data-action="acknowledge"' in page.text
    one = await client.get("/incidents/1")
    assert one.status_code == 200 and "Timeline" in one.text and "status=503" in one.text
    for path in ("/rules", "/audit", "/console/cards/2", "/static/console.js"):
        assert (await client.get(path)).status_code == 200


async def test_token_protects_api_and_console(tmp_path: Path, clock: FakeClock) -> None:
    async for client, runtime in make_client(tmp_path, clock, console_token=TOKEN):
        assert (await client.get("/api/v1/incidents")).status_code == 401
        wrong = await client.get("/api/v1/incidents", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and TOKEN not in wrong.text
        auth = {"Authorization": f"Bearer {TOKEN}", "X-Bot-User": "alice"}
        assert (await client.get("/api/v1/incidents", headers=auth)).status_code == 200
        await client.post(
            "/api/v1/incidents/INC-1/commands", json={"command": "acknowledge"}, headers=auth
        )
        with runtime.engine.connect() as conn:
            acted = select(AUDIT.c.actor).where(AUDIT.c.action != "auth_refused")
            assert conn.execute(acted).scalar_one() == "console:alice"
        page = await client.get("/")
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        bad_login = await client.post("/login", data={"name": "bob", "token": "x", "next": "/"})
        assert "error=" in bad_login.headers["location"]
        login = await client.post("/login", data={"name": "bob", "token": TOKEN, "next": "/"})
        assert login.status_code == 303 and "bot_session" in login.headers["set-cookie"]
        session = login.cookies["bot_session"]
        client.cookies.clear()
        client.cookies.set("bot_session", session)
        assert (await client.get("/")).status_code == 200
        cross = await client.post(
            "/api/v1/incidents/INC-2/commands",
            json={"command": "acknowledge"},
            headers={"Origin": "http://evil.example"},
        )
        assert cross.status_code == 403
        forged = session.replace("bob:", "eve:")
        client.cookies.clear()
        client.cookies.set("bot_session", forged)
        assert (await client.get("/api/v1/incidents")).status_code == 401


async def test_snapshot_is_validated_and_stored(client: httpx.AsyncClient) -> None:
    good = {
        "host": "win-app-1",
        "taken_at": "2026-11-22T10:00:00Z",
        "os": "Windows Server 2022",
        "cpu_pct": 12.5,
        "mem_used_pct": 40,
        "disks": [{"mount": "C:", "used_pct": 97}],
        "services": [{"name": "W32Time", "running": False}],
        "pending_reboot": False,
        "last_patch_days": 12,
    }
    stored = await client.post("/api/v1/snapshots", json=good)
    assert stored.status_code == 201 and stored.json()["events"] >= 1
    bad = await client.post("/api/v1/snapshots", json={**good, "cpu_pct": 140})
    assert bad.status_code == 400 and "cpu_pct" in bad.json()["error"]
