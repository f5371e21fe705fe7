"""Who is calling ``/api/messages``: the Bot Connector's token, checked, or (anonymous access
on loopback only) the app itself.

A missing, malformed or invalid token is refused with 401 and audited (throttled; the reason
never quotes the token). When Microsoft's signing keys cannot be had, the token cannot be
checked either way: 503, and Teams sends the activity again.
"""

from __future__ import annotations

import logging

from fastapi import Response
from fastapi.responses import JSONResponse
from microsoft_agents.hosting.core import AgentAuthConfiguration, ClaimsIdentity
from microsoft_agents.hosting.core.authorization import AuthenticationConstants

from integrations.teams.keys import KeyedTokenValidator, KeysUnavailable, SigningKeys
from integrations.teams.refusals import Refusals, token_problem

log = logging.getLogger(__name__)

ROUTE = "/api/messages"


class TokenGate:
    def __init__(
        self, auth: AgentAuthConfiguration, keys: SigningKeys, refusals: Refusals | None
    ) -> None:
        self._auth = auth
        self._keys = keys
        self._refusals = refusals

    async def identify(self, header: str | None, peer: str) -> ClaimsIdentity | Response:
        """The caller's identity from the Bot Connector's token (or, anonymously, the app's);
        otherwise the answer to send."""
        if not header:
            if self._auth.ANONYMOUS_ALLOWED:
                # outbound calls still carry the bot's own token, as they would in production
                app_id = self._auth.CLIENT_ID or ""
                claims = {
                    AuthenticationConstants.AUDIENCE_CLAIM: app_id,
                    AuthenticationConstants.APP_ID_CLAIM: app_id,
                }
                return ClaimsIdentity(claims, authentication_type="anonymous")
            return await self._refuse(peer, "no_token", "Authorization header not found")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return await self._refuse(peer, "token_format", "Invalid authorization header format")
        try:
            return await KeyedTokenValidator(self._auth, self._keys).validate_token(token.strip())
        except KeysUnavailable as exc:  # nothing is wrong with the token: Teams sends it again
            log.warning("Teams activity not handled: %s", exc)
            answer = {"error": "cannot check the token now (no signing keys); send it again later"}
            return JSONResponse(answer, status_code=503)
        except Exception as exc:  # any failure of the SDK's check (KeyError 'kid' too) refuses
            kind, reason = token_problem(exc)
            return await self._refuse(peer, kind, reason, "Invalid token")

    async def _refuse(self, peer: str, kind: str, reason: str, answer: str = "") -> Response:
        """401, audited (throttled)."""
        log.warning("Teams request refused: %s", reason)
        if self._refusals is not None:
            await self._refusals.record(peer, kind, reason, ROUTE)
        return JSONResponse({"error": answer or reason}, status_code=401)
