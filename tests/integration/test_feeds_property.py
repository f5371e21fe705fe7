"""The differential test of shared, incremental searches: for random event streams with random
indexing lags up to ``max_index_lag``, a ``frequency`` rule reading a feed (each event fetched
once, by index time, with the scan-back the feed measures and the late sweep behind it) counts
every event as new exactly once and raises exactly the groups a full-window evaluation raises
over all the events once every one of them is indexed (the backtest's view)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from sqlalchemy import Engine, select

from bot.domain.hits import SearchQuery
from bot.metrics import Metrics
from bot.runner import RuleRunner
from bot.store.db import make_engine, migrate
from bot.store.repo import INCIDENTS
from detectors.feeds import FeedSet
from detectors.planning import plan_windows
from detectors.runner import run_rule
from detectors.types.frequency import FrequencyRule
from detectors.types.threshold import ThresholdRule
from integrations.local import LocalSearchBackend
from tests.builders import console_policy
from tests.conftest import FakeClock
from tests.integration.test_late_events_property import (
    MAX_LAG_S,
    SPAN_S,
    T0,
    Case,
    cases,
    event_store,
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
    store = event_store(case)
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


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
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


# the real runner: a frequency and a threshold rule sharing one feed --------------------------

_TEMPLATE: list[Path] = []


def _database(folder: Path) -> Engine:
    """A migrated SQLite database (migrated once, copied for each example)."""
    if not _TEMPLATE:
        template = Path(tempfile.mkdtemp()) / "template.db"
        engine = make_engine(f"sqlite:///{template}")
        migrate(engine)
        engine.dispose()
        _TEMPLATE.append(template)
    target = folder / "bot.db"
    shutil.copy(_TEMPLATE[0], target)
    return make_engine(f"sqlite:///{target}")


def threshold_rule(case: Case) -> ThresholdRule:
    return ThresholdRule.model_validate(
        {
            "id": "busy",
            "title": "busy {host}",
            "type": "threshold",
            "query": "index=main",
            "interval": f"{case.interval_s}s",
            "window": "30s",
            "max_index_lag": f"{MAX_LAG_S}s",
            "group_by": ["host"],
            "threshold": {"op": ">=", "value": case.need + 1},
            "severity": "low",
            "category": "application",
        }
    )


def threshold_oracle(case: Case, ends: list[float]) -> set[str]:
    """The hosts whose count reaches the threshold in one of the windows the rule evaluated
    (``[end - 30 s, end)`` at each run's end), counting every event (all of them indexed)."""
    fired = set()
    for end in ends:
        for host in {h for h, _, _ in case.events}:
            count = sum(1 for h, at, _ in case.events if h == host and end - 30 <= at < end)
            if count >= case.need + 1:
                fired.add(host)
    return fired


async def run_both(case: Case, folder: Path) -> tuple[dict[str, set[str]], list[float]]:
    store = event_store(case)
    rules = [make_rule(case), threshold_rule(case)]
    backend = LocalSearchBackend(store)
    feeds = FeedSet(
        backend,
        rules,
        max_index_lag=timedelta(seconds=MAX_LAG_S),
        late_sweep=timedelta(seconds=SWEEP_S),
        learn=timedelta(seconds=5),
    )
    engine = _database(folder)
    clock = FakeClock(T0)
    runner = RuleRunner(
        engine,
        backend,
        rules,
        clock,
        lambda s: s,
        lambda r: console_policy(),
        Metrics(),
        feeds=feeds,
    )
    ends: list[float] = []
    stop = T0 + timedelta(seconds=SPAN_S + MAX_LAG_S + SWEEP_S + 3 * case.interval_s)
    while clock.now() <= stop:
        for rule in rules:
            summary = await runner.run(rule.id)
            assert not summary.error, summary.error
        ends.append((clock.now() - T0).total_seconds())
        clock.advance(case.interval_s)
    with engine.connect() as conn:
        rows = conn.execute(select(INCIDENTS.c.rule_id, INCIDENTS.c.group_key)).all()
    engine.dispose()
    store.close()
    found: dict[str, set[str]] = {"burst": set(), "busy": set()}
    for rule_id, key in rows:
        found[rule_id].add(key.rsplit("host=", 1)[1])
    return found, ends


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases)
def test_rules_sharing_a_feed_raise_what_the_backtest_raises(case: Case) -> None:
    with tempfile.TemporaryDirectory() as folder:
        found, ends = asyncio.run(run_both(case, Path(folder)))
    assert found["burst"] == set(oracle(case))
    # the threshold rule also counts the events that reached its past windows late
    assert found["busy"] == threshold_oracle(case, ends)
