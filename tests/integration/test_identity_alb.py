"""BOT_AUTH_MODE=alb: the load balancer's signed ``x-amzn-oidc-data`` header names the caller.

Keys are generated here; the ALB key server is faked on 127.0.0.1 and the bot fetches from it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from bot.cli import build_parser
from bot.errors import ConfigError
from bot.identity.alb import AlbKeys, AlbRefused, AlbVerifier
from bot.identity.commands import run_tokens
from bot.settings import load_settings
from bot.store.repo import AUDIT
from bot.wiring import Runtime
from tests.conftest import FakeClock
from tests.fakes.oidc import ALB_ARN, AlbKeyServer, alb_token, new_ec_key, public_pem
from tests.integration.test_api import make_client

KID = "a1b2c3d4-0000-4000-8000-0123456789ab"
ALICE = {"sub": "u-1001", "email": "alice@example.com", "name": "Alice"}
SHARED = "s3cr3t-console-token-0123456789"
PUBLIC = "https://incidents.example.com"


@pytest.fixture
def keys() -> Iterator[tuple[AlbKeyServer, ec.EllipticCurvePrivateKey]]:
    key = new_ec_key()
    with AlbKeyServer() as server:
        server.publish(KID, key)
        yield server, key


@pytest.fixture
async def alb_bot(
    tmp_path: Path, clock: FakeClock, keys: tuple[AlbKeyServer, ec.EllipticCurvePrivateKey]
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    server, _ = keys
    settings = {"auth_mode": "alb", "alb_arn": ALB_ARN, "alb_key_url": server.url}
    public = {"public_url": PUBLIC, "console_token": SHARED}
    async for client, runtime in make_client(tmp_path, clock, **public, **settings):
        yield client, runtime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def signed(token: str) -> dict[str, str]:
    return {"x-amzn-oidc-data": token}


def refused_kinds(runtime: Runtime) -> list[str]:
    with runtime.engine.connect() as conn:
        rows = conn.execute(select(AUDIT.c.data_json).where(AUDIT.c.action == "auth_refused"))
        return [json.loads(r.data_json)["kind"] for r in rows]


async def test_a_signed_header_names_the_caller(
    alb_bot: tuple[httpx.AsyncClient, Runtime],
    keys: tuple[AlbKeyServer, ec.EllipticCurvePrivateKey],
) -> None:
    client, _ = alb_bot
    server, key = keys
    token = alb_token(key, KID, ALICE)
    assert "=" in token  # padded the way the load balancer pads
    headers = {**signed(token), "X-Bot-User": "root", "Origin": PUBLIC}
    elsewhere = await client.post(
        "/api/v1/incidents/INC-1/commands",
        json={"command": "acknowledge"},
        headers={**headers, "Origin": "https://evil.example"},
    )
    assert elsewhere.status_code == 403  # the load balancer's cookie rides along cross-site
    acked = await client.post(
        "/api/v1/incidents/INC-1/commands", json={"command": "acknowledge"}, headers=headers
    )
    assert acked.status_code == 200, acked.text
    assert acked.json()["incident"]["state_changed_by"] == "console:alice@example.com"
    page = await client.get("/", headers=signed(alb_token(key, KID, ALICE, padded=False)))
    assert page.status_code == 200 and "console:alice@example.com" in page.text
    assert server.requests == [KID]  # fetched once, then cached


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing", "no x-amzn-oidc-data header"),
        ("garbage", "not a JWT"),
        ("forged_claims", "signature does not verify"),
        ("other_key", "signature does not verify"),
        ("expired", "has expired"),
        ("unsigned", "signed with 'none'"),
        ("hmac", "signed with 'HS256'"),
        ("wrong_signer", "not by this deployment's load balancer (BOT_ALB_ARN)"),
        ("unknown_kid", "publishes no key"),
    ],
)
async def test_headers_that_do_not_prove_the_load_balancer_are_refused(
    alb_bot: tuple[httpx.AsyncClient, Runtime],
    keys: tuple[AlbKeyServer, ec.EllipticCurvePrivateKey],
    case: str,
    reason: str,
) -> None:
    client, runtime = alb_bot
    server, key = keys
    good = alb_token(key, KID, ALICE)
    if case == "missing":
        headers: dict[str, str] = {}
    elif case == "garbage":
        headers = signed("not-a-token")
    elif case == "forged_claims":
        head, _, sig = good.split(".")
        mallory = {**ALICE, "email": "root@example.com", "exp": 9999999999}
        body = base64.urlsafe_b64encode(json.dumps(mallory).encode()).decode()
        headers = signed(f"{head}.{body}.{sig}")
    elif case == "other_key":
        headers = signed(alb_token(new_ec_key(), KID, ALICE))
    elif case == "expired":
        headers = signed(alb_token(key, KID, ALICE, expires_in=-300))
    elif case == "unsigned":
        headers = signed(alb_token(key, KID, ALICE, alg="none"))
    elif case == "hmac":
        # the key-confusion attack: the published public key used as an HMAC secret
        parts = [{"alg": "HS256", "kid": KID, "signer": ALB_ARN}, {**ALICE, "exp": 9999999999}]
        signing = ".".join(_b64(json.dumps(part).encode()) for part in parts)
        mac = hmac.new(public_pem(key), signing.encode(), hashlib.sha256).digest()
        forged = f"{signing}.{_b64(mac)}"
        headers = signed(forged)
    elif case == "wrong_signer":
        other = ALB_ARN.replace("incident-bot", "someone-elses")
        headers = signed(alb_token(key, KID, ALICE, signer=other))
    else:
        headers = signed(alb_token(key, "f0f0f0f0-dead-beef", ALICE))

    answer = await client.get("/api/v1/incidents", headers=headers)
    assert answer.status_code == 401 and reason in answer.json()["error"]
    command = await client.post(
        "/api/v1/incidents/INC-1/commands", json={"command": "acknowledge"}, headers=headers
    )
    assert command.status_code == 401
    page = await client.get("/", headers=headers)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    if case in ("missing", "garbage", "unsigned", "hmac", "wrong_signer"):
        assert server.requests == []  # refused before any key was asked for
    assert refused_kinds(runtime) == ["alb_header"]  # audited once a minute per address
    with runtime.engine.connect() as conn:
        stored = conn.execute(select(AUDIT.c.reason, AUDIT.c.data_json)).all()
    assert all(good not in str(row) for row in stored)


async def test_the_shared_token_names_nobody_but_personal_tokens_work(
    alb_bot: tuple[httpx.AsyncClient, Runtime], clock: FakeClock
) -> None:
    client, runtime = alb_bot
    shared = {"Authorization": f"Bearer {SHARED}", "X-Bot-User": "root"}
    refused = await client.get("/api/v1/incidents", headers=shared)
    assert refused.status_code == 401 and "only personal API tokens" in refused.json()["error"]
    login = await client.post("/login", data={"name": "root", "token": SHARED, "next": "/"})
    assert "error=" in login.headers["location"] and "bot_session" not in login.cookies
    form = await client.get("/login")
    assert "through the load balancer" in form.text

    out = io.StringIO()
    args = build_parser().parse_args(["tokens", "create", "deploy-script"])
    run_tokens(runtime.settings, args, out, clock, runtime.engine)
    secret = out.getvalue().splitlines()[0]
    mine = {"Authorization": f"Bearer {secret}", "X-Bot-User": "root"}
    listed = await client.get("/api/v1/incidents", headers=mine)
    assert listed.status_code == 200  # scripts need no load-balancer header


async def test_issuer_is_checked_when_configured(
    keys: tuple[AlbKeyServer, ec.EllipticCurvePrivateKey],
) -> None:
    server, key = keys
    verifier = AlbVerifier(ALB_ARN, AlbKeys(server.url), issuer="https://login.example.com")
    with pytest.raises(AlbRefused, match="BOT_ALB_ISSUER"):
        verifier.verify(alb_token(key, KID, ALICE))
    ok = verifier.verify(alb_token(key, KID, {**ALICE, "iss": "https://login.example.com"}))
    assert ok.name == "alice@example.com" and ok.subject == "u-1001"
    by_sub = AlbVerifier(ALB_ARN, AlbKeys(server.url), claim="sub")
    assert by_sub.verify(alb_token(key, KID, ALICE)).name == "u-1001"
    no_claim = AlbVerifier(ALB_ARN, AlbKeys(server.url), claim="preferred_username")
    with pytest.raises(AlbRefused, match="BOT_IDENTITY_CLAIM"):
        no_claim.verify(alb_token(key, KID, ALICE))


async def test_an_unreachable_key_server_is_a_503_not_a_401(
    tmp_path: Path, clock: FakeClock
) -> None:
    with AlbKeyServer() as server:
        dead = server.url
    key = new_ec_key()
    settings = {"auth_mode": "alb", "alb_arn": ALB_ARN, "alb_key_url": dead}
    async for client, _ in make_client(tmp_path, clock, **settings):
        answer = await client.get("/api/v1/incidents", headers=signed(alb_token(key, KID, ALICE)))
        assert answer.status_code == 503 and "cannot fetch" in answer.json()["error"]


def test_alb_mode_needs_the_load_balancer_arn(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="BOT_ALB_ARN: required"):
        load_settings(auth_mode="alb")
    with pytest.raises(ConfigError, match="is not a load balancer ARN"):
        load_settings(auth_mode="alb", alb_arn="arn:aws:s3:::bucket")
    settings = load_settings(auth_mode="alb", alb_arn=ALB_ARN, http_host="0.0.0.0")
    assert settings.console_token is None  # no shared token needed behind the load balancer
    from bot.identity.config import alb_key_base

    assert alb_key_base(settings) == "https://public-keys.auth.elb.eu-west-1.amazonaws.com"
