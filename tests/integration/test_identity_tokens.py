"""Personal API tokens over HTTP: made with ``run_bot.py tokens``, used as bearer tokens."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bot.cli import build_parser
from bot.errors import PermanentError
from bot.identity.commands import run_tokens
from bot.store.repo import AUDIT
from bot.store.tables import ApiTokenRow
from bot.wiring import Runtime
from tests.conftest import FakeClock
from tests.integration.test_api import make_client

TOKENS = ApiTokenRow.__table__  # type: ignore[attr-defined]
SHARED = "s3cr3t-console-token-0123456789"
ROLES = """\
default_role: viewer
roles:
  admin: [console:root]
  responder: [console:alice]
  viewer: [console:vic]
"""


def tokens(runtime: Runtime, clock: FakeClock, *argv: str) -> str:
    args = build_parser().parse_args(["tokens", *argv])
    out = io.StringIO()
    assert run_tokens(runtime.settings, args, out, clock, runtime.engine) == 0
    return out.getvalue()


def create(runtime: Runtime, clock: FakeClock, name: str) -> str:
    return tokens(runtime, clock, "create", name).splitlines()[0]


def bearer(secret: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", **extra}


def refusals(runtime: Runtime) -> list[tuple[str, str, str, dict[str, object]]]:
    with runtime.engine.connect() as conn:
        rows = conn.execute(select(AUDIT).where(AUDIT.c.action == "auth_refused")).all()
    return [(r.actor, r.reason, r.detail, json.loads(r.data_json)) for r in rows]


@pytest.fixture
async def bot(tmp_path: Path, clock: FakeClock) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    roles = tmp_path / "roles.yaml"
    roles.write_text(ROLES)
    async for client, runtime in make_client(tmp_path, clock, roles_file=roles):
        yield client, runtime


async def test_a_token_acts_as_its_owner_whatever_x_bot_user_says(
    bot: tuple[httpx.AsyncClient, Runtime], clock: FakeClock
) -> None:
    client, runtime = bot
    output = tokens(runtime, clock, "create", "alice", "--role", "responder")
    secret = output.splitlines()[0]
    assert secret.startswith("icb_") and len(secret) >= 40
    assert "acts as console:alice (role responder)" in output and "only this once" in output
    with runtime.engine.connect() as conn:
        row = conn.execute(select(TOKENS)).one()
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()  # only the hash is kept
    assert secret.startswith(row.prefix) and len(row.prefix) == 12 and row.name == "alice"

    spoofed = bearer(secret, **{"X-Bot-User": "root"})
    acked = await client.post(
        "/api/v1/incidents/INC-1/commands", json={"command": "acknowledge"}, headers=spoofed
    )
    assert acked.status_code == 200, acked.text
    detail = (await client.get("/api/v1/incidents/INC-1", headers=spoofed)).json()
    assert [a["actor"] for a in detail["audit"]] == ["console:alice"]


async def test_a_viewer_token_cannot_acknowledge(
    bot: tuple[httpx.AsyncClient, Runtime], clock: FakeClock
) -> None:
    client, runtime = bot
    secret = create(runtime, clock, "vic")
    assert (await client.get("/api/v1/incidents", headers=bearer(secret))).status_code == 200
    refused = await client.post(
        "/api/v1/incidents/INC-1/commands",
        json={"command": "acknowledge"},
        headers=bearer(secret, **{"X-Bot-User": "root"}),
    )
    assert refused.status_code == 403 and "responder" in refused.json()["error"]
    state = (await client.get("/api/v1/incidents/INC-1", headers=bearer(secret))).json()["state"]
    assert state == "open"


async def test_role_mismatch_is_refused_at_creation(
    bot: tuple[httpx.AsyncClient, Runtime], clock: FakeClock
) -> None:
    _, runtime = bot
    with pytest.raises(PermanentError, match="console:vic has the viewer role"):
        tokens(runtime, clock, "create", "vic", "--role", "admin")
    with pytest.raises(PermanentError, match="letters, digits"):
        tokens(runtime, clock, "create", "not a name")


async def test_revoked_and_unknown_tokens_get_401_and_are_audited(
    bot: tuple[httpx.AsyncClient, Runtime], clock: FakeClock
) -> None:
    client, runtime = bot
    secret = create(runtime, clock, "alice")
    assert (await client.get("/api/v1/incidents", headers=bearer(secret))).status_code == 200
    prefix = secret[:8]
    assert "revoked token 1" in tokens(runtime, clock, "revoke", prefix)
    revoked = await client.get("/api/v1/incidents", headers=bearer(secret))
    assert revoked.status_code == 401
    assert "was revoked" in revoked.json()["error"] and "alice" in revoked.json()["error"]
    unknown = await client.get("/api/v1/incidents", headers=bearer("icb_" + "x" * 43))
    assert unknown.status_code == 401
    assert unknown.json()["error"] == "the bearer token is not a known API token"

    rows = refusals(runtime)
    assert [(actor, data["kind"]) for actor, _, _, data in rows] == [
        ("console:alice", "revoked_token"),
        ("anonymous", "unknown_token"),
    ]
    assert "GET /api/v1/incidents from" in rows[0][2]
    assert all(secret not in json.dumps(row) for row in rows)
    with runtime.engine.connect() as conn:
        actions = [r.action for r in conn.execute(select(AUDIT).order_by(AUDIT.c.id))]
    assert actions[:2] == ["token_created", "token_revoked"]


async def test_list_shows_prefix_role_and_use_never_the_token(
    bot: tuple[httpx.AsyncClient, Runtime], clock: FakeClock
) -> None:
    client, runtime = bot
    alice, vic = create(runtime, clock, "alice"), create(runtime, clock, "vic")
    await client.get("/api/v1/incidents", headers=bearer(alice))
    listed = tokens(runtime, clock, "list")
    assert alice[:12] in listed and alice not in listed and vic not in listed
    assert "responder" in listed and "viewer" in listed and "never" in listed
    tokens(runtime, clock, "revoke", "2")
    rows = json.loads(tokens(runtime, clock, "list", "--all", "--json"))
    assert [(r["name"], r["role"], r["revoked_at"] is not None) for r in rows] == [
        ("alice", "responder", False),
        ("vic", "viewer", True),
    ]
    assert "vic" not in tokens(runtime, clock, "list")
    with pytest.raises(PermanentError, match="no active token"):
        tokens(runtime, clock, "revoke", "2")


async def test_last_used_is_written_at_most_once_a_minute(
    bot: tuple[httpx.AsyncClient, Runtime], clock: FakeClock
) -> None:
    client, runtime = bot
    secret = create(runtime, clock, "alice")

    def last_used() -> object:
        with runtime.engine.connect() as conn:
            return conn.execute(select(TOKENS.c.last_used_at)).scalar_one()

    assert last_used() is None
    await client.get("/api/v1/incidents", headers=bearer(secret))
    first = last_used()
    assert first is not None
    clock.advance(seconds=30)
    await client.get("/api/v1/incidents", headers=bearer(secret))
    assert last_used() == first
    clock.advance(seconds=45)
    await client.get("/api/v1/incidents", headers=bearer(secret))
    assert last_used() != first


async def test_console_login_with_a_personal_token(tmp_path: Path, clock: FakeClock) -> None:
    async for client, runtime in make_client(tmp_path, clock, console_token=SHARED):
        secret = create(runtime, clock, "alice")
        login = await client.post("/login", data={"name": "", "token": secret, "next": "/rules"})
        assert login.status_code == 303 and login.headers["location"] == "/rules"
        page = await client.get("/")
        assert page.status_code == 200 and "console:alice" in page.text
        client.cookies.clear()
        tokens(runtime, clock, "revoke", "1")
        again = await client.post("/login", data={"name": "", "token": secret, "next": "/"})
        assert "error=Unknown+or+revoked+token" in again.headers["location"]


async def test_shared_token_still_works_in_token_mode(tmp_path: Path, clock: FakeClock) -> None:
    async for client, _ in make_client(tmp_path, clock, console_token=SHARED):
        shared = bearer(SHARED, **{"X-Bot-User": "bob"})
        acked = await client.post(
            "/api/v1/incidents/INC-2/commands", json={"command": "acknowledge"}, headers=shared
        )
        assert acked.json()["incident"]["state_changed_by"] == "console:bob"


def test_cli_registers_the_token_commands() -> None:
    args = build_parser().parse_args(["tokens", "create", "alice", "--role", "viewer"])
    assert isinstance(args, argparse.Namespace) and (args.action, args.role) == ("create", "viewer")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["tokens", "create", "alice", "--role", "owner"])


def test_run_bot_tokens_as_a_person_types_it(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "BOT_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
    }

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, str(root / "run_bot.py"), "tokens", *argv]
        return subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True)

    made = run("create", "alice")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.splitlines()[0]
    assert secret.startswith("icb_") and "acts as console:alice (role admin)" in made.stdout
    listed = run("list")
    assert secret[:12] in listed.stdout and secret not in listed.stdout
    wrong = run("revoke", "alice")
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == (
        "error: 'alice': name a token by its id (see 'tokens list') "
        "or by at least the first 7 characters of its prefix"
    )
