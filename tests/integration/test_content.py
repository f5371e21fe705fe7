"""The shipped rules against the built-in generator, through the local search backend."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.domain.hits import Alert, SearchQuery
from bot.errors import NotFound
from detectors.model import Rule
from detectors.rules import load_rules
from detectors.runner import run_rule
from detectors.window import Window
from integrations.local import EventStore, LocalSearchBackend
from integrations.local.generator import Generator
from integrations.local.scenarios import SCENARIOS

NOW = datetime(2026, 11, 22, 10, 0, 7, 250_000, tzinfo=UTC)
WINDOW = Window.sliding(NOW, timedelta(minutes=5), previous_end=None)

# scenario -> the shipped rules that must fire on it (and no other)
EXPECTED = {
    "web-5xx-burst": {"web-5xx-burst", "high-error-rate"},
    "high-cpu": {"high-cpu"},
    "memory-pressure": {"memory-pressure"},
    "failed-logon-burst": {"failed-logon-burst"},
    "unexpected-shutdown": {"unexpected-shutdown", "unexpected-shutdown-confirmed"},
    "disk-filling": {"disk-filling"},
    "smart-reallocated": {"smart-reallocated", "smart-pending-sectors", "disk-io-errors"},
    "thermal-warning": {"thermal-warning"},
    "iowait-write-burst": {"iowait-write-burst"},
    "aws-access-denied": {"aws-cloudtrail-errors"},
    "ssh-password-guessing": {"ssh-password-guessing"},
    "app-error-storm": {"app-error-burst"},
    "raid-degraded": {"raid-degraded"},
    "storage-latency": {"storage-latency"},
    "psu-failure": {"bmc-hardware-fault"},
    "windows-disk-errors": {"windows-storage-errors"},
    "memory-errors": {"memory-errors"},
    "cpu-throttling": {"cpu-thermal-throttling"},
    "endpoint-trouble": {
        "endpoint-disk-almost-full",
        "endpoint-service-stopped",
        "endpoint-patches-overdue",
    },
}
# rules whose titles name something other than the scenario's host
TITLED_BY = {"aws-cloudtrail-errors": "AccessDenied"}


@pytest.fixture(scope="module")
def rules() -> list[Rule]:
    return load_rules([])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with EventStore(tmp_path / "events.db") as events:
        yield events


async def fire(rules: list[Rule], store: EventStore) -> dict[str, list[Alert]]:
    backend = LocalSearchBackend(store)
    fired: dict[str, list[Alert]] = {}
    for rule in rules:
        window = Window.sliding(NOW, rule.window, previous_end=None)
        result = await run_rule(rule, backend, window, str)
        if result.alerts:
            fired[rule.id] = result.alerts
    return fired


def test_every_scenario_has_a_rule_and_an_expectation(rules: list[Rule]) -> None:
    assert set(EXPECTED) == set(SCENARIOS)
    assert set().union(*EXPECTED.values()) <= {rule.id for rule in rules}


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_scenario_fires_its_rule_for_its_host_or_service(
    name: str, rules: list[Rule], store: EventStore
) -> None:
    generator = Generator(store, seed=11)
    store.add(generator.noise(NOW, 600))
    generator.inject(name, NOW)

    fired = await fire(rules, store)

    assert set(fired) == EXPECTED[name]
    scenario = SCENARIOS[name]
    for rule_id in EXPECTED[name]:
        (alert,) = fired[rule_id]
        if scenario.host:
            assert alert.host == scenario.host
            assert TITLED_BY.get(rule_id, scenario.host) in alert.title
        else:
            assert alert.service == scenario.service
            assert scenario.service in alert.title
        assert alert.new_events >= 1
        assert alert.evidence


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
async def test_noise_alone_fires_nothing(seed: int, rules: list[Rule], store: EventStore) -> None:
    store.add(Generator(store, seed=seed).noise(NOW, 600))

    assert await fire(rules, store) == {}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenarios_stay_in_the_last_minute_on_one_host(name: str) -> None:
    scenario = SCENARIOS[name]

    events = scenario.events(NOW, random.Random(3))

    assert events == sorted(events, key=lambda event: event.time)
    assert all(NOW - timedelta(seconds=61) <= e.time < NOW for e in events)
    if scenario.host:
        assert {e.host for e in events} == {scenario.host}
    else:
        assert all(f"service={scenario.service} " in e.raw for e in events)


def test_noise_covers_consecutive_intervals_without_gaps_or_repeats(store: EventStore) -> None:
    generator = Generator(store, seed=1)

    def cpu_readings(now: datetime, seconds: float) -> list[datetime]:
        return [
            e.time
            for e in generator.noise(now, seconds)
            if e.host == "db-1" and "metric=cpu_pct" in e.raw
        ]

    halves = cpu_readings(NOW - timedelta(seconds=30), 30) + cpu_readings(NOW, 30)
    whole = cpu_readings(NOW, 60)

    assert halves == whole
    assert len(whole) == 4  # one reading every 15 s
    assert all(NOW - timedelta(seconds=60) < t <= NOW for t in whole)
    assert store.count() == 0  # noise() only builds events; run() writes them


def test_inject_writes_the_scenario_and_refuses_unknown_names(store: EventStore) -> None:
    generator = Generator(store, seed=5)

    written = generator.inject("unexpected-shutdown", NOW)

    assert written == store.count() > 0
    with pytest.raises(NotFound, match=r"unknown scenario 'meltdown' \(known: web-5xx-burst, "):
        generator.inject("meltdown", NOW)


class SteppingClock:
    """Each reading is 15 s after the last: every noise batch spans a metric interval."""

    def __init__(self) -> None:
        self.at = NOW

    def now(self) -> datetime:
        self.at += timedelta(seconds=15)
        return self.at


async def test_run_writes_noise_then_cycles_through_scenarios(store: EventStore) -> None:
    generator = Generator(store, seed=9)
    backend = LocalSearchBackend(store)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    started = loop.time()
    task = asyncio.create_task(
        generator.run(
            SteppingClock(),
            stop,
            noise_every=0.02,
            scenario_every=0.3,
            first_scenario_after=0.3,
        )
    )

    async def count(text: str) -> int:
        everything = SearchQuery(text, NOW, NOW + timedelta(days=1))
        return len(await backend.search(everything))

    async def wait_for(text: str, at_least: int) -> float:
        while await count(text) < at_least:
            assert loop.time() - started < 5, f"nothing matched {text!r} in time"
            await asyncio.sleep(0.01)
        return loop.time() - started

    try:
        noise_after = await wait_for("index=metrics metric=cpu_pct", 10)
        first_after = await wait_for("index=web status>=500 service=checkout upstream", 45)
        second_after = await wait_for("index=metrics metric=cpu_pct value>=90 host=app-1", 12)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=2)

    assert noise_after < 0.3
    assert 0.3 <= first_after < 1.5
    assert first_after + 0.25 <= second_after < 3
