"""One audit chain over HTTP: a detection, its RCA and every click of one incident, in order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from bot.server import create_app
from bot.settings import load_settings
from bot.store import audit
from bot.wiring import Runtime
from tests.conftest import FakeClock


@dataclass
class Bot:
    client: httpx.AsyncClient
    runtime: Runtime
    clock: FakeClock


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Bot]:
    clock = FakeClock(datetime.now(UTC))
    config = load_settings(
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        local_events_path=tmp_path / "events.db",
        generator=False,
        rca="heuristic",
    )
    runtime = Runtime(config, clock=clock)
    await runtime.connect(attempts=1)
    transport = httpx.ASGITransport(app=create_app(runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://bot.test") as client:
        yield Bot(client, runtime, clock)
    runtime.engine.dispose()
    if runtime.event_store is not None:
        runtime.event_store.close()


async def detect(bot: Bot) -> str:
    """The 5xx burst scenario, found by its rule through the local search backend."""
    injected = await bot.client.post("/api/v1/simulate", json={"scenario": "web-5xx-burst"})
    assert injected.status_code == 200
    bot.clock.advance(120)
    assert await bot.runtime.acquire_lease()
    summary = await bot.runtime.runner.run("web-5xx-burst")
    (incident,) = summary.result.created
    await bot.runtime.enricher.analyse(incident)
    return f"INC-{incident}"


async def test_one_incident_chain_in_order(bot: Bot) -> None:
    incident = await detect(bot)
    url = f"/api/v1/incidents/{incident}/commands"
    await bot.client.post(url, json={"command": "acknowledge"}, headers={"X-Bot-User": "ann"})
    await bot.client.post(url, json={"command": "resolve", "note": "rolled back the deploy"})
    chain = (await bot.client.get(f"/api/v1/audit/incident/{incident}")).json()
    assert chain["incident"] == incident and chain["intact"]
    assert [(e["action"], e["actor"]) for e in chain["items"]] == [
        ("detect", "rule:web-5xx-burst"),
        ("rca", "rca:heuristic"),
        ("acknowledge", "console:ann"),
        ("resolve", "console:local"),
    ]
    found = chain["items"][0]["data"]
    rule = next(r for r in bot.runtime.rules if r.id == "web-5xx-burst")
    assert found["rule"] == "web-5xx-burst" and found["query"] == rule.query
    start = datetime.fromisoformat(found["window"]["start"])
    end = datetime.fromisoformat(found["window"]["end"])
    assert start < end <= bot.clock.now()
    rca = chain["items"][1]["data"]
    assert rca["engine"] == "heuristic" and rca["status"] in ("ok", "insufficient_evidence")
    ids = [e["id"] for e in chain["items"]]
    assert ids == sorted(ids)
    for before, after in zip(chain["items"], chain["items"][1:], strict=False):
        assert len(after["hash"]) == 64 and after["prev_hash"] != after["hash"]
        assert before["id"] < after["id"]


async def test_filters_and_cursor(bot: Bot) -> None:
    incident = await detect(bot)
    started = bot.clock.now()
    for name in ("ann", "bob", "ann"):
        bot.clock.advance(60)
        await bot.client.post(
            f"/api/v1/incidents/{incident}/commands",
            json={"command": "comment", "text": f"looking ({name})"},
            headers={"X-Bot-User": name},
        )
    api = "/api/v1/audit"
    everything = (await bot.client.get(api)).json()
    assert everything["total"] == 5 and everything["next_cursor"] is None
    assert [e["action"] for e in everything["items"]][-2:] == ["rca", "detect"]  # newest first
    anns = (await bot.client.get(api, params={"actor": "console:ann"})).json()
    assert anns["total"] == 2 and {e["actor"] for e in anns["items"]} == {"console:ann"}
    detects = await bot.client.get(api, params={"action": "detect", "incident": incident})
    assert [e["incident"] for e in detects.json()["items"]] == [incident]
    window = {
        "since": (started + timedelta(seconds=90)).isoformat(),
        "until": (started + timedelta(seconds=150)).isoformat(),
    }
    middle = (await bot.client.get(api, params=window)).json()
    assert [e["actor"] for e in middle["items"]] == ["console:bob"]
    assert (await bot.client.get(api, params={"result": "refused"})).json()["total"] == 0
    first = (await bot.client.get(api, params={"limit": 2})).json()
    second = (await bot.client.get(api, params={"limit": 2, "cursor": first["next_cursor"]})).json()
    third = (await bot.client.get(api, params={"limit": 2, "cursor": second["next_cursor"]})).json()
    pages = [e["id"] for page in (first, second, third) for e in page["items"]]
    assert pages == [e["id"] for e in everything["items"]]
    too_many = await bot.client.get(api, params={"limit": 1001})
    assert too_many.status_code == 400 and "limit" in too_many.json()["error"]


async def test_unknown_incidents_and_altered_entries(bot: Bot) -> None:
    missing = await bot.client.get("/api/v1/audit/incident/INC-404")
    assert missing.status_code == 404 and "INC-404" in missing.json()["error"]
    nonsense = await bot.client.get("/api/v1/audit/incident/hello")
    assert nonsense.status_code == 404 and "INC-12" in nonsense.json()["error"]
    incident = await detect(bot)
    with bot.runtime.engine.begin() as conn:
        conn.execute(
            update(audit.AUDIT).where(audit.AUDIT.c.action == "detect").values(actor="mallory")
        )
    chain = (await bot.client.get(f"/api/v1/audit/incident/{incident}")).json()
    assert chain["intact"] is False
    assert [e["intact"] for e in chain["items"]] == [False, True]
