"""SlackChatSurface through the real slack-sdk client against the loopback Slack Web API."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine, select

from bot.domain.card import build_card
from bot.domain.hits import Category, Evidence, Severity
from bot.domain.incident import Incident, State
from bot.errors import PermanentError, TransientError
from bot.outbox import OutboxWorker
from bot.pipeline.ingest import IngestPolicy, ingest
from bot.pipeline.notify import Router, Target
from bot.ports import DigestLine, HealthStatus, MessageRef
from bot.settings import RateLimit
from bot.store.repo import OUTBOX
from integrations.slack import SlackChatSurface, SlackRateLimited, SlackRefused, SlackUnavailable
from tests.builders import alert, console_policy
from tests.conftest import FakeClock
from tests.fakes.slack import BOT_TOKEN, CHANNEL, FakeSlack, Limit

CONSOLE = "https://bot.example.org"
AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def card(state: State = State.OPEN, incident_id: int = 7):  # type: ignore[no-untyped-def]
    incident = Incident(
        id=incident_id,
        group_key="g",
        rule_id="web-5xx",
        title="5xx burst on checkout",
        severity=Severity.HIGH,
        category=Category.APPLICATION,
        service="checkout",
        host="web-1",
        owner="web",
        state=state,
        created_at=AT,
        updated_at=AT,
        first_seen=AT,
        last_seen=AT,
    )
    return build_card(incident, (Evidence("ev-1", AT, "GET /cart 503"),), None, CONSOLE)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = await FakeSlack().start()
    yield server
    await server.stop()


def surface_for(fake: FakeSlack, token: str = BOT_TOKEN, timeout: float = 5) -> SlackChatSurface:
    client = AsyncWebClient(token=token, base_url=fake.api_url, timeout=int(timeout) or 1)
    return SlackChatSurface(client, CONSOLE, timeout, secrets=[token])


async def test_card_is_posted_updated_and_replied_to_in_its_thread(fake: FakeSlack) -> None:
    surface = surface_for(fake)
    ref = await surface.post(card(), CHANNEL)
    assert ref.surface == "slack" and ref.channel == CHANNEL and ref.message_id
    (posted,) = fake.calls_to("chat.postMessage")
    assert posted.authorization == f"Bearer {BOT_TOKEN}"
    assert posted.args["text"].startswith("INC-7 [high] 5xx burst on checkout")
    assert posted.args["blocks"][0]["text"]["text"] == ":red_circle: INC-7 5xx burst on checkout"
    assert posted.args["metadata"] == {
        "event_type": "incident_card",
        "event_payload": {"incident_id": 7, "human_id": "INC-7"},
    }
    await surface.update(ref, card(State.RESOLVED))
    (updated,) = fake.calls_to("chat.update")
    assert updated.args["ts"] == ref.message_id and updated.args["channel"] == CHANNEL
    message = fake.messages[(CHANNEL, ref.message_id)]
    assert [e["action_id"] for e in message["blocks"][-1]["elements"]] == ["reopen", "view"]
    await surface.reply(ref, "resolved by slack:U0RESP001: rolled back")
    reply = fake.calls_to("chat.postMessage")[-1]
    assert reply.args["thread_ts"] == ref.message_id
    assert reply.args["text"] == "resolved by <@U0RESP001>: rolled back"


async def test_check_reports_the_team_and_the_bot(fake: FakeSlack) -> None:
    health = await surface_for(fake).check()
    assert health.status is HealthStatus.OK and health.reason == "team Acme as @incident-bot"
    refused = await surface_for(fake, token="xoxb-not-the-right-one").check()
    assert refused.status is HealthStatus.DOWN and "invalid_auth" in refused.reason
    assert "SLACK_BOT_TOKEN" in refused.reason


@pytest.mark.parametrize(
    ("error", "hint"),
    [
        ("channel_not_found", "use the channel's ID"),
        ("not_in_channel", "/invite"),
        ("invalid_auth", "SLACK_BOT_TOKEN"),
        ("account_inactive", "deactivated"),
        ("invalid_blocks", "Block Kit"),
        ("msg_too_long", "too long"),
    ],
)
async def test_refusals_are_permanent_and_quote_slacks_code(
    fake: FakeSlack, error: str, hint: str
) -> None:
    fake.fail_next("chat.postMessage", error)
    with pytest.raises(SlackRefused) as caught:
        await surface_for(fake).post(card(), CHANNEL)
    assert isinstance(caught.value, PermanentError)
    assert f"chat.postMessage: {error}" in str(caught.value) and hint in str(caught.value)


async def test_rate_limit_is_transient_with_slacks_retry_after(fake: FakeSlack) -> None:
    fake.post_limit = Limit(rate=1, burst=1)
    surface = surface_for(fake)
    await surface.post(card(), CHANNEL)
    with pytest.raises(SlackRateLimited) as caught:
        await surface.post(card(), CHANNEL)
    assert isinstance(caught.value, TransientError) and caught.value.retry_after == 1.0
    assert fake.rejected["chat.postMessage"] == 1


async def test_server_errors_timeouts_and_a_dead_peer_are_transient(fake: FakeSlack) -> None:
    fake.fail_next("chat.update", "internal_error", status=503)
    with pytest.raises(SlackUnavailable, match="HTTP 503"):
        await surface_for(fake).update(MessageRef("slack", CHANNEL, "1.2"), card())
    fake.hold("chat.postMessage")
    with pytest.raises(SlackUnavailable, match=r"did not answer chat\.postMessage in time"):
        await surface_for(fake, timeout=0.2).post(card(), CHANNEL)
    fake.release("chat.postMessage")
    gone = surface_for(fake)
    await fake.stop()
    with pytest.raises(SlackUnavailable, match="cannot reach Slack"):
        await gone.post(card(), CHANNEL)


async def test_digest_is_posted_and_updated_in_place(fake: FakeSlack) -> None:
    surface = surface_for(fake)
    lines = [
        DigestLine(i, f"INC-{i}", "high", f"disk full on node-{i}", f"{CONSOLE}/incidents/{i}")
        for i in range(1, 4)
    ]
    ref = await surface.post_digest(CHANNEL, lines)
    posted = fake.messages[(CHANNEL, ref.message_id)]
    assert posted["text"] == ":ocean: Storm: 3 incidents waiting for a card"
    assert f"<{CONSOLE}/incidents/3|INC-3> disk full on node-3" in str(posted["blocks"])
    await surface.update_digest(ref, lines[2:])
    assert fake.messages[(CHANNEL, ref.message_id)]["text"].startswith(":ocean: Storm: 1 incident ")
    await surface.update_digest(ref, [])
    assert "Storm over" in fake.messages[(CHANNEL, ref.message_id)]["text"]


async def test_no_token_in_any_error_or_log(
    fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    surface = surface_for(fake)
    errors: list[Exception] = []
    for error, status in (("invalid_auth", 200), ("ratelimited", 429), ("fatal_error", 500)):
        fake.fail_next("chat.postMessage", error, status)
        try:
            await surface.post(card(), CHANNEL)
        except Exception as exc:
            errors.append(exc)
    await fake.stop()
    try:
        await surface.reply(MessageRef("slack", CHANNEL, "1.2"), "x")
    except Exception as exc:
        errors.append(exc)
    assert len(errors) == 4
    secret_part = BOT_TOKEN.split("-", 1)[1]
    for text in [*map(str, errors), *map(repr, errors), caplog.text]:
        assert secret_part not in text


def storm_over(fake: FakeSlack) -> bool:
    return any("Storm over" in str(m["text"]) for m in fake.messages.values())


async def storm_rounds(
    box: OutboxWorker, clock: FakeClock, engine: Engine, fake: FakeSlack
) -> None:
    """Outbox rounds a quarter of a second apart until every card and the digest's end are out."""
    for _ in range(400):
        await box.deliver_due()
        with engine.connect() as conn:
            pending = conn.execute(select(OUTBOX.c.id).where(OUTBOX.c.status == "pending")).all()
        if not pending and storm_over(fake):
            return
        clock.advance(0.25)
        await asyncio.sleep(0)
    raise AssertionError("the storm did not drain")


async def test_storm_against_slacks_rate_limits_ends_with_every_card_posted(
    fake: FakeSlack, sqlite_engine: Engine, clock: FakeClock
) -> None:
    def seconds() -> float:
        return clock.now().timestamp()

    fake.clock = seconds
    fake.post_limit = Limit(rate=1, burst=2)  # stricter than the outbox's bucket: 429s happen
    fake.update_limit = Limit(rate=50 / 60, burst=5)
    policy = IngestPolicy(
        router=Router((), (Target("slack", CHANNEL),)),
        flap_window=console_policy().flap_window,
        card_refresh=console_policy().card_refresh,
        realert=console_policy().realert,
    )
    with sqlite_engine.begin() as conn:
        alerts = [alert(clock.now(), service=f"svc-{i}") for i in range(20)]
        created = ingest(conn, alerts, clock.now(), policy).created
    box = OutboxWorker(
        sqlite_engine,
        {"slack": surface_for(fake)},
        clock,
        CONSOLE,
        rate_limits={
            "slack": RateLimit(rate=1, burst=3),
            "slack.update": RateLimit(rate=50 / 60, burst=5),
        },
        monotonic=seconds,
        digest_after={"slack": 10},
    )
    await storm_rounds(box, clock, sqlite_engine, fake)

    with sqlite_engine.connect() as conn:
        rows = conn.execute(select(OUTBOX.c.status, OUTBOX.c.incident_id)).all()
    assert {status for status, _ in rows} == {"sent"}  # nothing dead: every 429 was retried
    assert fake.rejected["chat.postMessage"] > 0
    cards = [c for c in fake.calls_to("chat.postMessage") if "metadata" in c.args]
    posted = sorted(c.args["metadata"]["event_payload"]["incident_id"] for c in cards)
    assert posted == sorted(created)
    digests = [c for c in fake.calls if "Storm" in str(c.args.get("text", "")) and not c.error]
    assert digests[0].method == "chat.postMessage" and digests[-1].method == "chat.update"
    assert "Storm over" in digests[-1].args["text"]
    assert any("waiting for a card" in d.args["text"] for d in digests[1:-1])
    per_second: dict[int, int] = {}
    for call in fake.calls_to("chat.postMessage"):
        per_second[int(call.at)] = per_second.get(int(call.at), 0) + 1
    assert max(per_second.values()) <= 3


async def test_the_fake_checks_requests_as_slack_does(fake: FakeSlack) -> None:
    async with httpx.AsyncClient(base_url=fake.api_url) as http:
        anonymous = await http.post("chat.postMessage", data={"channel": CHANNEL, "text": "x"})
        assert anonymous.json() == {"ok": False, "error": "not_authed"}
        form = await http.post(
            "chat.postMessage", data={"token": BOT_TOKEN, "channel": CHANNEL, "text": "hi"}
        )
        assert form.json()["ok"] and form.json()["channel"] == CHANNEL
        auth = {"Authorization": f"Bearer {BOT_TOKEN}"}
        no_channel = await http.post("chat.postMessage", json={"text": "x"}, headers=auth)
        assert no_channel.json()["error"] == "channel_not_found"
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}] * 51
        too_many = await http.post(
            "chat.postMessage", json={"channel": CHANNEL, "blocks": blocks}, headers=auth
        )
        assert too_many.json()["error"] == "invalid_blocks"
        long_header = [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]
        refused = await http.post(
            "chat.postMessage",
            data={"channel": CHANNEL, "blocks": json.dumps(long_header), "token": BOT_TOKEN},
        )
        assert refused.json()["response_metadata"]["messages"] == [
            "[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text/text]"
        ]
        groups = await http.get("usergroups.list", params={"include_users": "1"}, headers=auth)
        assert groups.json() == {"ok": True, "usergroups": []}
