from __future__ import annotations

import json
import random
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from bot.domain.hits import Alert, Hit
from detectors.memory import RuleMemory
from detectors.types.anomaly import AnomalyRule, evaluate
from detectors.types.baselines import sklearn_available
from detectors.window import Window

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
needs_ml = pytest.mark.skipif(not sklearn_available(), reason="needs the 'ml' extra")


def rule(**overrides: Any) -> AnomalyRule:
    settings: dict[str, Any] = {
        "id": "login-rate",
        "title": "Unusual login rate on {service}",
        "query": "index=auth action=login",
        "type": "anomaly",
        "interval": "1m",
        "window": "5m",
        "group_by": ["service"],
        "anomaly": {"method": "mad", "bucket": "1m", "min_history": 20},
        "severity": "medium",
        "category": "security",
    }
    settings.update(overrides)
    return AnomalyRule.model_validate(settings)


def events(per_minute: Sequence[int], service: str = "web", start: datetime = T0) -> list[Hit]:
    """``per_minute[i]`` events spread over minute ``i`` after ``start``."""
    out = []
    for minute, n in enumerate(per_minute):
        for j in range(n):
            at = start + minute * MINUTE + MINUTE * (j + 0.5) / n
            out.append(Hit(time=at, fields={"service": service}, raw=f"{at} {service} login"))
    return out


def run(
    r: AnomalyRule, memory: RuleMemory, hits: Sequence[Hit], minutes: int, start: datetime = T0
) -> list[Alert]:
    """Runs every minute from ``start + 1m`` on, each over its 5-minute window; all alerts."""
    alerts = []
    for i in range(1, minutes + 1):
        end = start + i * MINUTE
        window = Window(start=end - r.window, end=end, new_since=end - MINUTE)
        seen = [h for h in hits if window.start <= h.time < end]
        alerts += evaluate(r, seen, window, memory)
    return alerts


def prime(r: AnomalyRule, memory: RuleMemory, hits: Sequence[Hit], minutes: int) -> list[Alert]:
    """One long run over the first ``minutes``: a quick way to build a history."""
    end = T0 + minutes * MINUTE
    return evaluate(r, [h for h in hits if h.time < end], Window(T0, end, T0), memory)


def steady(minutes: int, seed: int = 7) -> list[int]:
    rng = random.Random(seed)
    return [10 + rng.randint(-2, 2) for _ in range(minutes)]


def test_a_burst_against_a_steady_rate_fires_with_baseline_and_observed() -> None:
    memory = RuleMemory()
    per_minute = [*steady(30), 60]

    alerts = run(rule(), memory, events(per_minute), minutes=31)

    (alert,) = alerts
    assert alert.title == "Unusual login rate on web"
    assert alert.value == 60 and alert.events == 60 and alert.new_events == 60
    assert alert.labels["observed"] == "60"
    assert 9 <= float(alert.labels["baseline"]) <= 11
    assert float(alert.labels["score"]) > 3.5
    assert alert.labels["bucket"] == "2026-11-22T10:30:00Z"
    assert alert.labels["method"] == "mad" and alert.labels["bucket_size"] == "1m"
    assert alert.first_seen >= T0 + 30 * MINUTE


def test_nothing_fires_before_min_history_buckets() -> None:
    assert run(rule(), RuleMemory(), events([*steady(10), 500]), minutes=11) == []


def test_each_bucket_is_scored_once_through_overlapping_windows_and_reruns() -> None:
    memory = RuleMemory()
    hits = events(steady(12))
    run(rule(), memory, hits, minutes=12)
    end = T0 + 12 * MINUTE
    again = Window(start=end - 5 * MINUTE, end=end, new_since=end - MINUTE)
    evaluate(rule(), [h for h in hits if h.time >= again.start], again, memory)

    state = memory.get('series:["web"]')
    assert len(state["ring"]) == 12  # minutes 0..11, none twice
    assert state["last"] == (T0 + 11 * MINUTE).timestamp()


def test_a_bucket_still_filling_is_left_for_the_next_run() -> None:
    memory = RuleMemory()
    hits = events([10, 10, 10])
    end = T0 + 2 * MINUTE + 30 * timedelta(seconds=1)
    window = Window(start=end - 5 * MINUTE, end=end, new_since=end - 5 * MINUTE)

    evaluate(rule(), [h for h in hits if h.time < end], window, memory)

    assert memory.get('series:["web"]')["ring"] == [10, 10]


def test_a_series_that_goes_silent_is_a_drop_to_zero_unless_only_rises_count() -> None:
    per_minute = [*steady(30), 0, 0]
    both, up = RuleMemory(), RuleMemory()
    rising = rule(anomaly={"bucket": "1m", "min_history": 20, "direction": "up"})

    alerts = run(rule(), both, events(per_minute), minutes=31)

    (alert,) = alerts
    assert alert.value == 0 and alert.events == 0 and alert.evidence == ()
    assert alert.labels["observed"] == "0"
    assert run(rising, up, events(per_minute), minutes=31) == []


def test_a_forgotten_series_stops_firing() -> None:
    memory = RuleMemory()
    short = rule(anomaly={"bucket": "1m", "min_history": 20, "forget_after": "10m"})
    run(short, memory, events(steady(30)), minutes=30)

    later = T0 + 45 * MINUTE
    assert run(short, memory, [], minutes=5, start=later) == []
    assert 'series:["web"]' not in memory


def test_field_values_are_aggregated_per_bucket_and_empty_buckets_skipped() -> None:
    latency = rule(
        title="Latency of {service}",
        anomaly={"bucket": "1m", "min_history": 20, "field": "ms", "aggregate": "max"},
    )
    rng = random.Random(3)
    hits = []
    for minute in range(40):
        if minute % 3 == 0:
            continue  # nothing measured: skipped, not zero
        for j in range(4):
            ms = 1000 if minute == 38 and j == 1 else 100 + rng.randint(-10, 10)
            at = T0 + minute * MINUTE + j * 10 * timedelta(seconds=1)
            hits.append(Hit(time=at, fields={"service": "api", "ms": str(ms)}, raw=f"ms={ms}"))

    memory = RuleMemory()
    (alert,) = run(latency, memory, hits, minutes=40)

    assert alert.value == 1000 and alert.events == 4
    assert len(memory.get('series:["api"]')["ring"]) == 26


def test_ewma_follows_a_drifting_level_and_flags_a_jump() -> None:
    ewma = rule(anomaly={"method": "ewma", "bucket": "1m", "min_history": 10, "alpha": 0.2})
    drifting = [10 + i // 5 for i in range(40)]  # slowly rising
    memory = RuleMemory()

    assert run(ewma, memory, events(drifting), minutes=40) == []
    state = memory.get('series:["web"]')
    assert set(state) == {"key", "last", "seen", "n", "mean", "var"} and state["n"] == 40
    (alert,) = run(ewma, memory, events([60], start=T0 + 40 * MINUTE), 1, T0 + 40 * MINUTE)
    assert alert.labels["method"] == "ewma" and alert.value == 60


def test_a_restart_scores_against_the_remembered_baseline() -> None:
    memory = RuleMemory()
    per_minute = steady(40)
    hits = events([*per_minute, 11, 60])
    run(rule(), memory, hits, minutes=40)
    reloaded = RuleMemory(json.loads(json.dumps(dict(memory.items()))))

    alerts = run(rule(), reloaded, hits, minutes=2, start=T0 + 40 * MINUTE)

    assert [a.labels["bucket"] for a in alerts] == ["2026-11-22T10:41:00Z"]


def test_an_empty_window_with_nothing_known_fires_nothing() -> None:
    memory = RuleMemory()

    assert run(rule(), memory, [], minutes=3) == []
    assert len(memory) == 0


def test_max_series_evicts_the_least_recently_seen() -> None:
    memory = RuleMemory()
    small = rule(anomaly={"bucket": "1m", "min_history": 5, "max_series": 2})
    hits = events([3], "a") + events([0, 3], "b") + events([0] * 7 + [3], "c")

    run(small, memory, hits, minutes=9)  # the last runs see only "c"

    assert sorted(n for n in memory if n.startswith("series:")) == [
        'series:["b"]',
        'series:["c"]',
    ]


def forest_rule(**settings: Any) -> AnomalyRule:
    return rule(
        title="Unusual disk behaviour on {service}",
        query="index=metrics",
        anomaly={
            "method": "isolation_forest",
            "bucket": "1m",
            "metrics": ["iowait", "write_mb"],
            **settings,
        },
    )


def samples(minutes: int, seed: int = 5, start: datetime = T0) -> list[Hit]:
    rng = random.Random(seed)
    out = []
    for minute in range(minutes):
        at = start + minute * MINUTE + 20 * timedelta(seconds=1)
        iowait, write = 5 + rng.gauss(0, 0.5), 20 + rng.gauss(0, 2)
        fields = {"service": "db", "iowait": f"{iowait:.2f}", "write_mb": f"{write:.1f}"}
        out.append(Hit(time=at, fields=fields, raw=f"iowait={iowait:.2f} write_mb={write:.1f}"))
    return out


@needs_ml
def test_isolation_forest_flags_an_unusual_combination_of_metrics_deterministically() -> None:
    history = samples(240)
    odd_at = T0 + 240 * MINUTE + 20 * timedelta(seconds=1)
    odd = Hit(time=odd_at, fields={"service": "db", "iowait": "45", "write_mb": "310"}, raw="burst")
    first, second = RuleMemory(), RuleMemory()

    for memory in (first, second):
        assert prime(forest_rule(), memory, history, minutes=240) == []
    (a,) = run(forest_rule(), first, [odd], 1, T0 + 240 * MINUTE)
    (b,) = run(forest_rule(), second, [odd], 1, T0 + 240 * MINUTE)

    assert a.labels == b.labels and a.value == b.value  # a fixed random_state
    assert a.labels["observed"] == "iowait=45, write_mb=310"
    baseline = dict(part.split("=") for part in a.labels["baseline"].split(", "))
    assert abs(float(baseline["iowait"]) - 5) < 0.5 and abs(float(baseline["write_mb"]) - 20) < 2
    assert a.value >= 0.7 and a.labels["method"] == "isolation_forest"
    assert a.evidence[0].text == "burst"


@needs_ml
def test_isolation_forest_stays_quiet_on_ordinary_buckets() -> None:
    memory = RuleMemory()
    later = T0 + 200 * MINUTE
    assert prime(forest_rule(), memory, samples(200), minutes=200) == []

    assert run(forest_rule(), memory, samples(5, seed=9, start=later), 5, later) == []
    fresh = samples(25, seed=11, start=later + 5 * MINUTE)
    window = Window(later + 5 * MINUTE, later + 30 * MINUTE, later + 5 * MINUTE)
    assert evaluate(forest_rule(), fresh, window, memory) == []
    assert len(memory.get('series:["db"]')["ring"]) == 230


def test_isolation_forest_needs_the_ml_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)  # as if scikit-learn were not installed

    with pytest.raises(ValidationError, match="needs scikit-learn: install the 'ml' extra"):
        forest_rule()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"anomaly": {"method": "mad", "metrics": ["a"]}}, "'metrics' is for method"),
        ({"anomaly": {"method": "isolation_forest"}}, "needs 'metrics'"),
        (
            {"anomaly": {"method": "isolation_forest", "metrics": ["a"], "field": "b"}},
            "not 'field'",
        ),
        ({"anomaly": {"method": "isolation_forest", "metrics": ["a"], "threshold": 3.5}}, "0.5"),
        ({"anomaly": {"method": "prophet"}}, "'mad', 'ewma' or 'isolation_forest'"),
        ({"anomaly": {"history": 10, "min_history": 20}}, "history \\(10\\) is shorter"),
        ({"anomaly": {"alpha": 1.5}}, "less than 1"),
        ({"anomaly": {"aggregate": "p95"}}, "'avg', 'sum', 'min' or 'max'"),
        ({"window": "5m", "anomaly": {"bucket": "5m"}}, "must cover a bucket plus the interval"),
        ({"anomaly": {"metrics": ["a", "a"], "method": "isolation_forest"}}, "listed twice"),
    ],
)
def test_bad_settings_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rule(**overrides)


@needs_ml
def test_default_thresholds_depend_on_the_method() -> None:
    assert rule().anomaly.score_threshold == 3.5
    assert rule(anomaly={"method": "ewma"}).anomaly.score_threshold == 3.0
    assert forest_rule().anomaly.score_threshold == 0.7
    default = rule(anomaly={"bucket": "1m"})
    assert (default.anomaly.needed_history, forest_rule().anomaly.needed_history) == (30, 200)
    assert [ref for _, ref in forest_rule().result_fields()] == ["service", "iowait", "write_mb"]


def test_an_event_arriving_after_its_bucket_was_scored_is_not_counted_twice() -> None:
    memory = RuleMemory()
    run(rule(), memory, events(steady(25)), minutes=25)
    ring = list(memory.get('series:["web"]')["ring"])
    late_at = T0 + 23 * MINUTE + 10 * timedelta(seconds=1)  # a bucket scored already
    late = Hit(time=late_at, fields={"service": "web"}, raw="late login")
    end = T0 + 25 * MINUTE + 30 * timedelta(seconds=1)  # the next bucket still filling

    evaluate(rule(), [late], Window(end - 5 * MINUTE, end, end - MINUTE), memory)

    assert memory.get('series:["web"]')["ring"] == ring
