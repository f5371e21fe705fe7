"""Teams in the storm, in one process on a clock the test moves (the multi-process storm,
tests/chaos/storm.py, has Teams too, on the system clock).

The Bot Connector answers 5xx, 429 with ``Retry-After``, hangs past the client's timeout, then
resets connections, each for a while, while incidents keep opening (the real Agents SDK over
HTTP to the loopback connector). Must hold: every card reaches Teams exactly once after the
connector recovers; a 429's ``Retry-After`` sets the next attempt; while deliveries fail,
/ready names ``surface:teams`` with since when, and /metrics has the seconds; recovered,
/ready is ok again.

Then Entra ID's token endpoint answers 503 (the login fake, tests/fakes/entra.py, with MSAL
asking it for real and the SDK checking inbound tokens against its keys): cards wait and go out
once it recovers, and activities with no token, a stranger's signature or another app's
audience are refused. Fast: part of the normal suite.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from bot.pipeline.ingest import ingest
from bot.store.repo import OUTBOX
from tests.builders import alert
from tests.conftest import FakeClock
from tests.fakes.entra import KEY_ID, FakeEntra
from tests.fakes.faults import Fault
from tests.fakes.teams import APP_ID, PASSWORD, TENANT_ID, TeamsBot, teams_bot

pytestmark = pytest.mark.chaos

RETRY_AFTER_S = 7.0
KINDS = [Fault.ERROR, Fault.THROTTLE, Fault.HANG, Fault.REFUSE]
GENERAL = "19:Qe4kM8nB2vX6zP0rT5yW9uA3sD7fG1hJ@thread.tacv2"  # the team's General channel


def open_incidents(bot: TeamsBot, clock: FakeClock, names: list[str]) -> list[int]:
    alerts = [alert(clock.now(), service=name) for name in names]
    with bot.runtime.engine.begin() as conn:
        return ingest(conn, alerts, clock.now(), bot.policy()).created


def waiting(bot: TeamsBot) -> list[tuple[int, str]]:
    """(attempts, next attempt ISO time) of the Teams messages still pending."""
    with bot.runtime.engine.connect() as conn:
        rows = conn.execute(
            select(OUTBOX.c.attempts, OUTBOX.c.next_attempt_at).where(
                OUTBOX.c.surface == "teams", OUTBOX.c.status == "pending"
            )
        ).all()
    return [(r[0], _utc(r[1]).isoformat()) for r in rows]


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def teams_check(bot: TeamsBot) -> dict[str, object]:
    answer = await bot.client.get("/ready")
    assert answer.status_code == 200
    found: dict[str, object] = answer.json()["checks"]["surface:teams"]
    return found


async def test_teams_failing_each_way_loses_and_doubles_no_card(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with teams_bot(tmp_path, clock, connector_timeout=0.5) as bot:
        await bot.send(bot.activity("conversation_update_team_added"))
        bot.connector.calls.clear()  # the welcome message
        services: list[str] = []
        for kind in KINDS:
            names = [f"teams-{kind.value}-{n}" for n in range(2)]
            services += names
            open_incidents(bot, clock, names)
            bot.connector.faults.set(kind, seconds=60, retry_after=RETRY_AFTER_S)
            failed_at = clock.now()
            await bot.outbox.deliver_due()
            check = await teams_check(bot)
            assert check["status"] == "down", (kind, check)
            assert check["failing_since"] == failed_at.isoformat(), kind

            if kind is Fault.THROTTLE:  # the next attempt waits for Retry-After, no sooner
                due = failed_at.timestamp() + RETRY_AFTER_S
                assert all(
                    a == 1 and datetime.fromisoformat(at).timestamp() == pytest.approx(due)
                    for a, at in waiting(bot)
                ), waiting(bot)
                served = bot.connector.faults.served[Fault.THROTTLE]
                clock.advance(RETRY_AFTER_S - 1)
                await bot.outbox.deliver_due()
                assert bot.connector.faults.served[Fault.THROTTLE] == served
            else:
                clock.advance(RETRY_AFTER_S - 1)
            check = await teams_check(bot)
            assert check["failing_for_s"] == RETRY_AFTER_S - 1, kind
            assert f"failing for {RETRY_AFTER_S - 1:.0f}s" in str(check["reason"])
            metrics = (await bot.client.get("/metrics")).text
            seconds = f"{RETRY_AFTER_S - 1:.1f}"
            assert f'bot_dependency_failing_seconds{{dependency="surface:teams"}} {seconds}' in (
                metrics
            )

            bot.connector.faults.clear()
            for _ in range(6):  # recovered: catch up (each retry after its backoff)
                clock.advance(120)
                await bot.outbox.deliver_due()
                if not waiting(bot):
                    break
            assert not waiting(bot), (kind, waiting(bot))
            check = await teams_check(bot)
            assert check["status"] == "ok" and "failing_since" not in check, (kind, check)

        posted = Counter(
            name
            for call in bot.connector.of_kind("post")
            for name in services
            if f"5xx burst on {name}" in json.dumps(call.body)
        )
        assert set(posted) == set(services), sorted(set(services) - set(posted))
        assert all(n == 1 for n in posted.values()), posted
        assert bot.connector.faults.served.keys() == set(KINDS)


async def test_teams_tokens_for_real_a_login_outage_delays_cards_and_forged_tokens_are_refused(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No anonymous access and no stand-in token provider: MSAL asks the login fake for the
    app's token and the SDK checks inbound tokens against its keys (tests/fakes/entra.py)."""
    # tokens good for a minute: MSAL asks for a new one before every call to the connector
    with FakeEntra(tmp_path / "login", APP_ID, PASSWORD, TENANT_ID, token_lifetime_s=60) as entra:
        for name, value in entra.inbound_env().items():
            monkeypatch.setenv(name, value)
        async with teams_bot(
            tmp_path, clock, anonymous=False, msal=True, accept=entra.issued
        ) as bot:
            created = bot.activity("conversation_update_team_added", membersAdded=[])
            created["channelData"].update(
                eventType="channelCreated", channel={"id": GENERAL, "name": "General"}
            )
            stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            forged = jwt.decode(
                entra.connector_token(bot.connector.url), options={"verify_signature": False}
            )
            for token in (
                "",  # unsigned
                jwt.encode(forged, stranger, algorithm="RS256", headers={"kid": KEY_ID}),
                entra.connector_token(bot.connector.url, aud="another-app"),
            ):
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                answer = await bot.client.post("/api/messages", json=created, headers=headers)
                assert answer.status_code == 401, token
            assert await bot.teams.conversations.count() == 0
            signed = {"Authorization": f"Bearer {entra.connector_token(bot.connector.url)}"}
            answer = await bot.client.post("/api/messages", json=created, headers=signed)
            assert answer.status_code == 202 and await bot.teams.conversations.count() == 1

            # the login service answers 503: cards wait, /ready says so; then each is posted once
            entra.faults.headers[Fault.ERROR] = {"Retry-After": "1"}
            entra.faults.set(Fault.ERROR, seconds=60)
            open_incidents(bot, clock, ["login-down"])
            await bot.outbox.deliver_due()
            assert waiting(bot) and not bot.connector.calls
            check = await teams_check(bot)
            assert check["status"] == "down" and "Entra ID" in str(check["reason"]), check
            # an activity that comes meanwhile is not taken (nothing done): Teams sends it again
            message = bot.activity("message_channel")
            answer = await bot.client.post("/api/messages", json=message, headers=signed)
            assert answer.status_code == 503 and "Entra ID" in answer.json()["error"]
            entra.faults.clear()
            for _ in range(20):  # MSAL itself answers with the 503 until its Retry-After passes
                await asyncio.sleep(0.2)
                clock.advance(120)
                await bot.outbox.deliver_due()
                if not waiting(bot):
                    break
            posts = bot.connector.of_kind("post")
            assert [c.body.get("summary", "").endswith("login-down") for c in posts] == [True]
            assert posts[0].authorization in {f"Bearer {t}" for t in entra.issued}
            assert entra.faults.served[Fault.ERROR] >= 1
