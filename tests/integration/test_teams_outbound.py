"""Bot → Teams: cards posted, updated and answered through the outbox and the real Agents SDK.

The SDK talks HTTP to a loopback Bot Connector that records each call with its bearer token
and fails on demand; the outbox retries what is worth retrying and gives up on the rest.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from microsoft_agents.activity import ChannelAccount, ConversationParameters
from microsoft_agents.hosting.core.connector.teams import TeamsConnectorClient
from sqlalchemy import select

from bot.errors import PermanentError, TransientError
from bot.outbox import OutboxWorker
from bot.pipeline.ingest import ingest
from bot.ports import HealthStatus, MessageRef
from bot.settings import RateLimit
from bot.store.repo import CARD_REFS, OUTBOX
from integrations.teams.surface import retry_after
from tests.builders import alert
from tests.conftest import FakeClock
from tests.fakes.teams import CONNECTOR_TOKEN, PASSWORD, FakeBotConnector, TeamsBot, teams_bot

GENERAL = "19:Qe4kM8nB2vX6zP0rT5yW9uA3sD7fG1hJ@thread.tacv2"
ANN = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
ROLES = f"""
default_role: viewer
roles:
  admin: [console:local]
  responder: [teams:{ANN}]
"""


@pytest.fixture
async def bot(tmp_path: Path, clock: FakeClock) -> AsyncIterator[TeamsBot]:
    async with teams_bot(tmp_path, clock, roles=ROLES) as running:
        await running.send(running.activity("conversation_update_team_added"))
        running.connector.calls.clear()  # forget the welcome message
        yield running


def open_incidents(bot: TeamsBot, clock: FakeClock, n: int = 1) -> list[int]:
    alerts = [alert(clock.now(), service=f"svc-{i}") for i in range(n)]
    with bot.runtime.engine.begin() as conn:
        return ingest(conn, alerts, clock.now(), bot.policy()).created


def teams_rows(bot: TeamsBot) -> list[Any]:
    with bot.runtime.engine.connect() as conn:
        return list(
            conn.execute(
                select(OUTBOX).where(OUTBOX.c.surface == "teams").order_by(OUTBOX.c.id)
            ).all()
        )


def header(card: dict[str, Any] | None) -> str:
    assert card is not None
    return str(next(b for b in card["body"] if b.get("bleed"))["items"][0]["text"])


async def test_a_new_incident_is_posted_to_the_routed_channel(
    bot: TeamsBot, clock: FakeClock
) -> None:
    (incident,) = open_incidents(bot, clock)
    await bot.outbox.deliver_due()
    (post,) = bot.connector.calls
    assert (post.method, post.kind, post.conversation_id, post.activity_id) == (
        "POST",
        "post",
        GENERAL,
        None,
    )
    assert post.authorization == f"Bearer {CONNECTOR_TOKEN}"
    assert header(post.card) == f"HIGH · INC-{incident} · open"
    assert post.body["summary"] == f"INC-{incident}: 5xx burst on svc-0"
    with bot.runtime.engine.connect() as conn:
        ref = conn.execute(select(CARD_REFS).where(CARD_REFS.c.surface == "teams")).one()
    assert (ref.channel, ref.message_id.split("|")[0]) == ("sre/general", GENERAL)
    assert [r.status for r in teams_rows(bot)] == ["sent"]


async def test_an_action_in_the_console_updates_the_teams_card_in_place(
    bot: TeamsBot, clock: FakeClock
) -> None:
    (incident,) = open_incidents(bot, clock)
    await bot.outbox.deliver_due()
    card_id = activity_id_of_card(bot)
    done = await bot.client.post(
        f"/api/v1/incidents/INC-{incident}/commands", json={"command": "acknowledge"}
    )
    assert done.status_code == 200
    await bot.outbox.deliver_due()
    update, reply = bot.connector.calls[1:]
    assert (update.method, update.conversation_id, update.activity_id) == ("PUT", GENERAL, card_id)
    assert header(update.card) == f"HIGH · INC-{incident} · acknowledged"
    assert (reply.method, reply.kind, reply.activity_id) == ("POST", "reply", card_id)
    assert reply.text == "acknowledged by console:local"
    assert reply.body["textFormat"] == "plain"


async def test_an_action_in_teams_changes_the_console_card(bot: TeamsBot, clock: FakeClock) -> None:
    (incident,) = open_incidents(bot, clock)
    await bot.outbox.deliver_due()
    click = bot.activity("invoke_action_execute", id=f"f:{uuid.uuid4()}")
    click["value"]["action"]["data"] = {"incident_id": incident, "version": "r1"}
    assert (await bot.send(click)).status_code == 200
    detail = (await bot.client.get(f"/api/v1/incidents/INC-{incident}")).json()
    assert (detail["state"], detail["audit"][-1]["actor"]) == ("acknowledged", f"teams:{ANN}")
    with bot.runtime.engine.connect() as conn:
        console = conn.execute(
            select(OUTBOX.c.kind, OUTBOX.c.status).where(
                OUTBOX.c.surface == "console", OUTBOX.c.kind == "update"
            )
        ).all()
    assert [tuple(r) for r in console] == [("update", "pending")]
    async with bot.runtime.broadcaster.subscribe() as live:
        await bot.outbox.deliver_due()
        changes = [live.get_nowait() for _ in range(live.qsize())]
    assert (incident, "update") in [(c.incident_id, c.kind) for c in changes]
    fragment = (await bot.client.get(f"/console/cards/{incident}")).text
    assert 'data-state="acknowledged"' in fragment


@pytest.mark.parametrize(
    ("status", "header_value", "wait"),
    [(429, "7", 7.0), (412, None, None), (502, None, None), (504, "2", 2.0)],
)
async def test_throttling_and_outages_are_retried(
    bot: TeamsBot, clock: FakeClock, status: int, header_value: str | None, wait: float | None
) -> None:
    open_incidents(bot, clock)
    bot.connector.fail_next(status, retry_after=header_value)
    await bot.outbox.deliver_due()
    (row,) = teams_rows(bot)
    assert (row.status, row.attempts) == ("pending", 1)
    assert f"Teams answered {status}" in row.last_error
    if wait is not None:
        assert row.next_attempt_at == clock.now() + timedelta(seconds=wait)
    clock.advance(300)
    await bot.outbox.deliver_due()
    assert [r.status for r in teams_rows(bot)] == ["sent"]
    assert [c.kind for c in bot.connector.calls] == ["refused-post", "post"]


@pytest.mark.parametrize("status", [401, 403, 404])
async def test_refusals_are_not_retried(bot: TeamsBot, clock: FakeClock, status: int) -> None:
    open_incidents(bot, clock)
    bot.connector.fail_next(status)
    await bot.outbox.deliver_due()
    (row,) = teams_rows(bot)
    assert row.status == "dead" and f"Teams answered {status}" in row.last_error
    assert CONNECTOR_TOKEN not in row.last_error


async def test_an_update_of_a_deleted_card_is_skipped(bot: TeamsBot, clock: FakeClock) -> None:
    (incident,) = open_incidents(bot, clock)
    await bot.outbox.deliver_due()
    await bot.client.post(f"/api/v1/incidents/INC-{incident}/commands", json={"command": "resolve"})
    bot.connector.fail_next(404, times=2)
    await bot.outbox.deliver_due()
    rows = teams_rows(bot)
    assert [(r.kind, r.status) for r in rows] == [
        ("post", "sent"),
        ("update", "sent"),
        ("reply", "sent"),
    ]
    assert rows[1].last_error.startswith("skipped: Teams answered 404")


async def test_a_route_to_an_unknown_channel_fails_for_good(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with teams_bot(tmp_path, clock, channel="sre/nowhere") as bot:
        await bot.send(bot.activity("conversation_update_team_added"))
        open_incidents(bot, clock)
        await bot.outbox.deliver_due()
        (row,) = teams_rows(bot)
        assert row.status == "dead" and "no Teams conversation is known as 'sre/nowhere'" in (
            row.last_error
        )


async def test_the_suggested_bucket_paces_a_storm(bot: TeamsBot, clock: FakeClock) -> None:
    open_incidents(bot, clock, n=8)
    paced = OutboxWorker(
        bot.runtime.engine,
        bot.runtime.surfaces,
        clock,
        bot.runtime.settings.console_url,
        rate_limits={"teams": RateLimit(rate=1.6, burst=5)},
    )
    await paced.deliver_due()
    assert len(bot.connector.of_kind("post")) == 5
    assert [r.status for r in teams_rows(bot)].count("pending") == 3


async def test_health_counts_conversations(tmp_path: Path, clock: FakeClock) -> None:
    async with teams_bot(tmp_path / "elsewhere", clock, default_channel="SRE/On-call") as bot:
        await bot.send(bot.activity("conversation_update_team_added"))
        wrong = await bot.teams.surface.check()
        assert wrong.status is HealthStatus.DEGRADED and "'SRE/On-call'" in wrong.reason
    async with teams_bot(tmp_path, clock, default_channel="SRE/General") as bot:
        empty = await bot.teams.surface.check()
        assert empty.status is HealthStatus.DEGRADED and "no Teams conversations" in empty.reason
        await bot.send(bot.activity("conversation_update_team_added"))
        assert await bot.teams.surface.check() == type(empty)(HealthStatus.OK, "1 conversation")
        ready = (await bot.client.get("/ready")).json()
        assert ready["checks"]["surface:teams"] == {"status": "ok", "reason": "1 conversation"}


async def test_the_surface_translates_failures_itself(bot: TeamsBot, clock: FakeClock) -> None:
    (incident,) = open_incidents(bot, clock)
    card = await bot.runtime.operations.card(incident)
    bot.connector.fail_next(429, retry_after="7")
    with pytest.raises(TransientError) as throttled:
        await bot.teams.surface.post(card, "sre/general")
    assert throttled.value.retry_after == 7.0
    with pytest.raises(PermanentError, match="not a Teams message reference"):
        await bot.teams.surface.update(MessageRef("teams", "sre/general", "nonsense"), card)
    ref = await bot.teams.surface.post(card, GENERAL)  # a conversation id routes too
    assert ref.channel == GENERAL and ref.message_id.startswith(f"{GENERAL}|")


def test_retry_after_reads_seconds_and_dates() -> None:
    now = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    assert retry_after({"Retry-After": "12"}, now) == 12.0
    assert retry_after({"Retry-After": "Sun, 22 Nov 2026 10:00:30 GMT"}, now) == 30.0
    assert retry_after({"Retry-After": "soon"}, now) is None
    assert retry_after({}, now) is None


def activity_id_of_card(bot: TeamsBot) -> str:
    with bot.runtime.engine.connect() as conn:
        ref = conn.execute(select(CARD_REFS.c.message_id).where(CARD_REFS.c.surface == "teams"))
        return str(ref.scalar_one()).rsplit("|", 1)[1]


async def test_no_token_or_password_reaches_the_logs(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with teams_bot(tmp_path, clock) as bot:
        await bot.send(bot.activity("conversation_update_team_added"))
        open_incidents(bot, clock)
        bot.connector.fail_next(429, retry_after="1")
        await bot.outbox.deliver_due()
        clock.advance(5)
        await bot.outbox.deliver_due()
        await bot.send(bot.activity("message_channel"))
    assert bot.connector.of_kind("post") and caplog.records
    assert CONNECTOR_TOKEN not in caplog.text and PASSWORD not in caplog.text


async def test_the_fake_connector_creates_conversations_like_teams() -> None:
    connector = await FakeBotConnector().start()
    client = TeamsConnectorClient(endpoint=connector.url, token=CONNECTOR_TOKEN)
    try:
        created = await client.conversations.create_conversation(
            ConversationParameters(
                is_group=False,
                agent=ChannelAccount(id="28:bot"),
                members=[ChannelAccount(id="29:someone")],
                tenant_id="5e1b7c9d-2f4a-4b6c-8d0e-1f3a5b7c9d0e",
            )
        )
    finally:
        await client.close()
        await connector.stop()
    assert created.id.startswith("a:conversation-") and created.activity_id
    (call,) = connector.calls
    assert (call.kind, call.authorization) == ("create", f"Bearer {CONNECTOR_TOKEN}")
    assert call.body["members"] == [{"id": "29:someone"}]
