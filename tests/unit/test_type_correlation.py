from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bot.domain.hits import Hit
from detectors.memory import RuleMemory
from detectors.rules import validate_paths
from detectors.types.correlation import CorrelationRule, evaluate
from detectors.types.match import FieldMatch
from detectors.window import Window

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
SHUTDOWN = [
    {"name": "shutdown", "match": {"EventCode": 6008}},
    {"name": "power_loss", "match": {"EventCode": "41"}},
]


def rule(**overrides: Any) -> CorrelationRule:
    settings: dict[str, Any] = {
        "id": "unexpected-shutdown",
        "title": "Unexpected shutdown of {host}",
        "query": "index=wineventlog (EventCode=6008 OR EventCode=41)",
        "type": "correlation",
        "window": "5m",
        "group_by": ["host"],
        "correlation": {"conditions": SHUTDOWN, "within": "10m", "ordered": True},
        "severity": "high",
        "category": "infrastructure",
    }
    settings.update(overrides)
    return CorrelationRule.model_validate(settings)


def event(at: datetime, code: str, host: str = "win-1", **more: str) -> Hit:
    fields = {"host": host, "EventCode": code, **more}
    extra = "".join(f" {k}={v}" for k, v in more.items())
    return Hit(
        time=at, fields=fields, raw=f"{at:%H:%M:%S} {host} EventCode={code}{extra} secret=s3"
    )


def window(end: datetime, new_since: datetime | None = None) -> Window:
    return Window(start=end - 5 * MINUTE, end=end, new_since=new_since or end - 5 * MINUTE)


def test_the_conditions_in_order_on_one_group_fire() -> None:
    hits = [event(T0 - 4 * MINUTE, "6008"), event(T0 - 3 * MINUTE, "41"), event(T0, "41", "x")]

    (alert,) = evaluate(rule(), hits, window(T0 + MINUTE), RuleMemory())

    assert alert.title == "Unexpected shutdown of win-1"
    assert alert.group == (("host", "win-1"),)
    assert alert.value == 60  # seconds from the first to the last event of the set
    assert alert.events == 2 and alert.new_events == 2
    assert alert.labels["sequence"] == "shutdown → power_loss"
    assert alert.labels["span"] == "1m"
    assert alert.labels["shutdown_at"] == "2026-11-22T09:56:00Z"
    assert alert.labels["power_loss_at"] == "2026-11-22T09:57:00Z"
    assert [e.time for e in alert.evidence] == [T0 - 3 * MINUTE, T0 - 4 * MINUTE]


def test_the_wrong_order_does_not_fire_unless_order_is_free() -> None:
    hits = [event(T0 - 4 * MINUTE, "41"), event(T0 - 3 * MINUTE, "6008")]
    free = rule(correlation={"conditions": SHUTDOWN, "within": "10m"})

    assert evaluate(rule(), hits, window(T0), RuleMemory()) == []
    (alert,) = evaluate(free, hits, window(T0), RuleMemory())
    assert alert.labels["sequence"] == "shutdown + power_loss"


def test_events_too_far_apart_or_on_different_groups_do_not_fire() -> None:
    short = rule(correlation={"conditions": SHUTDOWN, "within": "30s", "ordered": True})
    apart = [event(T0 - 4 * MINUTE, "6008"), event(T0 - 3 * MINUTE, "41")]
    split = [event(T0 - 4 * MINUTE, "6008", "win-1"), event(T0 - 3 * MINUTE, "41", "win-2")]

    assert evaluate(short, apart, window(T0), RuleMemory()) == []
    assert evaluate(rule(), split, window(T0), RuleMemory()) == []


def test_a_partial_sequence_carries_over_to_the_next_run() -> None:
    memory = RuleMemory()
    assert evaluate(rule(), [event(T0 - MINUTE, "6008")], window(T0), memory) == []
    stored = json.dumps(dict(memory.items()))
    assert "secret" not in stored  # times and ids only, never the event text
    reloaded = RuleMemory(json.loads(stored))  # through a restart, too

    end = T0 + 5 * MINUTE  # the 6008 is no longer in this window
    (alert,) = evaluate(rule(), [event(end - MINUTE, "41")], window(end, T0), reloaded)

    assert alert.first_seen == T0 - MINUTE and alert.last_seen == end - MINUTE
    assert alert.events == 2 and alert.new_events == 1
    assert len(alert.evidence) == 1  # the earlier event's text was not kept


def test_overlapping_windows_do_not_repeat_a_set_but_a_new_one_fires() -> None:
    memory = RuleMemory()
    first = [event(T0 - 3 * MINUTE, "6008"), event(T0 - 2 * MINUTE, "41")]
    assert len(evaluate(rule(), first, window(T0), memory)) == 1

    end = T0 + MINUTE
    assert evaluate(rule(), first, window(end, T0), memory) == []
    again = [*first, event(end - 10 * timedelta(seconds=1), "41")]
    (alert,) = evaluate(rule(), again, window(end, T0), memory)
    assert alert.labels["power_loss_at"] == "2026-11-22T10:00:50Z"


def test_one_event_serves_one_step_of_an_ordered_sequence() -> None:
    same = rule(
        correlation={
            "conditions": [
                {"name": "first", "match": {"EventCode": "7"}},
                {"name": "second", "match": {"EventCode": "7"}},
            ],
            "within": "5m",
            "ordered": True,
        }
    )

    assert evaluate(same, [event(T0 - MINUTE, "7")], window(T0), RuleMemory()) == []
    two = [event(T0 - MINUTE, "7"), event(T0 - MINUTE, "7", note="again")]
    assert len(evaluate(same, two, window(T0), RuleMemory())) == 1


def test_numeric_and_list_matches_correlate_metrics() -> None:
    busy = rule(
        title="Disk contention on {host}",
        query="index=metrics",
        correlation={
            "conditions": [
                {"name": "iowait", "match": {"metric": "iowait", "value": {">=": 30}}},
                {
                    "name": "writes",
                    "match": {"metric": {"in": ["write_mb", "write_mbps"]}, "value": {">": 100}},
                },
            ],
            "within": "2m",
        },
    )

    def sample(minutes: float, metric: str, value: str) -> Hit:
        at = T0 - minutes * MINUTE
        fields = {"host": "db-1", "metric": metric, "value": value}
        return Hit(time=at, fields=fields, raw=f"{metric}={value}")

    quiet = [sample(3, "iowait", "35"), sample(2, "write_mbps", "90"), sample(1, "cpu", "999")]
    loud = [*quiet, sample(1.5, "write_mbps", "240")]

    assert evaluate(busy, quiet, window(T0), RuleMemory()) == []
    (alert,) = evaluate(busy, loud, window(T0), RuleMemory())
    assert alert.title == "Disk contention on db-1" and alert.labels["span"] == "1m30s"


def test_remembered_events_are_bounded_by_within() -> None:
    memory = RuleMemory()
    evaluate(rule(), [event(T0 - MINUTE, "6008")], window(T0), memory)
    end = T0 + 20 * MINUTE

    assert evaluate(rule(), [event(end - MINUTE, "41")], window(end), memory) == []
    (value,) = (v for name, v in memory.items() if name.startswith("seq:"))
    assert [index for index, _, _ in value["events"]] == [1]
    later = end + 20 * MINUTE
    evaluate(rule(), [], window(later), memory)
    assert not [name for name in memory if name.startswith("seq:")]


def test_an_empty_window_fires_nothing() -> None:
    assert evaluate(rule(), [], window(T0), RuleMemory()) == []


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        (6008, "6008", True),
        (6008, "6008.0", True),
        ("Error", "error", False),
        (True, "true", True),
        ({"in": [41, "6008"]}, "41", True),
        ({"in": [41, "6008"]}, "42", False),
        ({">=": 10, "<": 20}, "10", True),
        ({">=": 10, "<": 20}, "20", False),
        ({"<=": 5}, "n/a", False),
        ({"equals": 5, ">": 1}, "5", True),
    ],
)
def test_field_match(spec: Any, value: str, expected: bool) -> None:
    assert FieldMatch.model_validate(spec).matches(value) is expected
    assert FieldMatch.model_validate(spec).matches(None) is False


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"conditions": SHUTDOWN[:1], "within": "5m"}, "give 2 to 10 conditions \\(got 1\\)"),
        ({"conditions": [SHUTDOWN[0], SHUTDOWN[0]], "within": "5m"}, "'shutdown' is used twice"),
        ({"conditions": SHUTDOWN}, "Field required"),
        (
            {"conditions": [SHUTDOWN[0], {"name": "x", "match": {}}], "within": "5m"},
            "at least 1 item",
        ),
        (
            {"conditions": [SHUTDOWN[0], {"name": "x", "match": {"a": {"~": 1}}}], "within": "5m"},
            "Extra inputs are not permitted",
        ),
        (
            {"conditions": [SHUTDOWN[0], {"name": "x", "match": {"a": {}}}], "within": "5m"},
            "give a value, 'in'",
        ),
        (
            {"conditions": [SHUTDOWN[0], {"name": "x", "match": {"a": [1, 2]}}], "within": "5m"},
            "write {in: \\[...\\]} to match one of several values",
        ),
        (
            {"conditions": [SHUTDOWN[0], {"name": "Bad Name", "match": {"a": 1}}], "within": "5m"},
            "'Bad Name' is not a name",
        ),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rule(correlation=settings)


def test_matched_fields_must_be_in_the_query_output(tmp_path: Path) -> None:
    path = tmp_path / "corr.yaml"
    path.write_text(
        "id: c\ntitle: t\ntype: correlation\nquery: index=win | table _time host EventCode\n"
        "group_by: [host]\ncorrelation:\n  within: 10m\n  conditions:\n"
        "    - {name: a, match: {EventCode: 6008}}\n"
        "    - {name: b, match: {Level: 1}}\n"
        "severity: low\ncategory: infrastructure\n"
    )

    (problem,) = validate_paths([path], include_shipped=False)

    assert problem.line == 10
    assert "correlation.conditions.1.match.Level: field 'Level' is not in the query's output" in (
        str(problem)
    )


def test_hits_in_any_order_are_put_in_time_order_and_late_ones_do_not_refire() -> None:
    memory = RuleMemory()
    newest_first = [event(T0 - 2 * MINUTE, "41"), event(T0 - 3 * MINUTE, "6008")]
    assert len(evaluate(rule(), newest_first, window(T0), memory)) == 1

    end = T0 + MINUTE
    late = [event(T0 - 2.5 * MINUTE, "41")]  # indexed late, older than the set that fired
    assert evaluate(rule(), late, window(end, T0), memory) == []
