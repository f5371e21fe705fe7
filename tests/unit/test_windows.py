from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.scheduler import plan_windows
from detectors.types import rule_type
from detectors.types.threshold import ThresholdRule
from detectors.window import Window

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def rule(**overrides: Any) -> ThresholdRule:
    settings: dict[str, Any] = {
        "id": "web-5xx",
        "title": "5xx on {service}",
        "query": "index=web status>=500",
        "severity": "high",
        "category": "application",
        "threshold": {"op": ">=", "value": 3},
        "interval": "60s",
        "window": "5m",
        "query_delay": "30s",
        "max_catchup": "1h",
    }
    settings.update(overrides)
    return ThresholdRule.model_validate(settings)


END = NOW - timedelta(seconds=30)  # NOW less the default query delay


def assert_chained(windows: list[Window], since: datetime, end: datetime) -> None:
    """Consecutive windows share their boundary: together they cover ``[since, end)`` once."""
    assert windows[0].new_since == since
    assert windows[-1].end == end
    for earlier, later in pairwise(windows):
        assert earlier.end == later.new_since


def test_threshold_rules_slide() -> None:
    assert rule_type("threshold").sliding


@pytest.mark.parametrize("sliding", [True, False])
def test_first_run_is_one_window_ending_query_delay_before_now(sliding: bool) -> None:
    windows, skipped = plan_windows(NOW, None, rule(), sliding)
    assert windows == [Window(start=END - 5 * MINUTE, end=END, new_since=END - 5 * MINUTE)]
    assert skipped == timedelta(0)


def test_first_run_without_query_delay_ends_now() -> None:
    windows, _ = plan_windows(NOW, None, rule(query_delay=0, window="15m"), True)
    assert windows == [Window(start=NOW - 15 * MINUTE, end=NOW, new_since=NOW - 15 * MINUTE)]


def test_steady_state_is_one_window_from_the_last_end() -> None:
    last_end = END - MINUTE
    windows, skipped = plan_windows(NOW, last_end, rule(), sliding=False)
    assert windows == [Window(start=last_end, end=END, new_since=last_end)]
    assert skipped == timedelta(0)


def test_steady_state_sliding_looks_back_the_whole_window() -> None:
    last_end = END - MINUTE
    windows, _ = plan_windows(NOW, last_end, rule(), sliding=True)
    assert windows == [Window(start=END - 5 * MINUTE, end=END, new_since=last_end)]


def test_a_slightly_late_run_is_still_one_window() -> None:
    last_end = END - timedelta(seconds=85)
    windows, _ = plan_windows(NOW, last_end, rule(), sliding=False)
    assert windows == [Window(start=last_end, end=END, new_since=last_end)]


@pytest.mark.parametrize("sliding", [True, False])
def test_after_an_outage_the_gap_is_replayed_in_interval_steps(sliding: bool) -> None:
    last_end = END - 10 * MINUTE
    windows, skipped = plan_windows(NOW, last_end, rule(), sliding)
    assert skipped == timedelta(0)
    assert len(windows) == 10
    assert_chained(windows, last_end, END)
    for i, window in enumerate(windows):
        assert window.new_since == last_end + i * MINUTE
        assert window.end == last_end + (i + 1) * MINUTE
        assert window.start == (window.end - 5 * MINUTE if sliding else window.new_since)


def test_uneven_gap_is_split_into_equal_steps_near_the_interval() -> None:
    last_end = END - timedelta(seconds=150)
    windows, _ = plan_windows(NOW, last_end, rule(), sliding=False)
    assert [w.end - w.new_since for w in windows] == [timedelta(seconds=75)] * 2
    assert_chained(windows, last_end, END)


def test_gap_beyond_max_catchup_is_skipped_and_reported() -> None:
    last_end = END - timedelta(hours=3)
    windows, skipped = plan_windows(NOW, last_end, rule(), sliding=True)
    assert skipped == timedelta(hours=2)
    assert len(windows) == 60
    assert_chained(windows, END - timedelta(hours=1), END)
    assert windows[0].start == END - timedelta(hours=1) + MINUTE - 5 * MINUTE


def test_gap_exactly_max_catchup_skips_nothing() -> None:
    last_end = END - timedelta(hours=1)
    windows, skipped = plan_windows(NOW, last_end, rule(), sliding=False)
    assert skipped == timedelta(0)
    assert_chained(windows, last_end, END)


@pytest.mark.parametrize("ahead", [timedelta(0), timedelta(seconds=1), timedelta(hours=2)])
def test_clock_behind_the_last_end_plans_nothing(ahead: timedelta) -> None:
    windows, skipped = plan_windows(NOW, END + ahead, rule(), sliding=True)
    assert windows == []
    assert skipped == timedelta(0)


def test_sliding_window_shorter_than_the_step_still_covers_the_gap() -> None:
    last_end = END - 5 * MINUTE
    windows, _ = plan_windows(NOW, last_end, rule(window="30s"), sliding=True)
    assert len(windows) == 5
    for window in windows:
        assert window.start == window.new_since
    assert_chained(windows, last_end, END)


def test_cron_rule_steps_by_its_window() -> None:
    cron = rule(interval=None, schedule="*/15 * * * *", window="15m")
    assert cron.interval is None
    last_end = END - timedelta(minutes=45)
    windows, _ = plan_windows(NOW, last_end, cron, sliding=False)
    assert [w.end - w.new_since for w in windows] == [timedelta(minutes=15)] * 3
    assert_chained(windows, last_end, END)


@given(
    interval=st.integers(min_value=30, max_value=3600),
    window=st.integers(min_value=1, max_value=7200),
    query_delay=st.integers(min_value=0, max_value=600),
    max_catchup=st.integers(min_value=0, max_value=6 * 3600),
    behind=st.timedeltas(min_value=timedelta(hours=-1), max_value=timedelta(days=2)),
    sliding=st.booleans(),
)
def test_windows_chain_without_gap_or_overlap(
    interval: int,
    window: int,
    query_delay: int,
    max_catchup: int,
    behind: timedelta,
    sliding: bool,
) -> None:
    r = rule(interval=interval, window=window, query_delay=query_delay, max_catchup=max_catchup)
    end = NOW - r.query_delay
    last_end = end - behind
    windows, skipped = plan_windows(NOW, last_end, r, sliding)
    if behind <= timedelta(0):
        assert (windows, skipped) == ([], timedelta(0))
        return
    # a run merely late (less than two intervals) never gives data up, whatever max_catchup says
    assert r.interval is not None
    since = max(last_end, end - max(r.max_catchup, 2 * r.interval))
    assert skipped == since - last_end
    assert_chained(windows, since, end)
    step = r.interval
    assert step is not None
    for w in windows:
        assert w.start <= w.new_since <= w.end
        assert w.end - w.new_since <= step * 1.5 + timedelta(microseconds=len(windows))
        if len(windows) > 1:
            assert w.end - w.new_since >= step * 0.75 - timedelta(microseconds=len(windows))
        if sliding:
            assert w.start == min(w.end - r.window, w.new_since)
        else:
            assert w.start == w.new_since
