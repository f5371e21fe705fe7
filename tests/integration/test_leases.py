"""The scheduler lease's generations and fence, the outbox's claims, the shared rate budgets
and the migration guard, on SQLite and PostgreSQL (the multi-process proof is
test_replicas.py)."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text, update

from bot.authz import Roles
from bot.domain.incident import Command, CommandKind
from bot.interactions import Interactions
from bot.outbox import OutboxWorker
from bot.ratelimit import SharedBucket
from bot.store import leases
from bot.store.db import SchemaTooNew, make_engine, migrate, schema_head
from bot.store.leases import FencedWrite, LeaseKeeper
from bot.store.repo import OUTBOX, RULE_STATE, insert_ignore
from tests.botprocess import bot_settings, clean_env, free_port, run_cli
from tests.builders import console_policy
from tests.conftest import FakeClock
from tests.fakes.surface import RecordingSurface
from tests.integration.test_outbox import open_incidents

TTL = timedelta(seconds=10)


def test_each_change_of_holder_raises_the_generation(engine: Engine, clock: FakeClock) -> None:
    a, _ = leases.take(engine, "scheduler", "a", clock.now(), TTL)
    assert a is not None and a.generation == 1
    renewed, _ = leases.take(engine, "scheduler", "a", clock.now(), TTL)
    assert renewed == a  # a renewal keeps the generation
    refused, seen = leases.take(engine, "scheduler", "b", clock.now(), TTL)
    assert refused is None and seen is not None and (seen.holder, seen.generation) == ("a", 1)
    clock.advance(11)
    b, _ = leases.take(engine, "scheduler", "b", clock.now(), TTL)
    assert b is not None and b.generation == 2
    leases.release(engine, "scheduler", "b", clock.now())  # a clean stop hands over at once
    again, _ = leases.take(engine, "scheduler", "a", clock.now(), TTL)
    assert again is not None and again.generation == 3


def test_a_stale_holder_write_is_refused_and_rolled_back(engine: Engine, clock: FakeClock) -> None:
    stale, _ = leases.take(engine, "scheduler", "a", clock.now(), TTL)
    with engine.begin() as conn:
        leases.fence(conn, stale)
        insert_ignore(conn, RULE_STATE, [{"rule_id": "r1"}], "rule_id")
    clock.advance(11)
    assert leases.take(engine, "scheduler", "b", clock.now(), TTL)[0] is not None
    refused = pytest.raises(FencedWrite, match="generation 1 is no longer held by a")
    with refused, engine.begin() as conn:
        conn.execute(update(RULE_STATE).values(runs=99))
        leases.fence(conn, stale)
    with engine.connect() as conn:
        assert conn.execute(select(RULE_STATE.c.runs)).scalar_one() == 0


def test_a_holder_stops_trusting_its_lease_before_it_expires(
    engine: Engine, clock: FakeClock
) -> None:
    tick = [0.0]
    refused: list[int] = []
    keeper = LeaseKeeper(
        engine,
        "scheduler",
        "a",
        timedelta(seconds=5),
        monotonic=lambda: tick[0],
        on_refusal=lambda: refused.append(1),
    )
    assert keeper.renew(clock.now()) and keeper.held and keeper.takeovers == 1
    tick[0] += 7.4  # TTL 10 s, margin 2.5 s: still trusted
    assert keeper.held
    with engine.begin() as conn:
        keeper.fence(conn)
    tick[0] += 0.2  # past ttl - margin without a renewal: no more writes
    assert not keeper.held
    with pytest.raises(FencedWrite), engine.begin() as conn:
        keeper.fence(conn)
    assert refused == [1] and keeper.refusals == 1
    # a replica without the lease retries the moment the holder's lease expires
    other = LeaseKeeper(engine, "scheduler", "b", timedelta(seconds=5))
    clock.advance(3)
    assert not other.renew(clock.now())
    assert other.wait_before_retry(clock.now()) == pytest.approx(5.0, abs=0.05)
    clock.advance(7.1)
    assert other.renew(clock.now()) and other.lease is not None
    assert other.lease.generation == 2


async def test_a_card_claimed_by_a_dead_worker_waits_for_the_claim_to_lapse(
    engine: Engine, clock: FakeClock
) -> None:
    (incident,) = open_incidents(engine, clock)
    with engine.begin() as conn:  # a worker claimed the card's post, then died
        first = conn.execute(select(OUTBOX.c.id).order_by(OUTBOX.c.id)).scalars().first()
        conn.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == first)
            .values(claimed_by="dead", claimed_until=clock.now() + timedelta(seconds=60))
        )
    # pressed while that post was on its way (it may show the card from before): an update
    Interactions(engine, Roles.embedded_default(), console_policy().router, clock).execute_sync(
        incident, Command(CommandKind.ACKNOWLEDGE, actor="console:alice", surface="api")
    )
    surface = RecordingSurface()
    box = OutboxWorker(engine, {"console": surface}, clock, "http://bot.test", holder="live")
    assert await box.deliver_due() is not None
    assert surface.calls == []  # the update and reply of that card stay behind its post
    clock.advance(61)
    await box.deliver_due()
    assert [c[0] for c in surface.calls] == ["post", "update", "reply"]
    with engine.connect() as conn:
        rows = conn.execute(select(OUTBOX.c.status, OUTBOX.c.claimed_by)).all()
    assert {r.status for r in rows} == {"sent"} and {r.claimed_by for r in rows} == {"live"}
    assert box.claims == 3


async def test_two_workers_deliver_each_message_once(engine: Engine, clock: FakeClock) -> None:
    open_incidents(engine, clock, n=6)
    surfaces = [RecordingSurface(), RecordingSurface()]
    boxes = [
        OutboxWorker(engine, {"console": s}, clock, "http://bot.test", holder=f"w{i}")
        for i, s in enumerate(surfaces)
    ]
    for _ in range(2):
        await asyncio.gather(*(b.deliver_due() for b in boxes))
    posted = sorted(c[1] for s in surfaces for c in s.calls)
    assert len(posted) == 6 and len(set(posted)) == 6


def test_rate_budgets_are_shared_and_survive_a_restart(engine: Engine) -> None:
    now = [1000.0]
    first = SharedBucket(engine, "slack:C1", rate=1, burst=2, now=lambda: now[0])
    second = SharedBucket(engine, "slack:C1", rate=1, burst=2, now=lambda: now[0])
    assert first.try_take() == 0 and second.try_take() == 0
    assert first.try_take() == pytest.approx(1.0)  # the two replicas spent the burst together
    restarted = SharedBucket(engine, "slack:C1", rate=1, burst=2, now=lambda: now[0])
    assert restarted.try_take() == pytest.approx(1.0)  # a new process starts with no budget
    now[0] += 1
    assert restarted.try_take() == 0
    second.pause(30)  # Retry-After: 30 seconds, for every replica
    now[0] += 29
    assert first.try_take() == pytest.approx(1.0)
    now[0] += 1
    assert first.try_take() == 0


def test_a_build_older_than_the_database_refuses_to_start(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    with pytest.raises(SchemaTooNew) as refused:
        migrate(engine)
    assert str(refused.value) == (
        f"database schema 0999 is newer than this build's {schema_head()}: "
        "deploy the newer image or roll the database back"
    )
    engine.dispose()


@pytest.mark.postgres
def test_replicas_starting_together_migrate_one_after_the_other(postgres_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def start() -> None:
        engine = make_engine(postgres_url)
        try:
            barrier.wait()
            migrate(engine)
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    engine = make_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == (
            schema_head()
        )
    engine.dispose()


@pytest.mark.e2e
def test_run_refuses_a_database_migrated_by_a_newer_build(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    engine.dispose()
    env = clean_env(**bot_settings(tmp_path, free_port()))
    done = run_cli("run", env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        f"configuration error: database schema 0999 is newer than this build's {schema_head()}: "
        "deploy the newer image or roll the database back"
    ) in done.stderr
