"""Card posts go out in batches: different cards at once, each card's messages in order, a
failed post retried alone, and a crash between the calls and their record never loses one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine, select

from bot.authz import Roles
from bot.domain.incident import Command, CommandKind
from bot.errors import TransientError
from bot.interactions import Interactions
from bot.outbox import OutboxWorker
from bot.pipeline.enrich import Enricher
from bot.ports import MessageRef
from bot.settings import RateLimit
from bot.store.repo import INCIDENTS, OUTBOX
from integrations.heuristic import HeuristicRcaEngine
from tests.builders import console_policy
from tests.conftest import FakeClock
from tests.fakes.surface import RecordingSurface
from tests.integration.test_outbox import open_incidents, statuses, worker


@dataclass
class SlowSurface(RecordingSurface):
    """Answers a post only once ``gate`` opens; counts the posts waiting for their answer."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: int = 0
    most_in_flight: int = 0

    async def post(self, card: object, channel: str) -> MessageRef:
        ref = await super().post(card, channel)  # the surface has it from here on
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.gate.wait()
        finally:
            self.in_flight -= 1
        return ref


async def until(check: object, seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "the posts did not go out"
        await asyncio.sleep(0.001)


def acknowledge(engine: Engine, clock: FakeClock, incident: int) -> None:
    Interactions(engine, Roles.embedded_default(), console_policy().router, clock).execute_sync(
        incident, Command(CommandKind.ACKNOWLEDGE, actor="console:alice", surface="api")
    )


async def test_posts_of_different_cards_go_together_and_each_card_keeps_its_order(
    engine: Engine, clock: FakeClock
) -> None:
    incidents = open_incidents(engine, clock, n=6)
    for incident in incidents[:3]:
        acknowledge(engine, clock, incident)  # a reply follows each of these cards' post
    surface = SlowSurface()
    box = worker(engine, clock, surface)
    delivery = asyncio.create_task(box.deliver_due())
    # the cards a person acted on go first, together; the others after them, together
    await until(lambda: surface.in_flight == 3)
    assert sorted(i for _, i, _ in surface.calls) == incidents[:3]  # out before any answer
    surface.gate.set()
    await asyncio.wait_for(delivery, 5)
    assert surface.most_in_flight == 3 and len(surface.calls) == 9
    for incident in incidents:
        kinds = [kind for kind, i, _ in surface.calls if i == incident]
        assert kinds == (["post", "reply"] if incident in incidents[:3] else ["post"])
    assert {status for _, status, _ in statuses(engine)} == {"sent"}


async def test_a_post_failing_in_a_batch_is_retried_alone(engine: Engine, clock: FakeClock) -> None:
    incidents = open_incidents(engine, clock, n=3)

    @dataclass
    class FailsSecond(RecordingSurface):
        failed: bool = False

        async def post(self, card: object, channel: str) -> MessageRef:
            await asyncio.sleep(0)  # all three are in flight when the second fails
            if getattr(card, "incident_id", None) == incidents[1] and not self.failed:
                self.failed = True
                raise TransientError("502 from the surface")
            return await super().post(card, channel)

    surface = FailsSecond()
    box = worker(engine, clock, surface)
    await box.deliver_due()
    assert sorted(i for _, i, _ in surface.calls) == [incidents[0], incidents[2]]
    assert sorted(statuses(engine)) == [("post", "pending", 1)] + [("post", "sent", 1)] * 2
    await box.deliver_due()  # not due yet: nothing is sent again
    assert len(surface.calls) == 2
    clock.advance(5)
    await box.deliver_due()
    assert sorted(i for _, i, _ in surface.calls) == sorted(incidents)  # each once
    assert {status for _, status, _ in statuses(engine)} == {"sent"}


async def test_a_crash_between_the_calls_and_their_record_sends_again_and_loses_none(
    engine: Engine, clock: FakeClock
) -> None:
    incidents = open_incidents(engine, clock, n=4)
    lost = SlowSurface()  # the surface takes the posts; their answers never come back
    dying = OutboxWorker(
        engine,
        {"console": lost},
        clock,
        "http://bot.test",
        holder="dies",
        claim_timeout=timedelta(seconds=30),
    )
    delivery = asyncio.create_task(dying.deliver_due())  # hangs, as a process that died
    try:
        await until(lambda: lost.in_flight == len(incidents))
        with engine.connect() as conn:
            rows = conn.execute(select(OUTBOX.c.status, OUTBOX.c.claimed_by)).all()
        assert {tuple(r) for r in rows} == {("pending", "dies")}
        surface = RecordingSurface()
        after = worker(engine, clock, surface)
        await after.deliver_due()  # the dead worker's claims still hold: nothing yet
        assert surface.calls == []
        clock.advance(31)
        await after.deliver_due()
        # at least once: none lost, each sent again as documented
        assert sorted(i for _, i, _ in lost.calls + surface.calls) == sorted(incidents * 2)
        assert {status for _, status, _ in statuses(engine)} == {"sent"}
    finally:
        delivery.cancel()
        await asyncio.gather(delivery, return_exceptions=True)


async def test_a_batch_sends_no_more_posts_than_the_budget_allows(
    engine: Engine, clock: FakeClock
) -> None:
    open_incidents(engine, clock, n=8)
    tick = [0.0]
    surface = RecordingSurface()
    box = worker(
        engine,
        clock,
        surface,
        rate_limits={"console": RateLimit(rate=2, burst=3)},
        monotonic=lambda: tick[0],
    )
    await box.deliver_due()
    assert len(surface.calls) == 3  # the burst, sent together
    await box.deliver_due()
    assert len(surface.calls) == 3
    tick[0] += 1.0
    await box.deliver_due()
    assert len(surface.calls) == 5  # two a second
    tick[0] += 10.0
    await box.deliver_due()
    assert len(surface.calls) == 8 and sorted(s for _, s, _ in statuses(engine)) == ["sent"] * 8


async def test_an_analysis_waits_for_the_card_posts_in_flight(
    engine: Engine, clock: FakeClock
) -> None:
    """Card first, analysis later: while the outbox is sending card posts, queued analyses
    wait; they go on once the posts are out (or after a bounded wait)."""
    (incident,) = open_incidents(engine, clock)
    surface = SlowSurface()
    box = worker(engine, clock, surface)
    enricher = Enricher(
        engine, HeuristicRcaEngine(), console_policy().router, clock, timedelta(seconds=5)
    )
    enricher.card_first = box.cards_out
    stop = asyncio.Event()
    outbox = asyncio.create_task(box.run(stop, poll=0.05))
    analyses = asyncio.create_task(enricher.run(stop))
    try:
        box.wake()  # (the enricher finds the incident's analysis pending at its start)
        await until(lambda: surface.in_flight == 1)
        await asyncio.sleep(0.3)  # the post is in flight: no analysis yet
        assert enricher.done == 0 and rca_status(engine, incident) == "pending"
        surface.gate.set()
        await until(lambda: enricher.done >= 1)
        assert rca_status(engine, incident) == "ok"
        await until(lambda: [c[0] for c in surface.calls][:2] == ["post", "update"])
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(outbox, analyses), 5)


def rca_status(engine: Engine, incident: int) -> str:
    with engine.connect() as conn:
        status = conn.execute(
            select(INCIDENTS.c.rca_status).where(INCIDENTS.c.id == incident)
        ).scalar_one()
    return str(status)


async def test_card_updates_of_different_cards_go_together_within_their_budget(
    engine: Engine, clock: FakeClock
) -> None:
    incidents = open_incidents(engine, clock, n=5)
    surface = RecordingSurface()
    tick = [0.0]
    limits = {"console.update": RateLimit(rate=1, burst=3)}
    box = worker(engine, clock, surface, rate_limits=limits, monotonic=lambda: tick[0])
    await box.deliver_due()  # the posts (their own budget: none)
    for incident in incidents:
        acknowledge(engine, clock, incident)  # an update and a reply each
    surface.calls.clear()
    await box.deliver_due()
    updated = [i for kind, i, _ in surface.calls if kind == "update"]
    assert len(updated) == 3  # the update budget's burst, sent together
    for incident in incidents:  # a card's reply never overtakes its update
        kinds = [kind for kind, i, _ in surface.calls if i == incident]
        assert kinds in (["update", "reply"], [])
    tick[0] += 2.0
    await box.deliver_due()
    assert sorted(i for kind, i, _ in surface.calls if kind == "update") == sorted(incidents)
    assert sorted(i for kind, i, _ in surface.calls if kind == "reply") == sorted(incidents)
