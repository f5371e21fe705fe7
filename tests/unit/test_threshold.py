from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain.hits import Category, Hit, Severity
from detectors.types.threshold import ThresholdRule, evaluate
from detectors.window import Window

END = datetime(2026, 11, 22, 10, 5, tzinfo=UTC)
WINDOW = Window(start=END - timedelta(minutes=5), end=END, new_since=END - timedelta(minutes=5))


def rule(**overrides: Any) -> ThresholdRule:
    settings: dict[str, Any] = {
        "id": "web-5xx",
        "title": "5xx on {service}",
        "query": "index=web status>=500",
        "severity": "high",
        "category": "application",
        "group_by": ["service"],
        "threshold": {"op": ">=", "value": 3},
        "owner": "web-oncall",
        "runbook": "restart the upstream",
    }
    settings.update(overrides)
    return ThresholdRule.model_validate(settings)


def hit(seconds_before_end: float, raw: str = "", **fields: str) -> Hit:
    time = END - timedelta(seconds=seconds_before_end)
    return Hit(time=time, fields=fields, raw=raw or " ".join(f"{k}={v}" for k, v in fields.items()))


def test_groups_by_field_and_fires_only_groups_past_the_threshold() -> None:
    hits = [hit(s, service="checkout", host="web-1") for s in (10, 20, 30)]
    hits += [hit(s, service="catalog", host="web-2") for s in (15, 25)]

    alerts = evaluate(rule(), hits, WINDOW)

    assert [(a.group, a.value) for a in alerts] == [((("service", "checkout"),), 3.0)]
    alert = alerts[0]
    assert alert.title == "5xx on checkout"
    assert alert.service == "checkout"
    assert alert.host == "web-1"
    assert alert.severity is Severity.HIGH
    assert alert.category is Category.APPLICATION
    assert alert.owner == "web-oncall"
    assert alert.runbook == "restart the upstream"
    assert alert.first_seen == END - timedelta(seconds=30)
    assert alert.last_seen == END - timedelta(seconds=10)


def test_host_is_left_empty_when_the_group_spans_hosts() -> None:
    hits = [hit(s, service="checkout", host=f"web-{s}") for s in (1, 2, 3)]

    (alert,) = evaluate(rule(), hits, WINDOW)

    assert alert.host == ""
    assert alert.service == "checkout"


def test_rule_service_wins_over_result_fields() -> None:
    hits = [hit(s, service="checkout") for s in (1, 2, 3)]

    (alert,) = evaluate(rule(service="shop", group_by=[]), hits, WINDOW)

    assert alert.service == "shop"
    assert alert.group == ()


@pytest.mark.parametrize(
    ("op", "value", "fires"),
    [
        (">", 3, False),
        (">", 2, True),
        (">=", 3, True),
        (">=", 4, False),
        ("<", 4, True),
        ("<", 3, False),
        ("<=", 3, True),
        ("<=", 2, False),
        ("==", 3, True),
        ("==", 2, False),
        ("!=", 2, True),
        ("!=", 3, False),
    ],
)
def test_each_operator_compares_the_count(op: str, value: float, fires: bool) -> None:
    hits = [hit(s, service="checkout") for s in (1, 2, 3)]

    alerts = evaluate(rule(threshold={"op": op, "value": value}), hits, WINDOW)

    assert bool(alerts) is fires


def test_field_mode_compares_each_row_as_its_own_group() -> None:
    hits = [
        hit(0, host="db-1", max_cpu="97.5"),
        hit(0, host="db-2", max_cpu="41.0"),
        hit(0, host="app-1", max_cpu="90"),
    ]
    cpu_rule = rule(
        title="High CPU on {host}",
        group_by=["host"],
        threshold={"field": "max_cpu", "op": ">=", "value": 90},
    )

    alerts = evaluate(cpu_rule, hits, WINDOW)

    assert [(a.title, a.value) for a in alerts] == [
        ("High CPU on db-1", 97.5),
        ("High CPU on app-1", 90.0),
    ]


def test_field_mode_skips_rows_without_a_number() -> None:
    hits = [hit(0, host="db-1", max_cpu="n/a"), hit(0, host="db-2")]
    cpu_rule = rule(group_by=["host"], threshold={"field": "max_cpu", "op": "<", "value": 5})

    assert evaluate(cpu_rule, hits, WINDOW) == []


def test_field_mode_reports_the_most_extreme_value_of_a_group() -> None:
    hits = [hit(0, host="db-1", pct=pct) for pct in ("91", "97", "5")]
    low = rule(group_by=["host"], threshold={"field": "pct", "op": "<", "value": 50})
    high = rule(group_by=["host"], threshold={"field": "pct", "op": ">", "value": 50})

    assert [a.value for a in evaluate(high, hits, WINDOW)] == [97.0]
    assert [a.value for a in evaluate(low, hits, WINDOW)] == [5.0]


def test_new_events_count_only_hits_since_the_previous_run() -> None:
    hits = [hit(s, service="checkout") for s in (10, 40, 70, 100, 200)]
    window = Window(start=WINDOW.start, end=END, new_since=END - timedelta(seconds=60))

    (alert,) = evaluate(rule(), hits, window)

    assert alert.value == 5
    assert alert.new_events == 2


def test_a_hit_exactly_at_new_since_is_new() -> None:
    window = Window(start=WINDOW.start, end=END, new_since=END - timedelta(seconds=30))
    hits = [hit(30, service="a"), hit(31, service="a"), hit(29, service="a")]

    (alert,) = evaluate(rule(), hits, window)

    assert alert.new_events == 2


def test_empty_window_fires_nothing_for_grouped_or_high_thresholds() -> None:
    assert evaluate(rule(), [], WINDOW) == []
    assert evaluate(rule(group_by=[]), [], WINDOW) == []


def test_empty_window_fires_a_silence_rule_without_group_by() -> None:
    silence = rule(title="No heartbeats", group_by=[], threshold={"op": "<", "value": 1})

    (alert,) = evaluate(silence, [], WINDOW)

    assert alert.value == 0
    assert alert.new_events == 0
    assert alert.evidence == ()
    assert alert.first_seen == alert.last_seen == END
    assert alert.title == "No heartbeats"


def test_missing_group_field_groups_under_empty_value() -> None:
    hits = [hit(s, host="web-1") for s in (1, 2, 3)]

    (alert,) = evaluate(rule(), hits, WINDOW)

    assert alert.group == (("service", ""),)
    assert alert.title == "5xx on service unknown"
    assert alert.service == ""


def test_title_placeholders_use_group_values_then_shared_hit_values() -> None:
    hits = [hit(s, service="checkout", host="web-1", path=f"/p{s}") for s in (1, 2, 3)]
    titled = rule(title="{service} failing behind {host} on {path} ({nothing})")

    (alert,) = evaluate(titled, hits, WINDOW)

    assert alert.title == "checkout failing behind web-1 on (various) (nothing unknown)"


def test_evidence_keeps_the_latest_lines_newest_first() -> None:
    hits = [hit(s, raw=f"line {s}", service="checkout") for s in (50, 10, 40, 20, 30)]

    (alert,) = evaluate(rule(evidence_lines=3), hits, WINDOW)

    assert [e.text for e in alert.evidence] == ["line 10", "line 20", "line 30"]
    assert [e.id for e in alert.evidence] == [hits[1].id, hits[3].id, hits[4].id]
    assert alert.evidence[0].time == END - timedelta(seconds=10)


def test_evidence_can_be_turned_off() -> None:
    hits = [hit(s, service="checkout") for s in (1, 2, 3)]

    (alert,) = evaluate(rule(evidence_lines=0), hits, WINDOW)

    assert alert.evidence == ()


def test_alerts_of_one_group_keep_one_fingerprint_across_runs() -> None:
    first = evaluate(rule(), [hit(s, service="checkout") for s in (1, 2, 3)], WINDOW)
    later = evaluate(rule(), [hit(s, service="checkout") for s in (4, 5, 6, 7)], WINDOW)

    assert first[0].fingerprint == later[0].fingerprint
