"""The outbox: ordered, rate-limited, retried, exactly once, durable across restarts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, update

from bot.authz import Roles
from bot.domain.hits import Severity
from bot.domain.incident import Command, CommandKind
from bot.errors import PermanentError, TransientError
from bot.interactions import Interactions
from bot.outbox import OutboxWorker
from bot.pipeline.ingest import ingest
from bot.settings import RateLimit
from bot.store.repo import OUTBOX
from tests.builders import alert, console_policy
from tests.conftest import FakeClock
from tests.fakes.surface import DigestRecordingSurface, RecordingSurface


def open_incidents(engine: Engine, clock: FakeClock, n: int = 1, **kw) -> list[int]:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        alerts = [alert(clock.now(), service=f"svc-{i}", **kw) for i in range(n)]
        return ingest(conn, alerts, clock.now(), console_policy()).created


def worker(engine: Engine, clock: FakeClock, surface: RecordingSurface, **kw) -> OutboxWorker:  # type: ignore[no-untyped-def]
    return OutboxWorker(engine, {"console": surface}, clock, "http://bot.test", **kw)


def statuses(engine: Engine) -> list[tuple[str, str, int]]:
    with engine.connect() as conn:
        return [
            (r.kind, r.status, r.attempts)
            for r in conn.execute(select(OUTBOX).order_by(OUTBOX.c.id))
        ]


async def test_card_post_then_reply_in_order(engine: Engine, clock: FakeClock) -> None:
    (incident,) = open_incidents(engine, clock)
    Interactions(engine, Roles.embedded_default(), console_policy().router, clock).execute_sync(
        incident, Command(CommandKind.ACKNOWLEDGE, actor="console:alice", surface="api")
    )
    surface = RecordingSurface()
    await worker(engine, clock, surface).deliver_due()
    assert surface.calls == [
        # rendered at delivery: already acknowledged, so no update of a card not yet posted
        ("post", incident, "acknowledged"),
        ("reply", incident, "acknowledged by console:alice"),
    ]
    assert {s for _, s, _ in statuses(engine)} == {"sent"}


async def test_delivered_exactly_once_after_a_crash_between_commit_and_send(
    engine: Engine, clock: FakeClock
) -> None:
    open_incidents(engine, clock, n=3)  # committed; the process "dies" before sending
    surface = RecordingSurface()
    await worker(engine, clock, surface).deliver_due()  # a new process after restart
    await worker(engine, clock, surface).deliver_due()  # and another round, and another worker
    assert sorted(c[:2] for c in surface.calls) == [("post", i) for i in (1, 2, 3)]


async def test_transient_failure_retries_with_backoff(engine: Engine, clock: FakeClock) -> None:
    open_incidents(engine, clock)
    surface = RecordingSurface()
    surface.failures.extend([TransientError("timeout"), TransientError("502")])
    box = worker(engine, clock, surface)
    await box.deliver_due()
    assert surface.calls == [] and statuses(engine) == [("post", "pending", 1)]
    await box.deliver_due()  # not due yet: no second attempt
    assert statuses(engine) == [("post", "pending", 1)]
    clock.advance(2)
    await box.deliver_due()
    assert statuses(engine) == [("post", "pending", 2)]
    clock.advance(5)
    await box.deliver_due()
    assert statuses(engine) == [("post", "sent", 3)] and len(surface.calls) == 1


async def test_retry_after_is_honoured(engine: Engine, clock: FakeClock) -> None:
    open_incidents(engine, clock)
    surface = RecordingSurface()
    surface.failures.append(TransientError("rate limited", retry_after=30))
    box = worker(engine, clock, surface)
    await box.deliver_due()
    with engine.connect() as conn:
        due = conn.execute(select(OUTBOX.c.next_attempt_at)).scalar_one()
    assert due == clock.now() + timedelta(seconds=30)
    clock.advance(29)
    await box.deliver_due()
    assert surface.calls == []
    clock.advance(1)
    await box.deliver_due()
    assert len(surface.calls) == 1


async def test_permanent_failure_stops_and_is_recorded(engine: Engine, clock: FakeClock) -> None:
    open_incidents(engine, clock)
    surface = RecordingSurface()
    surface.failures.append(PermanentError("channel_not_found"))
    await worker(engine, clock, surface).deliver_due()
    with engine.connect() as conn:
        row = conn.execute(select(OUTBOX)).one()
    assert (row.status, row.last_error) == ("dead", "channel_not_found")
    assert worker(engine, clock, surface).stats().dead == 1


async def test_update_never_overtakes_the_post_it_updates(engine: Engine, clock: FakeClock) -> None:
    (incident,) = open_incidents(engine, clock)
    with engine.begin() as conn:  # a worker that died was sending the post: it may have
        # rendered the card before the press, so the press updates it
        conn.execute(
            update(OUTBOX).values(claimed_by="gone", claimed_until=clock.now() + timedelta(1))
        )
    Interactions(engine, Roles.embedded_default(), console_policy().router, clock).execute_sync(
        incident, Command(CommandKind.ACKNOWLEDGE, actor="console:alice", surface="api")
    )
    surface = RecordingSurface()
    surface.failures.append(TransientError("timeout"))
    box = worker(engine, clock, surface)
    clock.advance(timedelta(days=1, seconds=1).total_seconds())  # the claim lapses
    await box.deliver_due()
    assert surface.calls == []  # the update and reply waited for the post
    clock.advance(5)
    await box.deliver_due()
    assert [c[0] for c in surface.calls] == ["post", "update", "reply"]


async def test_rate_limit_per_lane_and_most_severe_first(engine: Engine, clock: FakeClock) -> None:
    open_incidents(engine, clock, n=3, severity=Severity.LOW)
    with engine.begin() as conn:
        crit = ingest(
            conn,
            [alert(clock.now(), service="db", severity=Severity.CRITICAL)],
            clock.now(),
            console_policy(),
        ).created[0]
    tick = [0.0]
    surface = RecordingSurface()
    box = worker(
        engine,
        clock,
        surface,
        rate_limits={"console": RateLimit(rate=1, burst=2)},
        monotonic=lambda: tick[0],
    )
    await box.deliver_due()
    assert [c[1] for c in surface.calls][:1] == [crit] and len(surface.calls) == 2
    await box.deliver_due()  # no token left: nothing more in this second
    assert len(surface.calls) == 2
    tick[0] += 1.0
    await box.deliver_due()
    assert len(surface.calls) == 3
    tick[0] += 5.0
    await box.deliver_due()
    assert len(surface.calls) == 4


@pytest.mark.parametrize("attempts", [3])
async def test_gives_up_after_max_attempts(engine: Engine, clock: FakeClock, attempts: int) -> None:
    open_incidents(engine, clock)
    surface = RecordingSurface()
    surface.failures.extend(TransientError("down") for _ in range(10))
    box = worker(engine, clock, surface, max_attempts=attempts)
    for _ in range(attempts + 1):
        await box.deliver_due()
        clock.advance(600)
    assert statuses(engine) == [("post", "dead", attempts)]


async def test_storm_posts_one_digest_then_cards_by_severity(
    engine: Engine, clock: FakeClock
) -> None:
    """15 incidents wait in a channel limited to 1 card a second: the critical one gets its
    card at once, one digest lists the others, and cards follow most severe first."""
    open_incidents(engine, clock, n=14, severity=Severity.LOW)
    with engine.begin() as conn:
        high, crit = (
            ingest(
                conn,
                [alert(clock.now(), service=name, severity=sev)],
                clock.now(),
                console_policy(),
            ).created[0]
            for name, sev in (("api", Severity.HIGH), ("db", Severity.CRITICAL))
        )
    tick = [0.0]
    surface = DigestRecordingSurface()
    box = worker(
        engine,
        clock,
        surface,
        rate_limits={"console": RateLimit(rate=1, burst=2)},
        monotonic=lambda: tick[0],
        digest_after={"console": 10},
    )
    await box.deliver_due()
    assert [c[1] for c in surface.calls] == [crit]
    assert surface.digests[0][0] == "post" and surface.digests[0][1][0] == f"INC-{high}"
    assert len(surface.digests[0][1]) == 15 and f"INC-{crit}" not in surface.digests[0][1]
    for _ in range(20):
        tick[0] += 1.0
        await box.deliver_due()
    posted = [c[1] for c in surface.calls]
    assert posted[:2] == [crit, high] and len(posted) == 16  # every card, once
    assert surface.digests[-1] == ("update", [])  # the digest says the storm is over
