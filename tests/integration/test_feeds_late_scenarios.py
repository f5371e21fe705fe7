"""Late events in single scenarios, through the real rule runner and one shared search: a
held-back ``flatline`` rule does not fire on heartbeats merely in transit; a term whose first
event arrives later than anything measured (the late sweep finds it) still raises its incident
once; a ``change`` later than the allowance is taken when it is the newest; the rules page says
how long a held rule waits. (The differential test over random streams is in
``test_feeds_late_types.py``.)"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from bot.metrics import Metrics
from bot.runner import RuleRunner
from bot.store.repo import INCIDENTS
from detectors.feeds import FeedSet
from detectors.model import Rule
from detectors.types import RULE_TYPES
from integrations.local import EventStore, LocalSearchBackend
from integrations.local.events import Event
from tests.builders import console_policy
from tests.conftest import FakeClock
from tests.integration.test_feeds_late_types import COMMON


def runner_with_feed(
    engine: Engine, store: EventStore, rule: Rule, clock: FakeClock, **knobs: Any
) -> RuleRunner:
    backend = LocalSearchBackend(store)
    return RuleRunner(
        engine,
        backend,
        [rule],
        clock,
        lambda s: s,
        lambda r: console_policy(),
        Metrics(),
        feeds=FeedSet(backend, [rule], **knobs),
    )


def heartbeats(start: datetime, seconds: int, lag_s: float) -> list[Event]:
    return [
        Event(
            time=start + timedelta(seconds=n),
            raw=f"heartbeat seq={n}",
            host="web1",
            indexed=start + timedelta(seconds=n + lag_s),
        )
        for n in range(seconds)
    ]


async def test_a_flatline_rule_does_not_fire_on_heartbeats_still_in_transit(
    sqlite_engine: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    rule = RULE_TYPES["flatline"].model.model_validate(
        {
            **COMMON,
            "id": "quiet",
            "title": "no heartbeat from {host}",
            "type": "flatline",
            "interval": "2s",
            "window": "20s",
            "group_by": ["host"],
            "flatline": {"threshold": 1, "timeframe": "5s"},
        }
    )
    store = EventStore(tmp_path / "events.db")
    start = clock.now() - timedelta(seconds=120)
    beats = heartbeats(start, 220, lag_s=8)  # every second, each searchable 8 s later
    store.add(beats)
    runner = runner_with_feed(
        sqlite_engine, store, rule, clock, max_index_lag=timedelta(seconds=60)
    )
    fired_at = None
    for _ in range(120):
        summary = await runner.run(rule.id)
        assert not summary.error, summary.error
        if summary.result.created and fired_at is None:
            fired_at = clock.now()
        clock.advance(2)
    # silent while the heartbeats flow (the last 5 s of data are always still in transit),
    # then it fires once they stop: after the timeframe and the lag allowance (1.25 x 8 + 2 s)
    # have passed, within one interval
    assert fired_at is not None
    last = beats[-1].time
    waited = (fired_at - last).total_seconds()
    assert 5 + 12 < waited <= 5 + 12 + 2 + 1
    assert runner.feeds is not None
    assert runner.feeds.lag_allowance(rule.id) == timedelta(seconds=12)
    store.close()


async def test_a_term_first_seen_later_than_the_allowance_still_raises_its_incident_once(
    sqlite_engine: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    rule = RULE_TYPES["new_term"].model.model_validate(
        {
            **COMMON,
            "id": "new-user",
            "title": "new user {user}",
            "type": "new_term",
            "interval": "2s",
            "window": "10s",
            "max_index_lag": "60s",
            "new_term": {"fields": ["user"], "learn_for": "0s"},
        }
    )
    store = EventStore(tmp_path / "events.db")
    runner = runner_with_feed(
        sqlite_engine,
        store,
        rule,
        clock,
        max_index_lag=timedelta(seconds=60),
        late_sweep=timedelta(seconds=30),
        learn=timedelta(seconds=5),
    )
    fired: dict[int, list[datetime]] = {}

    async def tick() -> None:
        summary = await runner.run(rule.id)
        assert not summary.error, summary.error
        for incident in (*summary.result.created, *summary.result.updated):
            fired.setdefault(incident, []).append(clock.now())
        clock.advance(2)

    await tick()
    for n in range(30):  # a known user logs in every 2 s, searchable a second later
        at = clock.now() - timedelta(seconds=0.5)
        store.add(
            [Event(time=at, raw=f"login user=alice seq={n}", indexed=at + timedelta(seconds=1))]
        )
        await tick()
    assert runner.feeds is not None
    [feed] = runner.feeds.feeds(rule.id)
    assert feed.scan_back < 5  # the feed learned that its events arrive within a second
    # a new user's only login reaches the index almost a minute after it happened, right after
    # a sweep: the next sweep finds it half a minute later, when the run's window no longer
    # reaches back to its time (the run reaches back for it, with the terms already seen)
    at = clock.now() - timedelta(seconds=58.5)
    store.add([Event(time=at, raw="login user=mallory", indexed=at + timedelta(seconds=59.5))])
    for _ in range(40):
        await tick()
    raised = {
        key: fired.get(incident, []) for incident, key in incident_keys(sqlite_engine).items()
    }
    assert set(raised) == {"new-user|user=alice", "new-user|user=mallory"}
    assert len(raised["new-user|user=alice"]) == 1  # known since the first run, never again
    assert len(raised["new-user|user=mallory"]) == 1  # found by the late sweep, raised once
    assert feed.figures.late_found == 1
    store.close()


def incident_keys(engine: Engine) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(conn.execute(select(INCIDENTS.c.id, INCIDENTS.c.group_key)).all())


async def test_the_rules_page_says_how_long_a_held_rule_waits_for_late_events(
    tmp_path: Path, clock: FakeClock
) -> None:
    from tests.integration.test_api import make_client

    async for client, runtime in make_client(tmp_path, clock):
        assert await runtime.acquire_lease()
        # the forecast rule shares index=metrics with high-cpu; nothing fetched yet
        before = await late_events(client)
        assert before["disk-fill-forecast"] == (
            "held back by the measured lag (not measured yet), then exact"
        )
        assert not (await runtime.runner.run("high-cpu")).error
        clock.advance(30)
        assert not (await runtime.runner.run("high-cpu")).error
        after = await late_events(client)
        assert after["disk-fill-forecast"] == "held back by the measured lag (2 s), then exact"
        assert after["high-cpu"] == "past windows evaluated again when late events arrive"
        assert after["app-error-burst"] == "counted once, by index time"
        page = (await client.get("/rules")).text
        assert "late events: held back by the measured lag (2 s), then exact" in page


async def late_events(client: Any) -> dict[str, str]:
    """What the rules API says of each rule's late events."""
    answer = (await client.get("/api/v1/rules")).json()
    return {r["id"]: r["search"]["late_events"] for r in answer["items"]}


async def test_a_change_arriving_later_than_the_allowance_is_taken_when_it_is_the_newest(
    sqlite_engine: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    rule = RULE_TYPES["change"].model.model_validate(
        {
            **COMMON,
            "id": "role",
            "title": "{host} changed role",
            "type": "change",
            "interval": "2s",
            "window": "20s",
            "max_index_lag": "60s",
            "group_by": ["host"],
            "change": {"compare_field": "role"},
        }
    )
    store = EventStore(tmp_path / "events.db")
    runner = runner_with_feed(
        sqlite_engine,
        store,
        rule,
        clock,
        max_index_lag=timedelta(seconds=60),
        late_sweep=timedelta(seconds=30),
        learn=timedelta(seconds=5),
    )
    created: list[int] = []

    async def tick() -> None:
        summary = await runner.run(rule.id)
        assert not summary.error, summary.error
        created.extend(summary.result.created)
        clock.advance(2)

    def report(at: datetime, host: str, role: str, lag_s: float) -> Event:
        return Event(time=at, raw=f"role={role}", host=host, indexed=at + timedelta(seconds=lag_s))

    await tick()
    for _ in range(30):  # two hosts report their role every 2 s, searchable a second later
        at = clock.now() - timedelta(seconds=0.5)
        store.add([report(at, "web1", "frontend", 1), report(at, "db1", "primary", 1)])
        await tick()
    assert created == []  # first sightings, then the same role again
    # db1's last report says it became a replica; it reaches the index 40 s after it was sent,
    # later than the allowance (the feed measured 1 s lags), so only the late sweep finds it,
    # when every window holding its time has been judged
    store.add([report(clock.now() - timedelta(seconds=0.5), "db1", "replica", 40)])
    for _ in range(60):
        at = clock.now() - timedelta(seconds=0.5)
        store.add([report(at, "web1", "frontend", 1)])
        await tick()
    assert runner.feeds is not None
    [feed] = runner.feeds.feeds(rule.id)
    assert feed.figures.late_found == 1
    # it is db1's newest report: the run reaches back for it, and the change is raised once
    assert list(incident_keys(sqlite_engine).values()) == ["role|host=db1"]
    assert len(created) == 1
    store.close()
