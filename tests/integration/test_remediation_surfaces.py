"""Auto-resolve pressed in Slack, Teams and the console, each through its real SDK path and the
real remediation service: the plan is shown, confirming starts the run, Approve and Cancel act
on it, the kill switch answers from every surface, and direct messages reach people.

Slack runs on slack-bolt against the loopback Slack fake, Teams on the Agents SDK against the
loopback Bot Connector, the console over HTTP. The runs are only recorded here (the engine that
executes them is not started): what a person sees on each surface is what is tested.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from playbooks.model import RunStatus
from tests.conftest import FakeClock
from tests.fakes.slack import CHANNEL, FakeSlack, SlackBot, payload, slack_bot
from tests.fakes.teams import TeamsBot, teams_bot

PLAYBOOKS = Path(__file__).resolve().parent.parent / "fixtures" / "remediation"
RESPONDER, ON_CALL, VIEWER, ADMIN = "U0RESP001", "U0ONCALL1", "U0VIEW001", "U0ADMIN01"
SLACK_ROLES = {
    "default_role": "viewer",
    "roles": {
        "admin": [f"slack:{ADMIN}", "console:local"],
        "responder": [f"slack:{RESPONDER}", f"slack:{ON_CALL}", "console:alice", "console:bob"],
    },
}


@pytest.fixture
async def slack(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[SlackBot]:
    monkeypatch.setenv("BOT_PLAYBOOKS_PATH", str(PLAYBOOKS))
    monkeypatch.setenv("BOT_SHIPPED_PLAYBOOKS", "false")
    async with slack_bot(tmp_path, clock, SLACK_ROLES, FakeSlack()) as running:
        running.open_incidents(1)
        await running.outbox.deliver_due()
        yield running


def card_button(bot: SlackBot, incident: int, action_id: str) -> tuple[str, str]:
    ts = bot.card_ts(incident)
    blocks = bot.fake.messages[(CHANNEL, ts)]["blocks"]
    for element in blocks[-1]["elements"]:
        if element["action_id"] == action_id:
            return ts, element.get("value", "")
    raise AssertionError(f"no {action_id} button on INC-{incident}: {json.dumps(blocks)}")


async def press(bot: SlackBot, incident: int, action_id: str, user: str, name: str) -> None:
    ts, value = card_button(bot, incident, action_id)
    data = payload(
        "block_actions",
        action_id=action_id,
        value=value,
        user=user,
        channel=CHANNEL,
        message_ts=ts,
        trigger_id=f"trigger-{name}",
        action_ts=f"1790000999.{len(name):06d}",
        response_url=bot.fake.response_url(name),
    )
    response = await bot.slack.interaction(data)
    assert response.status_code == 200, response.text
    await bot.settle()


def calls(bot: SlackBot, method: str) -> list[dict[str, Any]]:
    return [c.args for c in bot.fake.calls if c.method == method and not c.error]


def said(bot: SlackBot, name: str) -> str:
    return " ".join(str(r.get("text", "")) for r in bot.fake.responses.get(name, []))


async def test_a_press_in_slack_shows_the_plan_and_confirm_starts_the_run(slack: SlackBot) -> None:
    assert "surface-restart" in json.dumps(slack.fake.messages[(CHANNEL, slack.card_ts(1))])
    await press(slack, 1, "auto_resolve", RESPONDER, "plan")
    opened, updated = calls(slack, "views.open")[-1], calls(slack, "views.update")[-1]
    assert opened["trigger_id"] == "trigger-plan"  # the dialog opened first, then the plan
    plan = json.dumps(updated["view"]["blocks"])
    for shown in ("surface-restart", "service:svc-0", "generator.end-scenario", "Confidence"):
        assert shown in plan, shown
    view = {**updated["view"], "id": updated["view_id"]}
    submission = payload(
        "view_submission",
        user=RESPONDER,
        view_id=view["id"],
        callback_id=view["callback_id"],
        private_metadata=view["private_metadata"],
        trigger_id="trigger-submit",
    )
    response = await slack.slack.interaction(submission)
    assert response.status_code == 200 and not response.content  # the dialog closes
    await slack.settle()
    remediation = slack.operations.remediation
    assert remediation is not None
    [run] = await remediation.runs(1)
    assert (run.playbook_id, run.requested_by) == ("surface-restart", f"slack:{RESPONDER}")
    told = calls(slack, "chat.postEphemeral")[-1]
    assert told["user"] == RESPONDER and f"RUN-{run.id}" in told["text"]
    await slack.outbox.deliver_due()
    card = json.dumps(slack.fake.messages[(CHANNEL, slack.card_ts(1))]["blocks"])
    assert "surface-restart" in card
    if run.status is RunStatus.AWAITING_APPROVAL:
        assert "waiting for a second responder" in card
        await press(slack, 1, "approve_run", RESPONDER, "self")
        assert "approve" in said(slack, "self").lower()  # the requester may not approve
        assert (await remediation.run(run.id)).status is RunStatus.AWAITING_APPROVAL
        await press(slack, 1, "approve_run", ON_CALL, "second")
        assert (await remediation.run(run.id)).status is not RunStatus.AWAITING_APPROVAL
        assert f"RUN-{run.id}" in said(slack, "second")


async def test_slash_killswitch_is_for_admins_and_the_plan_then_says_why(slack: SlackBot) -> None:
    async def slash(user: str, text: str, name: str) -> str:
        fields = payload(
            "slash_command",
            user=user,
            text=text,
            command="/incident",
            channel=CHANNEL,
            trigger_id=f"trigger-{name}",
            response_url=slack.fake.response_url(name),
        )
        response = await slack.slack.command(fields)
        assert response.status_code == 200
        await slack.settle()
        return said(slack, name) or response.text

    assert "admin" in await slash(RESPONDER, "killswitch on bad deploy", "r1")
    assert "on since" in await slash(ADMIN, "killswitch on bad deploy", "a1")
    assert "bad deploy" in await slash(VIEWER, "killswitch status", "v1")
    await slash(RESPONDER, "auto-resolve INC-1", "p1")
    plan = json.dumps(slack.fake.responses["p1"][-1]["blocks"])
    assert "Refused" in plan and "kill switch" in plan.lower()
    assert "auto_resolve_confirm" not in plan  # nothing to confirm
    assert "off" in await slash(ADMIN, "killswitch off freeze over", "a2")


async def test_a_direct_message_in_slack_opens_the_dm_first(slack: SlackBot) -> None:
    await slack.integration.surface.direct(f"slack:{RESPONDER}", "RUN-1 restart: verified")
    opened = calls(slack, "conversations.open")[-1]
    posted = calls(slack, "chat.postMessage")[-1]
    assert opened["users"] == RESPONDER
    assert posted["channel"].startswith("D") and "RUN-1 restart: verified" in posted["text"]


# Teams -----------------------------------------------------------------------------------------

ANN = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
BEN = "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"
TEAMS_ROLES = f"""
default_role: viewer
roles:
  admin: [console:local]
  responder: [teams:{ANN}, teams:{BEN}]
"""


def click(bot: TeamsBot, verb: str, data: dict[str, Any], who: str = ANN) -> dict[str, Any]:
    activity = bot.activity(
        "invoke_action_execute",
        id=f"f:{uuid.uuid4()}",
        from_={"id": f"29:{who}", "name": "Someone", "aadObjectId": who},
    )
    activity["value"]["action"].update(verb=verb, title=verb, data=data)
    return activity


def verbs(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a.get("verb", ""): a for a in card.get("actions", [])}


async def test_a_click_in_teams_answers_the_plan_and_confirm_starts_the_run(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with teams_bot(
        tmp_path, clock, roles=TEAMS_ROLES, playbooks_path=str(PLAYBOOKS), shipped_playbooks=False
    ) as bot:
        assert (await bot.send(bot.activity("conversation_update_team_added"))).status_code == 202
        from bot.pipeline.ingest import ingest
        from tests.builders import alert

        with bot.runtime.engine.begin() as conn:
            now = clock.now()
            [incident] = ingest(conn, [alert(now, service="svc-0")], now, bot.policy()).created
        answer = await bot.send(
            click(bot, "auto_resolve", {"incident_id": incident, "version": "1"})
        )
        assert answer.status_code == 200
        plan = answer.json()["value"]
        assert "surface-restart" in json.dumps(plan) and "Confidence" in json.dumps(plan)
        confirm = verbs(plan)["auto_resolve_confirm"]
        answer = await bot.send(click(bot, "auto_resolve_confirm", confirm["data"]))
        card = answer.json()["value"]
        remediation = bot.runtime.operations.remediation
        assert remediation is not None
        [run] = await remediation.runs(incident)
        assert run.requested_by == f"teams:{ANN}"
        assert f"RUN-{run.id}" in json.dumps(card)
        if run.status is RunStatus.AWAITING_APPROVAL:
            assert "approve_run" not in verbs(card)  # the requester's own copy: no Approve
            approve = {"incident_id": incident, "version": "1", "run_id": run.id}
            mine = (await bot.send(click(bot, "approve_run", approve))).json()["value"]
            assert "approve" in json.dumps(mine["body"][0]).lower()
            await bot.send(click(bot, "approve_run", approve, who=BEN))
            assert (await remediation.run(run.id)).status is not RunStatus.AWAITING_APPROVAL
        # a direct message needs a 1:1 chat the person has opened
        with pytest.raises(Exception, match="talked to it once"):
            await bot.teams.surface.direct(f"teams:{BEN}", "hello")


# the console -----------------------------------------------------------------------------------


async def test_a_press_in_the_console_plans_confirms_and_approves_over_http(
    slack: SlackBot,
) -> None:
    async with httpx.AsyncClient(base_url=slack.url, timeout=10) as http:
        alice, bob = {"X-Bot-User": "alice"}, {"X-Bot-User": "bob"}
        page = await http.get("/incidents/1", headers=alice)
        assert 'data-action="auto_resolve"' in page.text
        plan = (await http.post("/console/incidents/INC-1/plan", json={}, headers=alice)).json()
        assert plan["playbook_id"] == "surface-restart" and plan["steps"][0]["target"]
        assert plan["verdict"]["decision"] in ("run", "needs_approval")
        stale = await http.post(
            "/console/incidents/INC-1/runs", json={"fingerprint": "0" * 64}, headers=alice
        )
        assert stale.status_code == 409 and "plan changed" in stale.json()["error"]
        body = {"fingerprint": plan["fingerprint"], "playbook_id": plan["playbook_id"]}
        run = (await http.post("/console/incidents/INC-1/runs", json=body, headers=alice)).json()
        assert run["requested_by"] == "console:alice"
        if run["status"] == "awaiting_approval":
            own = await http.post(f"/console/runs/{run['id']}/approve", headers=alice)
            assert own.status_code == 403
            ok = await http.post(f"/console/runs/{run['id']}/approve", headers=bob)
            assert ok.status_code == 200 and ok.json()["status"] != "awaiting_approval"
        page = await http.get("/incidents/1", headers=alice)
        assert "surface-restart" in page.text
        # the kill switch: a banner on every page
        on = await http.post(
            "/api/v1/config/kill-switch/activate", json={"reason": "freeze"}, headers={}
        )
        assert on.status_code == 200, on.text
        assert "Kill switch on" in (await http.get("/", headers=alice)).text
