"""Index-time windows: each run covers what was indexed since the previous one, reaching back
``max_index_lag`` in event time; an event is new by its index time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from bot.domain.hits import Hit
from bot.scheduler import plan_windows
from detectors.types.threshold import ThresholdRule
from detectors.window import Window

NOW = datetime(2026, 11, 22, 10, 0, 7, 600_000, tzinfo=UTC)
LAG = timedelta(minutes=5)
RULE = ThresholdRule.model_validate(
    {
        "id": "r",
        "title": "r",
        "query": "index=web",
        "severity": "high",
        "category": "application",
        "threshold": {"op": ">=", "value": 3},
        "interval": "60s",
        "window": "5m",
    }
)


def test_a_first_run_covers_the_window_and_counts_everything_in_it_new() -> None:
    [window], _ = plan_windows(NOW, None, RULE, True, LAG)
    end = NOW.replace(microsecond=0)  # index times are whole seconds
    assert window == Window(end - RULE.window, end, end - RULE.window, end - RULE.window)


def test_catch_up_steps_chain_in_index_time_and_each_reaches_back_the_lag() -> None:
    last = NOW.replace(microsecond=0) - timedelta(minutes=10)
    windows, skipped = plan_windows(NOW, last, RULE, True, LAG)
    assert skipped == timedelta(0) and len(windows) == 10
    assert windows[0].index_since == last and windows[-1].end == NOW.replace(microsecond=0)
    for before, after in pairwise(windows):
        assert after.index_since == before.end
    for window in windows:
        assert window.start == window.end - RULE.window - LAG


def test_without_a_lag_windows_stay_event_time_bounded() -> None:
    last = NOW - timedelta(minutes=1)
    [window], _ = plan_windows(NOW, last, RULE, True)
    assert window.index_since is None
    assert (window.start, window.end, window.new_since) == (NOW - RULE.window, NOW, last)


def test_an_event_is_new_by_its_index_time_and_an_aggregate_row_by_its_time() -> None:
    since = NOW - timedelta(minutes=1)
    window = Window(NOW - timedelta(minutes=11), NOW, since, index_since=since)
    old_but_late = Hit(NOW - timedelta(minutes=4), {}, "a", indexed=NOW - timedelta(seconds=5))
    seen = Hit(NOW - timedelta(seconds=90), {}, "b", indexed=NOW - timedelta(seconds=61))
    row = Hit(NOW, {"count": "3"}, "count=3")
    assert [window.is_new(h) for h in (old_but_late, seen, row)] == [True, False, True]
