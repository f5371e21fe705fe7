"""Shared searches: rules over one index read one feed that fetches, once, only what became
searchable since its last fetch (index-time bounds through the real splunk-sdk against the fake
with indexing lag on, and through the local backend); late bursts still raise their incident
once; a restart resumes without a gap or a second incident; rules the bot cannot evaluate
itself run alone and say why."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from bot.metrics import Metrics
from bot.scheduler import RuleRunner
from detectors.feeds import FeedSet, plan_feeds
from detectors.rules import load_rules
from integrations.local import EventStore, LocalSearchBackend
from integrations.local.events import Event
from tests.builders import console_policy
from tests.conftest import FakeClock
from tests.fakes.splunk import FakeSplunk
from tests.integration.test_late_events import (
    EXPECTED,
    RULE,
    burst,
    incidents,
    splunk,  # noqa: F401  (fixture)
    splunk_backend,
)

# a second rule over the same sourcetype: it shares the feed, so the same searches serve both
BUSY = """\
id: busy-bastion
title: "Many failed logins on {host}"
type: threshold
query: >-
  index=os sourcetype=linux_secure "Failed password" | stats count as failures by host
interval: 2s
window: 40s
group_by: [host]
threshold: {field: failures, op: ">=", value: 20}
severity: medium
category: security
"""


def rules(tmp_path: Path, *texts: str) -> list[Any]:
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    for n, text in enumerate(texts):
        (folder / f"r{n}.yaml").write_text(text)
    return load_rules([folder], include_shipped=False)


def runner_for(
    engine: Engine, backend: Any, loaded: list[Any], clock: FakeClock, **knobs: Any
) -> RuleRunner:
    feeds = FeedSet(backend, loaded, max_index_lag=timedelta(minutes=5), **knobs)
    return RuleRunner(
        engine,
        backend,
        loaded,
        clock,
        lambda s: s,
        lambda r: console_policy(),
        Metrics(),
        feeds=feeds,
    )


async def trial(runner: RuleRunner, clock: FakeClock, add: Callable[[list[Event]], object]) -> None:
    """The issue's trial: a burst searchable 0.5 s after it happened, one 8 s after."""
    for rule_id in runner.rules:
        await runner.run(rule_id)
    add(burst(clock.now() + timedelta(seconds=1), "203.0.113.7", timedelta(seconds=0.5)))
    add(burst(clock.now() + timedelta(seconds=3), "198.51.100.9", timedelta(seconds=8)))
    for _ in range(40):
        clock.advance(2)
        for rule_id in runner.rules:
            summary = await runner.run(rule_id)
            assert not summary.error, summary.error


async def test_through_splunk_one_search_per_tick_serves_both_rules_and_fetches_each_event_once(
    engine: Engine,
    clock: FakeClock,
    tmp_path: Path,
    splunk: FakeSplunk,  # noqa: F811
) -> None:
    loaded = rules(tmp_path, RULE, BUSY)
    runner = runner_for(engine, splunk_backend(splunk), loaded, clock)
    await trial(runner, clock, splunk.add_events)
    found = incidents(engine)
    assert {k: v for k, v in found.items() if k.startswith("ssh-guessing")} == EXPECTED
    assert "busy-bastion|host=bastion" in found  # the threshold rule saw both bursts (24)
    searches = splunk.searches()
    assert len(searches) == 41  # one per tick for the two rules, not two
    # raw events with every field Splunk extracts: the rules evaluate their own queries on them
    assert all(s.params.get("adhoc_search_level") == "verbose" for s in searches)
    # contiguous index-time bounds: each fetch starts where the previous one ended
    for before, after in itertools.pairwise(searches[1:]):
        assert after.params["index_earliest"] == before.params["index_latest"]
    assert runner.feeds is not None
    assert runner.feeds.totals.rows == 24  # each event fetched once
    # while it learns how late the pipeline indexes, a fetch reaches back max_index_lag
    last = searches[-1].params
    assert float(last["index_earliest"]) - float(last["earliest_time"]) == 300
    lag = runner.index_lag["linux_secure"]
    assert lag.events == 24 and 7 <= lag.largest <= 8.5  # each event measured once


async def test_through_the_local_backend_both_bursts_raise_their_incident_once(
    engine: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    store = EventStore(tmp_path / "events.db")
    loaded = rules(tmp_path, RULE, BUSY)
    runner = runner_for(engine, LocalSearchBackend(store), loaded, clock)
    await trial(runner, clock, store.add)
    found = incidents(engine)
    assert {k: v for k, v in found.items() if k.startswith("ssh-guessing")} == EXPECTED
    assert runner.feeds is not None and runner.feeds.totals.rows == 24
    store.close()


async def test_a_restart_resumes_the_feed_without_a_gap_or_a_second_incident(
    engine: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    store = EventStore(tmp_path / "events.db")
    loaded = rules(tmp_path, RULE)
    first = runner_for(engine, LocalSearchBackend(store), loaded, clock)
    await first.run("ssh-guessing")
    store.add(burst(clock.now() + timedelta(seconds=1), "203.0.113.7", timedelta(seconds=0.5)))
    clock.advance(10)
    assert (await first.run("ssh-guessing")).result.created
    # the process dies; a burst is indexed while it is away; a new one starts cold
    store.add(burst(clock.now() + timedelta(seconds=2), "198.51.100.9", timedelta(seconds=1)))
    clock.advance(30)
    second = runner_for(engine, LocalSearchBackend(store), loaded, clock)
    summary = await second.run("ssh-guessing")
    assert not summary.error
    clock.advance(2)
    await second.run("ssh-guessing")
    assert incidents(engine) == EXPECTED  # the second burst once, the first not again
    store.close()


def test_rules_the_bot_cannot_evaluate_itself_run_alone_and_say_why(tmp_path: Path) -> None:
    plain = RULE
    no_index = RULE.replace("id: ssh-guessing", "id: anywhere").replace(
        "index=os sourcetype=linux_secure ", ""
    )
    modifiers = RULE.replace("id: ssh-guessing", "id: own-time").replace(
        "index=os", "index=os earliest=-1h"
    )
    cron = RULE.replace("id: ssh-guessing", "id: nightly").replace(
        "interval: 2s", 'schedule: "0 3 * * *"'
    )
    other = BUSY.replace("index=os sourcetype=linux_secure", "index=web sourcetype=nginx").replace(
        "id: busy-bastion", "id: busy-web"
    )
    plan = plan_feeds(rules(tmp_path, plain, no_index, modifiers, cron, other, BUSY))
    assert plan.alone == {
        "anywhere": "has no index= term (or index IN list) naming its indexes exactly",
        "own-time": "sets its own earliest/latest in the query",
        "nightly": "runs on a cron schedule",
    }
    by_name = {spec.name: spec for spec in plan.specs}
    assert set(by_name) == {"index=os", "index=web"}
    assert sorted(by_name["index=os"].rules) == ["busy-bastion", "ssh-guessing"]
    assert by_name["index=web"].rules == ("busy-web",)
    assert by_name["index=os"].query == "search index=os sourcetype=linux_secure"


async def test_the_scan_back_follows_the_measured_lag_and_the_sweep_finds_what_is_later(
    engine: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    store = EventStore(tmp_path / "events.db")
    loaded = rules(tmp_path, RULE)
    runner = runner_for(
        engine, LocalSearchBackend(store), loaded, clock, late_sweep=timedelta(seconds=30)
    )
    assert runner.feeds is not None
    [feed] = runner.feeds.feeds("ssh-guessing")
    await runner.run("ssh-guessing")
    for n in range(LEARN_TICKS):  # quiet logins, indexed a second after they happen
        store.add([single(clock, n, lag_s=1)])
        clock.advance(2)
        await runner.run("ssh-guessing")
    assert feed.scan_back == 1.25 * 1 + 2  # no longer max_index_lag (300 s)
    # a burst indexed a minute late: beyond the scan-back, so the sweep finds it, once
    store.add(burst(clock.now() - timedelta(seconds=50), "198.51.100.9", timedelta(seconds=60)))
    for _ in range(30):
        clock.advance(2)
        await runner.run("ssh-guessing")
    assert incidents(engine) == {"ssh-guessing|host=bastion,src=198.51.100.9": 12}
    assert feed.figures.late_found == 12
    assert feed.scan_back >= 60  # it widened to the lag it found
    store.close()


LEARN_TICKS = 310  # ten minutes of index time, two seconds apart


async def test_a_sweep_counts_what_it_finds_in_the_run_of_its_own_tick(
    engine: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    """With a sweep at every fetch (BOT_LATE_SWEEP=1s), a burst far later than any lag measured
    raises its incident in the first run after it became searchable, not one tick later."""
    store = EventStore(tmp_path / "events.db")
    loaded = rules(tmp_path, RULE)
    runner = runner_for(
        engine, LocalSearchBackend(store), loaded, clock, late_sweep=timedelta(seconds=1)
    )
    await runner.run("ssh-guessing")
    for n in range(LEARN_TICKS):
        store.add([single(clock, n, lag_s=1)])
        clock.advance(2)
        await runner.run("ssh-guessing")
    # a forwarder's backlog flushed at once, a minute late
    searchable = clock.now() + timedelta(seconds=7.5)
    late = burst(clock.now() - timedelta(seconds=60), "198.51.100.9", timedelta(seconds=60))
    store.add([replace(event, indexed=searchable) for event in late])
    while not incidents(engine):
        assert clock.now() < searchable + timedelta(seconds=10), "not raised in time"
        clock.advance(2)
        await runner.run("ssh-guessing")
    # raised by the first run whose index time reaches past it (runs are 2 s apart)
    assert clock.now() - searchable <= timedelta(seconds=2)
    for _ in range(5):
        clock.advance(2)
        await runner.run("ssh-guessing")
    assert incidents(engine) == {"ssh-guessing|host=bastion,src=198.51.100.9": 12}
    store.close()


async def test_a_restarted_process_resumes_the_measured_lag_instead_of_learning_again(
    engine: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    store = EventStore(tmp_path / "events.db")
    loaded = rules(tmp_path, RULE)
    first = runner_for(engine, LocalSearchBackend(store), loaded, clock)
    await first.run("ssh-guessing")
    for n in range(LEARN_TICKS):
        store.add([single(clock, n, lag_s=4)])
        clock.advance(2)
        await first.run("ssh-guessing")
    assert first.feeds is not None
    assert first.feeds.feeds("ssh-guessing")[0].scan_back == 1.25 * 4 + 2
    # the process dies; its replacement (or the replica taking the lease over) starts cold
    clock.advance(20)
    second = runner_for(engine, LocalSearchBackend(store), loaded, clock)
    assert second.feeds is not None
    [feed] = second.feeds.feeds("ssh-guessing")
    assert feed.scan_back == 300  # nothing measured in this process yet
    await second.run("ssh-guessing")
    clock.advance(2)
    await second.run("ssh-guessing")
    # it reaches back as far as the lag measured before, not max_index_lag for ten minutes
    assert feed.scan_back == 1.25 * 4 + 2
    assert second.feeds.lag_allowance("ssh-guessing") == timedelta(seconds=1.25 * 4 + 2)
    store.close()


def single(clock: FakeClock, n: int, lag_s: float) -> Event:
    at = clock.now() - timedelta(seconds=0.5)
    return Event(
        time=at,
        raw=f"sshd[{n}]: Accepted publickey for deploy from 192.0.2.8 host=bastion src=192.0.2.8",
        index="os",
        sourcetype="linux_secure",
        host="bastion",
        indexed=at + timedelta(seconds=lag_s),
    )


async def test_the_rules_page_api_and_metrics_show_which_rules_share_which_search(
    tmp_path: Path, clock: FakeClock
) -> None:
    from tests.integration.test_api import make_client

    async for client, runtime in make_client(tmp_path, clock):
        assert await runtime.acquire_lease()
        for rule_id in ("high-cpu", "memory-pressure"):  # both over index=metrics
            assert not (await runtime.runner.run(rule_id)).error
        clock.advance(30)
        assert not (await runtime.runner.run("high-cpu")).error
        page = (await client.get("/rules")).text
        assert "Shared searches" in page
        assert "<code>search index=metrics" in page
        assert "shares <code>index=metrics</code> with" in page
        answer = (await client.get("/api/v1/rules")).json()
        listed = {r["id"]: r["search"] for r in answer["items"]}
        cpu = listed["high-cpu"]
        assert cpu["shared"] and cpu["feed"] == "index=metrics"
        assert "memory-pressure" in cpu["with"]
        assert cpu["search_lag_s"] is not None and cpu["search_lag_s"] < 30
        assert cpu["late_events"] == "past windows evaluated again when late events arrive"
        assert listed["ssh-password-guessing"]["late_events"] == "counted once, by index time"
        metrics = (await client.get("/metrics")).text
        assert 'bot_feed{feed="index=metrics",figure="searches"} 2.0' in metrics
        assert 'bot_rule_search_lag_seconds{rule="high-cpu"}' in metrics


def test_cron_rules_are_scheduled_not_paused(
    tmp_path: Path, engine: Engine, clock: FakeClock
) -> None:
    import asyncio

    from bot.scheduler import Scheduler

    cron = RULE.replace("interval: 2s", 'schedule: "0 3 * * *"')
    store = EventStore(tmp_path / "events.db")
    runner = runner_for(engine, LocalSearchBackend(store), rules(tmp_path, cron, BUSY), clock)

    async def start() -> dict[str, Any]:
        scheduler = Scheduler(runner, timedelta(0))
        scheduler.start()
        try:
            return scheduler.next_runs()
        finally:
            scheduler.shutdown()

    runs = asyncio.run(start())
    store.close()
    assert runs["ssh-guessing"] is not None and runs["ssh-guessing"].hour == 3
    assert runs["busy-bastion"] is not None  # a fed rule: on the ticks of its interval
    assert runs["busy-bastion"].timestamp() % 2 == pytest.approx(0.3)


async def test_the_generator_can_delay_indexing_and_a_fed_rule_still_raises_once(
    engine: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    from integrations.local.generator import Generator

    store = EventStore(tmp_path / "events.db")
    generator = Generator(store, seed=3, index_lag=timedelta(seconds=20))
    shipped = [r for r in load_rules([]) if r.id == "web-5xx-burst"]
    runner = runner_for(engine, LocalSearchBackend(store), shipped, clock)
    await runner.run("web-5xx-burst")
    now = clock.now()
    generator.inject("web-5xx-burst", now)
    rows = list(store.scan(now - timedelta(minutes=5), now + timedelta(minutes=1)))
    lags = [row["_indextime"] - max(row["_time"], now.timestamp()) for row in rows]
    assert rows and all(0 <= lag <= 20 for lag in lags) and max(lags) > 5
    for _ in range(10):  # 30-second runs: every event is searchable by the second
        clock.advance(30)
        assert not (await runner.run("web-5xx-burst")).error
    assert len([k for k in incidents(engine) if k.startswith("web-5xx-burst")]) == 1
    store.close()
