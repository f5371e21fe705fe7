"""Maintenance windows and inhibition in the pipeline, on SQLite and PostgreSQL: who is muted,
what the timeline says, that paging is muted too, and who is notified once the mute ends."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, select

from bot.authz import Roles
from bot.domain.hits import Severity
from bot.domain.incident import Command, CommandKind
from bot.interactions import Interactions
from bot.pipeline.escalate import EscalationPolicy, EscalationRule
from bot.pipeline.ingest import IngestPolicy, IngestResult, ingest
from bot.pipeline.inhibit import InhibitRule
from bot.pipeline.maintenance import MaintenanceWindow, weekly
from bot.pipeline.matchers import parse_matchers
from bot.store import maintenance
from bot.store.repo import INCIDENTS, OUTBOX, TIMELINE
from tests.builders import alert, console_policy
from tests.conftest import FakeClock

HOST_DOWN = InhibitRule(
    parse_matchers(["rule=host-down"]), parse_matchers(["severity!=critical"]), ("host",)
)


def paging_policy() -> IngestPolicy:
    escalation = EscalationPolicy("pagerduty", (EscalationRule(after=timedelta(0)),))
    base = console_policy()
    return IngestPolicy(base.router, base.flap_window, base.card_refresh, escalation=escalation)


def run(engine: Engine, alerts, clock: FakeClock, rules=()) -> IngestResult:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        muter = maintenance.muter_for(conn, clock.now(), (), rules)
        return ingest(conn, alerts, clock.now(), paging_policy(), muter)


def add_window(engine: Engine, clock: FakeClock, include_critical: bool = False) -> None:
    # the clock starts on Sunday 2026-11-22 10:00 UTC (11:00 in Berlin)
    window = MaintenanceWindow(
        0,
        "sunday-patching",
        weekly("sun", "10:30", timedelta(hours=1), "Europe/Berlin"),
        parse_matchers(["service=db*"]),
        include_critical=include_critical,
        reason="OS patches",
        created_by="console:alice",
    )
    with engine.begin() as conn:
        maintenance.add(conn, window, clock.now(), "api")


def timeline(engine: Engine, incident_id: int) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(TIMELINE.c.kind, TIMELINE.c.text)
            .where(TIMELINE.c.incident_id == incident_id)
            .order_by(TIMELINE.c.id)
        )
        return [f"{r.kind}: {r.text}" for r in rows]


def sent(engine: Engine, incident_id: int) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(select(OUTBOX.c.kind).where(OUTBOX.c.incident_id == incident_id))
        # card updates of a card never posted have nothing to update: posts and pages count
        return sorted(r.kind for r in rows if r.kind != "update")


def test_a_window_mutes_cards_and_pages_and_they_follow_when_it_ends(
    engine: Engine, clock: FakeClock
) -> None:
    add_window(engine, clock)
    db = alert(clock.now(), service="db-main")
    web = alert(clock.now(), service="web")
    critical = alert(clock.now(), service="db-replica", severity=Severity.CRITICAL)
    result = run(engine, [db, web, critical], clock)
    db_id, web_id, crit_id = result.created
    assert result.muted == [db_id]
    assert sent(engine, db_id) == []  # no card, no page
    assert sent(engine, web_id) == ["post", "trigger"]
    assert sent(engine, crit_id) == ["post", "trigger"]  # critical: the window does not say so
    assert (
        "muted: notifications muted: in maintenance window 'sunday-patching' until 11:30 "
        "(Europe/Berlin): OS patches" in timeline(engine, db_id)
    )
    with engine.connect() as conn:
        muted_by = conn.execute(select(INCIDENTS.c.muted_by).where(INCIDENTS.c.id == db_id))
        assert muted_by.scalar_one() == "maintenance:sunday-patching"
    clock.advance(minutes=20)  # still in the window: still quiet
    run(engine, [alert(clock.now(), service="db-main")], clock)
    assert sent(engine, db_id) == []
    clock.advance(minutes=15)  # 11:35 Berlin: the window is over and the alert still fires
    run(engine, [alert(clock.now(), service="db-main")], clock)
    assert sent(engine, db_id) == ["post", "trigger"]
    assert timeline(engine, db_id)[-2:] == [
        "unmuted: notified: maintenance window 'sunday-patching' ended, still firing",
        "page: paged pagerduty (default)",
    ]


def test_a_window_that_says_so_mutes_critical_incidents(engine: Engine, clock: FakeClock) -> None:
    add_window(engine, clock, include_critical=True)
    result = run(engine, [alert(clock.now(), service="db-1", severity=Severity.CRITICAL)], clock)
    assert result.muted == result.created


def test_host_down_inhibits_lower_alerts_of_its_host_until_it_resolves(
    engine: Engine, clock: FakeClock
) -> None:
    host_down = alert(
        clock.now(),
        rule="host-down",
        service="db",
        host="db-1",
        severity=Severity.CRITICAL,
        group=(("host", "db-1"),),
    )
    slow = alert(clock.now(), rule="db-slow", service="db", host="db-1")
    other_host = alert(clock.now(), rule="db-slow", service="db2", host="db-2")
    # the source and its targets in the same run
    source_id, slow_id, other_id = run(
        engine, [host_down, slow, other_host], clock, [HOST_DOWN]
    ).created
    assert sent(engine, source_id) == ["post", "trigger"]
    assert sent(engine, slow_id) == []
    assert sent(engine, other_id) == ["post", "trigger"]
    assert (
        f"muted: notifications muted: inhibited by INC-{source_id} host-down (host=db-1) "
        "while it is active" in timeline(engine, slow_id)
    )
    # a later run: the source is read from the database
    clock.advance(60)
    late = alert(clock.now(), rule="disk-full", service="db", host="db-1")
    (late_id,) = run(engine, [late], clock, [HOST_DOWN]).created
    assert sent(engine, late_id) == []
    # the source resolves; the alerts that still fire are notified at their next run
    Interactions(engine, Roles.embedded_default(), console_policy().router, clock).execute_sync(
        source_id, Command(CommandKind.RESOLVE, actor="console:alice", surface="api")
    )
    clock.advance(60)
    run(engine, [alert(clock.now(), rule="db-slow", service="db", host="db-1")], clock, [HOST_DOWN])
    assert sent(engine, slow_id) == ["post", "trigger"]
    assert (
        f"unmuted: notified: INC-{source_id}, which inhibited it, is no longer active, "
        "still firing" in timeline(engine, slow_id)
    )
    assert sent(engine, late_id) == []  # it did not fire again: nothing to say yet
