"""Stateful rule types through the real scheduler: memory survives a restart (a new RuleRunner
on the same database), so spike and new_term rules do not fire on everything afterwards, and
memory is saved in the run's transaction, so a failed run leaves it as it was."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from bot import runner as scheduler
from bot.domain.hits import Hit, SearchQuery
from bot.errors import TransientError
from bot.metrics import Metrics
from bot.ports import Health, HealthStatus
from bot.scheduler import RULE_MEMORY, RuleRunner, RunSummary
from bot.store.repo import INCIDENTS, RULE_STATE
from detectors.model import Rule
from detectors.rules import load_rules
from integrations.local import EventStore, LocalSearchBackend
from integrations.local.events import Event
from tests.builders import console_policy
from tests.conftest import FakeClock

RULES = """\
id: login-spike
title: "Login spike on {service}"
type: spike
query: index=auth action=login
interval: 5m
window: 5m
group_by: [service]
spike: {ratio: 3, min_current: 5}
severity: medium
category: security
---
id: new-user
title: "First login of {user}"
type: new_term
query: index=auth action=login
interval: 5m
window: 5m
new_term: {fields: [user], learn_for: 15m}
severity: medium
category: user_access
"""
FIVE = timedelta(minutes=5)
SERVICES = ("web", "api", "admin")
USERS = ("alice", "bob", "carol")


class FlakyBackend:
    """The real local backend; ``fail_on`` makes the search of that window end raise."""

    def __init__(self, inner: LocalSearchBackend) -> None:
        self.inner = inner
        self.fail_on: datetime | None = None

    async def search(self, query: SearchQuery) -> list[Hit]:
        if query.latest == self.fail_on:
            raise TransientError("search head unreachable")
        return await self.inner.search(query)

    async def check(self) -> Health:
        return Health(HealthStatus.OK)


@pytest.fixture
def rules(tmp_path: Path) -> dict[str, Rule]:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "auth.yaml").write_text(RULES)
    return {rule.id: rule for rule in load_rules([folder], include_shipped=False)}


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    events = EventStore(tmp_path / "events.db")
    yield events
    events.close()


def runner(engine: Engine, backend: Any, rules: dict[str, Rule], clock: FakeClock) -> RuleRunner:
    return RuleRunner(
        engine,
        backend,
        list(rules.values()),
        clock,
        lambda s: s,
        lambda r: console_policy(),
        Metrics(),
    )


def logins(store: EventStore, end: datetime, per_service: dict[str, int], users=USERS) -> None:  # type: ignore[no-untyped-def]
    """``per_service[s]`` logins to each service, spread over the 5 minutes before ``end``."""
    events = []
    for service, n in per_service.items():
        for i in range(n):
            at = end - FIVE + FIVE * (i + 0.5) / n
            user = users[i % len(users)]
            raw = f"action=login service={service} user={user} n={at.timestamp()}"
            events.append(Event(time=at, raw=raw, index="auth"))
    store.add(events)


def steady(store: EventStore, clock: FakeClock) -> None:
    logins(store, clock.now(), dict.fromkeys(SERVICES, 12))


def memory_rows(engine: Engine, rule_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(RULE_MEMORY.c.key, RULE_MEMORY.c.value_json).where(
                RULE_MEMORY.c.rule_id == rule_id
            )
        )
        return {key: json.loads(value) for key, value in rows}


def incidents(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(INCIDENTS.c.rule_id, INCIDENTS.c.title).order_by(INCIDENTS.c.id))
        return [(r.rule_id, r.title) for r in rows]


async def run_both(bot: RuleRunner) -> list[RunSummary]:
    return [await bot.run(rule_id) for rule_id in ("login-spike", "new-user")]


async def test_a_restart_does_not_make_spike_or_new_term_rules_fire_on_everything(
    engine: Engine, clock: FakeClock, store: EventStore, rules: dict[str, Rule]
) -> None:
    backend = FlakyBackend(LocalSearchBackend(store))
    first = runner(engine, backend, rules, clock)
    for _ in range(5):  # 25 minutes of steady logins by known users: learned, no spikes
        steady(store, clock)
        summaries = await run_both(first)
        assert all(s.error == "" for s in summaries)
        clock.advance(minutes=5)
    steady(store, clock)
    logins(store, clock.now(), {"web": 2}, users=("mallory",))  # a new user, no spike
    await run_both(first)
    assert incidents(engine) == [("new-user", "First login of mallory")]
    clock.advance(minutes=5)

    # the process restarts: a new runner on the same database. Steady traffic, the known
    # users (mallory too), plus one real spike and one real newcomer
    logins(store, clock.now(), {"web": 12, "api": 12}, users=(*USERS, "mallory"))
    logins(store, clock.now(), {"admin": 60}, users=("trent",))
    second = runner(engine, backend, rules, clock)
    summaries = await run_both(second)

    # only the news fires: both need the memory (a reference, the known terms and the end of
    # learning) that the first process left behind
    assert [(s.error, len(s.result.created)) for s in summaries] == [("", 1), ("", 1)]
    assert incidents(engine)[1:] == [
        ("login-spike", "Login spike on admin"),
        ("new-user", "First login of trent"),
    ]
    clock.advance(minutes=5)
    steady(store, clock)
    logins(store, clock.now(), {"admin": 48}, users=("trent",))  # admin stays high, trent known
    assert [s.result.created for s in await run_both(second)] == [[], []]


async def test_a_failing_window_keeps_the_memory_of_the_windows_before_it(
    engine: Engine, clock: FakeClock, store: EventStore, rules: dict[str, Rule]
) -> None:
    backend = FlakyBackend(LocalSearchBackend(store))
    bot = runner(engine, backend, rules, clock)
    spike = "login-spike"
    steady(store, clock)
    await bot.run(spike)
    first_end = clock.now()
    for _ in range(3):  # an outage of 15 minutes: the next run replays three windows
        clock.advance(minutes=5)
        steady(store, clock)
    ends = [first_end + FIVE * i for i in (1, 2, 3)]
    backend.fail_on = ends[1]  # the second replayed window fails

    failed = await bot.run(spike)

    assert "search head unreachable" in failed.error and failed.windows == 3
    memory = memory_rows(engine, spike)
    assert memory["runs"] == [first_end.timestamp(), ends[0].timestamp()]
    with engine.connect() as conn:
        assert conn.execute(select(RULE_STATE.c.last_window_end)).scalar_one() == ends[0]

    backend.fail_on = None
    retried = await bot.run(spike)

    assert retried.error == "" and retried.windows == 2 and not retried.result.created
    assert memory_rows(engine, spike)["runs"] == [e.timestamp() for e in ends[1:]]
    assert memory_rows(engine, spike)['ref:["web"]']["counts"] == [
        [ends[1].timestamp(), 12.0],
        [ends[2].timestamp(), 12.0],
    ]


async def test_memory_is_written_in_the_run_transaction_and_rolled_back_with_it(
    engine: Engine,
    clock: FakeClock,
    store: EventStore,
    rules: dict[str, Rule],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = FlakyBackend(LocalSearchBackend(store))
    bot = runner(engine, backend, rules, clock)
    for _ in range(4):  # past learning
        steady(store, clock)
        await bot.run("new-user")
        clock.advance(minutes=5)
    before = memory_rows(engine, "new-user")
    logins(store, clock.now(), {"web": 3}, users=("mallory",))
    real_save = scheduler.save_memory

    def save_then_fail(conn: Any, rule_id: str, memory: Any, now: datetime) -> None:
        real_save(conn, rule_id, memory, now)  # the new term is written ...
        raise TransientError("database went away")  # ... and the transaction fails after it

    monkeypatch.setattr(scheduler, "save_memory", save_then_fail)
    failed = await bot.run("new-user")

    assert "database went away" in failed.error
    assert memory_rows(engine, "new-user") == before  # the term is not remembered
    assert incidents(engine) == []  # nor was its incident opened

    monkeypatch.setattr(scheduler, "save_memory", real_save)
    retried = await bot.run("new-user")

    assert retried.error == "" and len(retried.result.created) == 1
    assert 'term:["mallory"]' in memory_rows(engine, "new-user")
    assert incidents(engine) == [("new-user", "First login of mallory")]
