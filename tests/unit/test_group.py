from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bot.domain.hits import Alert, Category, Evidence, Severity
from bot.pipeline.group import EVIDENCE_CAP, GroupBatch, fold, merge_alerts, merge_evidence

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ev(id: str, seconds: float, text: str = "") -> Evidence:
    return Evidence(id=id, time=at(seconds), text=text or f"line {id}")


def alert(rule_id: str = "web-5xx", service: str = "checkout", **changes: Any) -> Alert:
    base = Alert(
        rule_id=rule_id,
        group=(("service", service),),
        title=f"5xx on {service}",
        severity=Severity.HIGH,
        category=Category.APPLICATION,
        service=service,
        host="web-1",
        owner="web-oncall",
        first_seen=at(0),
        last_seen=at(60),
        new_events=3,
        value=3.0,
        events=3,
    )
    return replace(base, **changes)


def test_fold_merges_alerts_with_the_same_fingerprint() -> None:
    a = alert(first_seen=at(10), last_seen=at(40), new_events=2, events=5, value=2.0)
    b = alert(first_seen=at(0), last_seen=at(30), new_events=4, events=6, value=7.0)
    (batch,) = fold([a, b])
    assert batch.key == "web-5xx|service=checkout"
    (merged,) = batch.alerts
    assert merged.first_seen == at(0)
    assert merged.last_seen == at(40)
    assert merged.new_events == 6
    assert merged.events == 11
    assert merged.value == 7.0
    assert batch.new_events == 6
    assert batch.events == 11


def test_group_values_in_any_order_are_one_alert() -> None:
    a = alert(group=(("service", "checkout"), ("host", "web-1")))
    b = alert(group=(("host", "web-1"), ("service", "checkout")))
    (batch,) = fold([a, b])
    assert len(batch.alerts) == 1
    assert batch.new_events == 6


def test_fold_keeps_different_groups_apart_in_first_seen_order() -> None:
    batches = fold([alert(service="checkout"), alert(service="catalog"), alert(service="checkout")])
    assert [b.key for b in batches] == ["web-5xx|service=checkout", "web-5xx|service=catalog"]
    assert [b.new_events for b in batches] == [6, 3]


def test_fold_keeps_different_rules_apart() -> None:
    batches = fold([alert(rule_id="web-5xx"), alert(rule_id="web-latency")])
    assert [b.key for b in batches] == [
        "web-5xx|service=checkout",
        "web-latency|service=checkout",
    ]


def test_fold_of_nothing_is_nothing() -> None:
    assert fold([]) == []


def test_batch_gathers_alerts_sharing_a_group_key() -> None:
    low = alert(severity=Severity.LOW, title="low", first_seen=at(5), last_seen=at(20))
    critical = alert(severity=Severity.CRITICAL, title="critical", first_seen=at(30))
    medium = alert(severity=Severity.MEDIUM, title="medium", first_seen=at(8), last_seen=at(90))
    batch = GroupBatch("web-5xx|service=checkout", (low, critical, medium))
    assert batch.head.title == "critical"
    assert batch.first_seen == at(5)
    assert batch.last_seen == at(90)
    assert batch.new_events == 9


def test_head_is_the_most_severe_and_the_first_among_equals() -> None:
    first = alert(severity=Severity.HIGH, title="first")
    second = alert(severity=Severity.HIGH, title="second")
    info = alert(severity=Severity.INFO, title="info")
    assert GroupBatch("k", (info, first, second)).head.title == "first"


def test_batch_events_is_never_below_new_events() -> None:
    batch = GroupBatch("k", (alert(new_events=4, events=0), alert(new_events=2, events=1)))
    assert batch.events == 6


def test_merge_alerts_keeps_the_identity_of_the_first() -> None:
    a = alert(title="5xx on checkout", runbook="https://runbooks/5xx")
    b = alert(title="other", runbook="")
    merged = merge_alerts(a, b)
    assert merged.title == "5xx on checkout"
    assert merged.runbook == "https://runbooks/5xx"
    assert merged.fingerprint == a.fingerprint


def test_merged_evidence_is_newest_first_and_deduplicated() -> None:
    a = alert(evidence=(ev("e3", 30), ev("e1", 10)))
    b = alert(evidence=(ev("e4", 40), ev("e3", 30), ev("e2", 20)))
    (batch,) = fold([a, b])
    assert [e.id for e in batch.alerts[0].evidence] == ["e4", "e3", "e2", "e1"]


def test_merge_evidence_prefers_the_new_copy_of_a_line() -> None:
    old = [ev("e1", 10, "old text")]
    new = [ev("e1", 10, "new text")]
    assert merge_evidence(old, new) == (ev("e1", 10, "new text"),)


def test_merge_evidence_is_capped_keeping_the_newest() -> None:
    old = [ev(f"o{i}", i) for i in range(40)]
    new = [ev(f"n{i}", 100 + i) for i in range(30)]
    merged = merge_evidence(old, new)
    assert len(merged) == EVIDENCE_CAP == 50
    assert merged[0].id == "n29"
    assert merged[-1].id == "o20"


def test_merge_evidence_with_a_smaller_cap() -> None:
    merged = merge_evidence([ev("a", 1), ev("b", 2)], [ev("c", 3)], cap=2)
    assert [e.id for e in merged] == ["c", "b"]


evidence_lists = st.lists(
    st.builds(
        ev,
        id=st.sampled_from([f"e{i}" for i in range(80)]),
        seconds=st.integers(min_value=0, max_value=3600),
    ),
    max_size=70,
)


@given(evidence_lists, evidence_lists)
def test_merge_evidence_properties(old: list[Evidence], new: list[Evidence]) -> None:
    merged = merge_evidence(old, new)
    ids = [e.id for e in merged]
    assert len(ids) == len(set(ids))
    assert len(merged) == min(EVIDENCE_CAP, len({e.id for e in (*old, *new)}))
    assert [e.time for e in merged] == sorted((e.time for e in merged), reverse=True)
    new_by_id = {e.id: e for e in reversed(new)}
    for item in merged:
        if item.id in new_by_id:
            assert item == new_by_id[item.id]
