"""Credentials as a caller can send them (bearer tokens, personal tokens with a changed tail,
X-Bot-User names, session cookies, the console login form): 200, 303, 401 or 403, never 5xx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.auth import COOKIE
from bot.store import tokens
from tests.conftest import FakeClock
from tests.fuzz.mutate import FUZZ
from tests.integration.test_api import make_client

SHARED = "fuzz-console-token-0123456789abcdef"
ASCII = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)


@pytest.fixture
async def api(tmp_path: Path, clock: FakeClock) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async for client, runtime in make_client(tmp_path, clock, console_token=SHARED):
        with runtime.engine.begin() as conn:
            made = tokens.create(conn, "alice", "console:admin", clock.now())
        yield client, made.secret


@st.composite
def bearers(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["any", "personal", "shared"]))
    if kind == "any":
        return draw(ASCII)
    base = "icb_" + "A" * 43 if kind == "personal" else SHARED
    cut = draw(st.integers(0, len(base)))
    return base[:cut] + draw(ASCII)


@FUZZ
@given(bearer=bearers(), user=ASCII, cookie=ASCII)
async def test_any_credentials_on_the_api(
    api: tuple[httpx.AsyncClient, str], bearer: str, user: str, cookie: str
) -> None:
    client, _ = api
    client.cookies.clear()
    client.cookies.set(COOKIE, cookie)
    headers = {"Authorization": f"Bearer {bearer}", "X-Bot-User": user}
    answer = await client.get("/api/v1/incidents", headers=headers)
    assert answer.status_code in (200, 401, 403), answer.text
    assert bearer not in answer.text or len(bearer) < 8


@FUZZ
@given(name=ASCII, token=ASCII, next_=ASCII)
async def test_any_login_form(
    api: tuple[httpx.AsyncClient, str], name: str, token: str, next_: str
) -> None:
    client, _ = api
    client.cookies.clear()
    form = {"name": name, "token": token, "next": next_}
    answer = await client.post("/login", data=form)
    assert answer.status_code in (200, 303, 400, 401, 403), answer.text
    location = answer.headers.get("location", "/")
    assert location.startswith("/") and not location.startswith("//"), location


async def test_a_personal_token_acts_and_a_changed_one_does_not(
    api: tuple[httpx.AsyncClient, str],
) -> None:
    client, secret = api
    ok = await client.get("/api/v1/incidents", headers={"Authorization": f"Bearer {secret}"})
    assert ok.status_code == 200
    forged = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    refused = await client.get("/api/v1/incidents", headers={"Authorization": f"Bearer {forged}"})
    assert refused.status_code == 401 and forged not in refused.text
