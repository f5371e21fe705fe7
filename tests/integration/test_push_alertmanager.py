"""Alertmanager API v2 push: Prometheus's and Grafana's recorded payloads, over HTTP, into
incidents, cards, resolutions; Alertmanager's own answers for bad input; sender credentials."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bot.store.repo import INCIDENTS, OUTBOX, TIMELINE
from bot.wiring import Runtime
from tests.conftest import FakeClock
from tests.push_env import basic, bearer, fixture, push_client, push_settings


@pytest.fixture
async def bot(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    async for pair in push_client(database_url, tmp_path, clock):
        yield pair


@pytest.fixture
async def sqlite_bot(
    tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    """The same bot on SQLite only, for checks the database makes no difference to."""
    async for pair in push_client(f"sqlite:///{tmp_path / 'bot.db'}", tmp_path, clock):
        yield pair


def incidents(runtime: Runtime) -> list[dict[str, object]]:
    with runtime.engine.connect() as conn:
        rows = conn.execute(select(INCIDENTS).order_by(INCIDENTS.c.id)).all()
    return [dict(r._mapping) for r in rows]


def posts(runtime: Runtime) -> list[int]:
    with runtime.engine.connect() as conn:
        return [r.incident_id for r in conn.execute(select(OUTBOX).where(OUTBOX.c.kind == "post"))]


async def test_prometheus_push_opens_one_incident_per_group_with_cards(
    bot: tuple[httpx.AsyncClient, Runtime],
) -> None:
    client, runtime = bot
    answer = await client.post(
        "/api/v2/alerts", json=fixture("prometheus_firing.json"), headers=bearer()
    )
    assert answer.status_code == 200 and answer.content == b""
    found = incidents(runtime)
    assert [(i["rule_id"], i["group_key"], i["severity"], i["hit_count"]) for i in found] == [
        ("push-checkout", "push-checkout|alertname=HighRequestLatency,cluster=eu-1", "critical", 2),
        ("push-default", "push-default|alertname=DiskWillFillIn4Hours", "medium", 1),
    ]
    checkout = found[0]
    assert checkout["title"] == "HighRequestLatency: p99 latency above 2s on checkout"
    assert checkout["service"] == "checkout" and checkout["state"] == "open"
    assert checkout["runbook"] == "https://runbooks.example.com/checkout/latency"
    assert str(checkout["search_link"]).startswith("http://prometheus:9090/graph?g0.expr=")
    assert sorted(posts(runtime)) == [found[0]["id"], found[1]["id"]]

    # Prometheus re-sends every evaluation: nothing new, no second card, counts unchanged
    again = await client.post(
        "/api/v2/alerts", json=fixture("prometheus_firing.json"), headers=bearer()
    )
    assert again.status_code == 200
    assert [i["hit_count"] for i in incidents(runtime)] == [2, 1]
    assert len(posts(runtime)) == 2


async def test_ends_at_in_the_past_resolves_the_group_through_a_clear(
    bot: tuple[httpx.AsyncClient, Runtime], clock: FakeClock
) -> None:
    client, runtime = bot
    await client.post("/api/v2/alerts", json=fixture("prometheus_firing.json"), headers=bearer())
    clock.advance(minutes=2)  # 10:02, after the resolved payload's endsAt (10:01:30)
    one = fixture("prometheus_resolved.json")[:1]
    await client.post("/api/v2/alerts", json=one, headers=bearer())
    assert [i["state"] for i in incidents(runtime)] == ["open", "open"]  # one alert still fires
    answer = await client.post(
        "/api/v2/alerts", json=fixture("prometheus_resolved.json"), headers=bearer()
    )
    assert answer.status_code == 200
    checkout, disk = incidents(runtime)
    assert checkout["state"] == "resolved" and checkout["state_changed_by"] == "bot"
    assert disk["state"] == "open"
    with runtime.engine.connect() as conn:
        kinds = [
            r.kind
            for r in conn.execute(select(TIMELINE).where(TIMELINE.c.incident_id == checkout["id"]))
        ]
    assert kinds[0] == "open" and "clear" in kinds
    listed = (await client.get("/api/v2/alerts", headers=bearer())).json()
    assert [a["labels"]["alertname"] for a in listed] == ["DiskWillFillIn4Hours"]

    # firing again within the flap window reopens the same incident
    clock.advance(minutes=1)
    fired = fixture("prometheus_firing.json")[:1]
    fired[0]["startsAt"], fired[0]["endsAt"] = "2026-11-22T10:02:50Z", "2026-11-22T10:08:00Z"
    await client.post("/api/v2/alerts", json=fired, headers=bearer())
    checkout = incidents(runtime)[0]
    assert checkout["state"] == "open" and checkout["hit_count"] == 3


async def test_grafana_alert_without_end_resolves_after_resolve_timeout(
    bot: tuple[httpx.AsyncClient, Runtime], clock: FakeClock
) -> None:
    client, runtime = bot
    answer = await client.post(
        "/api/v2/alerts", json=fixture("grafana_firing.json"), headers=basic()
    )
    assert answer.status_code == 200
    (found,) = incidents(runtime)
    assert found["severity"] == "critical" and found["rule_id"] == "push-checkout"
    assert found["owner"] == "payments"
    listed = (await client.get("/api/v2/alerts", headers=basic())).json()
    assert listed[0]["endsAt"] == "2026-11-22T10:05:00.000Z"  # now + resolve_timeout (5m)
    clock.advance(minutes=4)
    assert runtime.push.receiver is not None
    assert await runtime.push.receiver.expire() == []
    clock.advance(minutes=2)
    assert await runtime.push.receiver.expire() == [found["id"]]
    assert incidents(runtime)[0]["state"] == "resolved"


async def test_invalid_alerts_get_alertmanagers_answers_and_valid_ones_are_kept(
    bot: tuple[httpx.AsyncClient, Runtime],
) -> None:
    client, runtime = bot
    good = fixture("prometheus_firing.json")[2]
    backwards = {**good, "startsAt": "2026-11-22T10:00:00Z", "endsAt": "2026-11-22T09:00:00Z"}
    empty = {**good, "labels": {"alertname": ""}}
    bad_name = {**good, "labels": {"alert-name": "x"}}
    answer = await client.post(
        "/api/v2/alerts", json=[backwards, good, empty, bad_name], headers=bearer()
    )
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/json"
    assert answer.text == (
        '"start time must be before end time; at least one label pair required; '
        'invalid label set: invalid name \\"alert-name\\""\n'
    )
    assert [i["group_key"] for i in incidents(runtime)] == [
        "push-default|alertname=DiskWillFillIn4Hours"
    ]
    missing = await client.post("/api/v2/alerts", json=[{"annotations": {}}], headers=bearer())
    assert missing.status_code == 422
    assert missing.json() == {"code": 602, "message": "0.labels in body is required"}
    broken = await client.post("/api/v2/alerts", content=b"[{", headers=bearer())
    assert broken.status_code == 400 and broken.json()["code"] == 400
    assert broken.json()["message"].startswith('parsing alerts body from "" failed, because ')
    metrics = (await client.get("/metrics")).text
    assert 'bot_push_alerts_total{outcome="invalid",sender="prometheus"} 3.0' in metrics


async def test_credentials_are_required_and_failures_counted(
    sqlite_bot: tuple[httpx.AsyncClient, Runtime],
) -> None:
    client, runtime = sqlite_bot
    body = fixture("prometheus_firing.json")
    assert (await client.post("/api/v2/alerts", json=body)).status_code == 401
    wrong = await client.post("/api/v2/alerts", json=body, headers=bearer("not-the-token"))
    assert wrong.status_code == 401 and "bearer" in wrong.json()["error"]
    assert (
        await client.post("/api/v2/alerts", json=body, headers=basic(password="x"))
    ).status_code == 401
    assert (await client.get("/api/v2/alerts")).status_code == 401
    assert incidents(runtime) == []
    metrics = (await client.get("/metrics")).text
    assert 'bot_push_auth_failures_total{endpoint="alertmanager",reason="missing"} 2.0' in metrics
    assert 'bot_push_auth_failures_total{endpoint="alertmanager",reason="wrong"} 2.0' in metrics
    assert (await client.post("/api/v2/alerts", json=body, headers=basic())).status_code == 200


async def test_silences_mute_pushed_alerts(bot: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, runtime = bot
    await runtime.operations.silence(
        ["alertname=DiskWillFillIn4Hours"], timedelta(hours=1), "disk swap tonight", "console:local"
    )
    await client.post("/api/v2/alerts", json=fixture("prometheus_firing.json"), headers=bearer())
    checkout, disk = incidents(runtime)
    assert disk["muted_by"] and checkout["muted_by"] is None
    assert posts(runtime) == [checkout["id"]]
    listed = (await client.get("/api/v2/alerts", headers=bearer())).json()
    states = {a["labels"]["alertname"]: a["status"]["state"] for a in listed}
    assert states == {"HighRequestLatency": "active", "DiskWillFillIn4Hours": "suppressed"}
    only_active = await client.get("/api/v2/alerts", params={"silenced": "false"}, headers=bearer())
    assert {a["labels"]["alertname"] for a in only_active.json()} == {"HighRequestLatency"}


async def test_list_filters_and_status_for_amtool(
    sqlite_bot: tuple[httpx.AsyncClient, Runtime],
) -> None:
    client, _ = sqlite_bot
    await client.post("/api/v2/alerts", json=fixture("prometheus_firing.json"), headers=bearer())
    found = await client.get(
        "/api/v2/alerts", params={"filter": ['instance=~"checkout-7.*"']}, headers=bearer()
    )
    (alert,) = found.json()
    assert alert["labels"]["instance"] == "checkout-7d9f:8080"
    assert alert["startsAt"] == "2026-11-22T09:58:30.123Z"
    assert alert["receivers"] == [{"name": "checkout"}] and len(alert["fingerprint"]) == 20
    bad = await client.get("/api/v2/alerts", params={"filter": ["nope"]}, headers=bearer())
    assert bad.status_code == 400 and "bad matcher 'nope'" in bad.json()
    status = (await client.get("/api/v2/status", headers=bearer())).json()
    assert status["cluster"]["status"] == "disabled" and "version" in status["versionInfo"]
    assert "receiver: checkout" in status["config"]["original"]


async def test_rate_limit_answers_429_with_retry_after(tmp_path: Path, clock: FakeClock) -> None:
    settings = push_settings()
    settings["senders"][0] = {**settings["senders"][0], "rate": 0.1, "burst": 1}
    async for client, _ in push_client(
        f"sqlite:///{tmp_path / 'bot.db'}", tmp_path, clock, push=settings
    ):
        body = fixture("prometheus_firing.json")
        assert (await client.post("/api/v2/alerts", json=body, headers=bearer())).status_code == 200
        limited = await client.post("/api/v2/alerts", json=body, headers=bearer())
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "10"
        # another sender has its own budget
        assert (await client.post("/api/v2/alerts", json=body, headers=basic())).status_code == 200
        metrics = (await client.get("/metrics")).text
        assert 'bot_push_rate_limited_total{sender="prometheus"} 1.0' in metrics


async def test_body_over_the_limit_is_refused(tmp_path: Path, clock: FakeClock) -> None:
    async for client, runtime in push_client(
        f"sqlite:///{tmp_path / 'bot.db'}", tmp_path, clock, max_body_bytes=4096
    ):
        alerts = [
            {"labels": {"alertname": "Big", "n": str(i)}, "annotations": {"x": "y" * 100}}
            for i in range(50)
        ]
        answer = await client.post(
            "/api/v2/alerts", content=json.dumps(alerts).encode(), headers=bearer()
        )
        assert answer.status_code == 413 and "BOT_MAX_BODY_BYTES" in answer.text
        assert incidents(runtime) == []


async def test_no_senders_no_endpoints(tmp_path: Path, clock: FakeClock) -> None:
    async for client, _ in push_client(
        f"sqlite:///{tmp_path / 'bot.db'}", tmp_path, clock, push={"senders": []}
    ):
        answer = await client.post("/api/v2/alerts", json=[], headers=bearer())
        assert answer.status_code == 404
