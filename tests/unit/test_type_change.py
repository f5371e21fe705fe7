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
from detectors.types.change import ChangeRule, evaluate
from detectors.window import Window

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def rule(**overrides: Any) -> ChangeRule:
    settings: dict[str, Any] = {
        "id": "bgp-state",
        "title": "BGP peer {peer} on {host}: {old} -> {new}",
        "query": "index=network bgp",
        "type": "change",
        "window": "5m",
        "group_by": ["host", "peer"],
        "change": {"compare_field": "state"},
        "severity": "high",
        "category": "network",
    }
    settings.update(overrides)
    return ChangeRule.model_validate(settings)


def event(at: datetime, state: str | None, host: str = "edge-1", peer: str = "10.1.1.1") -> Hit:
    fields = {"host": host, "peer": peer}
    if state is not None:
        fields["state"] = state
    return Hit(time=at, fields=fields, raw=f"{at:%H:%M:%S} {host} peer {peer} state={state}")


def window(end: datetime, new_since: datetime | None = None) -> Window:
    return Window(start=end - 5 * MINUTE, end=end, new_since=new_since or end - 5 * MINUTE)


def test_the_first_sighting_is_remembered_without_firing() -> None:
    memory = RuleMemory()

    assert evaluate(rule(), [event(T0 - MINUTE, "Established")], window(T0), memory) == []
    assert memory.get('last:["edge-1","10.1.1.1"]') == {
        "key": ["edge-1", "10.1.1.1"],
        "value": "Established",
        "time": (T0 - MINUTE).timestamp(),
    }


def test_a_changed_value_fires_naming_the_old_and_new_value() -> None:
    memory = RuleMemory()
    evaluate(rule(), [event(T0 - MINUTE, "Established")], window(T0), memory)
    end = T0 + 5 * MINUTE

    (alert,) = evaluate(rule(), [event(end - MINUTE, "Idle")], window(end, new_since=T0), memory)

    assert alert.title == "BGP peer 10.1.1.1 on edge-1: Established -> Idle"
    assert alert.group == (("host", "edge-1"), ("peer", "10.1.1.1"))
    assert alert.value == 1 and alert.events == 1 and alert.new_events == 1
    assert alert.labels["changed_at"] == "2026-11-22T10:04:00Z"
    assert alert.evidence[0].text.endswith("state=Idle")


def test_several_changes_in_one_window_make_one_alert() -> None:
    memory = RuleMemory()
    hits = [event(T0 - MINUTE * m, s) for m, s in ((4, "Established"), (3, "Idle"), (1, "Active"))]

    (alert,) = evaluate(rule(), hits, window(T0), memory)

    assert alert.value == 2
    assert (alert.labels["old"], alert.labels["new"]) == ("Established", "Active")
    assert alert.first_seen == T0 - 3 * MINUTE and alert.last_seen == T0 - MINUTE


def test_the_same_value_again_or_through_an_overlapping_window_does_not_fire() -> None:
    memory = RuleMemory()
    first = [event(T0 - 3 * MINUTE, "Established"), event(T0 - 2 * MINUTE, "Idle")]
    assert len(evaluate(rule(), first, window(T0), memory)) == 1

    end = T0 + MINUTE
    overlap = [*first, event(end - 30 * timedelta(seconds=1), "Idle")]
    assert evaluate(rule(), overlap, window(end, new_since=T0), memory) == []


def test_out_of_order_events_older_than_the_remembered_one_are_skipped() -> None:
    memory = RuleMemory()
    evaluate(rule(), [event(T0 - MINUTE, "Established")], window(T0), memory)
    late = [event(T0 - 2 * MINUTE, "Idle"), event(T0 - MINUTE, "Idle")]  # same instant too

    assert evaluate(rule(), late, window(T0 + MINUTE, new_since=T0), memory) == []
    assert memory.get('last:["edge-1","10.1.1.1"]')["value"] == "Established"


def test_hits_arriving_in_any_order_are_taken_oldest_first() -> None:
    memory = RuleMemory()
    hits = [event(T0 - MINUTE, "Idle"), event(T0 - 4 * MINUTE, "Established")]

    (alert,) = evaluate(rule(), hits, window(T0), memory)

    assert (alert.labels["old"], alert.labels["new"]) == ("Established", "Idle")


def test_missing_values_are_skipped_or_count_as_null() -> None:
    hits = [event(T0 - 3 * MINUTE, "Established"), event(T0 - 2 * MINUTE, None)]

    assert evaluate(rule(), hits, window(T0), RuleMemory()) == []
    nulls = rule(change={"compare_field": "state", "ignore_null": False})
    (alert,) = evaluate(nulls, hits, window(T0), RuleMemory())
    assert alert.labels["new"] == "(null)"


def test_each_group_is_followed_on_its_own_and_survives_a_restart() -> None:
    memory = RuleMemory()
    first = [event(T0 - MINUTE, "Established", peer=p) for p in ("a", "b")]
    evaluate(rule(), first, window(T0), memory)
    reloaded = RuleMemory(json.loads(json.dumps(dict(memory.items()))))
    end = T0 + 5 * MINUTE
    hits = [event(end - MINUTE, "Established", peer="a"), event(end - MINUTE, "Idle", peer="b")]

    (alert,) = evaluate(rule(), hits, window(end, new_since=T0), reloaded)

    assert alert.group == (("host", "edge-1"), ("peer", "b"))


def test_an_empty_window_changes_nothing() -> None:
    memory = RuleMemory({'last:["edge-1","10.1.1.1"]': {"key": [], "value": "x", "time": 0.0}})

    assert evaluate(rule(), [], window(T0), memory) == []
    assert memory.changes() == ({}, set())


def test_max_keys_evicts_the_least_recently_seen_groups() -> None:
    memory = RuleMemory()
    small = rule(change={"compare_field": "state", "max_keys": 1})
    evaluate(small, [event(T0 - 2 * MINUTE, "Established", peer="a")], window(T0), memory)
    evaluate(small, [event(T0 - MINUTE, "Established", peer="b")], window(T0), memory)

    assert [n for n in memory if n.startswith("last:")] == ['last:["edge-1","b"]']


def test_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="Field required"):
        rule(change={"ignore_null": True})
    path = tmp_path / "change.yaml"
    path.write_text(
        "id: c\ntitle: t\ntype: change\nquery: index=net | stats latest(state) as s by host\n"
        "group_by: [host]\nchange: {compare_field: state}\nseverity: low\ncategory: network\n"
    )

    (problem,) = validate_paths([path], include_shipped=False)

    assert "change.compare_field: field 'state' is not in the query's output" in str(problem)
