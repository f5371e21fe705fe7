"""Who is pushing: a sender's bearer token or basic auth, checked against SHA-256 digests, and
its rate limit. Failures are counted (``bot_push_auth_failures_total``)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter

from bot.push.config import PushSender
from bot.ratelimit import TokenBucket


class Refusal(StrEnum):
    MISSING = "missing"
    MALFORMED = "malformed"
    WRONG = "wrong"


@dataclass(frozen=True, slots=True)
class Denied:
    reason: Refusal
    text: str


@dataclass(frozen=True, slots=True)
class Limited:
    retry_after: int  # whole seconds, at least 1


class PushMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.auth_failures = Counter(
            "bot_push_auth_failures_total",
            "Push requests refused for missing or wrong credentials",
            ["endpoint", "reason"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "bot_push_rate_limited_total",
            "Push requests answered 429",
            ["sender"],
            registry=registry,
        )
        self.alerts = Counter(
            "bot_push_alerts_total",
            "Pushed alerts by sender and outcome (firing, resolved, invalid)",
            ["sender", "outcome"],
            registry=registry,
        )


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class SenderGate:
    """Authenticates and rate-limits senders (buckets per process)."""

    def __init__(
        self,
        senders: Sequence[PushSender],
        metrics: PushMetrics,
        bucket: Callable[[float, int], TokenBucket] = TokenBucket,
    ) -> None:
        self.metrics = metrics
        self._by_token = {s.token_sha256: s for s in senders if s.token_sha256}
        self._by_user = {s.username: s for s in senders if s.username}
        self._buckets = {s.name: bucket(s.rate, s.burst) for s in senders}

    def authenticate(self, headers: Mapping[str, str], endpoint: str) -> PushSender | Denied:
        found = self._check(headers.get("authorization", ""))
        if isinstance(found, Denied):
            self.metrics.auth_failures.labels(endpoint, found.reason.value).inc()
        return found

    def admit(self, sender: PushSender) -> Limited | None:
        wait = self._buckets[sender.name].try_take()
        if wait <= 0:
            return None
        self.metrics.rate_limited.labels(sender.name).inc()
        return Limited(max(1, math.ceil(wait)))

    def _check(self, header: str) -> PushSender | Denied:
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if not scheme:
            return Denied(Refusal.MISSING, "credentials required: a bearer token or basic auth")
        if scheme.lower() == "bearer" and value:
            sender = self._by_token.get(_sha256(value))
            if sender is not None:
                return sender
            return Denied(Refusal.WRONG, "unknown bearer token")
        if scheme.lower() == "basic" and value:
            try:
                user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return Denied(Refusal.MALFORMED, "basic credentials are not valid base64")
            sender = self._by_user.get(user)
            if (
                sep
                and sender is not None
                and hmac.compare_digest(_sha256(password), sender.password_sha256)
            ):
                return sender
            return Denied(Refusal.WRONG, "wrong username or password")
        return Denied(Refusal.MALFORMED, "use 'Authorization: Bearer <token>' or basic auth")
