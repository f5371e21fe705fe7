"""A scaled-down storm against a real bot on PostgreSQL (tests/chaos/storm.py): PagerDuty, Slack,
Teams, Splunk and Bedrock in turn fail for 4 seconds (5xx, 429 with Retry-After, a hang, a reset
connection), the bot is killed with SIGKILL once in the middle, then six times more at aimed
moments (a Slack card post in flight, a Teams card post in flight, a click being handled, one
pressed in Teams, a Bedrock call in flight, a playbook step in flight), each time restarted on
the same database. Nothing is lost or doubled (incidents, cards, pages, clicks), /ready names
each failing dependency and how long it has failed, /metrics shows the backlog, and the bot
catches up once the dependency is back. The bot posts every card to Slack and to a Teams
channel, with its Teams tokens from the login fake (tests/fakes/entra.py), and every other
incident is acknowledged from its Teams card; tests/chaos/test_teams.py has Teams alone, in one
process.

Slow (about two and a half minutes): runs with ``CHAOS_TEST=1`` (``make chaos``);
bench/chaos.py is the full-size run."""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.chaos.storm import RETRY_AFTER_S, Storm
from tests.cluster import Cluster
from tests.fakes.faults import Fault

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.postgres,
    pytest.mark.skipif(os.environ.get("CHAOS_TEST") != "1", reason="slow: CHAOS_TEST=1"),
]


def test_a_storm_of_faults_and_a_kill_lose_and_double_nothing(
    tmp_path: Path, postgres_url: str
) -> None:
    with ExitStack() as stack:
        bots = Cluster(
            tmp_path, postgres_url, stack, heartbeat=0.5, bedrock=True, playbooks=True, teams=True
        )
        bots.settings["BOT_OUTBOX_RATE_LIMITS"] = '{"slack": {"rate": 20, "burst": 20}}'
        bots.settings["SPLUNK_SEARCH_TIMEOUT"] = "2"  # a hang outlasts it: the search fails
        bots.start(1)
        storm = Storm(bots, fault_s=4.0, kills=1)
        # the kill comes during the first fault, so Slack's 429s all reach one process
        plan = [
            ("pagerduty", Fault.ERROR),
            ("slack", Fault.THROTTLE),
            ("teams", Fault.HANG),  # longer than TEAMS_TIMEOUT (2 s)
            ("splunk", Fault.REFUSE),
            ("bedrock", Fault.THROTTLE),
        ]
        aims = ["post", "teams-post", "click", "teams-click", "rca", "playbook"]
        outcome = storm.run(plan, every=1.0, aims=aims)
        assert bots.teams is not None
        refused = bots.teams.connector.of_kind("refused-post")  # a token not from the login fake
        tokens = bots.teams.entra.granted()

    print("phases:", [(what, round(took, 1)) for what, took in outcome.phases])
    print(f"teams: {outcome.teams_cards} cards, {outcome.teams_clicks} clicks, {tokens} tokens")
    assert outcome.aimed == dict.fromkeys(aims, 1), outcome.aims_missed
    assert outcome.kills == 1 + len(aims)
    assert outcome.bursts >= 10 and outcome.clicks >= 5
    assert (outcome.lost, outcome.duplicates) == (0, 0), outcome.details
    # every card reached Teams too, with a token the login fake issued (a new bot, a new token)
    assert outcome.teams_cards >= outcome.bursts and not refused
    assert tokens >= 2
    assert outcome.teams_clicks >= 2  # some clicks came from Teams cards
    # each failing dependency is named, with how long it has failed (Splunk and Bedrock from
    # the searches and analyses that failed, not a periodic check)
    assert all(outcome.ready_named.values()), outcome.ready_named
    assert set(outcome.ready_failing_for) == set(outcome.ready_named), outcome.ready_failing_for
    assert any(seconds > 0 for seconds in outcome.ready_failing_for.values())
    assert "slack" in outcome.ready_reasons["slack/429"].lower()
    assert "bedrock" in outcome.ready_reasons["bedrock/429"].lower()
    assert "teams" in outcome.ready_reasons["teams/hang"].lower()
    assert outcome.max_depth > 0  # /metrics showed the backlog
    assert len(outcome.catchup_s) == len(plan) + len(aims), outcome.unsettled
    # the run killed mid-step ends interrupted, its step sent once (never again by itself)
    assert list(outcome.run_statuses.values()) == ["interrupted"], outcome.run_statuses
    assert outcome.step_calls == 1
    # while Slack answered 429 (Retry-After: 1 s), deliveries to it paused that long
    gaps = outcome.retry_after_gaps.get("slack", [])
    assert gaps and all(gap >= RETRY_AFTER_S * 0.9 for gap in gaps), gaps
