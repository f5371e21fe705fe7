from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bot.domain.hits import Hit
from detectors.memory import RuleMemory
from detectors.rules import validate_paths
from detectors.types.new_term import NewTermRule, evaluate
from detectors.window import Window

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)


def rule(**overrides: Any) -> NewTermRule:
    settings: dict[str, Any] = {
        "id": "new-admin-login",
        "title": "First login of {user} from {src}",
        "query": "index=auth action=success",
        "type": "new_term",
        "window": "5m",
        "new_term": {"fields": ["user", "src"], "learn_for": "1d"},
        "severity": "medium",
        "category": "user_access",
    }
    settings.update(overrides)
    return NewTermRule.model_validate(settings)


def login(at: datetime, user: str, src: str = "10.0.0.1", **more: str) -> Hit:
    fields = {"user": user, "src": src, **more}
    return Hit(time=at, fields=fields, raw=f"{at:%H:%M:%S} login user={user} src={src}")


def window(end: datetime, new_since: datetime | None = None) -> Window:
    return Window(start=end - 5 * MINUTE, end=end, new_since=new_since or end - 5 * MINUTE)


def learned(memory: RuleMemory, *users: str) -> None:
    """A first run at T0 that records ``users`` during the learning period."""
    assert evaluate(rule(), [login(T0 - MINUTE, u) for u in users], window(T0), memory) == []


def test_terms_seen_while_learning_are_recorded_without_firing() -> None:
    memory = RuleMemory()
    learned(memory, "alice", "bob")
    almost = T0 + DAY - 10 * MINUTE

    assert evaluate(rule(), [login(almost, "carol")], window(almost + MINUTE), memory) == []
    assert 'term:["carol","10.0.0.1"]' in memory


def test_a_new_term_after_learning_fires_once_with_all_its_hits() -> None:
    memory = RuleMemory()
    learned(memory, "alice")
    end = T0 + DAY + 10 * MINUTE
    hits = [
        login(end - 3 * MINUTE, "mallory", "203.0.113.9"),
        login(end - 2 * MINUTE, "alice"),
        login(end - MINUTE, "mallory", "203.0.113.9"),
    ]

    (alert,) = evaluate(rule(), hits, window(end, new_since=end - 2 * MINUTE), memory)

    assert alert.group == (("user", "mallory"), ("src", "203.0.113.9"))
    assert alert.title == "First login of mallory from 203.0.113.9"
    assert alert.value == 2 and alert.events == 2 and alert.new_events == 1
    assert alert.labels["term"] == "user=mallory, src=203.0.113.9"
    assert alert.labels["first_seen"] == "2026-11-23T10:07:00Z"
    assert alert.first_seen == end - 3 * MINUTE and alert.last_seen == end - MINUTE


def test_the_same_term_through_an_overlapping_window_does_not_fire_again() -> None:
    memory = RuleMemory()
    learned(memory, "alice")
    end = T0 + DAY + 10 * MINUTE
    first = [login(end - 2 * MINUTE, "mallory")]
    assert len(evaluate(rule(), first, window(end), memory)) == 1

    later = end + MINUTE
    again = [*first, login(later - timedelta(seconds=10), "mallory")]
    assert evaluate(rule(), again, window(later, new_since=end), memory) == []


def test_a_restart_neither_re_alerts_known_terms_nor_restarts_learning() -> None:
    memory = RuleMemory()
    learned(memory, "alice")
    end = T0 + DAY + 10 * MINUTE
    evaluate(rule(), [login(end - MINUTE, "mallory")], window(end), memory)
    reloaded = RuleMemory(json.loads(json.dumps(dict(memory.items()))))

    later = end + 5 * MINUTE
    hits = [login(later - MINUTE, u) for u in ("alice", "mallory", "trent")]
    alerts = evaluate(rule(), hits, window(later), reloaded)

    assert [a.labels["term"] for a in alerts] == ["user=trent, src=10.0.0.1"]


def test_the_tuple_of_fields_is_the_term() -> None:
    memory = RuleMemory()
    learned(memory, "alice")
    end = T0 + DAY + 10 * MINUTE

    (alert,) = evaluate(rule(), [login(end - MINUTE, "alice", "198.51.100.4")], window(end), memory)

    assert alert.group == (("user", "alice"), ("src", "198.51.100.4"))


def test_hits_without_a_field_are_skipped_unless_nulls_count() -> None:
    memory = RuleMemory()
    learned(memory, "alice")
    end = T0 + DAY + 10 * MINUTE
    anonymous = [Hit(time=end - MINUTE, fields={"src": "10.0.0.1"}, raw="login src=10.0.0.1")]

    assert evaluate(rule(), anonymous, window(end), memory) == []
    nulls = rule(new_term={"fields": ["user", "src"], "learn_for": "1d", "ignore_null": False})
    (alert,) = evaluate(nulls, anonymous, window(end), memory)
    assert alert.title == "First login of user unknown from 10.0.0.1"


def test_group_by_fields_beyond_the_term_split_alerts() -> None:
    memory = RuleMemory()
    by_host = rule(group_by=["host"])
    evaluate(by_host, [], window(T0), memory)
    end = T0 + DAY + 10 * MINUTE
    hits = [login(end - MINUTE, "eve", host="web-1"), login(end - MINUTE, "eve", host="web-2")]

    alerts = evaluate(by_host, hits, window(end), memory)

    assert sorted(a.group for a in alerts) == [
        (("user", "eve"), ("src", "10.0.0.1"), ("host", "web-1")),
        (("user", "eve"), ("src", "10.0.0.1"), ("host", "web-2")),
    ]


def test_an_empty_window_fires_nothing_and_starts_learning() -> None:
    memory = RuleMemory()

    assert evaluate(rule(), [], window(T0), memory) == []
    assert memory.get("learning") == {"since": (T0 - 5 * MINUTE).timestamp()}


def test_max_terms_evicts_the_least_recently_seen_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    memory = RuleMemory()
    capped = rule(new_term={"fields": ["user"], "learn_for": "0s", "max_terms": 2})
    evaluate(capped, [login(T0 - 3 * MINUTE, "a"), login(T0 - 2 * MINUTE, "b")], window(T0), memory)
    end = T0 + 2 * 3600 * timedelta(seconds=1)

    with caplog.at_level(logging.WARNING):
        (alert,) = evaluate(capped, [login(end - MINUTE, "c")], window(end), memory)

    assert alert.labels["terms_evicted"] == "1"
    assert "1 known terms forgotten (max_terms 2)" in caplog.text
    assert sorted(n for n in memory if n.startswith("term:")) == ['term:["b"]', 'term:["c"]']
    later = end + 10 * MINUTE
    assert len(evaluate(capped, [login(later - MINUTE, "a")], window(later), memory)) == 1


def test_a_busy_term_refreshes_its_last_seen_at_most_hourly() -> None:
    memory = RuleMemory()
    learned(memory, "alice")
    key = 'term:["alice","10.0.0.1"]'
    first = memory.get(key)
    memory.saved()

    evaluate(rule(), [login(T0 + 10 * MINUTE, "alice")], window(T0 + 11 * MINUTE), memory)
    assert memory.changes() == ({}, set())
    evaluate(rule(), [login(T0 + 90 * MINUTE, "alice")], window(T0 + 91 * MINUTE), memory)
    assert memory.get(key) == {"first": first["first"], "last": (T0 + 90 * MINUTE).timestamp()}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"fields": []}, "name at least one field"),
        ({"fields": ["user", "user"]}, "'user' is listed twice"),
        ({"fields": ["user"], "learn_for": "soon"}, "bad duration 'soon'"),
        ({"fields": ["user"], "max_terms": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rule(new_term=settings)


def test_term_fields_must_be_in_the_query_output(tmp_path: Path) -> None:
    path = tmp_path / "terms.yaml"
    path.write_text(
        "id: n\ntitle: t\ntype: new_term\nquery: index=auth | table user host\n"
        "new_term: {fields: [user, src]}\nseverity: low\ncategory: security\n"
    )

    (problem,) = validate_paths([path], include_shipped=False)

    assert "new_term.fields.1: field 'src' is not in the query's output" in str(problem)


def test_hits_newest_first_across_the_end_of_learning_are_taken_in_time_order() -> None:
    memory = RuleMemory()
    learned(memory, "alice")
    boundary = T0 - 5 * MINUTE + DAY  # learning ends here
    end = boundary + 2 * MINUTE
    newest_first = [login(boundary + MINUTE, "dave"), login(boundary - MINUTE, "dave")]

    assert evaluate(rule(), newest_first, window(end), memory) == []


def test_a_term_whose_first_event_reaches_the_index_late_fires_once() -> None:
    from detectors.planning import plan_windows
    from detectors.types import rule_type

    quick = rule(
        interval="2m",
        window="2m",
        max_index_lag="5m",
        new_term={"fields": ["user"], "learn_for": "0s"},
    )
    memory = RuleMemory()
    # runs of the type reach back max_index_lag in event time and count by index time
    lag = quick.max_index_lag if rule_type("new_term").index_time else None
    (first,), _ = plan_windows(T0 - 4 * MINUTE, None, quick, True, lag)
    assert evaluate(quick, [login(T0 - 5 * MINUTE, "alice")], first, memory)  # new, at once
    (second,), _ = plan_windows(T0 - 2 * MINUTE, first.end, quick, True, lag)
    assert evaluate(quick, [login(T0 - 5 * MINUTE, "alice")], second, memory) == []
    # mallory logged in 3 minutes ago, before the window of the next run by event time, and
    # reached the index only now: the next run still reads it, and it is new once
    (third,), _ = plan_windows(T0, second.end, quick, True, lag)
    late = login(T0 - 3 * MINUTE, "mallory")
    hits = [login(T0 - MINUTE, "alice"), late]
    assert third.start <= late.time < third.end - quick.window
    fired = evaluate(quick, hits, third, memory)
    assert [dict(alert.group)["user"] for alert in fired] == ["mallory"]
    (again,), _ = plan_windows(T0 + 2 * MINUTE, third.end, quick, True, lag)
    assert evaluate(quick, hits, again, memory) == []
