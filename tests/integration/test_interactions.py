"""Commands: authz, transition, timeline, audit and outbox in one transaction."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from bot.authz import Roles
from bot.domain.incident import Command, CommandKind, State
from bot.errors import Conflict, NotFound, PolicyViolation
from bot.interactions import Interactions
from bot.pipeline.ingest import ingest
from bot.store.repo import AUDIT, INCIDENTS, OUTBOX, TIMELINE
from tests.builders import alert, console_policy
from tests.conftest import FakeClock


@pytest.fixture
def incident_id(engine: Engine, clock: FakeClock) -> int:
    with engine.begin() as conn:
        return ingest(conn, [alert(clock.now())], clock.now(), console_policy()).created[0]


def interactions(engine: Engine, clock: FakeClock, roles: Roles | None = None) -> Interactions:
    return Interactions(engine, roles or Roles.embedded_default(), console_policy().router, clock)


def cmd(kind: CommandKind, actor: str = "console:alice", **fields) -> Command:  # type: ignore[no-untyped-def]
    return Command(kind=kind, actor=actor, surface="api", **fields)


def test_acknowledge_writes_state_timeline_audit_and_card_messages(
    engine: Engine, clock: FakeClock, incident_id: int
) -> None:
    clock.advance(60)
    outcome = interactions(engine, clock).execute_sync(
        f"INC-{incident_id}", cmd(CommandKind.ACKNOWLEDGE)
    )
    assert outcome.incident.state is State.ACKNOWLEDGED
    assert outcome.message == "acknowledged by console:alice"
    with engine.connect() as conn:
        row = conn.execute(select(INCIDENTS)).one()
        audit = conn.execute(select(AUDIT)).one()
        timeline = conn.execute(select(TIMELINE).order_by(TIMELINE.c.id)).all()
        outbox = conn.execute(select(OUTBOX).order_by(OUTBOX.c.id)).all()
    assert (row.state, row.state_changed_by, row.version) == ("acknowledged", "console:alice", 2)
    assert (
        audit.actor,
        audit.surface,
        audit.action,
        audit.before_state,
        audit.after_state,
        audit.result,
    ) == ("console:alice", "api", "acknowledge", "open", "acknowledged", "applied")
    assert audit.correlation_id
    assert timeline[-1].text == "acknowledged by console:alice"
    # the card post (it will show the change: no update of a card not yet posted), then a
    # threaded reply for the change
    assert [(m.kind, m.order_key) for m in outbox[1:]] == [
        ("reply", f"console:console:{incident_id}"),
    ]


def test_same_idempotency_key_twice_has_one_effect(
    engine: Engine, clock: FakeClock, incident_id: int
) -> None:
    bot = interactions(engine, clock)
    first = bot.execute_sync(incident_id, cmd(CommandKind.ACKNOWLEDGE, idempotency_key="k-1"))
    second = bot.execute_sync(incident_id, cmd(CommandKind.ACKNOWLEDGE, idempotency_key="k-1"))
    assert not first.duplicate and second.duplicate
    assert second.message == first.message
    with engine.connect() as conn:
        assert len(conn.execute(select(AUDIT)).all()) == 1
        assert len(conn.execute(select(OUTBOX)).all()) == 2  # post + reply, once


def test_viewer_is_refused_and_audited_and_nothing_changes(
    engine: Engine, clock: FakeClock, incident_id: int, tmp_path: Path
) -> None:
    roles_file = tmp_path / "roles.yaml"
    roles_file.write_text("default_role: viewer\nroles:\n  responder: [slack:U1]\n")
    bot = interactions(engine, clock, Roles.load(roles_file))
    with pytest.raises(PolicyViolation, match="you need the responder role"):
        bot.execute_sync(incident_id, cmd(CommandKind.ACKNOWLEDGE, actor="slack:U2"))
    bot.execute_sync(incident_id, cmd(CommandKind.ACKNOWLEDGE, actor="slack:U1"))
    with engine.connect() as conn:
        audit = conn.execute(select(AUDIT).order_by(AUDIT.c.id)).all()
    assert [(a.actor, a.result) for a in audit] == [
        ("slack:U2", "refused"),
        ("slack:U1", "applied"),
    ]
    assert "responder role" in audit[0].detail


def test_illegal_transition_is_refused_with_a_clear_message_and_audited(
    engine: Engine, clock: FakeClock, incident_id: int
) -> None:
    bot = interactions(engine, clock)
    bot.execute_sync(incident_id, cmd(CommandKind.RESOLVE, note="restarted the pool"))
    with pytest.raises(Conflict, match=rf"INC-{incident_id} is resolved; reopen it"):
        bot.execute_sync(incident_id, cmd(CommandKind.ACKNOWLEDGE))
    with pytest.raises(Conflict, match="is resolved; there is nothing to suppress"):
        bot.execute_sync(incident_id, cmd(CommandKind.SUPPRESS, reason="x"))
    with engine.connect() as conn:
        results = [r.result for r in conn.execute(select(AUDIT).order_by(AUDIT.c.id))]
    assert results == ["applied", "refused", "refused"]


def test_unknown_incident_is_refused_and_audited(engine: Engine, clock: FakeClock) -> None:
    with pytest.raises(NotFound, match="no incident INC-999"):
        interactions(engine, clock).execute_sync("INC-999", cmd(CommandKind.ACKNOWLEDGE))
    with engine.connect() as conn:
        audit = conn.execute(select(AUDIT)).one()
    assert audit.result == "refused" and audit.incident_id is None


def test_suppression_expires_back_to_the_previous_state(
    engine: Engine, clock: FakeClock, incident_id: int
) -> None:
    bot = interactions(engine, clock)
    bot.execute_sync(incident_id, cmd(CommandKind.ACKNOWLEDGE))
    bot.execute_sync(
        incident_id, cmd(CommandKind.SUPPRESS, duration=timedelta(hours=1), reason="maintenance")
    )
    with pytest.raises(Conflict, match="still suppressed"):
        bot.execute_sync(incident_id, Command(CommandKind.EXPIRE, actor="bot", surface="scheduler"))
    clock.advance(hours=1)
    outcome = bot.execute_sync(
        incident_id, Command(CommandKind.EXPIRE, actor="bot", surface="scheduler")
    )
    assert outcome.incident.state is State.ACKNOWLEDGED


def test_concurrent_commands_apply_exactly_once(
    engine: Engine, clock: FakeClock, incident_id: int
) -> None:
    """Eight people press Acknowledge at the same moment: one wins, seven are told why."""
    bot = interactions(engine, clock)

    def press(i: int) -> str:
        try:
            bot.execute_sync(incident_id, cmd(CommandKind.ACKNOWLEDGE, actor=f"console:u{i}"))
            return "applied"
        except Conflict as exc:
            return str(exc)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(press, range(8)))
    assert results.count("applied") == 1
    assert all("already acknowledged" in r for r in results if r != "applied")
    with engine.connect() as conn:
        row = conn.execute(select(INCIDENTS)).one()
        applied = conn.execute(select(AUDIT).where(AUDIT.c.result == "applied")).all()
    assert row.version == 2 and len(applied) == 1
