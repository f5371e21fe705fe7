"""Direct OpenID Connect sign-in (``BOT_AUTH_MODE=oidc``) with Authlib.

The authorization code flow: ``/auth/login`` redirects to the provider with ``state`` and
``nonce`` (kept in a short-lived signed cookie, ``bot_oidc``); ``/auth/callback`` trades the
code for tokens at the provider's token endpoint and validates the ID token against the
provider's JWKS (signature, issuer, audience, expiry, nonce). The console session that follows
is the bot's own signed cookie (:mod:`bot.identity.session`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authlib.integrations.starlette_client import OAuth, OAuthError
from joserfc.errors import JoseError

from bot.settings import Settings

DISCOVERY = "/.well-known/openid-configuration"
STATE_COOKIE = "bot_oidc"
TIMEOUT = 10.0


class SignInFailed(Exception):
    """The provider refused, or what it sent back did not verify; the text says which."""


@dataclass(frozen=True, slots=True)
class SignedIn:
    name: str  # the BOT_IDENTITY_CLAIM value
    subject: str
    issuer: str


class OidcClient:
    def __init__(self, settings: Settings) -> None:
        assert settings.oidc_client_secret is not None
        self.claim = settings.identity_claim
        self.redirect_uri = f"{settings.console_url}/auth/callback"
        oauth = OAuth()
        self.app: Any = oauth.register(
            "oidc",
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret.get_secret_value(),
            server_metadata_url=settings.oidc_issuer.rstrip("/") + DISCOVERY,
            client_kwargs={"scope": settings.oidc_scopes, "timeout": TIMEOUT},
        )

    async def redirect(self, request: Any) -> Any:
        """The response sending the browser to the provider's sign-in page."""
        return await self.app.authorize_redirect(request, self.redirect_uri)

    async def complete(self, request: Any) -> SignedIn:
        """Finish the code flow on the callback request; raise SignInFailed with a reason."""
        try:
            token = await self.app.authorize_access_token(request)
        except OAuthError as exc:
            raise SignInFailed(f"the identity provider refused: {exc.description or exc}") from None
        except JoseError as exc:
            why = f"{exc.error} ({exc.description})" if exc.description else exc.error
            raise SignInFailed(f"the ID token did not verify: {why}") from None
        claims = token.get("userinfo")
        if not claims:
            raise SignInFailed("the provider sent no ID token (is 'openid' in BOT_OIDC_SCOPES?)")
        name = claims.get(self.claim)
        if not isinstance(name, str) or not name.strip():
            raise SignInFailed(
                f"the ID token carries no {self.claim!r} claim (BOT_IDENTITY_CLAIM) to name you by"
            )
        return SignedIn(name.strip(), str(claims.get("sub", "")), str(claims.get("iss", "")))
