"""Console session cookies: ``name:expires:hmac``, signed with a server-side secret.

The secret is ``BOT_SESSION_SECRET`` (required for OIDC sign-in), else the shared console token.
A cookie names its holder and when it stops being accepted; changing the secret signs everyone
out.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

COOKIE = "bot_session"


@dataclass(frozen=True, slots=True)
class SessionSigner:
    secret: bytes
    ttl: timedelta

    def _signature(self, name: str, expires: int) -> str:
        message = f"session:{name}:{expires}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def issue(self, name: str, now: datetime) -> str:
        expires = int((now + self.ttl).timestamp())
        return f"{name}:{expires}:{self._signature(name, expires)}"

    def holder(self, cookie: str, now: datetime) -> str | None:
        """The name a cookie was issued to, or None when it is forged, altered or expired."""
        parts = cookie.rsplit(":", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        name, expires_text, signature = parts
        expires = int(expires_text)
        if not name or not hmac.compare_digest(signature, self._signature(name, expires)):
            return None
        return name if now.timestamp() < expires else None

    @property
    def max_age(self) -> int:
        return int(self.ttl.total_seconds())
