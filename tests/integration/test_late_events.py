"""Late events: a burst that reaches the index seconds after it happened still raises its
incident, once, through Splunk (the real splunk-sdk against the fake with indexing lag on) and
through the local backend; the indexing lag is measured per sourcetype."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import Engine, select

from bot.domain.hits import Hit, SearchQuery
from bot.metrics import Metrics
from bot.ports import Health, SearchBackend
from bot.scheduler import RuleRunner
from bot.store.repo import INCIDENTS
from detectors.rules import load_rules
from integrations.local import EventStore, LocalSearchBackend
from integrations.local.events import Event
from integrations.splunk import SplunkSearchBackend
from integrations.splunk.settings import SplunkSettings
from tests.builders import console_policy
from tests.conftest import FakeClock
from tests.fakes.splunk import FakeSplunk

# the trial of the issue: the shipped ssh-password-guessing rule's shape, run every 2 s
RULE = """\
id: ssh-guessing
title: "SSH password guessing from {src} on {host}"
type: frequency
query: index=os sourcetype=linux_secure "Failed password"
interval: 2s
window: 40s
query_delay: 0s
group_by: [host, src]
frequency: {num_events: 10, timeframe: 20s}
severity: high
category: security
"""
TOKEN = "fake-bearer-token"


class Recording:
    """A backend, remembering the queries it was asked."""

    def __init__(self, inner: SearchBackend, index_time_bounds: bool = True) -> None:
        self.inner = inner
        self.queries: list[SearchQuery] = []
        self.index_time_bounds = index_time_bounds

    async def search(self, query: SearchQuery) -> list[Hit]:
        self.queries.append(query)
        return await self.inner.search(query)

    async def check(self) -> Health:
        return await self.inner.check()


def burst(start: datetime, src: str, lag: timedelta) -> list[Event]:
    """12 failed logins from ``src``, half a second apart, each indexed ``lag`` after it."""
    events = []
    for i in range(12):
        at = start + timedelta(seconds=i / 2)
        events.append(
            Event(
                time=at,
                raw=f"sshd[{100 + i}]: Failed password for root from {src} port 22 ssh2 "
                f"host=bastion src={src}",
                index="os",
                sourcetype="linux_secure",
                host="bastion",
                indexed=at + lag,
            )
        )
    return events


@pytest.fixture
def rule(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "rules" / "ssh.yaml"
    path.parent.mkdir()
    path.write_text(RULE)
    (loaded,) = load_rules([path.parent], include_shipped=False)
    return loaded


@pytest.fixture
def splunk(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> Iterator[FakeSplunk]:
    for name in list(os.environ):
        if name.startswith(("SPLUNK_", "BOT_")):
            monkeypatch.delenv(name)
    with FakeSplunk(token=TOKEN) as fake:
        fake.index_clock = clock.now  # splunkd answers only with what is already indexed
        yield fake


def splunk_backend(fake: FakeSplunk) -> SplunkSearchBackend:
    return SplunkSearchBackend(
        SplunkSettings(host=fake.host, port=fake.port, scheme="http", token=SecretStr(TOKEN))
    )


async def trial(engine: Engine, backend: Recording, rule, clock: FakeClock, add) -> RuleRunner:  # type: ignore[no-untyped-def]
    """Two bursts: one searchable 0.5 s after it happened, one 8 s after; 40 runs 2 s apart."""
    metrics = Metrics()
    runner = RuleRunner(
        engine, backend, [rule], clock, lambda s: s, lambda r: console_policy(), metrics
    )
    await runner.run(rule.id)  # the first run
    add(burst(clock.now() + timedelta(seconds=1), "203.0.113.7", timedelta(seconds=0.5)))
    add(burst(clock.now() + timedelta(seconds=3), "198.51.100.9", timedelta(seconds=8)))
    for _ in range(40):
        clock.advance(2)
        summary = await runner.run(rule.id)
        assert not summary.error
    runner.metrics_registry = metrics.registry  # type: ignore[attr-defined]
    return runner


def incidents(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(INCIDENTS.c.group_key, INCIDENTS.c.hit_count)).all()
    return {key: count for key, count in rows}


EXPECTED = {
    "ssh-guessing|host=bastion,src=198.51.100.9": 12,
    "ssh-guessing|host=bastion,src=203.0.113.7": 12,
}


def assert_lag_measured(runner: RuleRunner) -> None:
    lag = runner.index_lag["linux_secure"]
    assert lag.events == 24  # each event measured once, in the run that first saw it
    assert 7 <= lag.largest <= 8.5
    registry = runner.metrics_registry  # type: ignore[attr-defined]
    count = registry.get_sample_value("bot_index_lag_seconds_count", {"sourcetype": "linux_secure"})
    assert count == 24
    within_ten = registry.get_sample_value(
        "bot_index_lag_seconds_bucket", {"sourcetype": "linux_secure", "le": "10.0"}
    )
    within_one = registry.get_sample_value(
        "bot_index_lag_seconds_bucket", {"sourcetype": "linux_secure", "le": "1.0"}
    )
    assert (within_one, within_ten) == (12, 24)


async def test_through_splunk_both_bursts_raise_their_incident_once(
    engine: Engine, clock: FakeClock, rule, splunk: FakeSplunk
) -> None:  # type: ignore[no-untyped-def]
    backend = Recording(splunk_backend(splunk))
    runner = await trial(engine, backend, rule, clock, splunk.add_events)
    assert incidents(engine) == EXPECTED
    assert_lag_measured(runner)
    # every search carried its index-time bound, and reached back max_index_lag in event time
    exports = splunk.searches()
    assert len(exports) == 41
    last = exports[-1].params
    assert last["index_latest"] == last["latest_time"]
    assert (
        float(last["latest_time"]) - float(last["earliest_time"]) == 40 + 300
    )  # the window, and max_index_lag
    # the rows came back as splunkd's do
    hits = await backend.inner.search(
        SearchQuery(
            "index=os sourcetype=linux_secure", clock.now() - timedelta(minutes=5), clock.now()
        )
    )
    assert hits and all(
        {"_indextime", "_cd", "_bkt"} <= set(hit.fields) and hit.indexed is not None for hit in hits
    )


async def test_through_the_local_backend_both_bursts_raise_their_incident_once(
    engine: Engine, clock: FakeClock, rule, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    store = EventStore(tmp_path / "events.db")
    backend = Recording(LocalSearchBackend(store))
    runner = await trial(engine, backend, rule, clock, store.add)
    assert incidents(engine) == EXPECTED
    assert_lag_measured(runner)
    store.close()


async def test_a_backend_without_index_time_bounds_keeps_event_time_windows(
    engine: Engine, clock: FakeClock, rule, splunk: FakeSplunk
) -> None:  # type: ignore[no-untyped-def]
    backend = Recording(splunk_backend(splunk), index_time_bounds=False)
    runner = await trial(engine, backend, rule, clock, splunk.add_events)
    assert all(q.index_latest is None and q.index_earliest is None for q in backend.queries)
    assert all(q.latest - q.earliest == timedelta(seconds=40) for q in backend.queries)
    assert runner.index_lag == {}
    # event-time windows: the burst indexed 8 s late (4 runs) is never new, so never counted
    assert incidents(engine) == {"ssh-guessing|host=bastion,src=203.0.113.7": 12}


def test_the_splunk_fake_honours_index_time_bounds(clock: FakeClock, splunk: FakeSplunk) -> None:
    import asyncio

    start = clock.now() - timedelta(seconds=30)
    splunk.add_events(burst(start, "192.0.2.1", timedelta(seconds=20)))  # indexed -10 s .. -4.5 s
    splunk.add_events(burst(start, "192.0.2.2", timedelta(seconds=40)))  # not indexed yet
    backend = splunk_backend(splunk)

    def search(**bounds: datetime) -> list[str]:
        query = SearchQuery(
            "index=os sourcetype=linux_secure",
            start,
            clock.now(),
            **bounds,  # type: ignore[arg-type]
        )
        return sorted({hit.fields["src"] for hit in asyncio.run(backend.search(query))})

    assert search() == ["192.0.2.1"]
    assert len(asyncio.run(backend.search(SearchQuery("index=os", start, clock.now())))) == 12
    assert search(index_latest=clock.now() - timedelta(seconds=10)) == []
    assert search(index_earliest=clock.now() - timedelta(seconds=5)) == ["192.0.2.1"]
    clock.advance(20)
    assert search() == ["192.0.2.1", "192.0.2.2"]
    assert search(index_earliest=clock.now() - timedelta(seconds=15)) == ["192.0.2.2"]


async def test_the_rules_page_and_metrics_show_the_indexing_lag_per_sourcetype(
    tmp_path: Path, clock: FakeClock
) -> None:
    from tests.integration.test_api import make_client

    async for client, runtime in make_client(tmp_path, clock):
        assert runtime.event_store is not None
        assert await runtime.acquire_lease()  # rule runs write under the scheduler lease
        await runtime.runner.run("ssh-password-guessing")  # the first run
        runtime.event_store.add(
            burst(clock.now() - timedelta(seconds=20), "192.0.2.44", timedelta(seconds=55))
        )
        clock.advance(30)
        await runtime.runner.run("ssh-password-guessing")  # not indexed yet: nothing seen
        assert "Indexing lag by sourcetype" not in (await client.get("/rules")).text
        clock.advance(30)
        summary = await runtime.runner.run("ssh-password-guessing")
        assert summary.result.created  # 12 guesses, 55 s late: still one incident

        page = (await client.get("/rules")).text
        assert "Indexing lag by sourcetype" in page
        assert "<td>linux_secure</td><td>55.0 s</td><td>55.0 s</td><td>12</td>" in page
        metrics = (await client.get("/metrics")).text
        assert 'bot_index_lag_seconds_count{sourcetype="linux_secure"} 12.0' in metrics
