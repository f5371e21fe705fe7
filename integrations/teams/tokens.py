"""The bot's own tokens for the Bot Connector: MSAL client credentials, never waited on for long.

:class:`EntraTokens` stands in for the Agents SDK's ``MsalAuth`` (which gives MSAL no timeout
and builds its client, asking Entra ID for the tenant's endpoints, on the event loop's thread).
Here every MSAL call runs on a small thread pool of the provider's own, so a hanging token
endpoint can never take the threads the rest of the bot shares; MSAL's HTTP calls get
``TEAMS_TOKEN_TIMEOUT``; and a caller waits at most that long before :class:`TokenUnavailable`
(an ``MsalError``, which the outbox retries and ``/api/messages`` answers with 503). Callers
asking while a request for the same scopes is under way share it instead of starting another.
MSAL's own token cache is kept: a token is asked for again only when it nears its end (5
minutes before); while Entra ID cannot give a new one, the current one is used until its last
minute.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import msal
from azure.core.credentials_async import AsyncTokenCredential
from microsoft_agents.hosting.core import AccessTokenProviderBase, AgentAuthConfiguration
from msal.exceptions import MsalError

from integrations.teams.settings import ENV_PREFIX, TeamsSettings

log = logging.getLogger(__name__)

Credential = str | dict[str, str]
STILL_GOOD_S = 60.0  # a token this close to its end is not sent any more
_ONLY_BEARER = "the Teams integration only needs client-credential tokens"
_WORKERS = 2  # one request under way per scope set; the connector's and the token service's


class TokenUnavailable(MsalError):
    """Entra ID gave no token in time (or could not be reached): try again later."""


def client_credential(settings: TeamsSettings) -> Callable[[], Credential]:
    """What MSAL is given for the configured credential (read when first needed)."""
    if settings.app_password is not None:
        secret = settings.app_password.get_secret_value()
        return lambda: secret
    key_file = settings.cert_key_file
    if key_file is None:
        raise ValueError(
            f"{ENV_PREFIX}APP_PASSWORD or {ENV_PREFIX}CERT_KEY_FILE is needed for Teams tokens"
        )
    if settings.uses_pfx:
        return lambda: {"private_key_pfx_path": str(key_file)}
    thumbprint = settings.cert_thumbprint

    def pem() -> Credential:
        try:
            private_key = key_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{ENV_PREFIX}CERT_KEY_FILE: cannot read {key_file}: {exc}") from None
        return {"private_key": private_key, "thumbprint": thumbprint}

    return pem


class EntraTokens(AccessTokenProviderBase):
    """Client-credential tokens from Entra ID with a client secret, a ``.pfx`` file or a PEM key
    and its thumbprint (what Entra ID shows for an uploaded certificate)."""

    def __init__(
        self,
        configuration: AgentAuthConfiguration,
        credential: Callable[[], Credential],
        timeout: float,
    ) -> None:
        self._configuration = configuration
        self._credential = credential
        self._timeout = timeout
        self._client: msal.ConfidentialClientApplication | None = None
        self._client_lock = threading.Lock()
        self._pending: dict[tuple[str, ...], Future[dict[str, Any]]] = {}
        self._pending_lock = threading.Lock()
        self._last: dict[tuple[str, ...], tuple[str, float]] = {}  # token, ends at (epoch s)
        self._pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="entra-token")

    @property
    def configuration(self) -> AgentAuthConfiguration:
        return self._configuration

    @property
    def timeout(self) -> float:
        return self._timeout

    async def get_access_token(
        self, resource_url: str, scopes: list[str], force_refresh: bool = False
    ) -> str:
        wanted = tuple(scopes or self._configuration.SCOPES or [f"{resource_url}/.default"])
        try:
            result = await self._result(wanted)
        except MsalError as exc:
            # MSAL asks for a new token 5 minutes before the old one ends: while Entra ID
            # cannot give one, the old one serves as long as it is still good
            last = self._last.get(wanted)
            left = last[1] - time.time() if last is not None else 0.0
            if last is None or left <= STILL_GOOD_S:
                raise
            log.warning(
                "no new Teams token from Entra ID yet (%s); the current one, good for "
                "%d s more, is used",
                exc,
                left,
            )
            return last[0]
        token = result.get("access_token")
        if not token:
            raise ValueError(
                f"Entra ID refused a token for the bot's app {self._configuration.CLIENT_ID}: "
                f"{result.get('error', 'unknown error')}: {result.get('error_description', '')}"
            )
        expires_in = result.get("expires_in")
        if isinstance(expires_in, int | float):
            self._last[wanted] = (str(token), time.time() + expires_in)
        return str(token)

    async def _result(self, scopes: tuple[str, ...]) -> dict[str, Any]:
        """MSAL's answer, waited for at most the timeout."""
        waiting = asyncio.wrap_future(self._request(scopes))
        # a result nobody waits for any more still lands in MSAL's cache; its error is dropped
        waiting.add_done_callback(lambda f: f.cancelled() or f.exception())
        done, _ = await asyncio.wait({waiting}, timeout=self._timeout)
        if not done:
            raise TokenUnavailable(
                f"Entra ID's token endpoint did not answer within {self._timeout:g} s "
                f"({ENV_PREFIX}TOKEN_TIMEOUT)"
            )
        return waiting.result()

    def _request(self, scopes: tuple[str, ...]) -> Future[dict[str, Any]]:
        """The request under way for ``scopes``, or a new one."""
        with self._pending_lock:
            pending = self._pending.get(scopes)
            if pending is None or pending.done():
                pending = self._pool.submit(self._acquire, list(scopes))
                self._pending[scopes] = pending
            return pending

    def _acquire(self, scopes: list[str]) -> dict[str, Any]:
        """On a pool thread: MSAL's cached token, or a new one from Entra ID."""
        try:
            result: dict[str, Any] = self._app().acquire_token_for_client(scopes=scopes)
        except OSError as exc:  # requests' errors (timeouts, resets, refusals) are OSErrors
            raise TokenUnavailable(
                f"no answer from Entra ID's token endpoint: {type(exc).__name__}: {exc}"
            ) from None
        return result

    def _app(self) -> msal.ConfidentialClientApplication:
        with self._client_lock:
            if self._client is None:
                config = self._configuration
                authority = (
                    config.AUTHORITY or f"https://login.microsoftonline.com/{config.TENANT_ID}"
                )
                # building it asks Entra ID for the tenant's endpoints: under the timeout too
                self._client = msal.ConfidentialClientApplication(
                    client_id=config.CLIENT_ID,
                    authority=authority,
                    client_credential=self._credential(),
                    timeout=self._timeout,
                )
            return self._client

    def get_token_credential(self) -> AsyncTokenCredential:
        raise NotImplementedError(_ONLY_BEARER)

    async def acquire_token_on_behalf_of(self, scopes: list[str], user_assertion: str) -> str:
        raise NotImplementedError(_ONLY_BEARER)

    async def get_agentic_application_token(
        self, tenant_id: str, agent_app_instance_id: str
    ) -> str | None:
        raise NotImplementedError(_ONLY_BEARER)

    async def get_agentic_instance_token(
        self, tenant_id: str, agent_app_instance_id: str
    ) -> tuple[str, str]:
        raise NotImplementedError(_ONLY_BEARER)

    async def get_agentic_user_token(
        self, tenant_id: str, agent_app_instance_id: str, agentic_user_id: str, scopes: list[str]
    ) -> str | None:
        raise NotImplementedError(_ONLY_BEARER)
