"""Detector runs across a restart and an outage: no gap, no overlap, no second incident."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from bot.authz import Roles
from bot.domain.hits import Hit, SearchQuery
from bot.domain.incident import Command, CommandKind
from bot.errors import TransientError
from bot.interactions import Interactions
from bot.metrics import Metrics
from bot.ports import Health, HealthStatus
from bot.scheduler import RuleRunner
from bot.store.repo import ALERTS, INCIDENTS, OUTBOX, RULE_STATE, TIMELINE
from detectors.rules import load_rules
from integrations.local import EventStore, LocalSearchBackend
from integrations.local.events import Event
from tests.builders import console_policy
from tests.conftest import FakeClock

RULE = """\
id: web-5xx
title: "5xx on {service}"
type: threshold
query: index=web status>=500
interval: 30s
window: 5m
group_by: [service]
threshold: {op: ">=", value: 1}
severity: high
category: application
"""


class RecordingBackend:
    """The real local backend, remembering the windows it was asked for."""

    def __init__(self, inner: LocalSearchBackend) -> None:
        self.inner = inner
        self.windows: list[tuple[datetime, datetime]] = []
        self.fail = False

    async def search(self, query: SearchQuery) -> list[Hit]:
        self.windows.append((query.earliest, query.latest))
        if self.fail:
            raise TransientError("search head unreachable")
        return await self.inner.search(query)

    async def check(self) -> Health:
        return Health(HealthStatus.OK)


@pytest.fixture
def rule(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "rules" / "web.yaml"
    path.parent.mkdir()
    path.write_text(RULE)
    (loaded,) = load_rules([path.parent], include_shipped=False)
    return loaded


def runner(engine: Engine, backend, rule, clock: FakeClock) -> RuleRunner:  # type: ignore[no-untyped-def]
    return RuleRunner(
        engine, backend, [rule], clock, lambda s: s, lambda r: console_policy(), Metrics()
    )


def emit(store: EventStore, at: datetime, n: int = 1) -> None:
    store.add(
        Event(
            time=at - timedelta(milliseconds=i),
            raw=f"host=web-1 service=checkout status=503 n={at.timestamp()}-{i}",
            index="web",
        )
        for i in range(n)
    )


async def test_restart_and_outage_leave_no_gap_and_count_each_event_once(
    engine: Engine,
    clock: FakeClock,
    rule,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    store = EventStore(tmp_path / "events.db")
    backend = RecordingBackend(LocalSearchBackend(store))
    emitted = 0
    first = runner(engine, backend, rule, clock)
    for _ in range(3):  # three runs, 30 s apart, an event landing before each
        emit(store, clock.now() - timedelta(seconds=1), 2)
        emitted += 2
        await first.run(rule.id)
        clock.advance(30)
    # the process stops; 10 minutes pass with events still arriving
    for _ in range(20):
        emit(store, clock.now(), 1)
        emitted += 1
        clock.advance(30)
    second = runner(engine, backend, rule, clock)  # a new process, same database
    summary = await second.run(rule.id)
    assert summary.error == "" and summary.windows > 1  # the outage replayed in steps
    # every window's new part starts exactly where the previous one ended
    ends = [end for _, end in backend.windows]
    with engine.connect() as conn:
        state = conn.execute(select(RULE_STATE)).one()
        incidents = conn.execute(select(INCIDENTS)).all()
        alert_count = conn.execute(select(ALERTS.c.count)).scalar_one()
        posts = conn.execute(select(OUTBOX).where(OUTBOX.c.kind == "post")).all()
    assert state.last_window_end == ends[-1] == clock.now()
    assert len(incidents) == 1 and len(posts) == 1
    assert incidents[0].hit_count == emitted == alert_count
    store.close()


async def test_failed_run_keeps_its_window_for_the_next_run(
    engine: Engine,
    clock: FakeClock,
    rule,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    store = EventStore(tmp_path / "events.db")
    backend = RecordingBackend(LocalSearchBackend(store))
    bot = runner(engine, backend, rule, clock)
    await bot.run(rule.id)
    clock.advance(30)
    emit(store, clock.now() - timedelta(seconds=5))
    backend.fail = True
    failed = await bot.run(rule.id)
    assert "search head unreachable" in failed.error
    with engine.connect() as conn:
        state = conn.execute(select(RULE_STATE)).one()
    assert state.consecutive_failures == 1 and state.errors == 1
    assert "search head unreachable" in state.last_error
    backend.fail = False
    clock.advance(30)
    ok = await bot.run(rule.id)
    assert ok.error == "" and len(ok.result.created) == 1  # the event was not lost
    with engine.connect() as conn:
        state = conn.execute(select(RULE_STATE)).one()
    assert state.consecutive_failures == 0 and state.last_error == "" and state.runs == 3
    store.close()


async def test_outage_longer_than_max_catchup_is_bounded(
    engine: Engine,
    clock: FakeClock,
    rule,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    store = EventStore(tmp_path / "events.db")
    backend = RecordingBackend(LocalSearchBackend(store))
    bot = runner(engine, backend, rule, clock)
    await bot.run(rule.id)
    clock.advance(hours=5)  # max_catchup defaults to 1h
    backend.windows.clear()
    await bot.run(rule.id)
    starts = [start for start, _ in backend.windows]
    assert min(starts) >= clock.now() - timedelta(hours=1, minutes=5)
    assert len(backend.windows) == 120  # 1 h in 30 s steps
    store.close()


async def test_resolve_after_clean_runs_resolves_and_a_new_hit_starts_over(
    engine: Engine, clock: FakeClock, tmp_path: Path
) -> None:
    path = tmp_path / "r" / "rule.yaml"
    path.parent.mkdir()
    path.write_text(RULE.replace("window: 5m", "window: 1m") + "resolve_after: 3\n")
    (rule,) = load_rules([path.parent], include_shipped=False)
    store = EventStore(tmp_path / "events.db")
    interactions = Interactions(engine, Roles.embedded_default(), console_policy().router, clock)

    async def clear(incident_id: int) -> object:
        return await interactions.execute(
            incident_id, Command(CommandKind.CLEAR, actor="bot", surface="scheduler")
        )

    bot = RuleRunner(
        engine,
        LocalSearchBackend(store),
        [rule],
        clock,
        lambda s: s,
        lambda r: console_policy(),
        Metrics(),
        clear=clear,
    )
    emit(store, clock.now() - timedelta(seconds=1))
    opened = (await bot.run(rule.id)).result.created
    states = []
    for _ in range(4):  # the event leaves the 1 m window after two runs; then clean runs
        clock.advance(30)
        await bot.run(rule.id)
        with engine.connect() as conn:
            states.append(conn.execute(select(INCIDENTS.c.state)).scalar_one())
    assert opened and states == ["open", "open", "open", "resolved"]
    with engine.connect() as conn:
        texts = [t for (t,) in conn.execute(select(TIMELINE.c.text))]
    assert "condition cleared; resolved" in texts
    store.close()
