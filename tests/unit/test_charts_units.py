"""The chart of what a rule saw: values per window for the incident's group, the line or band
it compared them with, the SVG and PNG drawings and the signed image links."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.charts.measure import measure_for
from bot.charts.model import Chart
from bot.charts.png import SIGNATURE, render_png
from bot.charts.series import aggregates, from_events, group_of, moments, span_of
from bot.charts.signing import ChartSigner
from bot.charts.svg import render_svg
from bot.domain.hits import Hit, group_key
from bot.errors import PolicyViolation
from detectors.model import Rule
from detectors.types import rule_type

FIRED = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
BURST = {
    "id": "web-5xx-burst",
    "title": "HTTP 5xx burst on {service}",
    "type": "threshold",
    "query": "index=web status>=500",
    "interval": "30s",
    "window": "5m",
    "group_by": ["service"],
    "threshold": {"op": ">=", "value": 20},
    "severity": "high",
    "category": "application",
}


def parse_rule(data: dict[str, object]) -> Rule:
    return rule_type(str(data["type"])).model.model_validate(data)


def hits(service: str, start: datetime, count: int, every: timedelta) -> list[Hit]:
    return [
        Hit(start + i * every, {"service": service, "status": "503"}, f"{service} {i}")
        for i in range(count)
    ]


def burst_chart() -> Chart:
    rule = parse_rule(BURST)
    measure = measure_for(rule, {})
    start, end = span_of(FIRED, FIRED, rule)
    at = moments(rule, measure, start, end, FIRED)
    rows = (
        hits("checkout", FIRED - timedelta(minutes=30), 12, timedelta(minutes=2))
        + hits("checkout", FIRED - timedelta(minutes=4), 30, timedelta(seconds=6))
        + hits("catalog", FIRED - timedelta(minutes=4), 45, timedelta(seconds=4))
    )
    group = group_of(group_key(rule.id, (("service", "checkout"),)), rule.id)
    points = from_events(rows, group, measure, at)
    return Chart(
        1, rule.id, rule.title, rule.type, measure.label, group, tuple(points), FIRED, start,
        end, measure.threshold, measure.threshold_label,
    )  # fmt: skip


def test_a_threshold_rule_charts_its_groups_count_per_window_against_its_threshold() -> None:
    chart = burst_chart()
    assert chart.group == (("service", "checkout"),)
    assert (chart.threshold, chart.threshold_label, chart.measure) == (20, ">= 20", "events per 5m")
    assert chart.start == FIRED - timedelta(minutes=30)
    # one value per rule run (every 30 s), each the count of the 5 minutes before it
    assert chart.points[1].at - chart.points[0].at == timedelta(seconds=30)
    assert chart.value_at_fire() == 30  # catalog's 45 events are not checkout's
    assert max(chart.values) == 30
    assert chart.points[0].value == 3  # 09:30, 09:32 and 09:34 before the burst


def test_group_keys_with_escaped_commas_and_equals_come_apart() -> None:
    group = (("path", "/a,b=c"), ("host", "web\\1"))
    assert group_of(group_key("r", group), "r") == tuple(sorted(group))
    assert group_of(group_key("r", ()), "r") == ()


def test_aggregating_queries_are_told_from_event_searches() -> None:
    assert aggregates("index=web | stats count by service")
    assert aggregates("index=web | TIMECHART span=1m count")
    assert not aggregates("index=web status>=500 | eval service=coalesce(service, host)")


def test_the_svg_names_rule_threshold_and_values_and_draws_the_line() -> None:
    svg = render_svg(burst_chart())
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert "<title id=" in svg and "web-5xx-burst" in svg
    desc = re.search(r"<desc[^>]*>(.*?)</desc>", svg)
    assert desc is not None
    assert "threshold &gt;= 20" in desc.group(1) and "09:59:30 30" in desc.group(1)
    assert 'class="threshold"' in svg and 'data-value="20"' in svg
    values = re.search(r'data-values="([^"]*)"', svg)
    assert values is not None and max(int(v) for v in values.group(1).split(",")) == 30
    assert 'class="fired"' in svg and "<script" not in svg


def test_the_svg_escapes_what_came_from_logs() -> None:
    chart = burst_chart()
    evil = Chart(
        chart.incident_id, chart.rule_id, "<script>x</script>", chart.rule_type, chart.measure,
        (("service", '"><img src=x>'),), chart.points, chart.fired_at, chart.start, chart.end,
    )  # fmt: skip
    svg = render_svg(evil)
    assert "<script>" not in svg and "<img" not in svg


def test_the_png_is_a_small_png() -> None:
    data = render_png(burst_chart())
    assert data.startswith(SIGNATURE)
    assert 2_000 < len(data) < 200_000


def test_an_anomaly_rule_gets_the_baseline_band_from_what_it_fired_with() -> None:
    rule = parse_rule(
        {
            **{k: v for k, v in BURST.items() if k != "threshold"},
            "type": "anomaly",
            "anomaly": {"bucket": "1m", "threshold": 3},
        }
    )
    labels = {"observed": "40", "baseline": "10", "score": "6"}
    measure = measure_for(rule, labels)
    assert measure.band is not None and measure.aligned
    assert (measure.band.low, measure.band.center, measure.band.high) == (-5, 10, 25)
    start, end = span_of(FIRED, FIRED, rule)
    at = moments(rule, measure, start, end, FIRED)
    assert all(m.timestamp() % 60 == 0 for m in at)


def test_a_spike_rule_draws_the_reference_times_its_ratio() -> None:
    rule = parse_rule(
        {
            **{k: v for k, v in BURST.items() if k != "threshold"},
            "type": "spike",
            "spike": {"ratio": 3},
        }
    )
    measure = measure_for(rule, {"reference": "12", "current": "40"})
    assert measure.threshold == 36 and "3x the window before (12)" in measure.threshold_label


def test_signed_links_are_checked_and_expire() -> None:
    signer = ChartSigner(b"k" * 32)
    path = signer.path(7, FIRED)
    found = re.fullmatch(r"/charts/7\.png\?exp=(\d+)&sig=([0-9a-f]{64})", path)
    assert found is not None
    exp, sig = found.groups()
    signer.check(7, exp, sig, FIRED + timedelta(hours=23))
    with pytest.raises(PolicyViolation, match="not signed by this bot for INC-8"):
        signer.check(8, exp, sig, FIRED)
    with pytest.raises(PolicyViolation, match="not signed"):
        signer.check(7, str(int(exp) + 3600), sig, FIRED)
    with pytest.raises(PolicyViolation, match="expired at"):
        signer.check(7, exp, sig, FIRED + timedelta(hours=25))
    with pytest.raises(PolicyViolation, match="incomplete"):
        signer.check(7, "", "", FIRED)
    other = ChartSigner(b"x" * 32)
    with pytest.raises(PolicyViolation, match="not signed"):
        other.check(7, exp, sig, FIRED)
