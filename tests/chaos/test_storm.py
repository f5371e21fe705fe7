"""A scaled-down storm against a real bot on PostgreSQL (tests/chaos/storm.py): Slack,
PagerDuty and Splunk in turn fail for 4 seconds (429 with Retry-After, 5xx, a reset
connection), the bot is killed with SIGKILL once in the middle and
restarted on the same database; nothing is lost or doubled, /ready names a failing Slack
or PagerDuty, /metrics shows the backlog, and the bot catches up once the dependency is back.

Slow (about a minute): runs with ``CHAOS_TEST=1`` (``make chaos``); bench/chaos.py is the
full-size run."""

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
        bots = Cluster(tmp_path, postgres_url, stack, heartbeat=0.5)
        bots.settings["BOT_OUTBOX_RATE_LIMITS"] = '{"slack": {"rate": 20, "burst": 20}}'
        bots.start(1)
        storm = Storm(bots, fault_s=4.0, kills=1)
        # the kill comes during the first fault, so Slack's 429s all reach one process
        plan = [("pagerduty", Fault.ERROR), ("slack", Fault.THROTTLE), ("splunk", Fault.REFUSE)]
        outcome = storm.run(plan, every=1.0)

    assert outcome.kills == 1
    assert outcome.bursts >= 10 and outcome.clicks >= 5
    assert (outcome.lost, outcome.duplicates) == (0, 0), outcome.details
    # Slack and PagerDuty are asked at each /ready; Splunk at most every 15 s (it runs a
    # search), so a 3 s Splunk outage may pass unseen there
    assert outcome.ready_named["slack/429"] and outcome.ready_named["pagerduty/5xx"]
    assert "slack" in outcome.ready_reasons["slack/429"].lower()
    assert outcome.max_depth > 0  # /metrics showed the backlog
    assert len(outcome.catchup_s) == len(plan), outcome.unsettled
    # while Slack answered 429 (Retry-After: 1 s), deliveries to it paused that long
    gaps = outcome.retry_after_gaps.get("slack", [])
    assert gaps and all(gap >= RETRY_AFTER_S * 0.9 for gap in gaps), gaps
