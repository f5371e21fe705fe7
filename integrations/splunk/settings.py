"""Splunk settings: ``SPLUNK_…`` environment variables, validated once before the first search.

``SplunkSettings()`` can be built with nothing set (so the bot starts on its local backend);
:func:`load_splunk_settings` (and :class:`~integrations.splunk.SplunkSearchBackend`) refuse a
configuration that cannot work, naming each variable and what is wrong with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError
from bot.settings import describe_errors

ENV_PREFIX = "SPLUNK_"


class SplunkSettings(BaseSettings):
    """Where splunkd is, how to authenticate, and how hard to use it.

    Authenticate with exactly one of: ``token`` (a Splunk authentication token, sent as
    ``Authorization: Bearer``) or ``username`` + ``password`` (a session login).
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    host: str = ""
    port: int = Field(default=8089, ge=1, le=65535)
    scheme: Literal["https", "http"] = "https"
    verify_tls: bool = True
    ca_file: Path | None = None
    token: SecretStr | None = None
    username: str = ""
    password: SecretStr | None = None
    app: str = "search"
    owner: str = "nobody"
    max_concurrent: int = Field(default=3, ge=1, le=100)
    search_timeout: float = Field(default=120.0, gt=0)
    max_results: int = Field(default=50_000, ge=1)
    web_url: str = ""

    @field_validator("token", "password", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("ca_file", mode="before")
    @classmethod
    def _blank_path_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("host", "username", "app", "owner", "web_url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    # derived values -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The management (REST) address, e.g. ``https://splunk.example.com:8089``."""
        return f"{self.scheme}://{_bracketed(self.host)}:{self.port}"

    @property
    def search_web_url(self) -> str:
        """Splunk Web's base address for links: ``web_url`` or ``https://<host>:8000``."""
        if self.web_url:
            return self.web_url.rstrip("/")
        return f"https://{_bracketed(self.host)}:8000"

    @property
    def auth_method(self) -> Literal["token", "password"]:
        return "token" if self.token is not None else "password"

    @property
    def auth_variables(self) -> str:
        """The variables to check when Splunk rejects the credentials."""
        if self.auth_method == "token":
            return f"{ENV_PREFIX}TOKEN"
        return f"{ENV_PREFIX}USERNAME and {ENV_PREFIX}PASSWORD"

    def secret_values(self) -> list[str]:
        """The configured secrets, for redaction filters and for scrubbing error text."""
        return [
            s.get_secret_value()
            for s in (self.token, self.password)
            if s is not None and s.get_secret_value()
        ]

    def problems(self) -> list[str]:
        """Why these settings cannot be used to search, one line per problem (empty when fine)."""
        found = []
        if not self.host:
            found.append(
                f"{ENV_PREFIX}HOST: required (the splunkd management host, e.g. splunk.example.com)"
            )
        has_login = bool(self.username) or self.password is not None
        if self.token is not None and has_login:
            found.append(
                f"{ENV_PREFIX}TOKEN and {ENV_PREFIX}USERNAME/{ENV_PREFIX}PASSWORD are both set: "
                "choose one authentication method"
            )
        elif self.token is None and not has_login:
            found.append(
                f"{ENV_PREFIX}TOKEN (or {ENV_PREFIX}USERNAME and {ENV_PREFIX}PASSWORD): "
                "required to authenticate to Splunk"
            )
        elif self.token is None and not self.username:
            found.append(f"{ENV_PREFIX}USERNAME: required with {ENV_PREFIX}PASSWORD")
        elif self.token is None and self.password is None:
            found.append(f"{ENV_PREFIX}PASSWORD: required with {ENV_PREFIX}USERNAME")
        if self.ca_file is not None:
            if not self.verify_tls:
                found.append(
                    f"{ENV_PREFIX}CA_FILE is set but {ENV_PREFIX}VERIFY_TLS is false: "
                    "keep verification on to use the CA file"
                )
            elif not self.ca_file.is_file():
                found.append(f"{ENV_PREFIX}CA_FILE: no such file: {self.ca_file}")
        if self.web_url:
            parts = urlsplit(self.web_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                found.append(
                    f"{ENV_PREFIX}WEB_URL: must be an http(s) address such as "
                    f"https://splunk.example.com:8000 (got {self.web_url!r})"
                )
        return found

    def require_usable(self) -> SplunkSettings:
        """These settings, or :class:`ConfigError` listing every problem."""
        found = self.problems()
        if found:
            raise ConfigError("\n".join(found))
        return self


def load_splunk_settings(**overrides: Any) -> SplunkSettings:
    """Read ``SPLUNK_…`` variables (``overrides`` win) and check they can be used to search."""
    try:
        settings = SplunkSettings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    return settings.require_usable()


def _describe(exc: ValidationError) -> str:
    return describe_errors(exc, SplunkSettings, lambda field: ENV_PREFIX + field.upper())


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
