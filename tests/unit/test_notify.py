from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain.hits import Category, Severity
from bot.domain.incident import Incident, State
from bot.pipeline.notify import (
    MessageKind,
    Router,
    RouteRule,
    Target,
    card_posts,
    card_refreshes,
    state_change,
)

NOW = datetime(2026, 11, 22, 10, 0, 30, tzinfo=UTC)
SLACK_OPS = Target("slack", "#ops")
SLACK_DB = Target("slack", "#db")
SLACK_PAY = Target("slack", "#payments")
SLACK_SEC = Target("slack", "#security")
TEAMS_OPS = Target("teams", "ops")
PAGER = Target("pagerduty", "PSVC1")


def incident(**changes: Any) -> Incident:
    base = Incident(
        id=42,
        group_key="db-slow|service=ledger",
        rule_id="db-slow",
        title="slow queries on ledger",
        severity=Severity.HIGH,
        category=Category.DATABASE,
        service="ledger",
        host="db-1",
        owner="dba",
        state=State.OPEN,
        created_at=NOW,
        updated_at=NOW,
        first_seen=NOW,
        last_seen=NOW,
    )
    return replace(base, **changes)


def rule(target: Target, **match: set[str]) -> RouteRule:
    return RouteRule(target, **{k: frozenset(v) for k, v in match.items()})


ROUTER = Router(
    rules=(
        rule(PAGER, severity={"critical"}),
        rule(SLACK_SEC, category={"security"}),
        rule(SLACK_PAY, service={"payments", "ledger"}, severity={"critical", "high"}),
        rule(SLACK_DB, category={"database"}),
    ),
    defaults=(SLACK_OPS, TEAMS_OPS),
)


def test_first_matching_route_per_surface_wins() -> None:
    assert ROUTER.targets(incident()) == [SLACK_PAY, TEAMS_OPS]


def test_every_match_field_must_hold() -> None:
    assert ROUTER.targets(incident(severity=Severity.LOW)) == [SLACK_DB, TEAMS_OPS]


def test_match_by_category() -> None:
    found = ROUTER.targets(incident(category=Category.SECURITY, service="sso"))
    assert found == [SLACK_SEC, TEAMS_OPS]


def test_surfaces_without_a_match_use_their_default() -> None:
    found = ROUTER.targets(
        incident(category=Category.NETWORK, service="edge", severity=Severity.MEDIUM)
    )
    assert found == [SLACK_OPS, TEAMS_OPS]


def test_a_route_adds_a_surface_without_a_default() -> None:
    found = ROUTER.targets(incident(severity=Severity.CRITICAL))
    assert found == [PAGER, SLACK_PAY, TEAMS_OPS]


def test_an_empty_route_matches_everything() -> None:
    router = Router(rules=(rule(SLACK_DB), rule(SLACK_PAY)), defaults=(SLACK_OPS,))
    assert router.targets(incident(severity=Severity.INFO, service="x")) == [SLACK_DB]


def test_service_names_match_exactly() -> None:
    router = Router(rules=(rule(SLACK_PAY, service={"ledger"}),), defaults=(SLACK_OPS,))
    assert router.targets(incident(service="Ledger")) == [SLACK_OPS]
    assert router.targets(incident(service="ledger")) == [SLACK_PAY]


def test_no_routes_and_no_defaults_notify_nobody() -> None:
    assert Router(rules=(), defaults=()).targets(incident()) == []


# --- messages ----------------------------------------------------------------------------------


def test_post_message_carries_the_target_and_the_incident() -> None:
    (row,) = card_posts(incident(), [SLACK_OPS], NOW)
    assert row["surface"] == "slack"
    assert row["channel"] == "#ops"
    assert row["kind"] == MessageKind.POST.value
    assert row["incident_id"] == 42
    assert row["order_key"] == "slack:#ops:42"
    assert row["severity_rank"] == Severity.HIGH.rank
    assert row["status"] == "pending"
    assert row["attempts"] == 0
    assert row["next_attempt_at"] == NOW
    assert json.loads(row["payload_json"]) == {}


def test_posts_one_per_target_with_distinct_keys() -> None:
    rows = card_posts(incident(), [SLACK_OPS, TEAMS_OPS, SLACK_DB], NOW)
    assert [(r["surface"], r["channel"]) for r in rows] == [
        ("slack", "#ops"),
        ("teams", "ops"),
        ("slack", "#db"),
    ]
    assert len({r["idempotency_key"] for r in rows}) == 3


def test_same_incident_version_posts_under_the_same_key() -> None:
    first = card_posts(incident(), [SLACK_OPS], NOW)
    again = card_posts(incident(), [SLACK_OPS], NOW + timedelta(minutes=5))
    assert first[0]["idempotency_key"] == again[0]["idempotency_key"]


def test_a_new_incident_version_posts_again() -> None:
    before = card_posts(incident(), [SLACK_OPS], NOW)[0]["idempotency_key"]
    reopened = incident(version=5, updated_at=NOW + timedelta(hours=1))
    after = card_posts(reopened, [SLACK_OPS], NOW + timedelta(hours=1))[0]["idempotency_key"]
    assert before != after
    other = card_posts(incident(id=43), [SLACK_OPS], NOW)[0]["idempotency_key"]
    assert other not in (before, after)


def test_refreshes_coalesce_within_one_bucket() -> None:
    every = timedelta(seconds=60)
    start = datetime(2026, 11, 22, 10, 1, 0, tzinfo=UTC)
    keys = {
        card_refreshes(incident(), [SLACK_OPS], start + timedelta(seconds=s), every)[0][
            "idempotency_key"
        ]
        for s in (0, 1, 30, 59.999)
    }
    assert len(keys) == 1


def test_refreshes_differ_across_buckets() -> None:
    every = timedelta(seconds=60)
    start = datetime(2026, 11, 22, 10, 1, 0, tzinfo=UTC)
    before = card_refreshes(incident(), [SLACK_OPS], start - timedelta(milliseconds=1), every)
    inside = card_refreshes(incident(), [SLACK_OPS], start, every)
    after = card_refreshes(incident(), [SLACK_OPS], start + every, every)
    keys = [rows[0]["idempotency_key"] for rows in (before, inside, after)]
    assert len(set(keys)) == 3


def test_refresh_is_an_update_per_target() -> None:
    rows = card_refreshes(incident(), [SLACK_OPS, TEAMS_OPS], NOW, timedelta(seconds=60))
    assert [r["kind"] for r in rows] == ["update", "update"]
    assert [r["channel"] for r in rows] == ["#ops", "ops"]
    assert rows[0]["idempotency_key"] != rows[1]["idempotency_key"]


def test_refresh_keys_differ_per_incident() -> None:
    a = card_refreshes(incident(), [SLACK_OPS], NOW, timedelta(seconds=60))
    b = card_refreshes(incident(id=43), [SLACK_OPS], NOW, timedelta(seconds=60))
    assert a[0]["idempotency_key"] != b[0]["idempotency_key"]


def test_refresh_bucket_is_at_least_one_second() -> None:
    every = timedelta(0)
    start = datetime(2026, 11, 22, 10, 1, 0, tzinfo=UTC)
    same = card_refreshes(incident(), [SLACK_OPS], start + timedelta(milliseconds=900), every)
    first = card_refreshes(incident(), [SLACK_OPS], start, every)
    later = card_refreshes(incident(), [SLACK_OPS], start + timedelta(seconds=1), every)
    assert first[0]["idempotency_key"] == same[0]["idempotency_key"]
    assert first[0]["idempotency_key"] != later[0]["idempotency_key"]


def test_state_change_updates_then_replies_per_target() -> None:
    rows = state_change(
        incident(state=State.ACKNOWLEDGED),
        [SLACK_OPS, TEAMS_OPS],
        "acknowledged by alice",
        "chg-1",
        NOW,
    )
    assert [(r["kind"], r["surface"], r["channel"]) for r in rows] == [
        ("update", "slack", "#ops"),
        ("reply", "slack", "#ops"),
        ("update", "teams", "ops"),
        ("reply", "teams", "ops"),
    ]
    assert json.loads(rows[0]["payload_json"]) == {}
    assert json.loads(rows[1]["payload_json"]) == {"text": "acknowledged by alice"}
    assert json.loads(rows[3]["payload_json"]) == {"text": "acknowledged by alice"}
    assert len({r["idempotency_key"] for r in rows}) == 4
    assert {r["order_key"] for r in rows[:2]} == {"slack:#ops:42"}


def test_state_change_keys_are_stable_per_change_and_differ_between_changes() -> None:
    first = state_change(incident(), [SLACK_OPS], "acknowledged by alice", "chg-1", NOW)
    retried = state_change(incident(), [SLACK_OPS], "acknowledged by alice", "chg-1", NOW)
    second = state_change(incident(), [SLACK_OPS], "resolved by alice", "chg-2", NOW)
    assert [r["idempotency_key"] for r in first] == [r["idempotency_key"] for r in retried]
    assert {r["idempotency_key"] for r in first}.isdisjoint(r["idempotency_key"] for r in second)


@pytest.mark.parametrize(
    ("rows_of", "kind"),
    [
        (lambda i, t: card_posts(i, t, NOW), "post"),
        (lambda i, t: card_refreshes(i, t, NOW, timedelta(seconds=60)), "update"),
    ],
)
def test_no_targets_no_messages(rows_of: Any, kind: str) -> None:
    assert rows_of(incident(), []) == []
    assert [r["kind"] for r in rows_of(incident(), [SLACK_OPS])] == [kind]


def test_message_kinds_never_share_keys() -> None:
    posts = card_posts(incident(), [SLACK_OPS], NOW)
    refreshes = card_refreshes(incident(), [SLACK_OPS], NOW, timedelta(seconds=60))
    changes = state_change(incident(), [SLACK_OPS], "x", "1", NOW)
    keys = [r["idempotency_key"] for r in (*posts, *refreshes, *changes)]
    assert len(set(keys)) == len(keys)


def test_critical_messages_rank_first() -> None:
    critical = card_posts(incident(severity=Severity.CRITICAL), [SLACK_OPS], NOW)[0]
    info = card_posts(incident(severity=Severity.INFO), [SLACK_OPS], NOW)[0]
    assert critical["severity_rank"] < info["severity_rank"]
