from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from bot.domain.hits import Hit
from detectors.types.forecast import ForecastRule, evaluate
from detectors.window import Window

END = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
WINDOW = Window(start=END - 6 * HOUR, end=END, new_since=END - HOUR)


def rule(**overrides: Any) -> ForecastRule:
    settings: dict[str, Any] = {
        "id": "disk-full",
        "title": "Disk {mount} on {host} filling",
        "query": "index=metrics metric=disk_used_pct",
        "type": "forecast",
        "interval": "15m",
        "window": "6h",
        "group_by": ["host", "mount"],
        "forecast": {"field": "used", "threshold": 95, "horizon": "24h"},
        "severity": "high",
        "category": "infrastructure",
    }
    settings.update(overrides)
    return ForecastRule.model_validate(settings)


def series(per_hour: float, now: float, host: str = "db-1", points: int = 7) -> list[Hit]:
    """Hourly samples ending at the window end, the last one at ``now``."""
    out = []
    for i in range(points):
        at = END - HOUR * (points - 1 - i) - timedelta(seconds=1)
        used = now - per_hour * (points - 1 - i)
        fields = {"host": host, "mount": "/data", "used": f"{used:.2f}"}
        out.append(Hit(time=at, fields=fields, raw=f"{at:%H:%M} {host} /data used={used:.2f}"))
    return out


def test_a_rising_trend_that_crosses_within_the_horizon_fires_with_the_time() -> None:
    (alert,) = evaluate(rule(), series(per_hour=2.0, now=83.0), WINDOW)

    assert alert.title == "Disk /data on db-1 filling (crosses 95 in ~6h)"
    assert alert.group == (("host", "db-1"), ("mount", "/data"))
    assert alert.value == 83.0
    assert alert.labels["predicted_in"] == "6h"
    assert alert.labels["predicted_at"] == "2026-11-22T17:59:59Z"
    assert alert.labels["slope_per_hour"] == "2"
    assert alert.events == 7 and alert.new_events == 1
    assert alert.evidence[0].text.endswith("used=83.00")


def test_the_title_may_place_the_prediction_itself() -> None:
    placed = rule(title="{host}:{mount} full in ~{predicted_in} (at {predicted_at})")

    (alert,) = evaluate(placed, series(per_hour=2.0, now=83.0), WINDOW)

    assert alert.title == "db-1:/data full in ~6h (at 2026-11-22T17:59:59Z)"


@pytest.mark.parametrize(
    ("per_hour", "now"),
    [
        (0.0, 80.0),  # flat
        (-1.0, 80.0),  # declining (space freed)
        (0.3, 80.0),  # rising, but 50 hours out
    ],
)
def test_flat_declining_or_slow_trends_do_not_fire(per_hour: float, now: float) -> None:
    assert evaluate(rule(), series(per_hour=per_hour, now=now), WINDOW) == []


def test_a_line_already_past_the_threshold_says_now() -> None:
    (alert,) = evaluate(rule(), series(per_hour=1.0, now=97.0), WINDOW)

    assert alert.labels["predicted_in"] == "now"
    assert alert.title.endswith("(crosses 95 now)")


def test_too_few_points_or_points_at_one_instant_do_not_fire() -> None:
    assert evaluate(rule(), series(per_hour=5.0, now=90.0, points=4), WINDOW) == []
    same_time = [
        Hit(time=END, fields={"host": "db-1", "mount": "/data", "used": str(v)}, raw=f"used={v}")
        for v in (80, 85, 90, 93, 94)
    ]
    assert evaluate(rule(), same_time, WINDOW) == []


def test_out_of_order_points_and_the_same_event_twice_give_the_same_forecast() -> None:
    ordered = series(per_hour=2.0, now=83.0)
    shuffled = [*ordered[::2], *ordered[1::2], ordered[3], ordered[3]]

    (a,) = evaluate(rule(), ordered, WINDOW)
    (b,) = evaluate(rule(), shuffled, WINDOW)

    assert a.labels == b.labels and a.value == b.value


def test_non_numeric_values_are_not_points() -> None:
    hits = series(per_hour=2.0, now=83.0)
    broken = [Hit(time=h.time, fields={**h.fields, "used": "n/a"}, raw=h.raw) for h in hits[:3]]

    assert evaluate(rule(), broken + hits[3:], WINDOW) == []  # 4 points left


def test_direction_down_watches_a_falling_value() -> None:
    free = rule(
        title="Free space on {host} running out",
        forecast={"field": "used", "threshold": 5, "horizon": "12h", "direction": "down"},
    )

    (alert,) = evaluate(free, series(per_hour=-3.0, now=20.0), WINDOW)

    assert alert.labels["predicted_in"] == "5h"
    assert evaluate(free, series(per_hour=3.0, now=20.0), WINDOW) == []


def test_each_group_gets_its_own_trend() -> None:
    hits = series(2.0, 83.0, host="db-1") + series(0.0, 50.0, host="db-2")

    assert [a.group[0] for a in evaluate(rule(), hits, WINDOW)] == [("host", "db-1")]


def test_an_empty_window_fires_nothing() -> None:
    assert evaluate(rule(), [], WINDOW) == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"field": "used", "threshold": 95}, "Field required"),
        ({"field": "used", "threshold": 95, "horizon": "0s"}, "must be at least 1s"),
        ({"field": "used", "threshold": 95, "horizon": "1d", "min_points": 2}, "greater than"),
        ({"field": "used", "threshold": 95, "horizon": "1d", "direction": "both"}, "'up' or"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rule(forecast=settings)
