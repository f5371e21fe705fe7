"""Teams → bot: installs, card buttons (invoke) and text commands, through the real Agents SDK.

Activities shaped like Teams' are POSTed to /api/messages (anonymous access: no Microsoft token
service here); their ``serviceUrl`` points at a loopback Bot Connector, which records every
reply and update the SDK sends, with its bearer token.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.domain.incident import Command, CommandKind
from bot.pipeline.ingest import ingest
from bot.store.repo import AUDIT, CARD_REFS, TIMELINE
from bot.store.tables import ConversationRow
from tests.builders import alert
from tests.conftest import FakeClock
from tests.fakes.teams import APP_ID, CONNECTOR_TOKEN, TeamsBot, teams_bot

CONVERSATIONS = ConversationRow.__table__  # type: ignore[attr-defined]
ANN = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"  # the responder in the recorded activities
VIC = "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f"  # a viewer
GENERAL = "19:Qe4kM8nB2vX6zP0rT5yW9uA3sD7fG1hJ@thread.tacv2"
ROLES = f"""
default_role: viewer
roles:
  admin: [console:local]
  responder: [teams:{ANN}]
"""


@pytest.fixture
async def bot(tmp_path: Path, clock: FakeClock) -> AsyncIterator[TeamsBot]:
    async with teams_bot(tmp_path, clock, roles=ROLES) as running:
        assert (
            await running.send(running.activity("conversation_update_team_added"))
        ).status_code == 202
        yield running


def open_incident(bot: TeamsBot, clock: FakeClock, service: str = "checkout") -> int:
    with bot.runtime.engine.begin() as conn:
        return ingest(
            conn, [alert(clock.now(), service=service)], clock.now(), bot.policy()
        ).created[0]


def click(bot: TeamsBot, verb: str, incident: int, who: str = ANN, **inputs: str) -> dict[str, Any]:
    activity = bot.activity(
        "invoke_action_execute",
        id=f"f:{uuid.uuid4()}",
        from_={"id": f"29:{who}", "name": "Someone", "aadObjectId": who},
    )
    activity["value"]["action"].update(
        verb=verb,
        title=verb.capitalize(),
        data={"incident_id": incident, "version": "r1", **inputs},
    )
    return activity


def message(bot: TeamsBot, text: str, who: str = ANN) -> dict[str, Any]:
    """A new post in the General channel that mentions the bot (it starts its own thread)."""
    activity = bot.activity(
        "message_channel",
        id=str(uuid.uuid4().int)[:13],
        text=f"<at>Incident bot</at> {text}",
        from_={"id": f"29:{who}", "name": "Someone", "aadObjectId": who},
    )
    activity["conversation"]["id"] = f"{GENERAL};messageid={activity['id']}"
    return activity


def header(card: dict[str, Any]) -> str:
    """The card's first header line (``SEVERITY · INC-n · state``), after any notice."""
    for block in card["body"]:
        if block.get("type") == "Container" and block.get("bleed"):
            return str(block["items"][0]["text"])
    raise AssertionError("no header")


def notice(card: dict[str, Any]) -> str:
    first = card["body"][0]
    if first.get("style") == "attention" and not first.get("bleed"):
        return str(first["items"][0]["inlines"][0]["text"])
    return ""


async def state_of(bot: TeamsBot, incident: int) -> str:
    detail = (await bot.client.get(f"/api/v1/incidents/INC-{incident}")).json()
    return str(detail["state"])


def answers(bot: TeamsBot) -> list[Any]:
    """What the bot said in conversation threads (replies), newest last."""
    return bot.connector.of_kind("reply")


# installs -------------------------------------------------------------------------------------


async def test_install_in_a_team_stores_the_channel_and_says_its_key(bot: TeamsBot) -> None:
    with bot.runtime.engine.connect() as conn:
        rows = conn.execute(select(CONVERSATIONS)).all()
    assert [(r.surface, r.channel) for r in rows] == [("teams", "sre/general")]
    reference = json.loads(rows[0].reference_json)
    assert reference["conversation"]["id"] == GENERAL
    assert reference["serviceUrl"] == bot.connector.url
    assert reference["bot"]["id"] == f"28:{APP_ID}"
    welcome = answers(bot)[-1]
    assert "'sre/general'" in welcome.text and welcome.authorization == f"Bearer {CONNECTOR_TOKEN}"
    assert (await bot.teams.surface.check()).reason == "1 conversation"


async def test_removing_the_bot_forgets_the_conversation(bot: TeamsBot) -> None:
    removed = bot.activity(
        "conversation_update_team_added",
        id="f:removed",
        membersAdded=[],
        membersRemoved=[{"id": f"28:{APP_ID}"}],
        channelData={"eventType": "teamMemberRemoved", "team": {"id": GENERAL, "name": "SRE"}},
    )
    assert (await bot.send(removed)).status_code == 202
    assert await bot.teams.conversations.all() == []
    assert (await bot.teams.surface.check()).status.value == "degraded"


async def test_new_channels_are_remembered_under_their_names(bot: TeamsBot) -> None:
    incidents = "19:Wn3bV7cX1zL5kJ9hG2fD6sA0pO4iU8yT@thread.tacv2"
    team = {"id": GENERAL, "name": "SRE"}
    created = bot.activity(
        "conversation_update_team_added",
        id="f:channel-created",
        membersAdded=[],
        channelData={
            "eventType": "channelCreated",
            "team": team,
            "channel": {"id": incidents, "name": "Incidents"},
        },
    )
    assert (await bot.send(created)).status_code == 202
    found = await bot.teams.conversations.find("sre/incidents")
    assert found is not None and found.reference.conversation.id == incidents
    deleted = dict(created, id="f:channel-deleted")
    deleted["channelData"] = dict(created["channelData"], eventType="channelDeleted")
    await bot.send(deleted)
    assert await bot.teams.conversations.find("sre/incidents") is None
    assert await bot.teams.conversations.find("sre/general") is not None


async def test_a_personal_chat_registers_itself_on_the_first_message(bot: TeamsBot) -> None:
    reply = await bot.send(bot.activity("message_personal", text="help"))
    assert reply.status_code == 202
    personal = "a:1Xy9Zw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8Ba7Zy6Xw5Vu4Ts3Rq2Po1Nm"
    keys = {s.key for s in await bot.teams.conversations.all()}
    # the chat is also where direct messages to its person go
    assert keys == {"sre/general", personal, f"personal:teams:{ANN}"}
    assert answers(bot)[-1].conversation_id == personal


# card buttons ---------------------------------------------------------------------------------


CUSTOM_90M = {"duration": "custom", "custom_duration": "90m", "reason": "deploy"}


@pytest.mark.parametrize(
    ("before", "verb", "inputs", "after", "summary"),
    [
        ([], "acknowledge", {}, "acknowledged", "acknowledged by teams:"),
        ([CommandKind.ACKNOWLEDGE], "unacknowledge", {}, "open", "unacknowledged by"),
        ([], "suppress", {"duration": "4h", "reason": "x"}, "suppressed", "until 2026-11-22 14"),
        ([], "suppress", CUSTOM_90M, "suppressed", "until 2026-11-22 11:30 UTC: deploy"),
        ([CommandKind.SUPPRESS], "unsuppress", {}, "open", "unsuppressed by"),
        ([], "resolve", {"note": "rolled back v2"}, "resolved", ": rolled back v2"),
        ([CommandKind.RESOLVE], "reopen", {}, "open", "reopened by"),
    ],
)
async def test_each_button_acts_answers_with_the_new_card_and_updates_everyone(
    bot: TeamsBot,
    clock: FakeClock,
    before: list[CommandKind],
    verb: str,
    inputs: dict[str, str],
    after: str,
    summary: str,
) -> None:
    incident = open_incident(bot, clock)
    for kind in before:
        await bot.runtime.interactions.execute(
            incident,
            Command(
                kind,
                actor="console:local",
                surface="api",
                reason="setup",
                duration=timedelta(hours=1),
            ),
        )
    await bot.outbox.deliver_due()
    posted = card_activity_id(bot)
    response = await bot.send(click(bot, verb, incident, **inputs))
    assert response.status_code == 200
    body = response.json()
    assert body["statusCode"] == 200 and body["type"] == "application/vnd.microsoft.card.adaptive"
    assert header(body["value"]).endswith(f"INC-{incident} · {after}") and not notice(body["value"])
    assert await state_of(bot, incident) == after
    await bot.outbox.deliver_due()
    update, reply = bot.connector.calls[-2:]
    assert (update.kind, update.conversation_id, update.activity_id) == ("update", GENERAL, posted)
    assert header(update.card or {}).endswith(after)
    assert (reply.kind, reply.activity_id) == ("reply", posted) and summary in reply.text
    assert {c.authorization for c in (update, reply)} == {f"Bearer {CONNECTOR_TOKEN}"}


@pytest.mark.parametrize(
    ("inputs", "problem"),
    [
        ({"duration": "1h"}, "cannot be suppressed without a reason"),
        ({"duration": "", "reason": "deploy"}, "cannot be suppressed without a duration"),
        ({"duration": "custom", "custom_duration": "soon", "reason": "x"}, "bad duration 'soon'"),
    ],
)
async def test_suppress_without_what_it_needs_keeps_the_card_and_says_why(
    bot: TeamsBot, clock: FakeClock, inputs: dict[str, str], problem: str
) -> None:
    incident = open_incident(bot, clock)
    body = (await bot.send(click(bot, "suppress", incident, **inputs))).json()
    assert header(body["value"]).endswith("· open") and problem in notice(body["value"])
    assert await state_of(bot, incident) == "open"


async def test_a_viewer_is_refused_and_the_refusal_is_audited(
    bot: TeamsBot, clock: FakeClock
) -> None:
    incident = open_incident(bot, clock)
    await bot.outbox.deliver_due()
    sent = len(bot.connector.calls)
    body = (await bot.send(click(bot, "acknowledge", incident, who=VIC))).json()
    assert body["statusCode"] == 200
    assert notice(body["value"]) == "you need the responder role (you are viewer)"
    assert header(body["value"]).endswith("· open")
    with bot.runtime.engine.connect() as conn:
        audit = conn.execute(select(AUDIT)).one()
    assert (audit.actor, audit.surface, audit.action, audit.result) == (
        f"teams:{VIC}",
        "teams",
        "acknowledge",
        "refused",
    )
    await bot.outbox.deliver_due()
    assert len(bot.connector.calls) == sent  # nothing changed, nothing to update


async def test_an_illegal_transition_says_so(bot: TeamsBot, clock: FakeClock) -> None:
    incident = open_incident(bot, clock)
    await bot.send(click(bot, "acknowledge", incident))
    body = (await bot.send(click(bot, "acknowledge", incident))).json()
    assert "is already acknowledged by teams:" in notice(body["value"])


async def test_a_retried_click_acts_once(bot: TeamsBot, clock: FakeClock) -> None:
    incident = open_incident(bot, clock)
    activity = click(bot, "acknowledge", incident)
    first, again = await bot.send(activity), await bot.send(activity)
    assert first.status_code == again.status_code == 200 and not notice(again.json()["value"])
    with bot.runtime.engine.connect() as conn:
        kinds = [r.kind for r in conn.execute(select(TIMELINE.c.kind))]
    assert kinds.count("acknowledge") == 1


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ({"incident_id": 99, "version": "r1"}, "no incident INC-99"),
        ({"incident_id": "INC-1"}, "out of date"),
        ({"incident_id": 1, "injected": "x"}, "out of date"),
    ],
)
async def test_unknown_or_damaged_cards_get_a_notice(
    bot: TeamsBot, clock: FakeClock, data: dict[str, Any], text: str
) -> None:
    open_incident(bot, clock)
    activity = click(bot, "acknowledge", 1)
    activity["value"]["action"]["data"] = data
    body = (await bot.send(activity)).json()
    assert body["statusCode"] == 200 and text in notice(body["value"])


async def test_an_unknown_verb_is_refused_naming_it(bot: TeamsBot, clock: FakeClock) -> None:
    incident = open_incident(bot, clock)
    response = await bot.send(click(bot, "explode", incident))
    assert response.status_code == 400  # bad input, not a server fault (the SDK says 501)
    assert response.json() == {"error": "the bot has no card action 'explode'"}


# text commands --------------------------------------------------------------------------------


async def test_text_commands_act_and_answer_in_the_thread(bot: TeamsBot, clock: FakeClock) -> None:
    incident = open_incident(bot, clock)
    said: list[str] = []
    for text in (
        f"ack INC-{incident}",
        f"suppress INC-{incident} 1h deploy in progress",
        f"unsuppress INC-{incident}",
        f"resolve INC-{incident} rolled back",
        f"reopen INC-{incident}",
    ):
        assert (await bot.send(message(bot, text))).status_code == 202
        said.append(answers(bot)[-1].text)
    assert said == [
        f"INC-{incident}: acknowledged by teams:{ANN}",
        f"INC-{incident}: suppressed by teams:{ANN} until 2026-11-22 11:00 UTC: deploy in progress",
        f"INC-{incident}: unsuppressed by teams:{ANN}; back to acknowledged",
        f"INC-{incident}: resolved by teams:{ANN}: rolled back",
        f"INC-{incident}: reopened by teams:{ANN}",
    ]
    reply = answers(bot)[-1]
    assert reply.conversation_id == f"{GENERAL};messageid={reply.activity_id}"
    assert await state_of(bot, incident) == "open"


async def test_a_viewer_typing_a_command_is_told_why_not(bot: TeamsBot, clock: FakeClock) -> None:
    incident = open_incident(bot, clock)
    await bot.send(message(bot, f"ack INC-{incident}", who=VIC))
    assert answers(bot)[-1].text == "you need the responder role (you are viewer)"


async def test_reading_commands_answer_with_cards(bot: TeamsBot, clock: FakeClock) -> None:
    incident = open_incident(bot, clock)
    await bot.send(message(bot, "list"))
    listed = shown(answers(bot)[-1].card)
    assert f"INC-{incident} · high · open · 5xx burst on checkout (checkout)" in listed
    await bot.send(message(bot, f"show INC-{incident}"))
    assert header(answers(bot)[-1].card or {}).startswith(f"HIGH · INC-{incident}")
    await bot.send(message(bot, "rules"))
    assert "Detection rules" in shown(answers(bot)[-1].card)
    await bot.send(message(bot, "list resolved"))
    assert '"None."' in shown(answers(bot)[-1].card)


async def test_help_and_unknown_text_show_the_commands_and_the_routing_key(bot: TeamsBot) -> None:
    await bot.send(message(bot, "help"))
    helped = shown(answers(bot)[-1].card)
    assert "Incident bot commands" in helped and "'sre/general'" in helped
    await bot.send(message(bot, "dance"))
    assert "I don't know 'dance'." in shown(answers(bot)[-1].card)


async def test_silence_from_teams(bot: TeamsBot, clock: FakeClock) -> None:
    open_incident(bot, clock)
    await bot.send(message(bot, "silence service=checkout 2h maintenance window"))
    assert answers(bot)[-1].text == (
        "Silence 1 (service=checkout) until 2026-11-22 12:00 UTC: maintenance window. "
        "It covers 1 active incident now."
    )
    silences = (await bot.client.get("/api/v1/silences")).json()["items"]
    assert [s["created_by"] for s in silences] == [f"teams:{ANN}"]


# authentication -------------------------------------------------------------------------------


async def test_tokens_are_checked_on_the_teams_route_only(tmp_path: Path, clock: FakeClock) -> None:
    async with teams_bot(tmp_path, clock, anonymous=False) as bot:
        activity = bot.activity("message_channel")
        unsigned = await bot.send(activity)
        assert unsigned.status_code == 401
        forged = await bot.client.post(
            "/api/messages", json=activity, headers={"Authorization": "Bearer not-a-jwt"}
        )
        assert forged.status_code == 401 and "not-a-jwt" not in forged.text
        assert bot.connector.calls == []
        assert (await bot.client.get("/health")).status_code == 200
        assert (await bot.client.get("/api/v1/incidents")).status_code == 200


async def test_a_malformed_activity_is_a_bad_request(bot: TeamsBot) -> None:
    response = await bot.client.post("/api/messages", json={"text": "no type"})
    assert response.status_code == 400
    broken = await bot.client.post(
        "/api/messages", content=b"{", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400


# helpers --------------------------------------------------------------------------------------


def shown(card: dict[str, Any] | None) -> str:
    """Everything a card says, as one string."""
    return json.dumps(card, ensure_ascii=False)


def card_activity_id(bot: TeamsBot) -> str:
    """The Teams activity id of the (one) posted card, from the stored message reference."""
    with bot.runtime.engine.connect() as conn:
        ref = conn.execute(
            select(CARD_REFS.c.message_id).where(CARD_REFS.c.surface == "teams")
        ).scalar_one()
    return str(ref).rsplit("|", 1)[1]
