from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from bot.domain.hits import Hit
from detectors.memory import RuleMemory
from detectors.types.flatline import FlatlineRule, evaluate
from detectors.window import Window

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def rule(**overrides: Any) -> FlatlineRule:
    settings: dict[str, Any] = {
        "id": "heartbeat",
        "title": "No heartbeat from {host}",
        "query": "index=agent heartbeat",
        "type": "flatline",
        "interval": "1m",
        "window": "10m",
        "group_by": ["host"],
        "flatline": {"threshold": 2, "timeframe": "5m"},
        "severity": "high",
        "category": "infrastructure",
    }
    settings.update(overrides)
    return FlatlineRule.model_validate(settings)


def beat(at: datetime, host: str) -> Hit:
    return Hit(time=at, fields={"host": host}, raw=f"{at:%H:%M:%S} host={host} heartbeat ok")


def beats(end: datetime, host: str, every: timedelta = MINUTE, span: int = 10) -> list[Hit]:
    return [beat(end - every * (i + 0.5), host) for i in range(span)]


def window(end: datetime) -> Window:
    return Window(start=end - 10 * MINUTE, end=end, new_since=end - MINUTE)


def test_a_group_below_the_threshold_in_the_timeframe_fires() -> None:
    memory = RuleMemory()
    # db-1 beats once a minute; db-2 only once in the last 5 minutes
    hits = [*beats(T0, "db-1"), beat(T0 - 8 * MINUTE, "db-2"), beat(T0 - 2 * MINUTE, "db-2")]

    (alert,) = evaluate(rule(), hits, window(T0), memory)

    assert alert.group == (("host", "db-2"),)
    assert alert.title == "No heartbeat from db-2"
    assert alert.value == 1 and alert.events == 1 and alert.new_events == 0
    assert alert.host == "db-2"
    assert alert.labels["last_seen"] == "2026-11-22T09:58:00Z"
    assert alert.labels["timeframe"] == "5m" and alert.labels["threshold"] == "2"
    assert [e.time for e in alert.evidence] == [T0 - 2 * MINUTE, T0 - 8 * MINUTE]


def test_a_group_that_vanished_entirely_still_fires() -> None:
    memory = RuleMemory()
    evaluate(rule(), beats(T0, "db-1") + beats(T0, "db-2"), window(T0), memory)

    later = T0 + 20 * MINUTE
    (alert,) = evaluate(rule(), beats(later, "db-1"), window(later), memory)

    assert alert.group == (("host", "db-2"),)
    assert alert.value == 0 and alert.events == 0 and alert.evidence == ()
    assert alert.labels["last_seen"] == "2026-11-22T09:59:30Z"
    assert alert.first_seen == alert.last_seen == later


def test_a_vanished_group_is_forgotten_after_forget_after() -> None:
    memory = RuleMemory()
    short = rule(flatline={"threshold": 1, "timeframe": "5m", "forget_after": "1h"})
    evaluate(short, beats(T0, "db-1") + beats(T0, "db-2"), window(T0), memory)

    at_59 = T0 + 59 * MINUTE
    assert [a.group for a in evaluate(short, beats(at_59, "db-1"), window(at_59), memory)] == [
        (("host", "db-2"),)
    ]
    at_61 = T0 + 61 * MINUTE
    assert evaluate(short, beats(at_61, "db-1"), window(at_61), memory) == []
    assert 'seen:["db-2"]' not in memory
    at_90 = T0 + 90 * MINUTE
    assert evaluate(short, beats(at_90, "db-1"), window(at_90), memory) == []


def test_a_restart_keeps_the_groups_it_knew() -> None:
    memory = RuleMemory()
    evaluate(rule(), beats(T0, "db-1") + beats(T0, "db-2"), window(T0), memory)
    reloaded = RuleMemory(dict(memory.items()))

    later = T0 + 30 * MINUTE
    (alert,) = evaluate(rule(), beats(later, "db-1"), window(later), reloaded)

    assert alert.group == (("host", "db-2"),)


def test_out_of_order_and_repeated_events_never_move_last_seen_back() -> None:
    memory = RuleMemory()
    evaluate(rule(), [beat(T0 - MINUTE, "db-1")], window(T0), memory)
    stale = [beat(T0 - 9 * MINUTE, "db-1"), beat(T0 - MINUTE, "db-1")]  # seen again, and older

    evaluate(rule(), stale, window(T0 + MINUTE), memory)

    assert memory.get('seen:["db-1"]')["last"] == (T0 - MINUTE).timestamp()


def test_without_group_by_silence_fires_from_the_first_run() -> None:
    ungrouped = rule(group_by=[], title="Agent heartbeats stopped")

    (alert,) = evaluate(ungrouped, [], window(T0), RuleMemory())

    assert alert.group == () and alert.value == 0
    assert alert.labels["last_seen"] == "never"
    assert evaluate(ungrouped, beats(T0, "db-1"), window(T0), RuleMemory()) == []


def test_an_empty_window_with_nothing_known_fires_nothing() -> None:
    assert evaluate(rule(), [], window(T0), RuleMemory()) == []


def test_timeframe_defaults_to_the_window() -> None:
    whole = rule(flatline={"threshold": 3})
    hits = [beat(T0 - 9 * MINUTE, "db-1"), beat(T0 - 8 * MINUTE, "db-1"), beat(T0, "db-1")]

    assert whole.timeframe == 10 * MINUTE
    assert evaluate(whole, hits, window(T0), RuleMemory()) == []


def test_max_keys_bounds_the_remembered_groups() -> None:
    memory = RuleMemory()
    small = rule(flatline={"threshold": 1, "max_keys": 2})
    for i, host in enumerate(("a", "b", "c")):
        at = T0 + i * MINUTE
        evaluate(small, [beat(at - 30 * timedelta(seconds=1), host)], window(at), memory)

    assert sorted(n for n in memory if n.startswith("seen:")) == ['seen:["b"]', 'seen:["c"]']


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"flatline": {"timeframe": "20m"}}, "timeframe 20m is longer than the rule's window 10m"),
        ({"flatline": {"forget_after": "1m"}}, "forget_after is shorter than the timeframe"),
        ({"flatline": {"threshold": 0}}, "greater than or equal to 1"),
        ({"flatline": {"forget": "1h"}}, "Extra inputs are not permitted"),
    ],
)
def test_bad_settings_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rule(**overrides)
