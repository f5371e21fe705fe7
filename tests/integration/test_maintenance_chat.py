"""``/incident maintenance …`` through the real Slack (bolt) and Teams (Agents SDK) paths,
signed like the services sign them, against the loopback fakes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.store.repo import AUDIT
from tests.conftest import FakeClock
from tests.fakes.slack import CHANNEL, SlackBot, payload, slack_bot
from tests.fakes.teams import TeamsBot, teams_bot

RESPONDER, VIEWER = "U0RESP001", "U0VIEW001"
ROLES = {"default_role": "viewer", "roles": {"responder": [f"slack:{RESPONDER}"]}}
ANN = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
GENERAL = "19:Qe4kM8nB2vX6zP0rT5yW9uA3sD7fG1hJ@thread.tacv2"
TEAMS_ROLES = f"""
default_role: viewer
roles:
  responder: [teams:{ANN}]
"""


# Slack -------------------------------------------------------------------------------------------


@pytest.fixture
async def slack(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SlackBot]:
    async with slack_bot(tmp_path, clock, ROLES) as running:
        yield running


async def slash(bot: SlackBot, text: str, user: str = RESPONDER, name: str = "c1") -> str:
    fields = payload(
        "slash_command",
        channel=CHANNEL,
        user=user,
        command="/incident",
        text=text,
        response_url=bot.fake.response_url(name),
        trigger_id=f"trigger-{name}",
    )
    response = await bot.slack.command(fields)
    assert response.status_code == 200, response.text
    if response.content:
        return str(response.json()["text"])
    await bot.settle()
    (answer,) = bot.fake.responses[name]
    assert answer["response_type"] == "ephemeral"
    return str(answer["text"])


def maintenance_audit(engine: Any) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(AUDIT).where(AUDIT.c.action.like("maintenance.%")))
        return [(r.actor, r.surface, r.action) for r in rows]


async def test_slack_add_list_remove(slack: SlackBot) -> None:
    added = await slash(
        slack,
        "maintenance add sunday-patching sun 02:00 4h Europe/Berlin service=db* OS patches",
        name="add",
    )
    # the clock reads Sunday 2026-11-22 11:00 in Berlin: the next one is a week later
    assert added == (
        "Added maintenance window sunday-patching: sun 02:00 for 4h (Europe/Berlin) · "
        "service=db* · next Sun 2026-11-29 02:00."
    )
    nightly = await slash(
        slack, "maintenance add nightly cron 30 1 * * * 45m host=db-1 critical backups", name="n"
    )
    assert nightly.startswith("Added maintenance window nightly: cron '30 1 * * *' for 45m (UTC)")
    assert "host=db-1, critical too" in nightly
    listed = await slash(slack, "maintenance list", name="list")
    assert listed.splitlines()[0] == "Maintenance windows:"
    assert [line.split(":")[0] for line in listed.splitlines()[1:]] == [
        "• nightly",
        "• sunday-patching",
    ]
    assert await slash(slack, "maintenance remove nightly", name="rm") == (
        "Removed maintenance window 'nightly'."
    )
    assert maintenance_audit(slack.runtime.engine) == [
        (f"slack:{RESPONDER}", "slack", "maintenance.add"),
        (f"slack:{RESPONDER}", "slack", "maintenance.add"),
        (f"slack:{RESPONDER}", "slack", "maintenance.remove"),
    ]


async def test_slack_mistakes_and_roles(slack: SlackBot) -> None:
    said = await slash(slack, "maintenance add x sun 02:00 4h", name="a")
    assert said.startswith("maintenance add needs at least one field=value matcher")
    assert "Usage: `/incident maintenance list|remove NAME|add NAME sun 02:00 4h" in said
    zone = await slash(slack, "maintenance add x sun 02:00 4h Mars/Base service=db", name="z")
    assert "unknown time zone 'Mars/Base'" in zone
    refused = await slash(slack, "maintenance add x sun 02:00 4h service=db", VIEWER, "v")
    assert "you need the responder role (you are viewer)" in refused
    assert await slash(slack, "maintenance list", VIEWER, "l") == "No maintenance windows."


# Teams -------------------------------------------------------------------------------------------


@pytest.fixture
async def teams(tmp_path: Path, clock: FakeClock) -> AsyncIterator[TeamsBot]:
    async with teams_bot(tmp_path, clock, roles=TEAMS_ROLES) as running:
        assert (
            await running.send(running.activity("conversation_update_team_added"))
        ).status_code == 202
        yield running


def message(bot: TeamsBot, text: str) -> dict[str, Any]:
    activity = bot.activity(
        "message_channel",
        id=str(uuid.uuid4().int)[:13],
        text=f"<at>Incident bot</at> {text}",
        from_={"id": f"29:{ANN}", "name": "Ann", "aadObjectId": ANN},
    )
    activity["conversation"]["id"] = f"{GENERAL};messageid={activity['id']}"
    return activity


async def test_teams_add_list_remove(teams: TeamsBot) -> None:
    await teams.send(
        message(teams, "maintenance add sunday-patching sat-sun 22:00 6h UTC service=db* patches")
    )
    replies = teams.connector.of_kind("reply")
    assert replies[-1].text == (
        "Added maintenance window sunday-patching: sat,sun 22:00 for 6h (UTC) · service=db* · "
        "next Sun 2026-11-22 22:00."
    )
    await teams.send(message(teams, "maintenance list"))
    assert "• sunday-patching: sat,sun 22:00" in teams.connector.of_kind("reply")[-1].text
    windows = (await teams.client.get("/api/v1/maintenance")).json()["windows"]
    assert [(w["name"], w["created_by"]) for w in windows] == [("sunday-patching", f"teams:{ANN}")]
    await teams.send(message(teams, "maintenance remove sunday-patching"))
    assert teams.connector.of_kind("reply")[-1].text == (
        "Removed maintenance window 'sunday-patching'."
    )
    assert maintenance_audit(teams.runtime.engine) == [
        (f"teams:{ANN}", "teams", "maintenance.add"),
        (f"teams:{ANN}", "teams", "maintenance.remove"),
    ]
