"""The Bot Connector's signing keys for inbound tokens, fetched without stalling the bot.

The Agents SDK checks an inbound token against keys it fetches from Microsoft's login hosts
(``login.botframework.com``) with ``PyJWKClient``: a 30 s timeout, on the default thread pool,
one fetch at a time behind a lock that every other waiting request holds a pool thread for. A
hanging key host would then take the threads the rest of the bot shares, and end in a 401 as if
the token were bad. :class:`SigningKeys` replaces that for :class:`KeyedTokenValidator`:

* fetches run on a small pool of its own, with ``TEAMS_TOKEN_TIMEOUT``, one per key address at
  a time (callers asking meanwhile share it), and a caller waits at most that long;
* a key seen before is used while the host cannot be reached (Microsoft rotates them rarely);
* otherwise :class:`KeysUnavailable`: the request is answered 503 and Teams sends it again.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from jwt import PyJWK, PyJWKClient
from jwt.exceptions import PyJWKClientConnectionError
from microsoft_agents.hosting.core import AgentAuthConfiguration, JwtTokenValidator
from microsoft_agents.hosting.core.authorization import AuthenticationConstants

from integrations.teams.settings import ENV_PREFIX

_WORKERS = 2
KEYS_LIFESPAN_S = 300.0  # how long fetched keys are used before asking again (PyJWKClient's)


class KeysUnavailable(Exception):
    """Microsoft's signing keys could not be fetched in time: the token cannot be checked now."""


class SigningKeys:
    """Signing keys by key address and key id, fetched on a pool of their own."""

    def __init__(self, timeout: float, lifespan_s: float = KEYS_LIFESPAN_S) -> None:
        self._timeout = timeout
        self._lifespan_s = lifespan_s
        self._clients: dict[str, PyJWKClient] = {}
        self._known: dict[tuple[str, str], PyJWK] = {}
        self._pending: dict[tuple[str, str], Future[PyJWK]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="signing-keys")

    async def get_signing_key(self, jwks_uri: str, header: dict[str, Any]) -> PyJWK:
        """The key ``header`` names (``KeyError`` without a key id, as the SDK has it)."""
        kid = str(header[AuthenticationConstants.KEY_ID_HEADER])
        waiting = asyncio.wrap_future(self._request(jwks_uri, kid))
        waiting.add_done_callback(lambda f: f.cancelled() or f.exception())
        done, _ = await asyncio.wait({waiting}, timeout=self._timeout)
        if done:
            return waiting.result()
        known = self._known.get((jwks_uri, kid))
        if known is not None:
            return known
        raise KeysUnavailable(
            f"Microsoft's signing keys ({jwks_uri}) did not arrive within {self._timeout:g} s "
            f"({ENV_PREFIX}TOKEN_TIMEOUT)"
        )

    def _request(self, jwks_uri: str, kid: str) -> Future[PyJWK]:
        with self._lock:
            pending = self._pending.get((jwks_uri, kid))
            if pending is None or pending.done():
                pending = self._pool.submit(self._fetch, jwks_uri, kid)
                self._pending[(jwks_uri, kid)] = pending
            return pending

    def _fetch(self, jwks_uri: str, kid: str) -> PyJWK:
        """On a pool thread: the key from the cached key set, or from a fresh one."""
        with self._lock:
            client = self._clients.get(jwks_uri)
            if client is None:
                client = PyJWKClient(jwks_uri, lifespan=self._lifespan_s, timeout=self._timeout)
                self._clients[jwks_uri] = client
        try:
            key = client.get_signing_key(kid)
        except PyJWKClientConnectionError as exc:
            known = self._known.get((jwks_uri, kid))
            if known is not None:
                return known
            raise KeysUnavailable(f"Microsoft's signing keys ({jwks_uri}): {exc}") from None
        self._known[(jwks_uri, kid)] = key
        return key


class KeyedTokenValidator(JwtTokenValidator):
    """The SDK's token check with its keys from :class:`SigningKeys`."""

    def __init__(self, configuration: AgentAuthConfiguration, keys: SigningKeys) -> None:
        super().__init__(configuration)
        self._jwk_client_manager = keys  # type: ignore[assignment]
