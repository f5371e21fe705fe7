"""What the Splunk fake counts for the search-cost bench, read through the real splunk-sdk."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from bot.domain.hits import SearchQuery
from integrations.local import Event
from integrations.splunk import SplunkSearchBackend, SplunkSettings, SplunkUnavailable
from tests.fakes.splunk import FakeSplunk

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
TOKEN = "tok-quota-51c2e9"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("SPLUNK_"):
            monkeypatch.delenv(name)


@pytest.fixture
def fake() -> Iterator[FakeSplunk]:
    with FakeSplunk(token=TOKEN) as server:
        server.add_events(
            Event(
                time=NOW - timedelta(seconds=10 * i + 5),
                raw=f"status={500 if i % 3 == 0 else 200} uri=/api/cart",
                index="web",
                host=f"web-{1 + i % 2}",
                sourcetype="nginx:access",
                indexed=NOW - timedelta(seconds=10 * i),
            )
            for i in range(12)
        )
        yield server


def backend(fake: FakeSplunk, max_concurrent: int = 3) -> SplunkSearchBackend:
    return SplunkSearchBackend(
        SplunkSettings(
            host=fake.host,
            port=fake.port,
            scheme=fake.scheme,
            token=SecretStr(TOKEN),
            max_concurrent=max_concurrent,
            search_timeout=10,
        )
    )


def query(text: str, minutes: float = 5, index_earliest: datetime | None = None) -> SearchQuery:
    return SearchQuery(
        text=text,
        earliest=NOW - timedelta(minutes=minutes),
        latest=NOW,
        max_results=10_000,
        index_earliest=index_earliest,
        index_latest=NOW if index_earliest else None,
    )


async def started(fake: FakeSplunk, searches: int, seconds: float = 3.0) -> None:
    deadline = time.monotonic() + seconds
    while len(fake.searches()) < searches:
        assert time.monotonic() < deadline, f"{searches} searches not started in time"
        await asyncio.sleep(0.01)


async def test_searches_rows_and_event_time_scanned_are_counted_per_search(
    fake: FakeSplunk,
) -> None:
    splunk = backend(fake)
    since = NOW - timedelta(seconds=30)

    events = await splunk.search(query("index=web status>=500", minutes=5))
    stats = await splunk.search(query("index=web | stats count by host", minutes=2))
    recent = await splunk.search(query("index=web", minutes=10, index_earliest=since))
    await splunk.check()  # the health check's makeresults is not a data search

    totals = fake.ledger.totals()
    assert (len(events), len(stats), len(recent)) == (4, 2, 3)
    assert totals.searches == 3
    assert (totals.event_rows, totals.result_rows, totals.rows) == (4 + 3, 2, 9)
    assert totals.scanned_s == 300 + 120 + 600
    first, second, third = fake.ledger.records()
    assert (first.earliest, first.latest, first.rows, first.events) == (
        NOW - timedelta(minutes=5),
        NOW,
        4,
        True,
    )
    assert first.index_earliest is None and first.index_latest is None
    assert not second.events and second.rows == 2
    assert (third.index_earliest, third.index_latest) == (since, NOW)
    # one event (status 500, indexed 30 s ago) was returned by two searches
    assert sorted(fake.ledger.fetched().values()) == [1, 1, 1, 1, 1, 2]


async def test_reset_returns_the_totals_so_far_and_counts_again_from_zero(
    fake: FakeSplunk,
) -> None:
    splunk = backend(fake)
    await splunk.search(query("index=web"))

    before = fake.ledger.reset()
    await splunk.search(query("index=web status>=500", minutes=1))

    assert (before.searches, before.event_rows) == (1, 12)
    assert len(fake.ledger.fetched()) == 2  # counted again from zero too
    after = fake.ledger.totals()
    assert (after.searches, after.event_rows, after.scanned_s) == (1, 2, 60)


async def test_a_quota_of_three_refuses_the_fourth_search_with_splunks_instance_message(
    fake: FakeSplunk,
) -> None:
    fake.max_jobs = 3
    fake.quota.scope = "instance"
    fake.delay = 3
    holders = backend(fake, max_concurrent=3)
    extra = backend(fake, max_concurrent=1)  # another client of the same Splunk
    running = [asyncio.create_task(holders.search(query("index=web"))) for _ in range(3)]
    await started(fake, 3)

    with pytest.raises(SplunkUnavailable, match=r"on this instance has been reached") as refused:
        await extra.search(query("index=web"))
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)

    assert 'concurrency_context="instance-wide"' in str(refused.value)
    assert fake.max_concurrent_seen == 3
    assert fake.ledger.totals().refused == 3  # each of the client's three attempts


async def test_without_a_quota_nothing_is_refused(fake: FakeSplunk) -> None:
    fake.delay = 0.2
    splunk = backend(fake, max_concurrent=5)

    async with asyncio.TaskGroup() as group:
        for _ in range(5):
            group.create_task(splunk.search(query("index=web")))

    assert fake.max_jobs is None
    assert fake.max_concurrent_seen == 5
    assert fake.ledger.totals().refused == 0 and fake.ledger.totals().searches == 5
