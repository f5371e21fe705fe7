"""What bench/search_cost.py found, kept as tests.

A burst indexed later than the lag a feed has measured so far (60 s, within ``max_index_lag``
of 5 min, while every other event arrives 2 s late) is skipped by the regular fetches, which
reach back one interval (30 s); the late sweep finds its 10 events and the next run counts them
where they happened: one incident, within one sweep of the burst becoming searchable. A run made
late by the scheduler's jitter gives up no data, whatever ``max_catchup`` says, and a rule's
first run is not counted as a run that caught up.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, select

from bot.metrics import Metrics
from bot.scheduler import RuleRunner
from bot.store.repo import INCIDENTS
from detectors.feeds import DEFAULT_LATE_SWEEP, FeedSet
from detectors.planning import plan_windows
from detectors.rules import load_rules
from integrations.local import Event, EventStore, LocalSearchBackend, fleet
from tests.builders import console_policy
from tests.conftest import FakeClock

RULE = """\
id: app-errors
title: "ERROR burst in {service}"
type: frequency
query: index=app sourcetype=app:log level=ERROR
interval: 30s
window: 5m
group_by: [service]
frequency: {num_events: 10, timeframe: 2m}
severity: medium
category: application
"""
MAX_INDEX_LAG = timedelta(minutes=5)
START = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


async def test_a_burst_later_than_the_observed_lag_is_counted_in_the_next_run(
    engine: Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "app.yaml").write_text(RULE)
    (rule,) = load_rules([folder], include_shipped=False)
    store = EventStore(tmp_path / "events.db")
    # 40 minutes of INFO lines, each indexed 2 s after it happened (the feed learns this lag)
    store.add(
        with_lag(fleet.app_log(t, "app-1", "checkout", "INFO", "order placed"), 2)
        for t in (START - timedelta(minutes=5) + timedelta(seconds=2 * i) for i in range(1200))
    )
    # at 10:16 a burst of 10 ERROR lines, indexed 60 s late: searchable from 10:17:09
    burst_at = START + timedelta(minutes=16)
    store.add(
        with_lag(fleet.app_log(t, "app-2", "catalog", "ERROR", "upstream timed out"), 60)
        for t in (burst_at + timedelta(seconds=i) for i in range(10))
    )
    searchable = burst_at + timedelta(seconds=9 + 60)
    clock = FakeClock(START)
    backend = LocalSearchBackend(store)
    feeds = FeedSet(backend, [rule], max_index_lag=MAX_INDEX_LAG)
    runner = RuleRunner(
        engine,
        backend,
        [rule],
        clock,
        lambda s: s,
        lambda r: console_policy(),
        Metrics(),
        max_index_lag=MAX_INDEX_LAG,
        feeds=feeds,
    )
    for _ in range(70):  # 35 minutes, one run every 30 s: the late sweep at 10:30 included
        clock.advance(30)
        summary = await runner.run(rule.id)
        assert not summary.error
    store.close()

    with engine.connect() as conn:
        found = conn.execute(
            select(INCIDENTS.c.created_at).where(
                INCIDENTS.c.group_key == "app-errors|service=catalog"
            )
        ).scalar()
    late_found = feeds.describe()[0].figures.late_found
    assert found is not None, (
        f"the burst (indexed 60 s late, max_index_lag 5 min) raised nothing; the late sweep "
        f"found {late_found} late events"
    )
    created = found.replace(tzinfo=UTC) if found.tzinfo is None else found
    # not in the first run after it was searchable (the fetches reach back one interval, 30 s),
    # but by the late sweep's next pass and the run after it
    assert created - searchable <= DEFAULT_LATE_SWEEP + timedelta(seconds=32)
    assert late_found == 10


def with_lag(event: Event, seconds: float) -> Event:
    return replace(event, indexed=event.time + timedelta(seconds=seconds))


def test_a_rule_run_late_by_the_schedule_jitter_gives_up_no_data() -> None:
    """Also found by the bench (full-window side): the shipped ``endpoint-patches-overdue``
    runs every hour and keeps the default ``max_catchup`` of one hour; APScheduler's jitter
    (``BOT_SCHEDULE_JITTER``, up to 2 s) makes a run up to 2 s later than one interval, and
    the runner logs that this much data "was not searched"."""
    (rule,) = [r for r in load_rules([]) if r.id == "endpoint-patches-overdue"]
    assert rule.interval == rule.max_catchup == timedelta(hours=1)
    last_end = START
    now = START + rule.interval + timedelta(seconds=1.5)  # the jitter

    windows, skipped = plan_windows(now, last_end, rule, sliding=True)

    assert skipped == timedelta(0)
    assert windows[0].new_since == last_end


async def test_a_rules_first_run_is_not_counted_as_covering_missed_time(
    engine: Engine, tmp_path: Path
) -> None:
    """Also found by the bench: with 500 rules every rule shows one "coalesced" run (the rules
    page and ``bot_rule_runs_coalesced_total``) although none was late, failed or refused: a first
    run searches its whole window, longer than 1.5 intervals."""
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "app.yaml").write_text(RULE)
    (rule,) = load_rules([folder], include_shipped=False)
    store = EventStore(tmp_path / "events.db")
    clock = FakeClock(START)
    runner = RuleRunner(
        engine,
        LocalSearchBackend(store),
        [rule],
        clock,
        lambda s: s,
        lambda r: console_policy(),
        Metrics(),
    )

    first = await runner.run(rule.id)
    clock.advance(30)
    second = await runner.run(rule.id)
    store.close()

    assert not first.error and not second.error
    assert runner.coalesced.get(rule.id, 0) == 0
