"""A loopback stand-in for Microsoft's login hosts, for a Teams bot running in another process.

The Agents SDK reaches them at fixed addresses: MSAL asks ``login.microsoftonline.com`` for the
app's client-credentials token (tenant discovery, then the token endpoint) before it calls the
Bot Connector, and the SDK checks the Bot Connector's inbound tokens against the keys at
``login.botframework.com/v1/.well-known/keys``. Neither address can be configured, so
:class:`FakeEntra` is an HTTPS proxy that answers for those hosts itself: a ``CONNECT`` to one of
:data:`HOSTS` opens TLS with a certificate its throw-away CA signed for that name, and the
requests inside are served here:

* ``GET /{tenant}/v2.0/.well-known/openid-configuration`` (what MSAL reads first),
* ``POST /{tenant}/oauth2/v2.0/token``: ``grant_type=client_credentials`` with the app's id and
  secret and the scope ``https://api.botframework.com/.default``; answers a signed access token
  (kept in :attr:`FakeEntra.issued`, so the connector fake can take only those), else
  ``invalid_client`` / ``invalid_scope`` / ``invalid_request`` as Entra ID does,
* ``GET /v1/.well-known/openidconfiguration`` and ``GET /v1/.well-known/keys`` (and the tenant's
  ``/discovery/v2.0/keys``): the key :meth:`FakeEntra.connector_token` signs inbound tokens with.

A ``CONNECT`` anywhere else is refused with 502 and recorded in :attr:`FakeEntra.refused`. The
token service has a fault switch of its own (:attr:`FakeEntra.faults`).

How a process is pointed at it: :meth:`FakeEntra.env` for a bot process (outbound tokens:
``ALL_PROXY``, which MSAL's requests session honours, since the Slack SDK would send its own
calls through ``HTTPS_PROXY``, ignoring ``NO_PROXY``); :meth:`FakeEntra.inbound_env` for a
process that checks inbound tokens too (the SDK fetches keys with urllib, which reads only
``HTTPS_PROXY``): a test's own process, with no Slack client in it. A bot process in the storm
therefore takes unsigned activities (``TEAMS_ANONYMOUS``, allowed on loopback only).

:class:`~tests.fakes.teams_tenant.TeamsTenant` puts it together with a Bot Connector fake and a
team channel: the Teams side of tests/cluster.py's bots.
"""

from __future__ import annotations

import functools
import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.faults import FaultSwitch, FaultyHandler
from tests.fakes.tls import make_tls

ENTRA_HOST = "login.microsoftonline.com"
BOTFRAMEWORK_HOST = "login.botframework.com"
HOSTS = (ENTRA_HOST, BOTFRAMEWORK_HOST)
BOT_CONNECTOR_ISSUER = "https://api.botframework.com"
SCOPE = "https://api.botframework.com/.default"
KEY_ID = "fake-bot-connector-key"
TOKEN_LIFETIME_S = 3599


@functools.cache
def _signing_key() -> rsa.RSAPrivateKey:
    """The key inbound tokens are signed with and JWKS publishes (made once: RSA is slow)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def write_certificates(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """A throw-away CA (its PEM file) and a server context with a certificate it signed for
    every name in :data:`HOSTS` (valid for a day)."""
    tls = make_tls(folder, HOSTS)
    return tls.ca_file, tls.server


@dataclass(frozen=True, slots=True)
class TokenRequest:
    tenant: str
    client_id: str
    scope: str
    granted: bool


@dataclass
class FakeEntra:
    """Start with ``with FakeEntra(folder, app_id, secret, tenant) as entra:``."""

    folder: Path
    app_id: str
    app_secret: str
    tenant_id: str
    issued: set[str] = field(default_factory=set)
    token_requests: list[TokenRequest] = field(default_factory=list)
    key_requests: list[str] = field(default_factory=list)  # hosts the keys were fetched from
    refused: list[str] = field(default_factory=list)  # CONNECT targets that are not ours
    faults: FaultSwitch = field(default_factory=FaultSwitch)  # the token endpoint's
    # MSAL asks again for a token within 5 minutes of its end: shorter, it asks every time
    token_lifetime_s: int = TOKEN_LIFETIME_S

    def __post_init__(self) -> None:
        self.ca_file, self._tls = write_certificates(self.folder)
        self.key = _signing_key()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
        self._httpd.daemon_threads = True
        self._httpd.fake = self  # type: ignore[attr-defined]
        self._httpd.faults = self.faults  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def env(self) -> dict[str, str]:
        """What a bot process needs to get its outbound tokens here (see the module text)."""
        return {
            "ALL_PROXY": self.proxy_url,
            "NO_PROXY": "127.0.0.1,localhost",
            "REQUESTS_CA_BUNDLE": str(self.ca_file),
        }

    def inbound_env(self) -> dict[str, str]:
        """:meth:`env` plus what the SDK's key fetch (urllib) needs: ``HTTPS_PROXY`` and this
        CA as the default trust store."""
        return {**self.env(), "HTTPS_PROXY": self.proxy_url, "SSL_CERT_FILE": str(self.ca_file)}

    def __enter__(self) -> FakeEntra:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def connector_token(self, service_url: str, expires_in: float = 600, **claims: Any) -> str:
        """A bearer token as the Bot Connector sends with an activity for this app."""
        now = int(time.time())
        body = {
            "iss": BOT_CONNECTOR_ISSUER,
            "aud": self.app_id,
            "serviceurl": service_url,
            "nbf": now - 5,
            "iat": now - 5,
            "exp": now + int(expires_in),
            **claims,
        }
        return jwt.encode(body, self.key, algorithm="RS256", headers={"kid": KEY_ID})

    def granted(self) -> int:
        return sum(1 for r in list(self.token_requests) if r.granted)

    # what the handler answers ----------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": KEY_ID, "use": "sig", "alg": "RS256", "endorsements": []}]}

    def openid(self, host: str, path: str) -> dict[str, Any] | None:
        if host == BOTFRAMEWORK_HOST and path == "/v1/.well-known/openidconfiguration":
            return {
                "issuer": BOT_CONNECTOR_ISSUER,
                "authorization_endpoint": "https://invalid.botframework.com",
                "jwks_uri": f"https://{BOTFRAMEWORK_HOST}/v1/.well-known/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            }
        parts = path.strip("/").split("/")
        if host == ENTRA_HOST and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            base = f"https://{ENTRA_HOST}/{parts[0]}"
            return {
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
            }
        return None

    def token(self, tenant: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        client_id, scope = form.get("client_id", ""), form.get("scope", "")
        if form.get("grant_type") != "client_credentials":
            answer = (400, _error("unsupported_grant_type", "AADSTS70003: grant type"))
        elif tenant != self.tenant_id:
            answer = (400, _error("invalid_request", f"AADSTS90002: Tenant '{tenant}' not found"))
        elif client_id != self.app_id or form.get("client_secret") != self.app_secret:
            answer = (401, _error("invalid_client", "AADSTS7000215: Invalid client secret"))
        elif SCOPE not in scope.split():
            answer = (400, _error("invalid_scope", f"AADSTS70011: scope {scope!r} is not valid"))
        else:
            now = int(time.time())
            token = jwt.encode(
                {
                    "aud": BOT_CONNECTOR_ISSUER,
                    "iss": f"https://sts.windows.net/{tenant}/",
                    "appid": client_id,
                    "tid": tenant,
                    "iat": now,
                    "nbf": now,
                    "exp": now + self.token_lifetime_s,
                    "jti": secrets.token_urlsafe(12),
                },
                self.key,
                algorithm="RS256",
                headers={"kid": KEY_ID},
            )
            with self._lock:
                self.issued.add(token)
            answer = (
                200,
                {
                    "token_type": "Bearer",
                    "expires_in": self.token_lifetime_s,
                    "ext_expires_in": self.token_lifetime_s,
                    "access_token": token,
                },
            )
        self.token_requests.append(TokenRequest(tenant, client_id, scope, answer[0] == 200))
        return answer


def _error(code: str, description: str) -> dict[str, Any]:
    return {"error": code, "error_description": description, "error_codes": []}


class _Proxy(BaseHTTPRequestHandler):
    """The proxy: ``CONNECT`` to one of :data:`HOSTS` is served by :class:`_Login` over TLS."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_CONNECT(self) -> None:
        fake: FakeEntra = self.server.fake  # type: ignore[attr-defined]
        host = self.path.rsplit(":", 1)[0]
        if host not in HOSTS:
            fake.refused.append(self.path)
            self.send_error(502, f"no route to {host}")
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        try:
            tls = fake._tls.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            _Login(tls, self.client_address, self.server)  # serves until the client hangs up
        except OSError:
            pass
        finally:
            tls.close()


class _Login(FaultyHandler, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive inside the tunnel, as MSAL's session expects

    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def fake(self) -> FakeEntra:
        found: FakeEntra = self.server.fake  # type: ignore[attr-defined]
        return found

    def _host(self) -> str:
        return (self.headers.get("Host") or "").rsplit(":", 1)[0]

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        host, path = self._host(), self.path.split("?", 1)[0]
        found = self.fake.openid(host, path)
        if found is not None:
            self._send(200, found)
        elif path == "/v1/.well-known/keys" or path.endswith("/discovery/v2.0/keys"):
            self.fake.key_requests.append(host)
            self._send(200, self.fake.jwks())
        else:
            self._send(404, _error("not_found", f"{host}{path}"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if self._host() != ENTRA_HOST or parts[1:] != ["oauth2", "v2.0", "token"]:
            self._send(404, _error("not_found", self.path))
            return
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        status, body = self.fake.token(parts[0], form)
        self._send(status, body)
