"""Paging: policy timers that survive restarts, state that follows, no echo loops."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from bot.authz import Roles
from bot.domain.hits import Severity
from bot.domain.incident import Command, CommandKind
from bot.errors import Conflict
from bot.interactions import Interactions
from bot.outbox import OutboxWorker
from bot.pipeline.escalate import EscalationPolicy, EscalationRule, page_due
from bot.pipeline.ingest import ingest
from bot.store.repo import INCIDENTS, TIMELINE
from tests.builders import alert, console_policy
from tests.conftest import FakeClock
from tests.fakes.surface import RecordingPager, RecordingSurface

POLICY = EscalationPolicy(
    "pagerduty",
    (
        EscalationRule(timedelta(0), "oncall-db", severity=frozenset({"critical"})),
        EscalationRule(timedelta(minutes=15), "oncall-web", severity=frozenset({"high"})),
        EscalationRule(None),
    ),
)


def open_one(engine: Engine, clock: FakeClock, severity: Severity) -> int:
    policy = replace(console_policy(), escalation=POLICY)
    with engine.begin() as conn:
        return ingest(conn, [alert(clock.now(), severity=severity)], clock.now(), policy).created[0]


def interactions(engine: Engine, clock: FakeClock, policy=POLICY) -> Interactions:  # type: ignore[no-untyped-def]
    return Interactions(
        engine, Roles.embedded_default(), console_policy().router, clock, escalation=policy
    )


async def deliver(engine: Engine, clock: FakeClock, pager: RecordingPager) -> RecordingSurface:
    surface = RecordingSurface()
    box = OutboxWorker(
        engine, {"console": surface}, clock, "http://bot.test", pagers={"pagerduty": pager}
    )
    await box.deliver_due()
    await box.deliver_due()
    return surface


async def test_critical_pages_at_once_and_the_card_shows_the_page(
    engine: Engine, clock: FakeClock
) -> None:
    incident = open_one(engine, clock, Severity.CRITICAL)
    pager = RecordingPager()
    surface = await deliver(engine, clock, pager)
    assert [(a, c) for a, _, c in pager.calls] == [("trigger", "oncall-db")]
    assert pager.calls[0][1].startswith(f"incident-bot/INC-{incident}/")
    with engine.connect() as conn:
        row = conn.execute(select(INCIDENTS)).one()
    assert row.page_ref == pager.calls[0][1] and row.page_url.startswith("https://pager.")
    assert [c[0] for c in surface.calls] == ["post"]  # posted after the page: with its link


async def test_high_pages_only_if_still_open_when_its_timer_runs_out(
    engine: Engine, clock: FakeClock
) -> None:
    first = open_one(engine, clock, Severity.HIGH)
    clock.advance(minutes=14)
    assert page_due(engine, POLICY, clock.now()) == []
    clock.advance(minutes=1)
    assert page_due(engine, POLICY, clock.now()) == [first]
    assert page_due(engine, POLICY, clock.now()) == []  # paged once
    pager = RecordingPager()
    await deliver(engine, clock, pager)
    assert [(a, c) for a, _, c in pager.calls] == [("trigger", "oncall-web")]
    with engine.connect() as conn:
        texts = [t for (t,) in conn.execute(select(TIMELINE.c.text))]
    assert any("still open after 15m" in t for t in texts)


async def test_acknowledged_in_time_never_pages(engine: Engine, clock: FakeClock) -> None:
    incident = open_one(engine, clock, Severity.HIGH)
    interactions(engine, clock).execute_sync(
        incident, Command(CommandKind.ACKNOWLEDGE, actor="console:ann", surface="api")
    )
    clock.advance(hours=1)
    assert page_due(engine, POLICY, clock.now()) == []
    pager = RecordingPager()
    await deliver(engine, clock, pager)
    assert pager.calls == []


async def test_state_follows_to_the_pager_but_never_echoes_back(
    engine: Engine, clock: FakeClock
) -> None:
    incident = open_one(engine, clock, Severity.CRITICAL)
    bot = interactions(engine, clock)
    bot.execute_sync(
        incident, Command(CommandKind.ACKNOWLEDGE, actor="pagerduty:P1", surface="pagerduty")
    )
    bot.execute_sync(incident, Command(CommandKind.RESOLVE, actor="console:ann", surface="api"))
    pager = RecordingPager()
    await deliver(engine, clock, pager)
    # the acknowledgement came from the pager: not sent back; the resolve went once
    assert [a for a, _, _ in pager.calls] == ["trigger", "resolve"]


async def test_escalate_pages_now_and_needs_a_pager(engine: Engine, clock: FakeClock) -> None:
    incident = open_one(engine, clock, Severity.LOW)
    with pytest.raises(Conflict, match="no pager is set up"):
        interactions(engine, clock, policy=None).execute_sync(
            incident, Command(CommandKind.ESCALATE, actor="console:ann", surface="api")
        )
    outcome = interactions(engine, clock).execute_sync(
        incident, Command(CommandKind.ESCALATE, actor="console:ann", surface="api")
    )
    assert outcome.message == "escalated by console:ann: paging now"
    pager = RecordingPager()
    await deliver(engine, clock, pager)
    assert [a for a, _, _ in pager.calls] == ["trigger"]


async def test_timers_survive_a_restart(engine: Engine, clock: FakeClock) -> None:
    incident = open_one(engine, clock, Severity.HIGH)
    clock.advance(minutes=30)  # the process was down when the timer ran out
    assert page_due(engine, POLICY, clock.now()) == [incident]
