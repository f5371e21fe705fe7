"""Teams settings: ``TEAMS_…`` environment variables, validated once at start-up.

``TeamsSettings()`` can be built with nothing set (Teams is then off: :attr:`enabled` is false);
:func:`load_teams_settings` refuses a configuration that cannot work, one line per problem,
naming the variable. The bot authenticates to the Bot Connector with exactly one of:

* ``TEAMS_APP_PASSWORD`` (the app registration's client secret), or
* a certificate: ``TEAMS_CERT_KEY_FILE`` (a PEM private key, with ``TEAMS_CERT_THUMBPRINT``,
  the certificate's SHA-1 thumbprint as shown in Entra ID; or a ``.pfx``/``.p12`` file, which
  carries its certificate and needs no thumbprint).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError
from bot.settings import describe_errors, is_loopback_host

ENV_PREFIX = "TEAMS_"
PFX_SUFFIXES = (".pfx", ".p12")
_THUMBPRINT = re.compile(r"[0-9A-Fa-f]{40}")


class TeamsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    app_id: str = ""
    app_password: SecretStr | None = None
    cert_thumbprint: str = ""
    cert_key_file: Path | None = None
    tenant_id: str = ""
    # where cards go when no route names a Teams channel: a key printed by the bot when it is
    # added to a channel (``team/channel``) or a conversation id
    default_channel: str = ""
    # accept unsigned requests on /api/messages: tests and local experiments on loopback only
    anonymous: bool = False
    # the Entra ID authority, e.g. https://login.microsoftonline.us/<tenant> for US Government
    authority: str = ""
    timeout: float = Field(default=10.0, gt=0, le=120)
    # how long to wait for Entra ID's token endpoint (a send waits at most TIMEOUT in all)
    token_timeout: float = Field(default=5.0, gt=0, le=120)

    @field_validator("app_password", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("cert_key_file", mode="before")
    @classmethod
    def _blank_path_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("app_id", "tenant_id", "default_channel", "authority")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("cert_thumbprint")
    @classmethod
    def _thumbprint(cls, value: str) -> str:
        return value.replace(":", "").replace(" ", "").upper()

    # derived values -------------------------------------------------------------------------

    @property
    def enabled(self) -> bool:
        """Teams is on when an app id is configured."""
        return bool(self.app_id)

    @property
    def uses_certificate(self) -> bool:
        return self.cert_key_file is not None

    @property
    def uses_pfx(self) -> bool:
        return self.cert_key_file is not None and self.cert_key_file.suffix.lower() in PFX_SUFFIXES

    def secret_values(self) -> list[str]:
        """The configured secrets, for the log redaction filter."""
        if self.app_password is None or not self.app_password.get_secret_value():
            return []
        return [self.app_password.get_secret_value()]

    def problems(self) -> list[str]:
        """Why these settings cannot run the Teams integration (empty when fine or off)."""
        if not self.enabled:
            return []
        found = []
        if not self.tenant_id:
            found.append(
                f"{ENV_PREFIX}TENANT_ID: required (the Entra ID tenant of the bot's app "
                "registration)"
            )
        has_password = self.app_password is not None
        if has_password and self.uses_certificate:
            found.append(
                f"{ENV_PREFIX}APP_PASSWORD and {ENV_PREFIX}CERT_KEY_FILE are both set: "
                "choose one way to authenticate"
            )
        elif not has_password and not self.uses_certificate:
            found.append(
                f"{ENV_PREFIX}APP_PASSWORD (or {ENV_PREFIX}CERT_KEY_FILE with "
                f"{ENV_PREFIX}CERT_THUMBPRINT): required to authenticate to the Bot Connector"
            )
        if self.cert_key_file is not None:
            if not self.cert_key_file.is_file():
                found.append(f"{ENV_PREFIX}CERT_KEY_FILE: no such file: {self.cert_key_file}")
            if not self.uses_pfx and not _THUMBPRINT.fullmatch(self.cert_thumbprint):
                found.append(
                    f"{ENV_PREFIX}CERT_THUMBPRINT: required with a PEM key file: the "
                    "certificate's SHA-1 thumbprint, 40 hex digits"
                )
        elif self.cert_thumbprint:
            found.append(f"{ENV_PREFIX}CERT_THUMBPRINT is set without {ENV_PREFIX}CERT_KEY_FILE")
        if self.authority and not self.authority.startswith("https://"):
            found.append(
                f"{ENV_PREFIX}AUTHORITY: must be an https address such as "
                f"https://login.microsoftonline.us/<tenant> (got {self.authority!r})"
            )
        return found

    def require_usable(self) -> TeamsSettings:
        """These settings, or :class:`ConfigError` listing every problem."""
        found = self.problems()
        if found:
            raise ConfigError("\n".join(found))
        return self

    def validate_for_host(self, host: str) -> TeamsSettings:
        """Refuse anonymous access unless the bot listens on a loopback address only."""
        if self.anonymous and not is_loopback_host(host):
            raise ConfigError(
                f"{ENV_PREFIX}ANONYMOUS: accepts unsigned requests on /api/messages and is only "
                f"allowed when BOT_HTTP_HOST is a loopback address (BOT_HTTP_HOST={host}); "
                f"unset {ENV_PREFIX}ANONYMOUS"
            )
        return self


def load_teams_settings(**overrides: Any) -> TeamsSettings:
    """Read ``TEAMS_…`` variables (``overrides`` win); raise ConfigError naming each problem."""
    unknown = sorted(
        name
        for name in os.environ
        if name.upper().startswith(ENV_PREFIX)
        and name.upper().removeprefix(ENV_PREFIX).lower() not in TeamsSettings.model_fields
    )
    try:
        settings = TeamsSettings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    found = [f"{name}: unknown setting" for name in unknown] + settings.problems()
    if found:
        raise ConfigError("\n".join(found))
    return settings


def _describe(exc: ValidationError) -> str:
    return describe_errors(exc, TeamsSettings, lambda field: ENV_PREFIX + field.upper())
