"""The push journal: a push is answered once it is durable and applied just after; queued pushes
are applied together with the same outcome as one by one; a crash between answering and
applying, or between applying and forgetting, neither loses nor doubles a push; replicas
apply each push once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.push.journal import PUSH_JOURNAL, Journal, side_path
from bot.push.mapping import PushedAlert
from bot.push.receiver import PushReceiver
from bot.push.store import PUSH_ALERTS
from bot.store.repo import INCIDENTS, OUTBOX, TIMELINE
from bot.wiring import Runtime
from integrations.alertmanager.wire import Parsed, parse_alerts
from tests.conftest import FakeClock
from tests.push_env import bearer, push_client


def storm_alert(group: int, host: int, clock: FakeClock, ended: bool = False) -> dict[str, Any]:
    now = clock.now()
    ends = now - timedelta(seconds=1) if ended else now + timedelta(hours=1)
    return {
        "labels": {"alertname": f"G{group}", "instance": f"host-{host}", "severity": "warning"},
        "annotations": {"summary": "disk full"},
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
        "endsAt": ends.isoformat(),
    }


def pushed(alerts: list[dict[str, Any]], receiver: PushReceiver) -> list[PushedAlert]:
    parsed = parse_alerts(json.dumps(alerts).encode(), receiver.clock.now(), timedelta(minutes=5))
    assert isinstance(parsed, Parsed) and not parsed.errors
    return parsed.valid


def journaled(runtime: Runtime, alerts: list[dict[str, Any]]) -> int:
    """What the endpoint does before it answers 200, without the applier that follows: as if
    the process died right after answering."""
    receiver = the_receiver(runtime)
    receiver.journal.open()
    return receiver.journal.append("prometheus", pushed(alerts, receiver), receiver.clock.now())


def the_receiver(runtime: Runtime) -> PushReceiver:
    assert runtime.push.receiver is not None
    return runtime.push.receiver


def state(runtime: Runtime) -> dict[str, Any]:
    """What a user sees: incidents (group, state, counts), cards, the alerts list."""
    with runtime.engine.connect() as conn:
        incidents = [
            (r.group_key, r.state, r.hit_count, r.alert_count)
            for r in conn.execute(select(INCIDENTS).order_by(INCIDENTS.c.group_key))
        ]
        cards = conn.execute(
            select(func.count()).select_from(OUTBOX).where(OUTBOX.c.kind == "post")
        ).scalar_one()
        alerts = sorted(
            (r.fingerprint, r.ends_at.isoformat()) for r in conn.execute(select(PUSH_ALERTS))
        )
    return {"incidents": incidents, "cards": cards, "alerts": alerts}


@pytest.fixture
async def two(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    async for pair in push_client(database_url, tmp_path, clock):
        yield pair


def storm_pushes(clock: FakeClock, pushes: int = 12, per_push: int = 30) -> list[list[Any]]:
    """Pushes over 5 groups; hosts repeat between pushes (refreshes) and some are new."""
    return [
        [storm_alert(i % 5, (p * 7 + i) % 60, clock) for i in range(per_push)]
        for p in range(pushes)
    ]


async def test_queued_pushes_applied_together_match_one_by_one(
    tmp_path: Path, clock: FakeClock
) -> None:
    bodies = storm_pushes(clock)
    one_by_one = tmp_path / "one"
    together = tmp_path / "together"
    one_by_one.mkdir(), together.mkdir()
    async for client, runtime in push_client(
        f"sqlite:///{one_by_one / 'bot.db'}", one_by_one, clock
    ):
        for body in bodies:  # the test client waits for each push to be applied
            assert (await client.post("/api/v2/alerts", json=body, headers=bearer())).is_success
        expected = state(runtime)
    async for _, runtime in push_client(f"sqlite:///{together / 'bot.db'}", together, clock):
        receiver = the_receiver(runtime)
        steps = 0
        one_step = receiver._apply_pending

        def counted(one_step: Any = one_step) -> Any:
            nonlocal steps
            steps += 1
            return one_step()

        receiver._apply_pending = counted  # type: ignore[method-assign]
        for body in bodies:
            journaled(runtime, body)
        await receiver.apply_pending()
        assert state(runtime) == expected
        assert steps == 2  # one step applied all twelve, one found nothing more
    assert len(expected["incidents"]) == 5 and expected["cards"] == 5


async def test_a_push_is_answered_while_the_pipeline_is_busy(
    two: tuple[httpx.AsyncClient, Runtime], clock: FakeClock
) -> None:
    client, runtime = two
    receiver = the_receiver(runtime)
    bodies = storm_pushes(clock, pushes=5)
    # a client that does not wait for the pipeline (the tests' client does)
    raw = httpx.AsyncClient(transport=client._transport, base_url="http://bot.test")
    async with receiver._lock:  # as if a long step were applying a storm's backlog
        for body in bodies:
            answer = await asyncio.wait_for(
                raw.post("/api/v2/alerts", json=body, headers=bearer()), timeout=5
            )
            assert answer.status_code == 200 and answer.content == b""
        assert state(runtime)["incidents"] == []
    assert await receiver.settled(within=30)
    assert len(state(runtime)["incidents"]) == 5


async def test_an_alert_that_ends_and_fires_again_while_queued_counts_each_change(
    two: tuple[httpx.AsyncClient, Runtime], clock: FakeClock
) -> None:
    _, runtime = two
    receiver = the_receiver(runtime)
    journaled(runtime, [storm_alert(1, 1, clock)])
    journaled(runtime, [storm_alert(1, 1, clock, ended=True)])
    journaled(runtime, [storm_alert(1, 1, clock)])
    await receiver.apply_pending()
    with runtime.engine.connect() as conn:
        (incident,) = conn.execute(select(INCIDENTS)).all()
        kinds = [
            r.kind
            for r in conn.execute(
                select(TIMELINE)
                .where(TIMELINE.c.incident_id == incident.id)
                .order_by(TIMELINE.c.id)
            )
        ]
    assert incident.state == "open"
    assert kinds[0] == "open" and "clear" in kinds and kinds[-1] == "reopen"


async def test_a_push_answered_before_a_crash_is_applied_at_the_next_start_once(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    body = [storm_alert(g, g, clock) for g in range(3)]
    async for _, runtime in push_client(database_url, tmp_path, clock):
        journaled(runtime, body)  # answered 200, then the process died
        assert state(runtime)["incidents"] == []
    async for _, runtime in push_client(database_url, tmp_path, clock):
        await the_receiver(runtime).apply_pending()  # the expiry chore's first turn
        after = state(runtime)
        assert [i[1:] for i in after["incidents"]] == [("open", 1, 1)] * 3
    async for _, runtime in push_client(database_url, tmp_path, clock):
        await the_receiver(runtime).apply_pending()
        assert state(runtime) == after  # not applied a second time


async def test_sqlite_crash_after_applying_before_forgetting_applies_nothing_twice(
    tmp_path: Path, clock: FakeClock
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    async for _, runtime in push_client(url, tmp_path, clock):
        receiver = the_receiver(runtime)
        receiver.journal.forget = lambda last: None  # type: ignore[method-assign]
        journaled(runtime, [storm_alert(1, 1, clock), storm_alert(1, 2, clock)])
        await receiver.apply_pending()
        before = state(runtime)
    with Journal(runtime.engine).engine.connect() as side:  # the entry is still there
        assert side.execute(select(func.count()).select_from(PUSH_JOURNAL)).scalar_one() == 1
    async for _, runtime in push_client(url, tmp_path, clock):
        await the_receiver(runtime).apply_pending()
        assert state(runtime) == before
        with the_receiver(runtime).journal.engine.connect() as side:
            assert side.execute(select(func.count()).select_from(PUSH_JOURNAL)).scalar_one() == 0


async def test_sqlite_journal_file_lost_new_pushes_are_still_applied(
    tmp_path: Path, clock: FakeClock
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    async for client, _ in push_client(url, tmp_path, clock):
        for g in range(3):
            body = [storm_alert(g, g, clock)]
            assert (await client.post("/api/v2/alerts", json=body, headers=bearer())).is_success
    side = side_path(str(tmp_path / "bot.db"))
    assert side.exists()
    for leftover in side.parent.glob(side.name + "*"):
        leftover.unlink()  # a restore from backup without it, say
    async for client, runtime in push_client(url, tmp_path, clock):
        body = [storm_alert(9, 9, clock)]
        assert (await client.post("/api/v2/alerts", json=body, headers=bearer())).is_success
        assert [i[0] for i in state(runtime)["incidents"]][-1] == "push-default|alertname=G9"


async def test_replicas_apply_each_push_once(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    first = push_client(database_url, tmp_path, clock)
    second = push_client(database_url, tmp_path, clock)
    _, one = await first.__anext__()
    _, other = await second.__anext__()
    try:
        for p, body in enumerate(storm_pushes(clock, pushes=10, per_push=20)):
            journaled(one if p % 2 else other, body)
        await asyncio.gather(the_receiver(one).apply_pending(), the_receiver(other).apply_pending())
        found = state(one)
        assert sum(i[2] for i in found["incidents"]) == len(found["alerts"])  # each counted once
        assert found["cards"] == 5
    finally:
        for gen in (first, second):
            with pytest.raises(StopAsyncIteration):
                await gen.__anext__()


async def test_metrics_show_the_pushes_waiting_to_be_applied(
    two: tuple[httpx.AsyncClient, Runtime], clock: FakeClock
) -> None:
    client, runtime = two
    journaled(runtime, [storm_alert(1, h, clock) for h in range(3)])
    clock.advance(seconds=40)
    journaled(runtime, [storm_alert(2, h, clock) for h in range(4)])
    metrics = (await client.get("/metrics")).text
    assert "bot_push_journal_alerts 7.0" in metrics
    assert "bot_push_journal_oldest_seconds 40.0" in metrics
    await the_receiver(runtime).apply_pending()
    metrics = (await client.get("/metrics")).text
    assert "bot_push_journal_alerts 0.0" in metrics
    assert "bot_push_journal_oldest_seconds 0.0" in metrics
