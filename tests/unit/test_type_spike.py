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
from detectors.types.spike import SpikeRule, evaluate
from detectors.window import Window

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
FIVE = timedelta(minutes=5)


def rule(**overrides: Any) -> SpikeRule:
    settings: dict[str, Any] = {
        "id": "login-spike",
        "title": "Login spike on {service}",
        "query": "index=auth action=login",
        "type": "spike",
        "interval": "5m",
        "window": "5m",
        "group_by": ["service"],
        "spike": {"ratio": 3, "min_current": 5},
        "severity": "medium",
        "category": "security",
    }
    settings.update(overrides)
    return SpikeRule.model_validate(settings)


def hits(end: datetime, **counts: int) -> list[Hit]:
    """``counts[service]`` events spread over the 5 minutes before ``end``."""
    out = []
    for service, n in counts.items():
        for i in range(n):
            at = end - FIVE + FIVE * (i + 0.5) / n
            out.append(Hit(time=at, fields={"service": service}, raw=f"{at} {service} login {i}"))
    return out


def window(end: datetime, length: timedelta = FIVE, previous: datetime | None = None) -> Window:
    return Window(start=end - length, end=end, new_since=previous or end - length)


def restarted(memory: RuleMemory) -> RuleMemory:
    """What a new process loads: the saved values, through JSON."""
    return RuleMemory(json.loads(json.dumps(dict(memory.items()))))


def test_the_first_window_has_no_reference_and_never_fires() -> None:
    memory = RuleMemory()

    assert evaluate(rule(), hits(T0, web=100), window(T0), memory) == []
    assert "runs" in memory


def test_fires_when_the_count_triples_against_the_window_before() -> None:
    memory = RuleMemory()
    evaluate(rule(), hits(T0, web=10, api=10), window(T0), memory)

    alerts = evaluate(rule(), hits(T0 + FIVE, web=31, api=12), window(T0 + FIVE), memory)

    (alert,) = alerts
    assert alert.group == (("service", "web"),)
    assert alert.title == "Login spike on web"
    assert alert.value == 31
    assert alert.events == 31 and alert.new_events == 31
    assert dict(alert.labels) == {
        "current": "31",
        "reference": "10",
        "ratio": "3.1",
        "direction": "up",
        "reference_window": "2026-11-22T09:55:00Z/2026-11-22T10:00:00Z",
    }
    assert len(alert.evidence) == 20  # the rule's evidence_lines, newest first
    assert alert.evidence[0].time > alert.evidence[-1].time


def test_steady_counts_and_small_numbers_do_not_fire() -> None:
    memory = RuleMemory()
    evaluate(rule(), hits(T0, web=10, tiny=1), window(T0), memory)

    # web steady; tiny quadruples but stays under min_current
    assert evaluate(rule(), hits(T0 + FIVE, web=12, tiny=4), window(T0 + FIVE), memory) == []


def test_a_restart_compares_with_the_remembered_reference_not_with_zero() -> None:
    memory = RuleMemory()
    for i in range(3):
        end = T0 + FIVE * i
        evaluate(rule(), hits(end, web=20, api=30), window(end), memory)
    end = T0 + FIVE * 3
    steady = hits(end, web=21, api=29)

    assert evaluate(rule(), steady, window(end), restarted(memory)) == []
    # the naive alternative, a reference of zero, would call everything a spike
    reference_of_zero = RuleMemory({"runs": [(end - FIVE).timestamp()]})
    assert len(evaluate(rule(), steady, window(end), reference_of_zero)) == 2


def test_a_group_that_disappears_is_a_drop_to_zero() -> None:
    memory = RuleMemory()
    down = rule(spike={"ratio": 3, "direction": "down", "min_reference": 10})
    evaluate(down, hits(T0, web=40, api=40), window(T0), memory)

    (alert,) = evaluate(down, hits(T0 + FIVE, web=38), window(T0 + FIVE), memory)

    assert alert.group == (("service", "api"),)
    assert alert.value == 0 and alert.events == 0 and alert.new_events == 0
    assert alert.labels["direction"] == "down" and alert.labels["reference"] == "40"
    assert alert.evidence == ()
    assert alert.first_seen == alert.last_seen == T0 + FIVE


def test_direction_both_sees_rises_and_drops_and_up_ignores_drops() -> None:
    memory_up, memory_both = RuleMemory(), RuleMemory()
    both = rule(spike={"ratio": 2, "direction": "both"})
    for r, m in ((rule(), memory_up), (both, memory_both)):
        evaluate(r, hits(T0, web=10, api=30), window(T0), m)

    later = hits(T0 + FIVE, web=30, api=10)
    up_alerts = evaluate(rule(), later, window(T0 + FIVE), memory_up)
    both_alerts = evaluate(both, later, window(T0 + FIVE), memory_both)

    assert [a.group for a in up_alerts] == [(("service", "web"),)]
    assert sorted(a.labels["direction"] for a in both_alerts) == ["down", "up"]


def test_overlapping_windows_take_the_run_that_ended_where_this_window_starts() -> None:
    memory = RuleMemory()
    sliding = rule(interval="1m")
    minute = timedelta(minutes=1)
    for i in range(5):  # runs every minute, each looking back 5 minutes
        end = T0 + minute * i
        assert (
            evaluate(sliding, hits(end, web=10), window(end, previous=end - minute), memory) == []
        )

    end = T0 + FIVE
    (alert,) = evaluate(sliding, hits(end, web=40), window(end, previous=end - minute), memory)

    assert alert.labels["reference"] == "10"
    assert alert.labels["reference_window"] == "2026-11-22T09:55:00Z/2026-11-22T10:00:00Z"


def test_the_same_window_run_twice_is_counted_once() -> None:
    memory = RuleMemory()
    evaluate(rule(), hits(T0, web=10), window(T0), memory)
    evaluate(rule(), hits(T0, web=10), window(T0), memory)

    value = memory.get('ref:["web"]')
    assert value == {"key": ["web"], "counts": [[T0.timestamp(), 10.0]]}
    assert memory.get("runs") == [T0.timestamp()]


def test_memory_forgets_counts_older_than_the_reference_and_groups_with_none_left() -> None:
    memory = RuleMemory()
    evaluate(rule(), hits(T0, web=10, gone=10), window(T0), memory)
    evaluate(rule(), hits(T0 + FIVE, web=10), window(T0 + FIVE), memory)
    evaluate(rule(), hits(T0 + 2 * FIVE, web=10), window(T0 + 2 * FIVE), memory)

    assert 'ref:["gone"]' not in memory
    assert [t for t, _ in memory.get('ref:["web"]')["counts"]] == [
        (T0 + FIVE).timestamp(),
        (T0 + 2 * FIVE).timestamp(),
    ]


def test_a_gap_longer_than_a_window_leaves_no_reference() -> None:
    memory = RuleMemory()
    evaluate(rule(), hits(T0, web=10), window(T0), memory)

    end = T0 + 4 * FIVE
    assert evaluate(rule(), hits(end, web=100), window(end), memory) == []


def test_field_sums_a_count_column() -> None:
    memory = RuleMemory()
    summed = rule(spike={"ratio": 3, "field": "count"})

    def rows(end: datetime, count: int) -> list[Hit]:
        return [Hit(time=end, fields={"service": "web", "count": str(count)}, raw=f"n={count}")]

    evaluate(summed, rows(T0, 100), window(T0), memory)
    (alert,) = evaluate(summed, rows(T0 + FIVE, 450), window(T0 + FIVE), memory)

    assert alert.value == 450 and alert.events == 1
    assert alert.labels["ratio"] == "4.5"


def test_a_new_group_is_a_spike_from_zero() -> None:
    memory = RuleMemory()
    evaluate(rule(), hits(T0, web=10), window(T0), memory)

    (alert,) = evaluate(rule(), hits(T0 + FIVE, web=10, admin=8), window(T0 + FIVE), memory)

    assert alert.group == (("service", "admin"),) and alert.labels["ratio"] == "inf"
    floor = rule(spike={"ratio": 3, "min_reference": 1})
    assert evaluate(floor, hits(T0 + FIVE, admin=8), window(T0 + FIVE), memory) == []


def test_max_keys_evicts_the_least_recently_seen_groups() -> None:
    memory = RuleMemory()
    small = rule(spike={"ratio": 3, "max_keys": 2})
    for minutes, group in enumerate(("a", "b", "c")):
        end = T0 + timedelta(minutes=minutes)
        evaluate(small, hits(end, **{group: 1}), window(end), memory)

    assert sorted(name for name in memory if name.startswith("ref:")) == ['ref:["b"]', 'ref:["c"]']


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ratio": 1}, "greater than 1"),
        ({"ratio": 3, "direction": "sideways"}, "'up', 'down' or 'both'"),
        ({"ratio": 3, "min_current": -1}, "greater than or equal to 0"),
        ({"ratio": 3, "field": "bad field"}, "'bad field' is not a field name"),
        ({}, "Field required"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rule(spike=settings)


def test_the_field_must_be_in_the_query_output(tmp_path: Path) -> None:
    path = tmp_path / "spike.yaml"
    path.write_text(
        "id: s\ntitle: t\ntype: spike\nquery: index=web | stats count by service\n"
        "group_by: [service]\nspike: {ratio: 3, field: hits}\n"
        "severity: low\ncategory: application\n"
    )

    (problem,) = validate_paths([path], include_shipped=False)

    assert problem.line == 6
    assert "spike.field: field 'hits' is not in the query's output (it has: count, service)" in str(
        problem
    )


def test_an_empty_window_drops_every_group_but_only_down_rules_care() -> None:
    up_memory, down_memory = RuleMemory(), RuleMemory()
    down = rule(spike={"ratio": 3, "direction": "down"})
    evaluate(rule(), hits(T0, web=10, api=10), window(T0), up_memory)
    evaluate(down, hits(T0, web=10, api=10), window(T0), down_memory)

    assert evaluate(rule(), [], window(T0 + FIVE), up_memory) == []
    assert len(evaluate(down, [], window(T0 + FIVE), down_memory)) == 2
