"""BOT_AUTH_MODE=oidc: the authorization code flow against a loopback OpenID Connect provider.

The bot runs under uvicorn on 127.0.0.1; a real HTTP client follows every redirect between the
bot and the provider, as a browser does, and keeps the cookies.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from bot.errors import ConfigError
from bot.pipeline.ingest import ingest
from bot.server import create_app
from bot.settings import load_settings
from bot.store.repo import AUDIT
from bot.wiring import Runtime
from tests.builders import alert, console_policy
from tests.conftest import FakeClock
from tests.fakes.oidc import CLIENT_ID, CLIENT_SECRET, FakeOidcProvider

SESSION_SECRET = "a-session-secret-of-at-least-32-characters"
SHARED = "s3cr3t-console-token-0123456789"


@dataclass
class OidcBot:
    url: str
    runtime: Runtime
    provider: FakeOidcProvider
    browser: httpx.AsyncClient


@pytest.fixture
async def bot(tmp_path: Path, clock: FakeClock) -> AsyncIterator[OidcBot]:
    provider = await FakeOidcProvider().start()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        local_events_path=tmp_path / "events.db",
        generator=False,
        public_url=url,
        console_token=SHARED,
        auth_mode="oidc",
        oidc_issuer=provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        session_secret=SESSION_SECRET,
    )
    runtime = Runtime(settings, clock=clock)
    await runtime.connect(attempts=1)
    with runtime.engine.begin() as conn:
        ingest(conn, [alert(clock.now(), service="checkout")], clock.now(), console_policy())
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        assert not serving.done(), "the bot's HTTP server did not start"
        await asyncio.sleep(0.01)
    async with httpx.AsyncClient(base_url=url, timeout=10, follow_redirects=True) as browser:
        try:
            yield OidcBot(url, runtime, provider, browser)
        finally:
            server.should_exit = True
            await serving
            await provider.stop()
            runtime.engine.dispose()
            if runtime.event_store is not None:
                runtime.event_store.close()


async def test_sign_in_through_the_provider_and_act_as_yourself(bot: OidcBot) -> None:
    page = await bot.browser.get("/")
    hops = [str(r.url).split("?")[0] for r in page.history]
    assert hops == [
        f"{bot.url}/",
        f"{bot.url}/login",
        f"{bot.url}/auth/login",
        f"{bot.provider.issuer}/authorize",
        f"{bot.url}/auth/callback",
    ]
    assert page.status_code == 200 and "console:alice@example.com" in page.text
    assert bot.provider.token_requests[0]["grant_type"] == "authorization_code"

    acked = await bot.browser.post(
        "/api/v1/incidents/INC-1/commands",
        json={"command": "acknowledge"},
        headers={"X-Bot-User": "root"},
    )
    assert acked.status_code == 200, acked.text
    assert acked.json()["incident"]["state_changed_by"] == "console:alice@example.com"
    with bot.runtime.engine.connect() as conn:
        actions = conn.execute(select(AUDIT.c.actor, AUDIT.c.action).order_by(AUDIT.c.id)).all()
    assert ("console:alice@example.com", "signed_in") in [tuple(a) for a in actions]

    await bot.browser.post("/logout")
    assert "bot_session" not in bot.browser.cookies
    bot.provider.user = {"sub": "u-2002", "email": "bob@example.com"}
    again = await bot.browser.get("/rules")
    assert str(again.url) == f"{bot.url}/rules" and "console:bob@example.com" in again.text


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("wrong_key", "did not verify: bad_signature"),
        ("expired", "did not verify: expired_token"),
        ("wrong_audience", "did not verify: missing_claim (Missing claim: 'azp')"),
        ("wrong_nonce", "did not verify: invalid_claim (Invalid claim: 'nonce')"),
        ("unsigned", "did not verify: unsupported_algorithm (Algorithm of 'none'"),
    ],
)
async def test_an_id_token_that_does_not_verify_signs_nobody_in(
    bot: OidcBot, fault: str, reason: str
) -> None:
    bot.provider.id_token_fault = fault
    answer = await bot.browser.get("/")
    assert answer.status_code == 401 and reason in answer.json()["error"]
    assert "bot_session" not in bot.browser.cookies
    api = await bot.browser.get("/api/v1/incidents")
    assert api.status_code == 401


async def test_a_callback_that_did_not_start_here_is_refused(bot: OidcBot) -> None:
    forged = await bot.browser.get("/auth/callback", params={"code": "stolen", "state": "guess"})
    assert forged.status_code == 401 and "state" in forged.json()["error"].lower()
    denied = await bot.browser.get("/auth/callback", params={"error": "access_denied"})
    assert denied.status_code == 401 and "refused" in denied.json()["error"]


async def test_session_cookies_cannot_be_forged_and_the_shared_token_names_nobody(
    bot: OidcBot,
) -> None:
    await bot.browser.get("/")
    cookie = bot.browser.cookies["bot_session"]
    bot.browser.cookies.clear()
    bot.browser.cookies.set("bot_session", cookie.replace("alice@", "root@"))
    assert (await bot.browser.get("/api/v1/incidents")).status_code == 401
    shared = await bot.browser.get(
        "/api/v1/incidents", headers={"Authorization": f"Bearer {SHARED}", "X-Bot-User": "root"}
    )
    assert shared.status_code == 401 and "only personal API tokens" in shared.json()["error"]


def test_oidc_mode_names_every_missing_setting() -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(auth_mode="oidc", session_secret="short")
    text = str(raised.value)
    for name in ("BOT_OIDC_ISSUER", "BOT_OIDC_CLIENT_ID", "BOT_OIDC_CLIENT_SECRET"):
        assert f"{name}: required when BOT_AUTH_MODE=oidc" in text
    assert "BOT_SESSION_SECRET: use at least 32 characters" in text
