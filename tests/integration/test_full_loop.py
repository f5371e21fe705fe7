"""The whole loop against every fake at once, through the real SDKs:

Splunk finds a 5xx burst -> an incident -> its Slack card and a PagerDuty page -> someone
acknowledges in PagerDuty (signed webhook) -> the Slack card shows it -> someone resolves it
with the Slack slash command -> PagerDuty gets exactly one resolve.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from integrations.local.scenarios import SCENARIOS
from tests.conftest import FakeClock
from tests.fakes.pagerduty import FakePagerDuty, make_tls, webhook_headers
from tests.fakes.slack import CHANNEL, payload, slack_bot
from tests.fakes.splunk import FakeSplunk

SPLUNK_TOKEN = "eyJrIjoiZmFrZS1zcGx1bmstdG9rZW4tZm9yLWxvb3AifQ"
ROUTING_KEY = "R0UT1NGKEYWEB0000000000000000001"
PD_TOKEN = "fake-rest-api-token-0123456789"
PD_SECRET = "whsec-loop-0123456789abcdef"
RESPONDER = "U0RESP001"
ROLES = {
    "default_role": "viewer",
    "roles": {"responder": [f"slack:{RESPONDER}", "pagerduty:*"]},
}


@pytest.fixture
def services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakePagerDuty]:
    for name in list(os.environ):
        if name.startswith(("BOT_", "SPLUNK_", "PAGERDUTY_", "SLACK_", "TEAMS_")):
            monkeypatch.delenv(name)
    tls = make_tls(tmp_path)
    with FakeSplunk(token=SPLUNK_TOKEN) as splunk, FakePagerDuty(tls, api_token=PD_TOKEN) as pd:
        now = datetime.now(UTC)
        splunk.add_events(SCENARIOS["web-5xx-burst"].events(now, random.Random(3)))
        for name, value in {
            "SPLUNK_HOST": splunk.host,
            "SPLUNK_PORT": str(splunk.port),
            "SPLUNK_SCHEME": "http",
            "SPLUNK_TOKEN": SPLUNK_TOKEN,
            "PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
            "PAGERDUTY_EVENTS_URL": pd.url,
            "PAGERDUTY_API_URL": pd.url,
            "PAGERDUTY_API_TOKEN": PD_TOKEN,
            "PAGERDUTY_CA_FILE": str(tls.ca_file),
            "PAGERDUTY_WEBHOOK_SECRETS": PD_SECRET,
            # the burst is "high": page at once for this test
            "BOT_ESCALATION": json.dumps([{"severity": ["high"], "after": "0s"}]),
        }.items():
            monkeypatch.setenv(name, value)
        yield pd


async def test_splunk_to_slack_to_pagerduty_and_back(
    services: FakePagerDuty, tmp_path: Path
) -> None:
    pd = services
    clock = FakeClock(datetime.now(UTC))
    async with slack_bot(tmp_path, clock, ROLES) as bot:
        runtime = bot.runtime
        assert runtime.settings.search_backend == "splunk" and "pagerduty" in runtime.pagers
        # Splunk -> incident, its card and its page
        assert await runtime.acquire_lease()  # rule runs write under the scheduler lease
        summary = await runtime.runner.run("web-5xx-burst")
        (incident,) = summary.result.created
        await bot.settle()
        await bot.settle()
        posts = bot.fake.calls_to("chat.postMessage")
        assert [c.args["channel"] for c in posts] == [CHANNEL]
        assert "HTTP 5xx burst on checkout" in json.dumps(posts[0].args)
        [trigger] = pd.accepted("trigger")
        assert trigger.dedup_key.startswith(f"incident-bot/INC-{incident}/")

        # acknowledged in PagerDuty -> our incident -> the Slack card shows it
        body = pd.webhook("incident.acknowledged", trigger.dedup_key, agent=("PANN01", "Ann"))
        answer = await bot.slack.client.post(
            "/webhooks/pagerduty", content=body, headers=webhook_headers(body, PD_SECRET)
        )
        assert answer.status_code == 200 and answer.json()["status"] == "applied"
        assert bot.state(incident) == "acknowledged"
        await bot.settle()
        updates = bot.fake.calls_to("chat.update")
        assert updates and "pagerduty:PANN01" in json.dumps(updates[-1].args)
        assert pd.accepted("acknowledge") == []  # no echo back to PagerDuty

        # resolved in Slack -> PagerDuty resolves, once
        fields = payload(
            "slash_command",
            channel=CHANNEL,
            user=RESPONDER,
            command="/incident",
            text=f"resolve INC-{incident} restarted the upstream pool",
            response_url=bot.fake.response_url("r1"),
            trigger_id="trigger-r1",
        )
        response = await bot.slack.command(fields)
        assert response.status_code == 200
        await bot.settle()
        await bot.settle()
        assert bot.state(incident) == "resolved"
        assert len(pd.accepted("resolve")) == 1
        await bot.settle()
        assert len(pd.accepted("resolve")) == 1
