"""Who is calling the HTTP API and console (docs/identity.md).

In every mode, ``Authorization: Bearer icb_…`` (a personal API token, ``run_bot.py tokens
create NAME``) acts as the token's identity, ``console:NAME``; ``X-Bot-User`` is ignored then.
Otherwise ``BOT_AUTH_MODE`` decides:

``token`` (the default)
    On a loopback address without ``BOT_CONSOLE_TOKEN`` callers act as ``console:local``. With
    the shared token, API callers send it as a bearer token (and may name themselves with
    ``X-Bot-User``); console users log in with a personal token, or the shared token and a name.
``alb``
    Every request carries ``x-amzn-oidc-data``, signed by the configured load balancer; the
    identity is its ``BOT_IDENTITY_CLAIM``. The shared token names nobody.
``oidc``
    The console signs in at the provider (``/auth/login``) and holds a signed session cookie.

Refusals that point at a credential (an unknown or revoked token, a bad identity header, a
forged session) are audited as ``auth_refused``, at most once a minute per kind and address.
"""

from __future__ import annotations

import hmac
import logging
import re
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.errors import BotError, TransientError
from bot.identity.alb import HEADER, AlbKeys, AlbKeyUnavailable, AlbRefused, AlbVerifier
from bot.identity.config import alb_key_base
from bot.identity.session import COOKIE, SessionSigner
from bot.ports import Clock
from bot.settings import Settings
from bot.store import audit, tokens
from bot.throttle import Throttle

log = logging.getLogger(__name__)

NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
#: names asserted by an identity provider (an email address may hold '+')
CLAIMED = re.compile(r"[A-Za-z0-9._@+-]{1,254}")

__all__ = ["COOKIE", "Authenticator", "Caller", "Unauthenticated", "valid_name"]


class Unauthenticated(BotError):
    """No valid token, identity header or session."""


@dataclass(frozen=True, slots=True)
class Caller:
    identity: str  # console:<name>
    via_cookie: bool = False  # ambient browser credentials: cross-site writes are refused
    token_id: int | None = None  # the personal API token used, if any


def valid_name(name: str) -> bool:
    return bool(NAME.fullmatch(name))


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else None


class Authenticator:
    def __init__(
        self, settings: Settings, engine: Engine, clock: Clock, alb: AlbVerifier | None = None
    ) -> None:
        self.settings = settings
        self.mode = settings.auth_mode
        self.engine = engine
        self.clock = clock
        self.alb = alb
        if self.mode == "alb" and alb is None:
            keys = AlbKeys(alb_key_base(settings))
            self.alb = AlbVerifier(
                settings.alb_arn, keys, settings.alb_issuer, settings.identity_claim
            )
        key = settings.session_secret or settings.console_token
        self.sessions = (
            SessionSigner(key.get_secret_value().encode(), settings.session_ttl) if key else None
        )
        self._refusals = Throttle()  # one audited refusal a minute per kind and address

    # the one entry point --------------------------------------------------------------------

    def caller(self, request: Request) -> Caller:
        bearer = _bearer(request)
        if bearer is not None and tokens.looks_like_token(bearer):
            return self._personal(request, bearer)
        if self.mode == "alb":
            return self._alb(request, bearer)
        if self.mode == "oidc":
            return self._session_only(request, bearer)
        return self._shared(request, bearer)

    # personal tokens, every mode ------------------------------------------------------------

    def personal_token(self, secret: str) -> tokens.ApiToken | None:
        """The active token with this secret (recording its use), else None."""
        with self.engine.connect() as conn:
            token = tokens.find(conn, secret)
        if token is None or not token.active:
            return None
        tokens.touch(self.engine, token, self.clock.now())
        return token

    def _personal(self, request: Request, secret: str) -> Caller:
        with self.engine.connect() as conn:
            token = tokens.find(conn, secret)
        if token is None:
            raise self.refuse(request, "unknown_token", "the bearer token is not a known API token")
        if not token.active:
            assert token.revoked_at is not None
            raise self.refuse(
                request,
                "revoked_token",
                f"API token {token.prefix}… ({token.name}) was revoked on "
                f"{token.revoked_at:%Y-%m-%d %H:%M} UTC; ask an admin for a new one",
                actor=f"console:{token.name}",
                data={"token_id": token.id, "prefix": token.prefix},
            )
        tokens.touch(self.engine, token, self.clock.now())
        return Caller(f"console:{token.name}", token_id=token.id)

    # BOT_AUTH_MODE=alb ------------------------------------------------------------------------

    def _alb(self, request: Request, bearer: str | None) -> Caller:
        assert self.alb is not None
        if bearer is not None:
            raise self._no_shared_token(request)
        try:
            who = self.alb.verify(request.headers.get(HEADER))
        except AlbKeyUnavailable as exc:
            raise TransientError(str(exc)) from None
        except AlbRefused as exc:
            raise self.refuse(request, "alb_header", str(exc)) from None
        if not CLAIMED.fullmatch(who.name):
            raise self.refuse(request, "alb_header", f"the identity {who.name!r} is not usable")
        return Caller(f"console:{who.name}", via_cookie=True)

    # BOT_AUTH_MODE=oidc -----------------------------------------------------------------------

    def _session_only(self, request: Request, bearer: str | None) -> Caller:
        if bearer is not None:
            raise self._no_shared_token(request)
        caller = self._from_cookie(request)
        if caller is None:
            raise Unauthenticated("sign in at /auth/login, or send a personal API token")
        return caller

    # BOT_AUTH_MODE=token (today's shared token) -----------------------------------------------

    def _shared(self, request: Request, bearer: str | None) -> Caller:
        header_user = request.headers.get("x-bot-user", "").strip()
        if header_user and not valid_name(header_user):
            raise Unauthenticated("X-Bot-User: use letters, digits, '.', '_', '@' or '-' (max 64)")
        shared = self.settings.console_token
        if shared is None:
            return Caller(f"console:{header_user or 'local'}")
        if bearer is not None:
            if hmac.compare_digest(bearer.encode(), shared.get_secret_value().encode()):
                return Caller(f"console:{header_user or 'api'}")
            raise self.refuse(request, "bad_token", "the bearer token is not valid")
        caller = self._from_cookie(request)
        if caller is None:
            raise Unauthenticated(
                "log in at /login or send 'Authorization: Bearer <your API token>'"
            )
        return caller

    # sessions -----------------------------------------------------------------------------------

    def issue_session(self, name: str) -> str:
        assert self.sessions is not None
        return self.sessions.issue(name, self.clock.now())

    def _from_cookie(self, request: Request) -> Caller | None:
        cookie = request.cookies.get(COOKIE)
        if not cookie or self.sessions is None:
            return None
        name = self.sessions.holder(cookie, self.clock.now())
        if name is None:
            self.record(request, "bad_session", "the session cookie is forged or expired")
            return None
        return Caller(f"console:{name}", via_cookie=True)

    # refusals -----------------------------------------------------------------------------------

    def _no_shared_token(self, request: Request) -> Unauthenticated:
        return self.refuse(
            request,
            "shared_token",
            f"BOT_AUTH_MODE={self.mode}: only personal API tokens (icb_…) are accepted; "
            "ask an admin for one (run_bot.py tokens create NAME)",
        )

    def refuse(
        self,
        request: Request,
        kind: str,
        reason: str,
        actor: str = "anonymous",
        data: dict[str, Any] | None = None,
    ) -> Unauthenticated:
        """Audit (throttled) and return the 401 to raise; the credential is never recorded."""
        self.record(request, kind, reason, actor, data)
        return Unauthenticated(reason)

    def record(
        self,
        request: Request,
        kind: str,
        reason: str,
        actor: str = "anonymous",
        data: dict[str, Any] | None = None,
    ) -> None:
        peer = request.client.host if request.client else "?"
        if not self._refusals.due((kind, peer)):
            return
        path = request.url.path
        entry = {
            "at": self.clock.now(),
            "actor": actor,
            "surface": "api" if path.startswith("/api/") else "console",
            "action": "auth_refused",
            "result": "refused",
            "reason": reason[:500],
            "detail": f"{request.method} {path} from {peer}",
            "data": {"kind": kind, "mode": self.mode, **(data or {})},
        }
        try:
            with self.engine.begin() as conn:
                audit.append(conn, [entry])
        except SQLAlchemyError as exc:
            log.warning("could not audit a refused sign-in (%s): %s", kind, exc)
