"""Leases, retention, readiness, RCA after the card, and secrets kept out of logs."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from bot.authz import Roles
from bot.domain.incident import Command, CommandKind
from bot.domain.rca import RcaReport, RcaStatus
from bot.errors import TransientError
from bot.interactions import Interactions
from bot.logs import configure
from bot.pipeline.enrich import Enricher
from bot.pipeline.ingest import ingest
from bot.redaction import Redactor
from bot.retention import purge
from bot.settings import load_settings
from bot.store import leases
from bot.store.repo import ALERTS, AUDIT, INCIDENTS, OUTBOX, TIMELINE
from bot.wiring import Runtime
from integrations.heuristic import HeuristicRcaEngine
from tests.builders import alert, console_policy, mark_cards_posted
from tests.conftest import FakeClock


def test_one_lease_holder_at_a_time_and_takeover_after_expiry(
    engine: Engine, clock: FakeClock
) -> None:
    ttl = timedelta(seconds=30)
    assert leases.acquire(engine, "scheduler", "a", clock.now(), ttl)
    assert not leases.acquire(engine, "scheduler", "b", clock.now(), ttl)
    clock.advance(20)
    assert leases.acquire(engine, "scheduler", "a", clock.now(), ttl)  # renewal
    clock.advance(20)
    assert not leases.acquire(engine, "scheduler", "b", clock.now(), ttl)
    clock.advance(11)  # a stopped renewing 31 s ago
    assert leases.acquire(engine, "scheduler", "b", clock.now(), ttl)
    assert not leases.acquire(engine, "scheduler", "a", clock.now(), ttl)
    assert leases.holder_of(engine, "scheduler")[0] == "b"  # type: ignore[index]


def test_retention_purges_old_resolved_incidents_and_old_audit(
    engine: Engine, clock: FakeClock
) -> None:
    with engine.begin() as conn:
        old, recent, active = ingest(
            conn,
            [alert(clock.now(), service=s) for s in ("a", "b", "c")],
            clock.now(),
            console_policy(),
        ).created
    bot = Interactions(engine, Roles.embedded_default(), console_policy().router, clock)
    bot.execute_sync(old, Command(CommandKind.RESOLVE, actor="cli:ops", surface="cli"))
    clock.advance(days=25)
    bot.execute_sync(recent, Command(CommandKind.RESOLVE, actor="cli:ops", surface="cli"))
    clock.advance(days=10)  # old: resolved 35 days ago; recent: 10 days ago
    purged = purge(engine, clock.now(), retention_days=30, audit_days=31)
    assert purged.incidents == 1 and purged.audit == 1
    with engine.connect() as conn:
        left = {r[0] for r in conn.execute(select(INCIDENTS.c.id))}
        orphans = conn.execute(
            select(func.count()).select_from(ALERTS).where(ALERTS.c.incident_id == old)
        ).scalar_one()
        timeline = conn.execute(
            select(func.count()).select_from(TIMELINE).where(TIMELINE.c.incident_id == old)
        ).scalar_one()
        audit = conn.execute(select(func.count()).select_from(AUDIT)).scalar_one()
    assert left == {recent, active} and orphans == 0 and timeline == 0 and audit == 1


async def test_unreachable_database_is_reported_and_retried(tmp_path: Path) -> None:
    settings = load_settings(
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
        local_events_path=tmp_path / "events.db",
        generator=False,
    )
    runtime = Runtime(settings)
    with pytest.raises(TransientError, match="database unreachable"):
        await runtime.connect(attempts=2)
    ready = await runtime.readiness()
    assert ready["status"] == "down"
    assert "database unreachable" in ready["checks"]["database"]["reason"]
    runtime.engine.dispose()
    assert runtime.event_store is not None
    runtime.event_store.close()


class SlowRca:
    def __init__(self, delay: float) -> None:
        self.delay = delay

    async def explain(self, incident, evidence, context):  # type: ignore[no-untyped-def]
        await asyncio.sleep(self.delay)
        return RcaReport(RcaStatus.OK, "upstream pool exhausted", confidence=0.7, engine="slow")


async def test_rca_updates_the_card_after_it_is_out_and_a_slow_engine_times_out(
    engine: Engine, clock: FakeClock
) -> None:
    with engine.begin() as conn:
        a, b = ingest(
            conn,
            [alert(clock.now(), service=s) for s in ("a", "b")],
            clock.now(),
            console_policy(),
        ).created
    with engine.connect() as conn:  # the cards were queued before any analysis
        assert conn.execute(select(func.count()).select_from(OUTBOX)).scalar_one() == 2
    mark_cards_posted(engine, clock.now())  # the cards are out
    quick = Enricher(engine, SlowRca(0), console_policy().router, clock, timedelta(seconds=1))
    report = await quick.analyse(a)
    assert report is not None and report.status is RcaStatus.OK
    slow = Enricher(engine, SlowRca(5), console_policy().router, clock, timedelta(seconds=0.05))
    timed_out = await slow.analyse(b)
    assert timed_out is not None and timed_out.status is RcaStatus.UNAVAILABLE
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(INCIDENTS))}
        kinds = [r.kind for r in conn.execute(select(OUTBOX).order_by(OUTBOX.c.id))]
        lines = [t for (t,) in conn.execute(select(TIMELINE.c.text).order_by(TIMELINE.c.id))]
    assert rows[a].rca_status == "ok" and rows[b].rca_status == "unavailable"
    assert kinds == ["post", "post", "update", "update"]  # each card updated once RCA landed
    assert any("upstream pool exhausted" in t for t in lines)


async def test_heuristic_rca_cites_evidence_that_exists(engine: Engine, clock: FakeClock) -> None:
    with engine.begin() as conn:
        (incident,) = ingest(
            conn, [alert(clock.now(), evidence=10)], clock.now(), console_policy()
        ).created
    enricher = Enricher(
        engine, HeuristicRcaEngine(), console_policy().router, clock, timedelta(seconds=5)
    )
    report = await enricher.analyse(incident)
    assert report is not None
    cited = {eid for cause in report.causes for eid in cause.evidence_ids}
    with engine.connect() as conn:
        stored = conn.execute(select(ALERTS.c.evidence_json)).scalar_one()
    assert cited and all(eid in stored for eid in cited)


def test_configured_secrets_never_reach_the_logs(capsys: pytest.CaptureFixture[str]) -> None:
    token = "tok_" + "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
    aws = "AKIA" + "Z7QW3ERT5YUI8OPA"
    redactor = Redactor("balanced", [token])
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure("INFO", "json", redactor)
        log = logging.getLogger("bot.test")
        log.info("login with %s failed", token)
        log.warning("evidence: aws_access_key_id=%s user=alice", aws)
        try:
            raise RuntimeError(f"upstream refused token {token}")
        except RuntimeError:
            log.exception("request failed")
    finally:
        root.handlers = saved[0]
        root.setLevel(saved[1])
    out = capsys.readouterr().out
    assert token not in out and aws not in out
    assert out.count("[REDACTED") >= 3 and "user=alice" in out
