"""PagerDuty settings: ``PAGERDUTY_…`` environment variables, validated once at start-up.

``PagerDutySettings()`` builds with nothing set (PagerDuty is then off: :attr:`enabled` is
false). :func:`load_pagerduty_settings` refuses a configuration that cannot work, one line per
problem, each naming the variable; no secret value ever appears in those lines.

Routing: a page names a *channel* (the escalation policy's ``routing``). ``default`` uses
``PAGERDUTY_ROUTING_KEY``; any other channel must be a key of ``PAGERDUTY_ROUTING_KEYS`` (a JSON
object, channel name → routing key), so a page never lands on another team's service by accident.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError
from bot.settings import RateLimit, describe_errors

ENV_PREFIX = "PAGERDUTY_"
DEFAULT_CHANNEL = "default"
DEFAULT_EVENTS_URL = "https://events.pagerduty.com"
DEFAULT_API_URL = "https://api.pagerduty.com"
EU_EVENTS_URL = "https://events.eu.pagerduty.com"
EU_API_URL = "https://api.eu.pagerduty.com"
ROUTING_KEY_LENGTH = 32
BURST = 10
_SECRETS = ("routing_key", "routing_keys", "api_token", "webhook_secrets")
_CHANNEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")


class PagerDutySettings(BaseSettings):
    """How the bot pages through PagerDuty and how PagerDuty reaches the bot."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    routing_key: SecretStr | None = None
    routing_keys: Annotated[dict[str, SecretStr], NoDecode] = {}
    events_url: str = DEFAULT_EVENTS_URL
    api_token: SecretStr | None = None
    api_url: str = DEFAULT_API_URL
    from_email: str = ""
    webhook_secrets: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    ca_file: Path | None = None
    events_per_minute: int = Field(default=96, ge=1, le=10_000)
    timeout: float = Field(default=10.0, gt=0, le=60)
    lookup_timeout: float = Field(default=3.0, ge=0, le=30)
    oncall_cache_seconds: float = Field(default=300.0, ge=0)

    @field_validator("routing_key", "api_token", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @field_validator("routing_keys", mode="before")
    @classmethod
    def _routing_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ValueError(
                    'must be a JSON object of channel name to routing key, like {"db": "R0…"}'
                ) from None
        if not isinstance(value, dict):
            raise ValueError("must be a JSON object of channel name to routing key")
        for channel in value:
            if not isinstance(channel, str) or not _CHANNEL.fullmatch(channel):
                raise ValueError(f"bad channel name {channel!r}: use letters, digits, . _ : -")
        return value

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _secret_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("events_url", "api_url")
    @classmethod
    def _https_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.netloc:
            raise ValueError("must be an https:// address (the PagerDuty client refuses http)")
        return value

    @field_validator("from_email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = value.strip()
        if value and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
            raise ValueError("must be the e-mail address of a PagerDuty user")
        return value

    # derived values -------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Paging is on when at least one routing key is configured."""
        return self.routing_key is not None or bool(self.routing_keys)

    @property
    def rest_enabled(self) -> bool:
        return self.api_token is not None

    @property
    def channels(self) -> list[str]:
        """The channel names a page may use."""
        names = list(self.routing_keys)
        if self.routing_key is not None and DEFAULT_CHANNEL not in names:
            names.insert(0, DEFAULT_CHANNEL)
        return names

    def routing_key_for(self, channel: str) -> str | None:
        """The routing key of ``channel`` (``default``: ``PAGERDUTY_ROUTING_KEY``), or None."""
        if channel in self.routing_keys:
            return self.routing_keys[channel].get_secret_value()
        if channel == DEFAULT_CHANNEL and self.routing_key is not None:
            return self.routing_key.get_secret_value()
        return None

    def verify(self) -> ssl.SSLContext | bool:
        """What the HTTP client verifies certificates with: the CA file, else the system's."""
        if self.ca_file is None:
            return True
        return ssl.create_default_context(cafile=str(self.ca_file))

    def budget(self) -> tuple[float, int]:
        """(events per second, burst) such that no rolling minute holds more than
        ``events_per_minute`` events: a bucket allows its burst plus a minute of its rate."""
        burst = min(BURST, max(1, self.events_per_minute // 4))
        return max(self.events_per_minute - burst, 1) / 60, burst

    def outbox_rate_limit(self) -> dict[str, RateLimit]:
        """The outbox budget for the ``pagerduty`` lanes (one per channel): the bucket, and
        never more than ``events_per_minute`` in any rolling minute, as the API states it."""
        rate, burst = self.budget()
        return {"pagerduty": RateLimit(rate=rate, burst=burst, window_max=self.events_per_minute)}

    def secret_values(self) -> list[str]:
        """Every configured secret, for log redaction and for scrubbing error text."""
        values = [self.routing_key, self.api_token, *self.routing_keys.values()]
        values.extend(self.webhook_secrets)
        return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]

    def problems(self, channels: Iterable[str] = ()) -> list[str]:
        """Why these settings cannot be used (empty when they can), one line per problem.

        ``channels`` are the routing names the escalation policy pages; each needs a key."""
        found = []
        if not self.enabled:
            found.append(
                f"{ENV_PREFIX}ROUTING_KEY: required (the Events API v2 integration key of a "
                f"PagerDuty service), or set {ENV_PREFIX}ROUTING_KEYS"
            )
        if self.routing_key is not None and not _key_ok(self.routing_key):
            found.append(f"{ENV_PREFIX}ROUTING_KEY: must be {ROUTING_KEY_LENGTH} characters")
        for channel, key in self.routing_keys.items():
            if not _key_ok(key):
                found.append(
                    f"{ENV_PREFIX}ROUTING_KEYS.{channel}: must be {ROUTING_KEY_LENGTH} characters"
                )
        for channel in dict.fromkeys(channels):
            if self.enabled and self.routing_key_for(channel) is None:
                found.append(
                    f"{ENV_PREFIX}ROUTING_KEYS: no routing key for channel {channel!r} "
                    f"(named by BOT_ESCALATION)"
                )
        if self.ca_file is not None and not self.ca_file.is_file():
            found.append(f"{ENV_PREFIX}CA_FILE: no such file: {self.ca_file}")
        return found

    def require_usable(self, channels: Iterable[str] = ()) -> PagerDutySettings:
        found = self.problems(channels)
        if found:
            raise ConfigError("\n".join(found))
        return self


def _key_ok(key: SecretStr) -> bool:
    value = key.get_secret_value()
    return len(value) == ROUTING_KEY_LENGTH and value.isascii() and value.isalnum()


def load_pagerduty_settings(channels: Iterable[str] = (), **overrides: Any) -> PagerDutySettings:
    """Read ``PAGERDUTY_…`` variables (``overrides`` win) and check they can be used."""
    try:
        settings = PagerDutySettings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    return settings.require_usable(channels)


def _describe(exc: ValidationError) -> str:
    return describe_errors(exc, PagerDutySettings, lambda field: ENV_PREFIX + field.upper())
