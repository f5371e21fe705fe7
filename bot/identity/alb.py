"""The AWS Application Load Balancer's signed user claims (``x-amzn-oidc-data``).

Behind a listener rule with ``authenticate-oidc``, the load balancer signs the user's claims as
an ES256 JWT whose header names the key (``kid``) and the load balancer (``signer``, its ARN).
The public key for a ``kid`` is a PEM document at ``<key base>/<kid>``; a key never changes for
its ``kid``, so keys are cached. The load balancer pads the base64url segments with ``=``
(RFC 7515 says not to); PyJWT decodes padded segments, and the signature covers the segments
exactly as sent, so nothing is stripped.

Checks, in order, each refusal naming what failed: the header is there and is a JWT; its
algorithm is ES256 (so ``none`` and HMAC are refused before any key is fetched); its signer is
our load balancer; the key for its ``kid`` verifies the signature; ``exp`` has not passed; the
issuer is the configured one (when set); the identity claim is present.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

HEADER = "x-amzn-oidc-data"
ALGORITHM = "ES256"
KID = re.compile(r"[A-Za-z0-9_-]{1,128}")
#: an unknown kid is not asked for again within this many seconds
MISS_TTL = 60.0
MAX_KEYS = 64
LEEWAY = 10  # seconds of clock skew allowed on exp


class AlbRefused(ValueError):
    """The header is missing or does not prove that the load balancer signed it."""


class AlbKeyUnavailable(RuntimeError):
    """The load balancer's key server did not answer (a retryable condition)."""


@dataclass(frozen=True, slots=True)
class AlbIdentity:
    name: str  # the configured claim's value (an email address by default)
    subject: str
    issuer: str


Fetch = Callable[[str, float], bytes]


def _fetch(url: str, timeout: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body: bytes = response.read(16_384)
        return body


class AlbKeys:
    """Public keys by ``kid``, fetched once from ``<base>/<kid>`` and kept."""

    def __init__(self, base: str, timeout: float = 5.0, fetch: Fetch = _fetch) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout
        self._fetch = fetch
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self._misses: dict[str, float] = {}
        self._lock = threading.Lock()
        self.fetches = 0

    def get(self, kid: str) -> ec.EllipticCurvePublicKey:
        with self._lock:
            key = self._keys.get(kid)
            missed = self._misses.get(kid)
        if key is not None:
            return key
        if missed is not None and time.monotonic() - missed < MISS_TTL:
            raise AlbRefused(f"the load balancer publishes no key {kid!r}")
        url = f"{self.base}/{kid}"
        self.fetches += 1
        try:
            pem = self._fetch(url, self.timeout)
        except urllib.error.HTTPError as exc:
            if exc.code in (403, 404):
                self._miss(kid)
                raise AlbRefused(f"the load balancer publishes no key {kid!r}") from None
            raise AlbKeyUnavailable(f"the key server answered {exc.code} for {url}") from None
        except (OSError, TimeoutError) as exc:
            raise AlbKeyUnavailable(f"cannot fetch the load balancer key {url}: {exc}") from None
        try:
            loaded = load_pem_public_key(pem)
        except ValueError:
            self._miss(kid)
            raise AlbRefused(f"the key published for {kid!r} is not a PEM public key") from None
        if not isinstance(loaded, ec.EllipticCurvePublicKey) or loaded.curve.name != "secp256r1":
            self._miss(kid)
            raise AlbRefused(f"the key published for {kid!r} is not a P-256 key")
        with self._lock:
            if len(self._keys) >= MAX_KEYS:
                self._keys.pop(next(iter(self._keys)))
            self._keys[kid] = loaded
        return loaded

    def _miss(self, kid: str) -> None:
        with self._lock:
            if len(self._misses) >= MAX_KEYS:
                self._misses.clear()
            self._misses[kid] = time.monotonic()


class AlbVerifier:
    def __init__(self, signer: str, keys: AlbKeys, issuer: str = "", claim: str = "email") -> None:
        self.signer = signer
        self.keys = keys
        self.issuer = issuer
        self.claim = claim

    def verify(self, token: str | None) -> AlbIdentity:
        if not token:
            raise AlbRefused(
                f"no {HEADER} header: sign in through the load balancer "
                "(requests that bypass it are refused)"
            )
        header = self._header(token.strip())
        kid = header.get("kid")
        if not isinstance(kid, str) or not KID.fullmatch(kid):
            raise AlbRefused(f"the {HEADER} header names no valid key id (kid)")
        key = self.keys.get(kid)
        claims = self._decode(token.strip(), key)
        name = claims.get(self.claim)
        if not isinstance(name, str) or not name.strip():
            raise AlbRefused(
                f"the signed claims carry no {self.claim!r} (BOT_IDENTITY_CLAIM) to name you by"
            )
        return AlbIdentity(name.strip(), str(claims.get("sub", "")), str(claims.get("iss", "")))

    def _header(self, token: str) -> dict[str, Any]:
        if token.count(".") != 2:
            raise AlbRefused(f"the {HEADER} header is not a JWT (header.payload.signature)")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise AlbRefused(f"the {HEADER} header is not a JWT (undecodable header)") from None
        alg = header.get("alg")
        if alg != ALGORITHM:
            raise AlbRefused(
                f"the {HEADER} header is signed with {alg!r}; the load balancer signs {ALGORITHM}"
            )
        signer = header.get("signer")
        if signer != self.signer:
            raise AlbRefused(
                f"the {HEADER} header was signed by {signer!r}, not by this deployment's load "
                "balancer (BOT_ALB_ARN)"
            )
        return header

    def _decode(self, token: str, key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[ALGORITHM],
                issuer=self.issuer or None,
                leeway=LEEWAY,
                options={"require": ["exp"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise AlbRefused(f"the {HEADER} header has expired: sign in again") from None
        except jwt.InvalidSignatureError:
            raise AlbRefused(
                f"the {HEADER} signature does not verify with the load balancer's key"
            ) from None
        except jwt.InvalidIssuerError:
            raise AlbRefused(
                f"the {HEADER} claims were issued by another provider than BOT_ALB_ISSUER"
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise AlbRefused(f"the {HEADER} claims lack {exc.claim!r}") from None
        except jwt.InvalidTokenError as exc:
            raise AlbRefused(f"the {HEADER} header is not valid: {exc}") from None
        return claims
