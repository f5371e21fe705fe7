from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from bot.domain.hits import Hit
from detectors.types.frequency import FrequencyRule, evaluate
from detectors.window import Window

END = datetime(2026, 11, 22, 10, 10, tzinfo=UTC)
WINDOW = Window(start=END - timedelta(minutes=10), end=END, new_since=END - timedelta(minutes=10))


def rule(**overrides: Any) -> FrequencyRule:
    settings: dict[str, Any] = {
        "id": "failed-logons",
        "title": "Failed logons from {src}",
        "query": "index=auth action=failure",
        "type": "frequency",
        "window": "10m",
        "group_by": ["src"],
        "frequency": {"num_events": 3, "timeframe": "1m"},
        "severity": "high",
        "category": "security",
    }
    settings.update(overrides)
    return FrequencyRule.model_validate(settings)


def hit(seconds_before_end: float, **fields: str) -> Hit:
    at = END - timedelta(seconds=seconds_before_end)
    raw = f"{at:%H:%M:%S} " + " ".join(f"{k}={v}" for k, v in fields.items())
    return Hit(time=at, fields=fields, raw=raw)


def test_fires_when_enough_events_fall_inside_one_timeframe() -> None:
    burst = [hit(s, src="10.0.0.9", host="dc-1") for s in (100, 110, 130)]
    spread = [hit(s, src="10.0.0.7") for s in (30, 200, 400)]  # 3 events, never within 1m

    (alert,) = evaluate(rule(), [*spread, *burst], WINDOW)

    assert alert.group == (("src", "10.0.0.9"),)
    assert alert.title == "Failed logons from 10.0.0.9"
    assert alert.value == 3
    assert alert.events == 3 and alert.new_events == 3
    assert alert.host == "dc-1"
    assert alert.labels["span_start"] == "2026-11-22T10:07:50Z"
    assert alert.labels["span_end"] == "2026-11-22T10:08:20Z"
    assert [e.time for e in alert.evidence] == sorted((h.time for h in burst), reverse=True)


def test_value_is_the_densest_span_and_events_the_whole_window() -> None:
    hits = [hit(s, src="a") for s in (10, 20, 30, 40, 300, 500)]

    (alert,) = evaluate(rule(), hits, WINDOW)

    assert alert.value == 4
    assert alert.events == 6


def test_a_span_exactly_timeframe_long_is_too_long() -> None:
    hits = [hit(s, src="a") for s in (0, 30, 60)]

    assert evaluate(rule(), hits, WINDOW) == []
    assert len(evaluate(rule(), [*hits, hit(59.5, src="a")], WINDOW)) == 1


def test_out_of_order_hits_are_sorted_first() -> None:
    hits = [hit(s, src="a") for s in (300, 10, 400, 20, 500, 30)]

    (alert,) = evaluate(rule(), hits, WINDOW)

    assert alert.value == 3
    assert alert.first_seen == END - timedelta(seconds=500)
    assert alert.last_seen == END - timedelta(seconds=10)


def test_a_burst_already_reported_does_not_fire_again_through_an_overlapping_window() -> None:
    burst = [hit(s, src="a") for s in (300, 310, 320)]
    later = Window(start=WINDOW.start, end=END, new_since=END - timedelta(seconds=60))

    assert evaluate(rule(), burst, later) == []
    assert evaluate(rule(), [*burst, hit(5, src="a")], later) == []  # a lone new event


def test_new_events_joining_a_reported_burst_fire_with_only_them_as_new() -> None:
    hits = [hit(s, src="a") for s in (80, 70, 50)]
    later = Window(start=WINDOW.start, end=END, new_since=END - timedelta(seconds=60))

    (alert,) = evaluate(rule(), hits, later)

    assert alert.new_events == 1 and alert.events == 3


def test_empty_window_fires_nothing() -> None:
    assert evaluate(rule(), [], WINDOW) == []
    assert evaluate(rule(group_by=[]), [], WINDOW) == []


def test_without_timeframe_the_whole_window_counts() -> None:
    hits = [hit(s, src="a") for s in (1, 300, 590)]

    (alert,) = evaluate(rule(frequency={"num_events": 3}), hits, WINDOW)

    assert alert.value == 3 and alert.labels["timeframe"] == "10m"


def test_timeframe_longer_than_window_is_refused() -> None:
    with pytest.raises(ValidationError, match="timeframe 15m is longer than the rule's window 10m"):
        rule(frequency={"num_events": 3, "timeframe": "15m"})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"num_events": 0}, "greater than or equal to 1"),
        ({"num_events": 3, "timeframe": "0s"}, "must be at least 1s"),
        ({"num_events": 3, "timefrme": "1m"}, "Extra inputs are not permitted"),
        ({"timeframe": "1m"}, "Field required"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rule(frequency=settings)
