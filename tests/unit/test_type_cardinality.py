from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from bot.domain.hits import Hit
from detectors.types.cardinality import CardinalityRule, evaluate
from detectors.window import Window

END = datetime(2026, 11, 22, 10, 5, tzinfo=UTC)
WINDOW = Window(start=END - timedelta(minutes=5), end=END, new_since=END - timedelta(minutes=1))


def rule(**overrides: Any) -> CardinalityRule:
    settings: dict[str, Any] = {
        "id": "password-spray",
        "title": "{src} tried {distinct} accounts",
        "query": "index=auth action=failure",
        "type": "cardinality",
        "group_by": ["src"],
        "cardinality": {"cardinality_field": "user", "above": 3},
        "severity": "high",
        "category": "security",
    }
    settings.update(overrides)
    return CardinalityRule.model_validate(settings)


def failure(seconds_before_end: float, src: str, user: str | None) -> Hit:
    at = END - timedelta(seconds=seconds_before_end)
    fields = {"src": src} if user is None else {"src": src, "user": user}
    return Hit(time=at, fields=fields, raw=f"{at:%H:%M:%S} failed login user={user} src={src}")


def test_fires_when_a_group_has_more_distinct_values_than_above() -> None:
    spray = [failure(10 * i, "203.0.113.9", f"user{i}") for i in range(5)]
    typo = [failure(30 * i, "10.0.0.5", "alice") for i in range(8)]  # many events, one account

    (alert,) = evaluate(rule(), spray + typo, WINDOW)

    assert alert.group == (("src", "203.0.113.9"),)
    assert alert.title == "203.0.113.9 tried 5 accounts"
    assert alert.value == 5 and alert.events == 5 and alert.new_events == 5
    assert alert.labels["bound"] == "above 3"
    assert alert.labels["values"] == "user0, user1, user2, user3, user4"


def test_the_same_value_twice_and_missing_values_are_not_distinct() -> None:
    hits = [failure(i, "a", u) for i, u in enumerate(["x", "x", "y", "Y", None, ""])]

    (alert,) = evaluate(rule(cardinality={"cardinality_field": "user", "above": 2}), hits, WINDOW)

    assert alert.value == 3  # x, y, Y


def test_below_fires_on_too_few_and_on_silence_without_group_by() -> None:
    nodes = rule(
        title="Only {distinct} cluster nodes reporting",
        group_by=[],
        cardinality={"cardinality_field": "user", "below": 3},
    )

    (few,) = evaluate(nodes, [failure(1, "a", "n1"), failure(2, "a", "n2")], WINDOW)
    (none,) = evaluate(nodes, [], WINDOW)

    assert few.title == "Only 2 cluster nodes reporting" and few.labels["bound"] == "below 3"
    assert none.value == 0 and none.events == 0
    assert evaluate(nodes, [failure(i, "a", f"n{i}") for i in range(3)], WINDOW) == []


def test_an_empty_window_with_groups_fires_nothing() -> None:
    assert evaluate(rule(), [], WINDOW) == []


def test_the_sample_of_values_is_bounded() -> None:
    hits = [failure(i, "a", f"u{i:02d}") for i in range(15)]

    (alert,) = evaluate(rule(), hits, WINDOW)

    assert alert.labels["values"].endswith("u09, …")
    assert alert.labels["distinct"] == "15"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"cardinality_field": "user"}, "set 'above', 'below' or both"),
        ({"cardinality_field": "user", "above": 3, "below": 5}, "every count would fire"),
        ({"cardinality_field": "user", "below": 0}, "greater than or equal to 1"),
        ({"above": 3}, "Field required"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rule(cardinality=settings)
