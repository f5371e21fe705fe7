"""The configuration API over HTTP: the kill switch, categories, roles, validation, metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.server import create_app
from bot.settings import load_settings
from bot.wiring import Runtime
from tests.conftest import FakeClock

ROLES = """
default_role: viewer
roles:
  admin: [console:alice]
  responder: [console:bob]
"""
ALICE = {"X-Bot-User": "alice"}  # admin
BOB = {"X-Bot-User": "bob"}  # responder
VIC = {"X-Bot-User": "vic"}  # viewer


@pytest.fixture
async def client(tmp_path: Path, clock: FakeClock) -> AsyncIterator[httpx.AsyncClient]:
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
        yield c
    runtime.engine.dispose()
    if runtime.event_store is not None:
        runtime.event_store.close()


async def test_kill_switch_round_trip(client: httpx.AsyncClient) -> None:
    url = "/api/v1/config/kill-switch"
    assert (await client.get(url, headers=VIC)).json()["on"] is False
    on = await client.post(f"{url}/activate", json={"reason": "deploy freeze"}, headers=ALICE)
    assert on.status_code == 200
    body = on.json()
    assert body["on"] and body["by"] == "console:alice" and body["changed"]
    again = await client.post(f"{url}/activate", json={"reason": "again"}, headers=ALICE)
    assert again.json()["changed"] is False
    assert again.json()["message"].startswith("kill switch already on since")
    assert again.json()["reason"] == "deploy freeze"
    seen = (await client.get(url, headers=BOB)).json()
    assert seen["on"] and seen["text"].endswith("by console:alice: deploy freeze")
    metrics = (await client.get("/metrics")).text
    assert "bot_kill_switch 1.0" in metrics
    off = await client.post(f"{url}/deactivate", json={"reason": "over"}, headers=ALICE)
    assert off.json()["on"] is False
    audit = (await client.get("/api/v1/audit", params={"action": "kill_switch"})).json()
    assert [(a["result"], a["data"]) for a in audit["items"]] == [
        ("applied", {"on": False, "reason": "over"}),
        ("duplicate", {"on": True, "reason": "again"}),
        ("applied", {"on": True, "reason": "deploy freeze"}),
    ]


async def test_only_admins_change_policy_and_reasons_are_required(
    client: httpx.AsyncClient,
) -> None:
    url = "/api/v1/config/kill-switch/activate"
    refused = await client.post(url, json={"reason": "x"}, headers=BOB)
    assert refused.status_code == 403 and "admin role" in refused.json()["error"]
    no_reason = await client.post(url, json={}, headers=ALICE)
    assert no_reason.status_code == 400 and "reason" in no_reason.json()["error"]
    blank = await client.post(url, json={"reason": "   "}, headers=ALICE)
    assert blank.status_code == 400 and "needs a reason" in blank.json()["error"]
    put = await client.put("/api/v1/config/category/network", json={"threshold": 0.95}, headers=VIC)
    assert put.status_code == 403
    assert (await client.get("/api/v1/config/category/network", headers=VIC)).status_code == 200


async def test_category_config_is_validated_stored_and_audited(
    client: httpx.AsyncClient,
) -> None:
    url = "/api/v1/config/category/database"
    assert (await client.get(url)).json() == {
        "category": "database",
        "enabled": True,
        "auto": False,
        "threshold": 0.9,
        "max_retries": 2,
        "notify_required": True,
        "allowed_playbooks": [],
    }
    put = await client.put(url, json={"threshold": 0.95, "auto": True}, headers=ALICE)
    assert put.status_code == 200 and put.json()["threshold"] == 0.95 and put.json()["auto"]
    assert (await client.get(url)).json()["threshold"] == 0.95  # kept in the database
    unknown = await client.get("/api/v1/config/category/storage")
    assert unknown.status_code == 404
    assert (
        "network, database, application, security, infrastructure, user_access"
        in (unknown.json()["error"])
    )
    for body, field in (
        ({"threshold": 0.3}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"max_retries": 11}, "max_retries"),
        ({"max_retries": -1}, "max_retries"),
        ({"colour": "red"}, "colour"),
        ({"allowed_playbooks": "restart-web"}, "allowed_playbooks"),
    ):
        bad = await client.put(url, json=body, headers=ALICE)
        assert bad.status_code == 400 and bad.json()["error"].startswith(field), body
    audit = (await client.get("/api/v1/audit", params={"action": "config_category"})).json()
    (entry,) = audit["items"]
    assert entry["actor"] == "console:alice"
    assert entry["data"]["before"]["threshold"] == 0.9
    assert entry["data"]["after"]["threshold"] == 0.95


async def test_the_whole_config_at_once(client: httpx.AsyncClient) -> None:
    whole = (await client.get("/api/v1/config")).json()
    assert set(whole) == {"kill_switch", "max_concurrent_resolutions", "categories"}
    assert whole["max_concurrent_resolutions"] == 10 and len(whole["categories"]) == 6
    put = await client.put(
        "/api/v1/config",
        json={
            "max_concurrent_resolutions": 4,
            "categories": {"security": {"enabled": False}, "network": {"max_retries": 0}},
            "kill_switch": {"on": True, "reason": "audit week"},
        },
        headers=ALICE,
    )
    assert put.status_code == 200
    after = put.json()
    assert after["max_concurrent_resolutions"] == 4 and after["kill_switch"]["on"]
    assert after["categories"]["security"]["enabled"] is False
    assert after["categories"]["network"]["max_retries"] == 0
    assert after["categories"]["database"]["enabled"] is True
    bad = await client.put("/api/v1/config", json={"categories": {"storage": {}}}, headers=ALICE)
    assert bad.status_code == 404 and "storage" in bad.json()["error"]
    worse = await client.put(
        "/api/v1/config", json={"max_concurrent_resolutions": 0}, headers=ALICE
    )
    assert worse.status_code == 400
    assert worse.json()["error"].startswith("max_concurrent_resolutions")


async def test_a_playbook_the_breaker_turned_off_is_turned_back_on_by_an_admin(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    url = "/api/v1/config/playbooks"
    off = await client.post(
        f"{url}/drain-host/disable", json={"reason": "3 failed runs"}, headers=ALICE
    )
    assert off.status_code == 200 and off.json()["message"] == "drain-host is off: 3 failed runs"
    listed = (await client.get(url, headers=VIC)).json()
    assert listed == {"disabled": [{"playbook": "drain-host", "reason": "3 failed runs"}]}
    refused = await client.post(f"{url}/drain-host/enable", json={"reason": "fixed"}, headers=BOB)
    assert refused.status_code == 403
    unknown = await client.post(f"{url}/no-such/enable", json={"reason": "x"}, headers=ALICE)
    assert unknown.status_code == 404 and "no-such" in unknown.json()["error"]
    on = await client.post(
        f"{url}/drain-host/enable", json={"reason": "target group fixed"}, headers=ALICE
    )
    assert on.json() == {
        "playbook": "drain-host",
        "enabled": True,
        "changed": True,
        "message": "drain-host is on",
    }
    assert (await client.get(url)).json() == {"disabled": []}
    audit = (await client.get("/api/v1/audit", params={"actor": "console:alice"})).json()
    assert [a["action"] for a in audit["items"]][:2] == ["playbook_enabled", "playbook_disabled"]


async def test_a_category_cannot_allow_a_playbook_that_does_not_exist(
    client: httpx.AsyncClient,
) -> None:
    bad = await client.put(
        "/api/v1/config/category/network",
        json={"allowed_playbooks": ["drain-host", "drian-host"]},
        headers=ALICE,
    )
    assert bad.status_code == 400 and "drian-host" in bad.json()["error"]
