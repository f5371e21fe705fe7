"""Loopback identity services: an OpenID Connect provider and the ALB's public-key server.

:class:`FakeOidcProvider` serves discovery (``/.well-known/openid-configuration``), a JWKS, an
authorization endpoint that signs a fixed user in at once and redirects back with a code, and a
token endpoint that checks the client's credentials (HTTP Basic or form) and the code, then
answers with an RS256 ID token. ``id_token_fault`` makes the next ID tokens wrong in one way
(signed by another key, expired, for another audience, with another nonce, unsigned).

:class:`AlbKeyServer` serves ``/<kid>`` as a PEM public key, as
``public-keys.auth.elb.<region>.amazonaws.com`` does, from a thread of its own (the bot fetches
keys with a blocking call). :func:`alb_token` signs claims the way the load balancer does: an
ES256 JWT whose header has ``kid``, ``signer``, ``iss``, ``client`` and ``exp``, with ``=``
padding on every segment.
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

CLIENT_ID = "incident-bot"
CLIENT_SECRET = "fake-client-secret-0123456789"
ALB_ARN = (
    "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/incident-bot/50dc6c495c"
)


def new_ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _b64(data: bytes, padded: bool) -> str:
    text = base64.urlsafe_b64encode(data).decode()
    return text if padded else text.rstrip("=")


def alb_token(
    key: ec.EllipticCurvePrivateKey,
    kid: str,
    claims: Mapping[str, Any],
    signer: str = ALB_ARN,
    expires_in: float = 120,
    padded: bool = True,
    alg: str = "ES256",
) -> str:
    """Claims signed as the ALB signs them (``alg="none"`` leaves the signature empty)."""
    exp = int(time.time() + expires_in)
    header = {
        "typ": "JWT",
        "kid": kid,
        "alg": alg,
        "iss": claims.get("iss", "https://idp.example"),
        "client": CLIENT_ID,
        "signer": signer,
        "exp": exp,
    }
    body = {"exp": exp, "iss": "https://idp.example", **claims}
    signing_input = ".".join(
        _b64(json.dumps(part, separators=(",", ":")).encode(), padded) for part in (header, body)
    )
    if alg == "none":
        return signing_input + "."
    der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'), padded)}"


class AlbKeyServer:
    """``GET /<kid>`` -> the PEM public key registered for that kid, else 404."""

    def __init__(self) -> None:
        self.keys: dict[str, bytes] = {}
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                kid = self.path.lstrip("/")
                server.requests.append(kid)
                pem = server.keys.get(kid)
                self.send_response(200 if pem else 404)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(pem or b"not found")

            def log_message(self, *args: Any) -> None:
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def publish(self, kid: str, key: ec.EllipticCurvePrivateKey) -> None:
        self.keys[kid] = public_pem(key)

    def __enter__(self) -> AlbKeyServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@functools.cache
def _rsa_keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    """The provider's signing key and a stranger's (made once per test run: RSA is slow)."""
    return tuple(  # type: ignore[return-value]
        rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)
    )


@dataclass
class _Grant:
    redirect_uri: str
    nonce: str | None
    claims: dict[str, Any]


@dataclass
class FakeOidcProvider:
    """A provider that signs ``user`` in without asking (set it before each sign-in)."""

    user: dict[str, Any] = field(
        default_factory=lambda: {"sub": "u-1001", "email": "alice@example.com", "name": "Alice"}
    )
    id_token_fault: str = ""  # "", wrong_key, expired, wrong_audience, wrong_nonce, unsigned
    token_requests: list[dict[str, str]] = field(default_factory=list)
    _grants: dict[str, _Grant] = field(default_factory=dict)
    _runner: web.AppRunner | None = None
    port: int = 0

    def __post_init__(self) -> None:
        self.key, self.other_key = _rsa_keys()
        self.kid = "fake-key-1"
        self._codes = itertools.count(1)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeOidcProvider:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/token", self._token)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _discovery(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
            }
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return web.json_response({"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]})

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
            return web.json_response({"error": "unauthorized_client"}, status=400)
        if "openid" not in q.get("scope", "").split():
            return web.json_response({"error": "invalid_scope"}, status=400)
        code = f"code-{next(self._codes)}-{secrets.token_urlsafe(8)}"
        self._grants[code] = _Grant(q["redirect_uri"], q.get("nonce"), dict(self.user))
        target = f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state', '')})}"
        raise web.HTTPFound(target)

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        fields = {k: str(v) for k, v in form.items()}
        self.token_requests.append(fields)
        client_id, secret = fields.get("client_id"), fields.get("client_secret")
        basic = request.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            client_id, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        if client_id != CLIENT_ID or secret != CLIENT_SECRET:
            return web.json_response({"error": "invalid_client"}, status=401)
        grant = self._grants.pop(fields.get("code", ""), None)
        if grant is None or fields.get("grant_type") != "authorization_code":
            return web.json_response({"error": "invalid_grant"}, status=400)
        if fields.get("redirect_uri") != grant.redirect_uri:
            return web.json_response({"error": "invalid_grant"}, status=400)
        return web.json_response(
            {
                "access_token": secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self._id_token(grant),
            }
        )

    def _id_token(self, grant: _Grant) -> str:
        now = int(time.time())
        fault = self.id_token_fault
        claims = {
            "iss": self.issuer,
            "aud": "someone-else" if fault == "wrong_audience" else CLIENT_ID,
            "iat": now - (7200 if fault == "expired" else 0),
            "exp": now + (-3600 if fault == "expired" else 300),
            **grant.claims,
        }
        if grant.nonce is not None:
            claims["nonce"] = "another-nonce" if fault == "wrong_nonce" else grant.nonce
        if fault == "unsigned":
            return jwt.encode(claims, "", algorithm="none")
        key = self.other_key if fault == "wrong_key" else self.key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self.kid})
