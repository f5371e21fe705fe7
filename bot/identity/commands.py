"""``run_bot.py tokens create|list|revoke``: personal API tokens from the command line."""

from __future__ import annotations

import argparse
import getpass
import json
from typing import Any, TextIO

from sqlalchemy import Engine

from bot.auth import valid_name
from bot.authz import Role, Roles
from bot.errors import PermanentError
from bot.ports import Clock, SystemClock
from bot.settings import Settings
from bot.store import audit, tokens

EXIT_OK = 0


def add_token_commands(sub: Any) -> None:
    """Register ``tokens`` and its actions on the CLI's sub-parsers."""
    parser = sub.add_parser("tokens", help="create, list and revoke personal API tokens")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser(
        "create", help="make a token acting as NAME (printed once, stored hashed)"
    )
    create.add_argument("name", help="the person or script the token acts as (console:NAME)")
    create.add_argument(
        "--role",
        choices=[r.value for r in Role],
        help="the role you expect NAME to have; refused if the roles file says otherwise",
    )
    listing = actions.add_parser("list", help="list tokens (active ones unless --all)")
    listing.add_argument("--all", action="store_true", help="include revoked tokens")
    listing.add_argument("--json", action="store_true", help="print JSON")
    revoke = actions.add_parser("revoke", help="revoke a token by its id or prefix")
    revoke.add_argument("token", metavar="ID|PREFIX", help="e.g. 7 or icb_Zx3q")


def run_tokens(
    settings: Settings,
    args: argparse.Namespace,
    out: TextIO,
    clock: Clock | None = None,
    engine: Engine | None = None,
) -> int:
    from bot.store.db import check_connection, make_engine, migrate

    clock = clock or SystemClock()
    if engine is None:
        engine = make_engine(settings.database_url)
        check_connection(engine)
        migrate(engine)
    roles = Roles.load(settings.roles_file) if settings.roles_file else Roles.embedded_default()
    actor = f"cli:{getpass.getuser()}"
    if args.action == "create":
        return _create(engine, roles, clock, actor, args.name, args.role, out)
    if args.action == "revoke":
        with engine.begin() as conn:
            token = tokens.revoke(conn, args.token, clock.now())
            audit.append(conn, [_entry(clock, actor, "token_revoked", token)])
        out.write(f"revoked token {token.id} ({token.prefix}…) of {token.name}\n")
        return EXIT_OK
    with engine.connect() as conn:
        items = tokens.list_tokens(conn, include_revoked=args.all)
    if args.json:
        out.write(json.dumps([_json(t, roles) for t in items]) + "\n")
        return EXIT_OK
    if not items:
        out.write("no tokens (make one with: run_bot.py tokens create NAME)\n")
        return EXIT_OK
    out.write(f"{'ID':>4}  {'PREFIX':<13} {'NAME':<24} {'ROLE':<10} {'LAST USED':<17} STATUS\n")
    for t in items:
        used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
        status = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else "active"
        role = roles.role_of(f"console:{t.name}").value
        out.write(f"{t.id:>4}  {t.prefix + '…':<13} {t.name:<24} {role:<10} {used:<17} {status}\n")
    return EXIT_OK


def _create(
    engine: Engine,
    roles: Roles,
    clock: Clock,
    actor: str,
    name: str,
    expected: str | None,
    out: TextIO,
) -> int:
    if not valid_name(name):
        raise PermanentError(f"{name!r}: use letters, digits, '.', '_', '@' or '-' (max 64)")
    identity = f"console:{name}"
    role = roles.role_of(identity)
    if expected is not None and role.value != expected:
        source = "the embedded default" if roles.embedded else "BOT_ROLES_FILE"
        raise PermanentError(
            f"{identity} has the {role.value} role in {source}, not {expected}: a token acts "
            f"with its identity's role; list {identity} under {expected} in the roles file "
            "first, or leave out --role"
        )
    with engine.begin() as conn:
        made = tokens.create(conn, name, actor, clock.now())
        audit.append(conn, [_entry(clock, actor, "token_created", made.token)])
    out.write(
        f"{made.secret}\n\n"
        f"Token {made.token.id} acts as {identity} (role {role.value}). It is shown only this "
        "once: store it now.\nUse it as 'Authorization: Bearer <token>'; revoke it with "
        f"run_bot.py tokens revoke {made.token.id}\n"
    )
    return EXIT_OK


def _entry(clock: Clock, actor: str, action: str, token: tokens.ApiToken) -> dict[str, Any]:
    return {
        "at": clock.now(),
        "actor": actor,
        "surface": "cli",
        "action": action,
        "result": "ok",
        "detail": f"token {token.id} ({token.prefix}…) for console:{token.name}",
        "data": {"token_id": token.id, "prefix": token.prefix, "name": token.name},
    }


def _json(token: tokens.ApiToken, roles: Roles) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": token.id,
        "prefix": token.prefix,
        "name": token.name,
        "identity": f"console:{token.name}",
        "role": roles.role_of(f"console:{token.name}").value,
        "created_at": iso(token.created_at),
        "created_by": token.created_by,
        "last_used_at": iso(token.last_used_at),
        "revoked_at": iso(token.revoked_at),
    }
