"""Forged or broken credentials on every inbound route get 401 (never 500), audited without the
credential. The Teams route runs the Agents SDK's own token check (anonymous access off)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.store.repo import AUDIT
from tests.conftest import FakeClock
from tests.fakes.entra import FakeEntra
from tests.fakes.teams import APP_ID, PASSWORD, TENANT_ID, TeamsBot, teams_bot

CLAIMS = {
    "aud": APP_ID,
    "iss": "https://api.botframework.com",
    "serviceurl": "https://smba.trafficmanager.net/teams/",
    "exp": 4_102_444_800,
    "nbf": 1_700_000_000,
}


def _b64(data: Mapping[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned() -> str:
    """``alg: none``, no ``kid``: what a forger sends first."""
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(CLAIMS)}."


def with_app_password() -> str:
    """HS256 signed with the app password (a shared secret the bot knows), no ``kid``."""
    return jwt.encode(CLAIMS, PASSWORD, algorithm="HS256")


def with_own_key() -> str:
    """RS256 with a ``kid`` Microsoft never published."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(CLAIMS, key, algorithm="RS256", headers={"kid": "forged-key-1"})


@pytest.fixture
async def bot(tmp_path: Path, clock: FakeClock) -> AsyncIterator[TeamsBot]:
    async with teams_bot(tmp_path, clock, anonymous=False) as running:
        yield running


async def post(bot: TeamsBot, token: str) -> int:
    activity = bot.activity("message_channel")
    sent = await bot.client.post(
        "/api/messages", json=activity, headers={"Authorization": f"Bearer {token}"}
    )
    return sent.status_code


def refusals(bot: TeamsBot) -> list[tuple[str, str, str]]:
    with bot.runtime.engine.connect() as conn:
        rows = conn.execute(select(AUDIT).where(AUDIT.c.action == "auth_refused")).all()
    return [(r.actor, r.surface, r.reason) for r in rows]


@pytest.mark.parametrize("forge", [unsigned, with_app_password], ids=["alg-none", "hs256"])
async def test_a_token_without_kid_is_refused_with_401_and_audited(
    bot: TeamsBot, forge: object
) -> None:
    token = forge()  # type: ignore[operator]
    assert await post(bot, token) == 401
    audited = refusals(bot)
    assert [(actor, surface) for actor, surface, _ in audited] == [("anonymous", "teams")]
    assert token not in json.dumps(audited) and "kid" in audited[0][2]


async def test_a_token_with_an_unknown_kid_is_refused_with_401(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the published keys come from the login fake (unreachable keys would answer 503: the token
    # could not be checked), and the forged key id is not among them
    with FakeEntra(tmp_path / "login", APP_ID, PASSWORD, TENANT_ID) as entra:
        for name, value in entra.inbound_env().items():
            monkeypatch.setenv(name, value)
        async with teams_bot(tmp_path, clock, anonymous=False) as bot:
            assert await post(bot, with_own_key()) == 401
            audited = refusals(bot)
            assert audited and "did not validate" in audited[0][2]
            assert entra.key_requests


async def test_no_token_or_not_a_bearer_is_refused(bot: TeamsBot) -> None:
    activity = bot.activity("message_channel")
    assert (await bot.client.post("/api/messages", json=activity)).status_code == 401
    basic = {"Authorization": "Basic dXNlcjpwYXNz"}
    assert (await bot.client.post("/api/messages", json=activity, headers=basic)).status_code == 401


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    token=st.one_of(
        st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1),
        st.builds(
            lambda h, c, s: f"{h}.{c}.{s}",
            st.dictionaries(st.sampled_from(["alg", "typ", "kid", "x5t", "crit"]), st.text()).map(
                _b64
            ),
            st.dictionaries(st.text(max_size=8), st.integers() | st.text()).map(_b64),
            st.text(alphabet="abcdefABCDEF0123456789-_", max_size=20),
        ),
    )
)
async def test_any_bearer_string_gets_401(bot: TeamsBot, token: str) -> None:
    assert await post(bot, token) == 401
