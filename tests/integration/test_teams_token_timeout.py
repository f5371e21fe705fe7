"""Entra ID's token endpoint hangs (takes the connection, never answers): the bot keeps working.

MSAL asks the login fake (tests/fakes/entra.py) for real, over TLS through its proxy, and the
fake's fault switch holds every request to the token service. Must hold: each delivery round
returns while the hang is still on (the Teams card waits; the console card of the same incident
goes out), even after more rounds than the default thread pool has threads; /ready names the
token endpoint; an activity that comes meanwhile is answered 503; once the hang ends the card is
posted exactly once, with a token Entra ID issued.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.pipeline.ingest import ingest
from bot.store.repo import OUTBOX
from integrations.teams.keys import KeysUnavailable, SigningKeys
from tests.builders import alert
from tests.conftest import FakeClock
from tests.fakes.entra import BOTFRAMEWORK_HOST, KEY_ID, FakeEntra
from tests.fakes.faults import Fault
from tests.fakes.teams import APP_ID, PASSWORD, TENANT_ID, TeamsBot, teams_bot

GENERAL = "19:Qe4kM8nB2vX6zP0rT5yW9uA3sD7fG1hJ@thread.tacv2"
ROUNDS = 8  # more than the default thread pool's threads on a small machine (cores + 4)
BOTFRAMEWORK_KEYS = f"https://{BOTFRAMEWORK_HOST}/v1/.well-known/keys"
HANG_S = 90.0  # far longer than the rounds take: a round that waited for its end fails


def status_of(bot: TeamsBot, incident_id: int) -> dict[str, str]:
    """Each surface's outbox status for the incident's card."""
    with bot.runtime.engine.connect() as conn:
        rows = conn.execute(
            select(OUTBOX.c.surface, OUTBOX.c.status).where(OUTBOX.c.incident_id == incident_id)
        ).all()
    return {surface: status for surface, status in rows}


def open_incident(bot: TeamsBot, clock: FakeClock, name: str) -> int:
    with bot.runtime.engine.begin() as conn:
        created = ingest(conn, [alert(clock.now(), service=name)], clock.now(), bot.policy())
    return created.created[0]


async def test_a_hanging_token_endpoint_holds_no_round_and_the_cards_go_out_once_it_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock(datetime(2026, 11, 22, 10, tzinfo=UTC))
    monkeypatch.setenv("TEAMS_TOKEN_TIMEOUT", "0.5")
    # tokens good for a minute: MSAL asks for a new one before every call to the connector
    with FakeEntra(tmp_path / "login", APP_ID, PASSWORD, TENANT_ID, token_lifetime_s=60) as entra:
        for name, value in entra.inbound_env().items():
            monkeypatch.setenv(name, value)
        async with teams_bot(
            tmp_path, clock, anonymous=False, msal=True, accept=entra.issued, connector_timeout=5
        ) as bot:
            created = bot.activity("conversation_update_team_added", membersAdded=[])
            created["channelData"].update(
                eventType="channelCreated", channel={"id": GENERAL, "name": "General"}
            )
            signed = {"Authorization": f"Bearer {entra.connector_token(bot.connector.url)}"}
            answer = await bot.client.post("/api/messages", json=created, headers=signed)
            assert answer.status_code == 202 and await bot.teams.conversations.count() == 1

            entra.faults.set(Fault.HANG, seconds=HANG_S)
            incidents = []
            for n in range(ROUNDS):
                clock.advance(120)  # the earlier cards are due again
                incidents.append(open_incident(bot, clock, f"token-hang-{n}"))
                await bot.outbox.deliver_due()
                # the round did not wait for the hang to end, and the console was not held
                assert entra.faults.active() is Fault.HANG, f"round {n} waited for the hang"
                assert status_of(bot, incidents[-1]) == {"console": "sent", "teams": "pending"}
            assert not bot.connector.of_kind("post")
            check = (await bot.client.get("/ready")).json()["checks"]["surface:teams"]
            assert check["status"] == "down" and "Entra ID" in str(check["reason"]), check

            message = bot.activity("message_channel")
            answer = await bot.client.post("/api/messages", json=message, headers=signed)
            assert answer.status_code == 503 and "Entra ID" in answer.json()["error"]
            assert entra.faults.active() is Fault.HANG

            entra.faults.clear()
            for _ in range(30):
                await asyncio.sleep(0.2)
                clock.advance(120)
                await bot.outbox.deliver_due()
                if all(status_of(bot, i)["teams"] == "sent" for i in incidents):
                    break
            posts = bot.connector.of_kind("post")
            summaries = sorted(str(c.body.get("summary", "")).rsplit(" ", 1)[-1] for c in posts)
            assert summaries == sorted(f"token-hang-{n}" for n in range(ROUNDS))
            assert {c.authorization for c in posts} <= {f"Bearer {t}" for t in entra.issued}
            assert entra.faults.served[Fault.HANG] >= 1
            check = (await bot.client.get("/ready")).json()["checks"]["surface:teams"]
            assert check["status"] == "ok", check


async def test_while_the_key_host_hangs_activities_get_503_and_nothing_else_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No signing keys fetched yet and the key host hangs: each activity is answered 503 (Teams
    sends it again), the bot's other work goes on; once the host answers, the activity is taken."""
    clock = FakeClock(datetime(2026, 11, 22, 10, tzinfo=UTC))
    monkeypatch.setenv("TEAMS_TOKEN_TIMEOUT", "0.5")
    with FakeEntra(tmp_path / "login", APP_ID, PASSWORD, TENANT_ID) as entra:
        for name, value in entra.inbound_env().items():
            monkeypatch.setenv(name, value)
        async with teams_bot(
            tmp_path, clock, anonymous=False, msal=True, accept=entra.issued
        ) as bot:
            created = bot.activity("conversation_update_team_added", membersAdded=[])
            created["channelData"].update(
                eventType="channelCreated", channel={"id": GENERAL, "name": "General"}
            )
            signed = {"Authorization": f"Bearer {entra.connector_token(bot.connector.url)}"}
            entra.faults.set(Fault.HANG, seconds=HANG_S)
            answers = await asyncio.gather(
                *(
                    bot.client.post("/api/messages", json=created, headers=signed)
                    for _ in range(ROUNDS)
                )
            )
            assert [a.status_code for a in answers] == [503] * ROUNDS
            assert "signing keys" in answers[0].json()["error"]
            incident = open_incident(bot, clock, "keys-hang")
            await bot.outbox.deliver_due()
            assert status_of(bot, incident)["console"] == "sent"
            assert entra.faults.active() is Fault.HANG, "the bot waited for the hang to end"
            assert await bot.teams.conversations.count() == 0

            entra.faults.clear()
            for _ in range(20):
                answer = await bot.client.post("/api/messages", json=created, headers=signed)
                if answer.status_code != 503:
                    break
                await asyncio.sleep(0.2)
            assert answer.status_code == 202 and await bot.teams.conversations.count() == 1


async def test_keys_seen_before_are_used_while_the_key_host_hangs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeEntra(tmp_path / "login", APP_ID, PASSWORD, TENANT_ID) as entra:
        for name, value in entra.inbound_env().items():
            monkeypatch.setenv(name, value)
        keys = SigningKeys(timeout=0.5, lifespan_s=0.05)
        header = {"kid": KEY_ID, "alg": "RS256"}
        first = await keys.get_signing_key(BOTFRAMEWORK_KEYS, header)
        entra.faults.set(Fault.HANG, seconds=HANG_S)
        await asyncio.sleep(0.1)  # the fetched key set has aged: the next look asks again
        again = await keys.get_signing_key(BOTFRAMEWORK_KEYS, header)
        assert again.key_id == first.key_id == KEY_ID
        with pytest.raises(KeysUnavailable, match=r"did not arrive within 0\.5 s"):
            await keys.get_signing_key(BOTFRAMEWORK_KEYS, {"kid": "a-key-never-seen"})
        assert entra.faults.active() is Fault.HANG and len(entra.key_requests) == 1


async def test_the_current_token_serves_while_its_renewal_hangs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MSAL renews a token 5 minutes before its end; until its last minute, a hanging renewal
    holds no card: the card goes out with the current token."""
    clock = FakeClock(datetime(2026, 11, 22, 10, tzinfo=UTC))
    monkeypatch.setenv("TEAMS_TOKEN_TIMEOUT", "0.5")
    # good for 5 minutes and 2 s: MSAL wants a new one 2 s after it came
    with FakeEntra(tmp_path / "login", APP_ID, PASSWORD, TENANT_ID, token_lifetime_s=302) as entra:
        for name, value in entra.inbound_env().items():
            monkeypatch.setenv(name, value)
        async with teams_bot(
            tmp_path, clock, anonymous=False, msal=True, accept=entra.issued
        ) as bot:
            created = bot.activity("conversation_update_team_added", membersAdded=[])
            created["channelData"].update(
                eventType="channelCreated", channel={"id": GENERAL, "name": "General"}
            )
            signed = {"Authorization": f"Bearer {entra.connector_token(bot.connector.url)}"}
            answer = await bot.client.post("/api/messages", json=created, headers=signed)
            assert answer.status_code == 202
            first = open_incident(bot, clock, "before-the-hang")
            await bot.outbox.deliver_due()
            assert status_of(bot, first)["teams"] == "sent" and len(entra.issued) == 1

            entra.faults.set(Fault.HANG, seconds=HANG_S)
            await asyncio.sleep(2.5)
            second = open_incident(bot, clock, "during-the-hang")
            await bot.outbox.deliver_due()
            assert status_of(bot, second)["teams"] == "sent"
            assert entra.faults.active() is Fault.HANG and entra.faults.served[Fault.HANG] >= 1
            posts = bot.connector.of_kind("post")
            assert len(posts) == 2 and posts[0].authorization == posts[1].authorization
            assert len(entra.issued) == 1
