"""The embedded generator without background scenarios: it advances the scenarios started by
hand once every ``noise_every`` seconds, and otherwise waits (it never spins)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from integrations.local import EventStore
from integrations.local.generator import Generator
from tests.conftest import FakeClock


class CountingGenerator(Generator):
    def __init__(self, store: EventStore) -> None:
        super().__init__(store, seed=3)
        self.rounds = 0

    def advance(self, now: datetime) -> int:
        self.rounds += 1
        return super().advance(now)


async def test_without_background_scenarios_it_advances_once_per_interval(
    tmp_path: Path,
) -> None:
    with EventStore(tmp_path / "events.db") as store:
        generator = CountingGenerator(store)
        clock = FakeClock(datetime(2026, 11, 22, 9, 0, tzinfo=UTC))
        stop = asyncio.Event()
        task = asyncio.create_task(
            generator.run(clock, stop, noise_every=0.1, first_scenario_after=0, background=False)
        )
        await asyncio.sleep(0.55)  # past the moment a background scenario would have been due
        stop.set()
        await asyncio.wait_for(task, 2)
    assert 1 <= generator.rounds <= 7  # about one round every 0.1 s, not one after another
