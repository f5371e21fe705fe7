"""The differential test of shared, incremental searches: for random event streams with random
indexing lags up to ``max_index_lag``, a ``frequency`` rule reading a feed (each event fetched
once, by index time, with the scan-back the feed measures and the late sweep behind it) counts
every event as new exactly once and raises exactly the groups a full-window evaluation raises
over all the events once every one of them is indexed (the backtest's view)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from hypothesis import HealthCheck, event, given, settings

from bot.domain.hits import SearchQuery
from detectors.feeds import FeedSet
from detectors.planning import plan_windows
from detectors.runner import run_rule
from detectors.types.frequency import FrequencyRule
from integrations.local import EventStore, LocalSearchBackend
from integrations.local.events import Event
from tests.integration.test_late_events_property import (
    MAX_LAG_S,
    SPAN_S,
    T0,
    Case,
    cases,
    full_window,
    make_rule,
    oracle,
)

SWEEP_S = 15


async def replay(
    case: Case, rule: FrequencyRule
) -> tuple[dict[str, float], dict[str, int], int, int]:
    """Run the rule through its feed every interval until every event is indexed and the last
    sweep has run: when each group first fired, how many runs counted each event as new, and
    how many rows the feed fetched."""
    store = EventStore(":memory:")
    store.add(
        Event(
            time=T0 + timedelta(seconds=at),
            raw=f"host={h} n={n}",
            host=h,
            indexed=T0 + timedelta(seconds=at + lag),
        )
        for n, (h, at, lag) in enumerate(case.events)
    )
    lag = rule.max_index_lag
    assert lag is not None
    feeds = FeedSet(
        LocalSearchBackend(store),
        [rule],
        max_index_lag=lag,
        late_sweep=timedelta(seconds=SWEEP_S),
        learn=timedelta(seconds=5),  # then the scan-back follows the lags measured so far
    )
    view = feeds.view(rule.id)
    fired: dict[str, float] = {}
    counted: dict[str, int] = {}
    last_end: datetime | None = None
    now = T0
    stop = T0 + timedelta(seconds=SPAN_S + MAX_LAG_S + SWEEP_S + 3 * case.interval_s)
    while now <= stop:
        end = await feeds.end_for(rule, now)
        windows, skipped = plan_windows(now, last_end, rule, True, lag, end=end)
        assert skipped == timedelta(0)
        for window in windows:
            outcome = await run_rule(rule, view, window, lambda s: s)
            query = SearchQuery(rule.query, window.start, window.end, index_latest=window.end)
            for hit in await view.search(query):
                if window.is_new(hit):
                    counted[hit.raw] = counted.get(hit.raw, 0) + 1
            for alert in outcome.alerts:
                fired.setdefault(dict(alert.group)["host"], (window.end - T0).total_seconds())
            last_end = window.end
        now += timedelta(seconds=case.interval_s)
    store.close()
    return fired, counted, feeds.totals.rows, feeds.totals.late_found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases)
def test_a_fed_rule_raises_what_a_full_window_raises_once_indexed(case: Case) -> None:
    rule = make_rule(case)
    fired, counted, rows, late = asyncio.run(replay(case, rule))
    event(f"late sweep found {'some' if late else 'none'}")
    expected = oracle(case)
    assert set(fired) == set(expected) == full_window(case, rule)
    # every event is new in exactly one run, and fetched once
    assert counted == {f"host={h} n={n}": 1 for n, (h, _, _) in enumerate(case.events)}
    assert rows == len(case.events)
    # within one interval of being searchable, or of the sweep that found it
    for host, moment in expected.items():
        assert moment < fired[host] <= moment + SWEEP_S + 2 * case.interval_s + 1e-6
