"""Alerts -> incidents -> outbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import Engine, func, select

from bot.authz import Roles
from bot.domain.incident import Command, CommandKind
from bot.interactions import Interactions
from bot.pipeline.ingest import ingest
from bot.pipeline.mute import Silence, parse_matchers
from bot.store.repo import ALERTS, INCIDENTS, OUTBOX, TIMELINE
from tests.builders import alert, console_policy, mark_cards_posted
from tests.conftest import FakeClock


def run(engine: Engine, alerts, clock: FakeClock, policy=None, silences=()):  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        return ingest(conn, alerts, clock.now(), policy or console_policy(), silences)


def count(engine: Engine, table, *where) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def test_new_group_opens_one_incident_and_queues_its_card(engine: Engine, clock: FakeClock) -> None:
    result = run(engine, [alert(clock.now())], clock)
    assert len(result.created) == 1
    with engine.connect() as conn:
        row = conn.execute(select(INCIDENTS)).one()
        outbox = conn.execute(select(OUTBOX)).all()
        line = conn.execute(select(TIMELINE.c.text)).scalar_one()
    assert row.state == "open" and row.title == "5xx burst on checkout" and row.hit_count == 5
    assert [(m.surface, m.kind, m.incident_id) for m in outbox] == [("console", "post", row.id)]
    assert "opened by rule web-5xx" in line


def test_repeated_hits_update_the_alert_not_create_anything(
    engine: Engine, clock: FakeClock
) -> None:
    run(engine, [alert(clock.now(), new_events=5)], clock)
    clock.advance(30)
    result = run(engine, [alert(clock.now(), new_events=3)], clock)
    assert result.created == [] and len(result.updated) == 1
    assert count(engine, INCIDENTS) == 1
    assert count(engine, ALERTS) == 1
    with engine.connect() as conn:
        incident = conn.execute(select(INCIDENTS)).one()
        stored = conn.execute(select(ALERTS)).one()
    assert incident.hit_count == 8 and stored.count == 8
    assert incident.last_seen == clock.now()
    assert len(json.loads(stored.evidence_json)) == 4  # both runs' lines, newest first
    # no second card, and no refresh of a card still waiting for its post: the post shows the
    # latest counts when it is delivered
    kinds = sorted(r.kind for r in _outbox(engine))
    assert kinds == ["post"]


def test_same_alert_seen_twice_in_one_batch_makes_one_incident(
    engine: Engine, clock: FakeClock
) -> None:
    now = clock.now()
    result = run(engine, [alert(now), alert(now, new_events=2)], clock)
    assert len(result.created) == 1
    assert count(engine, INCIDENTS) == 1 and count(engine, OUTBOX) == 1


def test_alerts_with_same_group_key_join_one_incident(engine: Engine, clock: FakeClock) -> None:
    now = clock.now()
    # two hosts, same group key (grouped by service only): one incident, two alerts
    a = alert(now, host="web-1", group=(("service", "checkout"),))
    b = alert(now, host="web-2", group=(("service", "checkout"),), new_events=1)
    run(engine, [a], clock)
    run(engine, [b], clock)
    assert count(engine, INCIDENTS) == 1


def test_refresh_is_coalesced_within_card_refresh(engine: Engine, clock: FakeClock) -> None:
    run(engine, [alert(clock.now())], clock)
    mark_cards_posted(engine, clock.now())
    for _ in range(20):  # 100 s of hits every 5 s: two refresh buckets of 60 s
        clock.advance(5)
        run(engine, [alert(clock.now(), new_events=1)], clock)
    # the second bucket's refresh coalesced into the first, still waiting to be delivered
    assert sorted(r.kind for r in _outbox(engine)) == ["post", "update"]
    with engine.begin() as conn:  # delivered: the next bucket refreshes the card again
        conn.execute(OUTBOX.update().values(status="sent"))
    clock.advance(60)
    run(engine, [alert(clock.now(), new_events=1)], clock)
    assert sorted(r.kind for r in _outbox(engine)) == ["post", "update", "update"]


def test_resolved_incident_reopens_within_flap_window(engine: Engine, clock: FakeClock) -> None:
    first = run(engine, [alert(clock.now())], clock).created[0]
    _resolve(engine, clock, first)
    clock.advance(minutes=10)
    result = run(engine, [alert(clock.now())], clock)
    assert result.reopened == [first] and result.created == []
    with engine.connect() as conn:
        row = conn.execute(select(INCIDENTS).where(INCIDENTS.c.id == first)).one()
        texts = [t for (t,) in conn.execute(select(TIMELINE.c.text).order_by(TIMELINE.c.id))]
    assert row.state == "open" and row.resolved_at is None
    assert any("fired again within the flap window" in t for t in texts)
    assert [r.kind for r in _outbox(engine) if r.kind == "post"] == ["post", "post"]


def test_a_window_still_holding_a_resolved_incidents_lines_does_not_reopen_it(
    engine: Engine, clock: FakeClock
) -> None:
    """A sliding window keeps the lines of a burst a fix ended: the rule still counts them, but
    they are not news. Only a new event reopens the incident."""
    burst = clock.now()
    first = run(engine, [alert(burst)], clock).created[0]
    clock.advance(20)
    _resolve(engine, clock, first)
    for _ in range(3):  # the same lines, seen again: nothing new
        clock.advance(2)
        quiet = run(engine, [alert(burst, new_events=0)], clock)
        assert (quiet.created, quiet.reopened, quiet.updated) == ([], [], [])
    with engine.connect() as conn:
        assert conn.execute(select(INCIDENTS.c.state)).scalar_one() == "resolved"
    clock.advance(2)
    again = run(engine, [alert(clock.now(), new_events=1)], clock)
    assert again.reopened == [first] and again.created == []


def test_an_alert_still_firing_after_the_resolution_reopens_it(
    engine: Engine, clock: FakeClock
) -> None:
    """A pushed alert sent again while it still fires has no new member, but it is seen now."""
    first = run(engine, [alert(clock.now())], clock).created[0]
    clock.advance(20)
    _resolve(engine, clock, first)
    clock.advance(60)
    again = run(engine, [alert(clock.now(), new_events=0)], clock)
    assert again.reopened == [first] and again.created == []


def test_resolved_incident_stays_resolved_after_flap_window(
    engine: Engine, clock: FakeClock
) -> None:
    first = run(engine, [alert(clock.now())], clock).created[0]
    _resolve(engine, clock, first)
    clock.advance(hours=2)
    result = run(engine, [alert(clock.now())], clock)
    assert result.reopened == [] and len(result.created) == 1 and result.created[0] != first


def test_realert_holds_back_a_new_incident_of_a_recent_group(
    engine: Engine, clock: FakeClock
) -> None:
    policy = console_policy(realert=timedelta(hours=1), flap=timedelta(0))
    first = run(engine, [alert(clock.now())], clock, policy).created[0]
    _resolve(engine, clock, first)
    clock.advance(minutes=20)
    held = run(engine, [alert(clock.now())], clock, policy)
    assert len(held.created) == 1 and held.held_by_realert == held.created
    posts = [r for r in _outbox(engine) if r.kind == "post"]
    assert [p.incident_id for p in posts] == [first]  # the second was not notified
    _resolve(engine, clock, held.created[0])
    clock.advance(hours=1)
    again = run(engine, [alert(clock.now())], clock, policy)
    assert again.held_by_realert == []


def test_silence_mutes_notification_but_keeps_the_incident(
    engine: Engine, clock: FakeClock
) -> None:
    now = clock.now()
    silence = Silence(
        1,
        parse_matchers(["service=check*"]),
        now - timedelta(minutes=1),
        now + timedelta(hours=1),
        "deploy",
        "console:alice",
    )
    result = run(engine, [alert(now)], clock, silences=[silence])
    assert result.muted == result.created and len(result.created) == 1
    assert count(engine, OUTBOX) == 0
    with engine.connect() as conn:
        row = conn.execute(select(INCIDENTS)).one()
    assert row.muted_by == "silence:1"


def test_storm_of_many_groups_is_one_transaction_with_one_card_each(
    engine: Engine, clock: FakeClock
) -> None:
    now = clock.now()
    alerts = [alert(now, service=f"svc-{i}") for i in range(1200)]
    result = run(engine, alerts, clock)
    assert len(result.created) == 1200
    assert count(engine, INCIDENTS) == 1200
    assert count(engine, OUTBOX) == 1200
    replay = [alert(now, service=f"svc-{i}", new_events=0) for i in range(1200)]
    again = run(engine, replay, clock)  # the same events seen again through the window
    assert again.created == [] and count(engine, OUTBOX) == 1200


def _outbox(engine: Engine):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(OUTBOX).order_by(OUTBOX.c.id)).all()


def _resolve(engine: Engine, clock: FakeClock, incident_id: int) -> None:
    interactions = Interactions(engine, Roles.embedded_default(), console_policy().router, clock)
    interactions.execute_sync(
        incident_id, Command(CommandKind.RESOLVE, actor="console:alice", surface="api")
    )
