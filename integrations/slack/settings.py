"""Slack settings: ``SLACK_…`` environment variables, validated once at start-up.

``SlackSettings()`` builds with nothing set (Slack is then simply off: :attr:`enabled` is
false). :func:`load_slack_settings` refuses a configuration that cannot work, one line per
problem, each naming the variable; with no Slack variable set it answers settings that are off.

Socket Mode is used when ``SLACK_APP_TOKEN`` is set; otherwise Slack calls the bot over HTTP at
``POST /slack/events`` and every request is checked against ``SLACK_SIGNING_SECRET``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError
from bot.settings import RateLimit, describe_errors

ENV_PREFIX = "SLACK_"
DEFAULT_API_URL = "https://slack.com/api/"
# Slack counts a request when it arrives, the bot when it decides to send: each burst is one
# short of what Slack allows (3 posts, 5 updates), a margin for the time in between
POSTS_PER_SECOND, POST_BURST = 1.0, 2
UPDATES_PER_MINUTE, UPDATE_BURST = 48, 4
CHARTS_PER_MINUTE = 20
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")
_SECRETS = ("bot_token", "signing_secret", "app_token")


class SlackSettings(BaseSettings):
    """How the bot reaches Slack and how Slack reaches the bot."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    app_token: SecretStr | None = None
    api_url: str = DEFAULT_API_URL
    default_channel: str = ""
    command: str = "/incident"
    digest_after: int = Field(default=10, ge=1)
    role_groups: bool | None = None
    timeout: float = Field(default=10.0, gt=0, le=60)
    group_cache_seconds: float = Field(default=300.0, ge=0)

    @field_validator(*_SECRETS, mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("api_url", "default_channel", "command")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"must be an http(s) address such as {DEFAULT_API_URL}")
        if parts.path.rstrip("/").endswith("/api"):
            return value.rstrip("/") + "/"
        raise ValueError(f"must end with /api/ like {DEFAULT_API_URL}")

    # derived values -------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Slack is on when a bot token is configured."""
        return self.bot_token is not None

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None

    def uses_role_groups(self, identities: list[str]) -> bool:
        """Whether to look up user groups: ``SLACK_ROLE_GROUPS``, else whether the roles file
        names any ``slack-group:`` identity."""
        if self.role_groups is not None:
            return self.role_groups
        return any(identity.startswith("slack-group:") for identity in identities)

    def outbox_rate_limits(self) -> dict[str, RateLimit]:
        """The outbox budget within Slack's limits: posts and replies about 1/s per channel
        (bursts of 2), in-place updates about 50/min for the whole workspace (Tier 3): paced at
        48/min with bursts of 4, and never more than 48 in any rolling minute; charts in card
        threads (``files.getUploadURLExternal`` + ``files.completeUploadExternal``) at most 20 a
        minute, budgeted apart from the posts."""
        return {
            "slack": RateLimit(rate=POSTS_PER_SECOND, burst=POST_BURST),
            "slack.update": RateLimit(
                rate=UPDATES_PER_MINUTE / 60, burst=UPDATE_BURST, window_max=UPDATES_PER_MINUTE
            ),
            # a chart in a card's thread: two file calls each, on their own budget (never the
            # channel's posts), 20 a minute at most
            "slack.chart": RateLimit(
                rate=CHARTS_PER_MINUTE / 60, burst=3, window_max=CHARTS_PER_MINUTE
            ),
        }

    def secret_values(self) -> list[str]:
        """The configured secrets, for log redaction and for scrubbing error text."""
        return [
            s.get_secret_value()
            for s in (self.bot_token, self.signing_secret, self.app_token)
            if s is not None and s.get_secret_value()
        ]

    def problems(self) -> list[str]:
        """Why these settings cannot be used (empty when they can), one line per problem."""
        found = []
        token = self.bot_token.get_secret_value() if self.bot_token else ""
        if not token:
            if self.signing_secret is None and self.app_token is None:
                return []  # Slack is not in use
            found.append(f"{ENV_PREFIX}BOT_TOKEN: required (the bot token, xoxb-…)")
        elif not token.startswith("xoxb-"):
            found.append(
                f"{ENV_PREFIX}BOT_TOKEN: must be a bot token starting with xoxb- "
                "(OAuth & Permissions → Bot User OAuth Token)"
            )
        if self.app_token is not None:
            if not self.app_token.get_secret_value().startswith("xapp-"):
                found.append(
                    f"{ENV_PREFIX}APP_TOKEN: must be an app-level token starting with xapp- "
                    "(Basic Information → App-Level Tokens, scope connections:write)"
                )
        elif self.signing_secret is None:
            found.append(
                f"{ENV_PREFIX}SIGNING_SECRET: required in HTTP mode (Basic Information → "
                f"Signing Secret); or set {ENV_PREFIX}APP_TOKEN for Socket Mode"
            )
        if self.default_channel and not _CHANNEL_ID.fullmatch(self.default_channel):
            found.append(
                f"{ENV_PREFIX}DEFAULT_CHANNEL: use the channel's ID such as C0123ABCD, not its "
                f"name (got {self.default_channel!r}); cards are updated by ID"
            )
        if not re.fullmatch(r"/[a-z0-9_-]{1,31}", self.command):
            found.append(f"{ENV_PREFIX}COMMAND: must look like /incident (got {self.command!r})")
        return found

    def require_usable(self) -> SlackSettings:
        found = self.problems()
        if found:
            raise ConfigError("\n".join(found))
        return self


def load_slack_settings(**overrides: Any) -> SlackSettings:
    """Read ``SLACK_…`` variables (``overrides`` win) and check they can be used."""
    try:
        settings = SlackSettings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    return settings.require_usable()


def _describe(exc: ValidationError) -> str:
    return describe_errors(exc, SlackSettings, lambda field: ENV_PREFIX + field.upper())
