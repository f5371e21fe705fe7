"""Teams cards refresh per user (Universal Actions): through the real Agents SDK.

The posted card carries a ``refresh`` clause naming the responders (and, after a press, the
last presser); Teams then sends each of them an ``adaptiveCard/action`` invoke with the verb
``refresh`` and shows the card the bot answers with: no buttons for a viewer, every button of
the state for a responder, and no Approve for the person who requested the waiting run.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.pipeline.ingest import ingest
from integrations.teams.views import VIEW_ONLY
from playbooks.model import RunStatus
from tests.builders import alert
from tests.conftest import FakeClock
from tests.fakes.teams import TeamsBot, teams_bot

ANN = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"  # responder
BEN = "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"  # responder
VIC = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b"  # viewer (default role)
ROLES = f"""
default_role: viewer
roles:
  admin: [console:local]
  responder: [teams:{ANN}, teams:{BEN}, teams:*]
"""
VIEWER_ROLES = ROLES.replace(", teams:*", "")
RISKY = Path(__file__).resolve().parent.parent / "fixtures" / "remediation" / "surfaces.yaml"


def invoke(bot: TeamsBot, verb: str, data: dict[str, Any], who: str) -> dict[str, Any]:
    activity = bot.activity(
        "invoke_action_execute",
        id=f"f:{uuid.uuid4()}",
        from_={"id": f"29:{who}", "name": "Someone", "aadObjectId": who},
    )
    activity["value"]["action"].update(verb=verb, title=verb, data=data)
    return activity


async def refresh(bot: TeamsBot, incident: int, who: str) -> dict[str, Any]:
    response = await bot.send(
        invoke(bot, "refresh", {"incident_id": incident, "version": "1"}, who)
    )
    assert response.status_code == 200
    body = response.json()
    assert body["statusCode"] == 200 and body["type"] == "application/vnd.microsoft.card.adaptive"
    return dict(body["value"])


def verbs(card: dict[str, Any]) -> set[str]:
    """The verbs of the card's buttons (those inside Suppress/Resolve forms too)."""
    found: set[str] = set()
    for action in card.get("actions", []):
        inner = action.get("card", {}).get("actions", [action])
        found.update(a.get("verb", "") for a in inner if a.get("type") == "Action.Execute")
    return found


def open_incident(bot: TeamsBot, clock: FakeClock) -> int:
    with bot.runtime.engine.begin() as conn:
        now = clock.now()
        return ingest(conn, [alert(now, service="svc-0")], now, bot.policy()).created[0]


@pytest.fixture
async def bot(tmp_path: Path, clock: FakeClock) -> AsyncIterator[TeamsBot]:
    async with teams_bot(tmp_path, clock, roles=VIEWER_ROLES) as running:
        assert (
            await running.send(running.activity("conversation_update_team_added"))
        ).status_code == 202
        yield running


async def test_the_posted_card_refreshes_for_the_responders_and_the_last_presser(
    bot: TeamsBot, clock: FakeClock
) -> None:
    incident = open_incident(bot, clock)
    await bot.outbox.deliver_due()
    [post] = bot.connector.of_kind("post")
    refresh_clause = (post.card or {})["refresh"]
    assert refresh_clause["action"]["verb"] == "refresh"
    assert refresh_clause["action"]["data"]["incident_id"] == incident
    assert refresh_clause["userIds"] == [f"8:orgid:{BEN}", f"8:orgid:{ANN}"]  # roles file order
    # a press: the presser's own answer and everyone's updated copy refresh for them too
    data = {"incident_id": incident, "version": "1"}
    answer = (await bot.send(invoke(bot, "acknowledge", data, BEN))).json()["value"]
    assert answer["refresh"]["userIds"][0] == f"29:{BEN}"
    await bot.outbox.deliver_due()
    update = bot.connector.of_kind("update")[-1]
    assert (update.card or {})["refresh"]["userIds"][0] == f"29:{BEN}"


async def test_a_viewer_sees_no_buttons_and_a_responder_sees_them(
    bot: TeamsBot, clock: FakeClock
) -> None:
    incident = open_incident(bot, clock)
    mine = await refresh(bot, incident, VIC)
    assert verbs(mine) == set() and "actions" not in mine
    assert VIEW_ONLY in json.dumps(mine, ensure_ascii=False)
    assert "Open in console" in json.dumps(mine)  # links stay
    theirs = await refresh(bot, incident, ANN)
    assert {"acknowledge", "suppress", "resolve"} <= verbs(theirs)
    assert VIEW_ONLY not in json.dumps(theirs, ensure_ascii=False)
    assert f"8:orgid:{ANN}" in theirs["refresh"]["userIds"]  # the answer keeps refreshing


async def test_a_refresh_for_an_unknown_incident_or_a_damaged_card_says_so(bot: TeamsBot) -> None:
    gone = await refresh(bot, 999, ANN)
    assert "INC-999" in json.dumps(gone) and verbs(gone) == set()
    response = await bot.send(invoke(bot, "refresh", {"incident_id": "x"}, ANN))
    assert "out of date or damaged" in json.dumps(response.json()["value"])


async def test_the_requester_of_a_waiting_run_sees_no_approve_other_responders_do(
    tmp_path: Path, clock: FakeClock
) -> None:
    risky = tmp_path / "playbooks.yaml"
    risky.write_text(RISKY.read_text().replace("risk: low", "risk: high"))
    async with teams_bot(
        tmp_path, clock, roles=ROLES, playbooks_path=str(risky), shipped_playbooks=False
    ) as bot:
        assert (await bot.send(bot.activity("conversation_update_team_added"))).status_code == 202
        incident = open_incident(bot, clock)
        data = {"incident_id": incident, "version": "1"}
        plan = (await bot.send(invoke(bot, "auto_resolve", data, ANN))).json()["value"]
        confirm = next(
            a for a in plan.get("actions", []) if a.get("verb") == "auto_resolve_confirm"
        )
        await bot.send(invoke(bot, "auto_resolve_confirm", confirm["data"], ANN))
        remediation = bot.runtime.operations.remediation
        assert remediation is not None
        [run] = await remediation.runs(incident)
        assert (run.status, run.requested_by) == (RunStatus.AWAITING_APPROVAL, f"teams:{ANN}")
        requester = await refresh(bot, incident, ANN)
        assert "cancel_run" in verbs(requester) and "approve_run" not in verbs(requester)
        other = await refresh(bot, incident, BEN)
        assert {"approve_run", "cancel_run"} <= verbs(other)
        # teams:* makes every Teams user a responder, but only named people are listed
        assert all(u.startswith(("8:orgid:", "29:")) for u in other["refresh"]["userIds"])


async def test_a_press_on_one_replica_names_the_presser_on_the_card_another_replica_updates(
    tmp_path: Path, clock: FakeClock
) -> None:
    # two runtimes on one database: the press reaches the second, the first delivers the update
    async with (
        teams_bot(tmp_path, clock, roles=VIEWER_ROLES) as first,
        teams_bot(tmp_path, clock, roles=VIEWER_ROLES) as second,
    ):
        assert (await first.send(first.activity("conversation_update_team_added"))).status_code
        incident = open_incident(first, clock)
        await first.outbox.deliver_due()
        data = {"incident_id": incident, "version": "1"}
        answer = (await second.send(invoke(second, "acknowledge", data, BEN))).json()["value"]
        assert answer["refresh"]["userIds"][0] == f"29:{BEN}"
        await first.outbox.deliver_due()
        update = first.connector.of_kind("update")[-1]
        assert (update.card or {})["refresh"]["userIds"][0] == f"29:{BEN}"
        # and a refresh answered by the first replica names them too
        assert (await refresh(first, incident, ANN))["refresh"]["userIds"][0] == f"29:{BEN}"


async def request_run(bot: TeamsBot, incident: int, who: str) -> dict[str, Any]:
    """``who`` presses Auto-resolve, then Confirm; the Confirm answer (their copy)."""
    data = {"incident_id": incident, "version": "1"}
    plan = (await bot.send(invoke(bot, "auto_resolve", data, who))).json()["value"]
    confirm = next(a for a in plan.get("actions", []) if a.get("verb") == "auto_resolve_confirm")
    return dict(
        (await bot.send(invoke(bot, "auto_resolve_confirm", confirm["data"], who))).json()["value"]
    )


def risky_playbooks(tmp_path: Path) -> str:
    """The surfaces playbook at high risk: a run waits for a second responder's approval."""
    risky = tmp_path / "playbooks.yaml"
    risky.write_text(RISKY.read_text().replace("risk: low", "risk: high"))
    return str(risky)


async def test_run_buttons_answer_each_presser_with_the_buttons_they_can_use(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with teams_bot(
        tmp_path,
        clock,
        roles=VIEWER_ROLES,
        playbooks_path=risky_playbooks(tmp_path),
        shipped_playbooks=False,
    ) as bot:
        assert (await bot.send(bot.activity("conversation_update_team_added"))).status_code == 202
        incident = open_incident(bot, clock)
        # the requester's own answer: Cancel, but no Approve of their own run
        mine = await request_run(bot, incident, ANN)
        assert "cancel_run" in verbs(mine) and "approve_run" not in verbs(mine)
        remediation = bot.runtime.operations.remediation
        assert remediation is not None
        [run] = await remediation.runs(incident)
        assert run.status is RunStatus.AWAITING_APPROVAL
        # a viewer who presses Approve (on a copy Teams did not refresh) is told why, no buttons
        data = {"incident_id": incident, "version": "1", "run_id": run.id}
        theirs = (await bot.send(invoke(bot, "approve_run", data, VIC))).json()["value"]
        assert verbs(theirs) == set() and VIEW_ONLY in json.dumps(theirs, ensure_ascii=False)
        [still] = await remediation.runs(incident)
        assert still.status is RunStatus.AWAITING_APPROVAL
        # another responder's Back shows them every run button
        back = (await bot.send(invoke(bot, "auto_resolve_back", data, BEN))).json()["value"]
        assert {"approve_run", "cancel_run"} <= verbs(back)


async def test_the_card_refreshes_for_the_requester_of_its_waiting_run(
    tmp_path: Path, clock: FakeClock
) -> None:
    cat = "7c6b5a49-3827-4160-9f8e-7d6c5b4a3928"  # a responder through teams:*, not named
    async with teams_bot(
        tmp_path,
        clock,
        roles=ROLES,
        playbooks_path=risky_playbooks(tmp_path),
        shipped_playbooks=False,
    ) as bot:
        assert (await bot.send(bot.activity("conversation_update_team_added"))).status_code == 202
        incident = open_incident(bot, clock)
        await bot.outbox.deliver_due()
        await request_run(bot, incident, cat)
        data = {"incident_id": incident, "version": "1"}
        await bot.send(invoke(bot, "acknowledge", data, BEN))  # the last presser is now Ben
        await bot.outbox.deliver_due()
        users = (bot.connector.of_kind("update")[-1].card or {})["refresh"]["userIds"]
        assert users[:2] == [f"29:{BEN}", f"8:orgid:{cat}"]  # Teams refreshes Cat's copy too
        assert "approve_run" not in verbs(await refresh(bot, incident, cat))
