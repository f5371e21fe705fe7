"""Two and three real bots on one PostgreSQL database (tests/cluster.py): the schedules run once
across them, a killed or frozen lease holder is replaced within 2 x the heartbeat without a
window lost or counted twice, every card and page goes out once, and presses of one button on
two replicas apply once."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.store.repo import AUDIT, OUTBOX
from tests.cluster import HITS_PER_BURST, Cluster, at_once, cluster

pytestmark = [pytest.mark.postgres, pytest.mark.e2e, pytest.mark.replicas]

HEARTBEAT = 0.5
TAKEOVER_BOUND = 2 * HEARTBEAT


@pytest.fixture
def bots(tmp_path: Path, postgres_url: str) -> Iterator[Cluster]:
    with cluster(tmp_path, postgres_url, heartbeat=HEARTBEAT) as c:
        yield c


def fetches(bots: Cluster) -> list[tuple[float, float]]:
    """The index time each of the rule's shared-search fetches covered, in the order they came:
    ``[index_earliest, index_latest)``, from the beginning of time for a replica's first fetch
    (which reads the rule's whole window). The late sweeps re-read old time; not counted."""
    found = []
    for request in list(bots.splunk.requests):
        params = request.params
        text = params.get("search", "")
        if not text.startswith("search index=web") or "index_latest" not in params:
            continue
        if "_indextime - _time" in text:
            continue
        found.append((float(params.get("index_earliest", 0.0)), float(params["index_latest"])))
    return found


def gaps(fetched: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Stretches of index time no fetch covered: an event indexed then would never be seen.
    A replica that takes over starts with a fetch of everything indexed before its first end,
    so a holder killed mid-fetch leaves no gap."""
    spans = sorted(fetched)
    covered = spans[0][1]
    missing = []
    for start, end in spans[1:]:
        if start > covered + 1e-3:
            missing.append((covered, start))
        covered = max(covered, end)
    return missing


def settle(bots: Cluster, services: list[str]) -> None:
    """Every burst has its incident, and its card and page went out."""
    bots.wait_for(lambda: set(services) <= set(bots.hit_counts()), "incident for every burst")
    bots.wait_for(
        lambda: set(services) <= set(bots.cards_posted()) and bots.pending_messages() == 0,
        "card for every incident",
    )


def test_three_replicas_run_each_rule_once_and_survive_a_killed_holder(bots: Cluster) -> None:
    replicas = bots.start(3)  # migrating together: the advisory lock lines them up
    holder = bots.wait_holder()
    reports = [r.ready() or {} for r in replicas]
    assert [rep["lease"]["held"] for rep in reports].count(True) == 1
    me = (holder.ready() or {})["lease"]["me"]
    assert {rep["lease"]["holder"] for rep in reports} == {me}  # every replica knows who leads
    assert len(reports[0]["lease"]["replicas"]) == 3

    # once per interval across the three: ~1 fetch a second, not 3
    first = len(fetches(bots))
    time.sleep(4)
    per_second = (len(fetches(bots)) - first) / 4
    assert 0.5 <= per_second <= 1.5, per_second

    services = [bots.burst()]
    settle(bots, services)
    generation = bots.generation()

    # kill -9 the holder in the middle of its runs, while more bursts arrive
    services.append(bots.burst(ahead=0.5))
    holder.kill()
    killed_at = time.monotonic()
    successor = bots.wait_holder(other_than=holder, timeout=10)
    takeover = time.monotonic() - killed_at
    assert takeover <= TAKEOVER_BOUND + 1.0, takeover  # + the probe's own latency
    assert bots.generation() == generation + 1
    services += [bots.burst(ahead=0.5) for _ in range(2)]
    settle(bots, services)

    # no window lost, none counted twice: one incident per burst with exactly its hits
    assert bots.hit_counts() == {s: [HITS_PER_BURST] for s in services}
    assert gaps(fetches(bots)) == []
    # every card and every page once, across the lease change
    assert bots.cards_posted() == {s: 1 for s in services}
    assert sorted(bots.pages().values()) == [1] * len(services)
    assert successor.metric("bot_lease_held") == 1
    assert successor.metric("bot_lease_takeovers_total") == 1
    assert successor.metric("bot_outbox_claims_total") + sum(
        r.metric("bot_outbox_claims_total") for r in bots.alive if r is not successor
    ) >= 2 * len(services)


def test_a_frozen_holder_writes_nothing_once_another_took_over(bots: Cluster) -> None:
    bots.start(2)
    holder = bots.wait_holder()
    services = [bots.burst()]
    settle(bots, services)  # the rule has a committed window to resume from
    bots.splunk.delay = 0.4  # searches take a while: the holder is frozen mid-run
    time.sleep(0.6)
    holder.process.send_signal(signal.SIGSTOP)
    try:
        successor = bots.wait_holder(other_than=holder, timeout=10)
        services.append(bots.burst(ahead=0.5))
        settle(bots, services)
        time.sleep(3 * HEARTBEAT)
    finally:
        holder.process.send_signal(signal.SIGCONT)
    # the stale holder wakes up: its run in flight is refused, it does not lead again
    bots.wait_for(lambda: holder.metric("bot_fenced_writes_total") >= 1, "fenced write", 10)
    services.append(bots.burst(ahead=0.5))
    settle(bots, services)
    assert bots.holder() is successor
    assert holder.ready()["lease"]["held"] is False  # type: ignore[index]
    assert holder.metric("bot_lease_held") == 0
    assert bots.hit_counts() == {s: [HITS_PER_BURST] for s in services}
    assert gaps(fetches(bots)) == []
    assert bots.cards_posted() == {s: 1 for s in services}


def test_one_button_pressed_on_two_replicas_at_once_applies_once(bots: Cluster) -> None:
    first, second = bots.start(2)
    service = bots.burst()
    settle(bots, [service])
    (incident,) = bots.incidents()

    def press(replica, key: str):  # type: ignore[no-untyped-def]
        return replica.api.post(
            f"/api/v1/incidents/{incident.id}/commands",
            json={"command": "acknowledge"},
            headers={"Idempotency-Key": key},
        )

    answers = at_once(lambda: press(first, "press-a"), lambda: press(second, "press-b"))
    assert sorted(a.status_code for a in answers) in ([200, 200], [200, 409])
    bodies = [a.json() for a in answers]
    messages = sorted(str(b.get("message") or b.get("detail") or b) for b in bodies)
    assert messages[0] == "acknowledged by console:local", messages
    assert "already acknowledged by console:local" in messages[1], messages
    with bots.engine.connect() as conn:
        audit = conn.execute(
            select(AUDIT.c.action, AUDIT.c.result).where(AUDIT.c.incident_id == incident.id)
        ).all()
    acks = sorted(r.result for r in audit if r.action == "acknowledge")
    assert acks[0] == "applied" and len(acks) == 2 and acks.count("applied") == 1, acks
    # one effect: one acknowledge towards PagerDuty, the card updated, not posted again
    bots.wait_for(lambda: bots.pagerduty.accepted("acknowledge"), "acknowledge page")
    time.sleep(1)
    assert len(bots.pagerduty.accepted("acknowledge")) == 1
    assert bots.cards_posted() == {service: 1}


def test_a_message_whose_claimer_dies_mid_send_is_delivered_once(bots: Cluster) -> None:
    replicas = bots.start(2)
    bots.slack.hold("chat.postMessage")
    service = bots.burst()
    bots.wait_for(lambda: bots.slack.held("chat.postMessage") >= 1, "a card post in flight")
    with bots.engine.connect() as conn:
        claimer = conn.execute(
            select(OUTBOX.c.claimed_by).where(
                OUTBOX.c.surface == "slack", OUTBOX.c.kind == "post", OUTBOX.c.claimed_by != ""
            )
        ).scalar_one()
    pid = int(claimer.split(":")[1])
    (dying,) = [r for r in replicas if r.process.pid == pid]
    dying.kill()
    # the post never reached Slack: the held request fails once the claimer is gone
    bots.slack.fail_next("chat.postMessage", "fatal_error", status=500)
    bots.slack.release("chat.postMessage")
    bots.wait_for(lambda: bots.slack.held("chat.postMessage") == 0, "held post answered")
    started = time.monotonic()
    settle(bots, [service])  # after the 2 s claim timeout, the other replica posts it
    assert time.monotonic() - started < 10
    assert bots.cards_posted() == {service: 1}
    with bots.engine.connect() as conn:
        post = conn.execute(
            select(OUTBOX).where(OUTBOX.c.surface == "slack", OUTBOX.c.kind == "post")
        ).one()
    assert post.status == "sent" and post.claimed_by != claimer


def test_a_replacement_for_a_killed_only_replica_works_within_the_bound(
    tmp_path: Path, postgres_url: str
) -> None:
    """The only bot is killed during a storm; its replacement on the same database leads and
    posts within 2 x the heartbeat of the kill (its predecessor's lease is not waited out
    longer), and a card never waits for the lease at all."""
    heartbeat = 3.0
    with cluster(tmp_path, postgres_url, heartbeat=heartbeat) as bots:
        (first,) = bots.start(1)
        bots.wait_holder()
        services = [bots.burst()]
        settle(bots, services)
        first.kill()
        killed = time.monotonic()
        bots.start(1)
        started = time.monotonic() - killed  # a new process needs a moment to start
        services.append(bots.burst(ahead=0.5))
        bots.wait_holder(timeout=3 * heartbeat)
        assert time.monotonic() - killed <= max(2 * heartbeat, started) + 1.0
        settle(bots, services)
        assert bots.cards_posted() == {s: 1 for s in services}
        assert bots.hit_counts() == {s: [HITS_PER_BURST] for s in services}
