"""Signed, expiring chart links: ``/charts/{incident_id}.png?exp=<epoch>&sig=<hex>``.

A Teams card shows the chart as an image Teams fetches from the bot, without the caller's
credentials; the link itself is the permission. ``sig`` is HMAC-SHA256 over ``chart:{id}:{exp}``
with a key derived from the console's signing secret (``BOT_SESSION_SECRET``, else
``BOT_CONSOLE_TOKEN``: the secret that signs console sessions), so a chart signature is never
a valid session signature. Without either, the key is a random one kept in the database (shared
by every replica, kept across restarts). Expiry is rounded up to the hour, so a card updated
several times within an hour keeps one link (clients cache the picture).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr
from sqlalchemy import Engine, select

from bot.errors import PolicyViolation
from bot.store.repo import insert_ignore
from bot.store.settings_kv import SETTINGS

TTL = timedelta(hours=24)
KEY_SETTING = "chart_link_key"
_PURPOSE = b"incident-chart-link:v1"


@dataclass(frozen=True, slots=True)
class ChartSigner:
    key: bytes
    ttl: timedelta = TTL

    def _sig(self, incident_id: int, expires: int) -> str:
        message = f"chart:{incident_id}:{expires}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def path(self, incident_id: int, now: datetime) -> str:
        """The signed path (and query) of the incident's chart, valid for ``ttl`` or a little
        more (rounded up to the hour)."""
        expires = math.ceil((now + self.ttl).timestamp() / 3600) * 3600
        return f"/charts/{incident_id}.png?exp={expires}&sig={self._sig(incident_id, expires)}"

    def check(self, incident_id: int, exp: str, sig: str, now: datetime) -> None:
        """Raise ``PolicyViolation`` (403) naming why the link is refused."""
        if not exp.isdigit() or not sig:
            raise PolicyViolation(
                "this chart link is incomplete: it needs exp and sig (open the card again)"
            )
        if not hmac.compare_digest(sig.encode(), self._sig(incident_id, int(exp)).encode()):
            raise PolicyViolation(
                f"this chart link is not signed by this bot for INC-{incident_id} "
                "(forged or altered)"
            )
        expired = datetime.fromtimestamp(int(exp), UTC)
        if now >= expired:
            raise PolicyViolation(
                f"this chart link expired at {expired:%Y-%m-%d %H:%M} UTC; "
                "the card shows a fresh one when it is next updated"
            )


def derived_key(secret: SecretStr) -> bytes:
    return hmac.new(secret.get_secret_value().encode(), _PURPOSE, hashlib.sha256).digest()


def stored_key(engine: Engine, now: datetime) -> bytes:
    """The random key in ``settings_kv`` (created by the first replica that needs one)."""
    fresh = {"key": KEY_SETTING, "value_json": f'"{secrets.token_hex(32)}"', "updated_at": now}
    with engine.begin() as conn:
        insert_ignore(conn, SETTINGS, [fresh], "key")
        value = conn.execute(
            select(SETTINGS.c.value_json).where(SETTINGS.c.key == KEY_SETTING)
        ).scalar_one()
    return bytes.fromhex(str(value).strip('"'))


class ChartKeys:
    """The signer, its key derived once (or read from the database on first use)."""

    def __init__(self, secret: SecretStr | None, engine: Engine, ttl: timedelta = TTL) -> None:
        self._engine = engine
        self._ttl = ttl
        self._signer = ChartSigner(derived_key(secret), ttl) if secret is not None else None

    def signer(self, now: datetime) -> ChartSigner:
        if self._signer is None:
            self._signer = ChartSigner(stored_key(self._engine, now), self._ttl)
        return self._signer
