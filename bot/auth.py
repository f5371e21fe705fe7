"""Who is calling the HTTP API and console.

On a loopback address without ``BOT_CONSOLE_TOKEN`` callers act as ``console:local``. With a
token, API callers send ``Authorization: Bearer <token>`` (and may name themselves with
``X-Bot-User``); console users log in with the token and a name and get a signed cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from fastapi import Request

from bot.errors import BotError
from bot.settings import Settings

COOKIE = "bot_session"
NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")


class Unauthenticated(BotError):
    """No valid token or session."""


@dataclass(frozen=True, slots=True)
class Caller:
    identity: str  # console:<name>
    via_cookie: bool = False


def _sign(token: str, name: str) -> str:
    return hmac.new(token.encode(), f"session:{name}".encode(), hashlib.sha256).hexdigest()


def session_cookie(settings: Settings, name: str) -> str:
    assert settings.console_token is not None
    return f"{name}:{_sign(settings.console_token.get_secret_value(), name)}"


def valid_name(name: str) -> bool:
    return bool(NAME.fullmatch(name))


def caller_of(request: Request, settings: Settings) -> Caller:
    header_user = request.headers.get("x-bot-user", "").strip()
    if header_user and not valid_name(header_user):
        raise Unauthenticated("X-Bot-User: use letters, digits, '.', '_', '@' or '-' (max 64)")
    token = settings.console_token.get_secret_value() if settings.console_token else None
    if token is None:
        return Caller(f"console:{header_user or 'local'}")
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        if hmac.compare_digest(auth[7:].strip().encode(), token.encode()):
            return Caller(f"console:{header_user or 'api'}")
        raise Unauthenticated("the bearer token is not valid")
    cookie = request.cookies.get(COOKIE, "")
    name, _, signature = cookie.rpartition(":")
    if name and valid_name(name) and hmac.compare_digest(signature, _sign(token, name)):
        return Caller(f"console:{name}", via_cookie=True)
    raise Unauthenticated("log in at /login or send 'Authorization: Bearer <BOT_CONSOLE_TOKEN>'")
