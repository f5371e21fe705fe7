"""Settings: environment variables (``BOT_…``) over an optional YAML file, validated once.

An invalid value stops start-up with :class:`bot.errors.ConfigError` whose text is one line per
problem, naming the variable and what is wrong. Secrets are ``SecretStr`` and never printed.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.domain.durations import parse_duration
from bot.errors import ConfigError
from bot.identity.config import check_auth_settings
from bot.push.config import PushSettings

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]

ENV_PREFIX = "BOT_"


def _never_or_duration(value: object) -> timedelta | None:
    if value is None or (isinstance(value, str) and value.strip().lower() == "never"):
        return None
    return parse_duration(value)  # type: ignore[arg-type]


class RateLimit(BaseModel):
    """A token bucket: ``rate`` messages per second on average, bursts up to ``burst``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rate: float = Field(gt=0)
    burst: int = Field(ge=1, default=1)
    #: also at most this many in any rolling ``window`` seconds (an API's "N a minute")
    window_max: int | None = Field(ge=1, default=None)
    window: float = Field(gt=0, default=60.0)


class Route(BaseModel):
    """Send incidents that match to ``channel`` on ``surface``; empty match fields match all."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    surface: str
    channel: str
    severity: list[str] = []
    category: list[str] = []
    service: list[str] = []


class Escalation(BaseModel):
    """Page incidents that match after ``after`` still open; ``never`` pages nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    after: Annotated[timedelta | None, BeforeValidator(_never_or_duration)]
    routing: str = "default"
    severity: list[str] = []
    category: list[str] = []
    service: list[str] = []


DEFAULT_ESCALATION = [
    Escalation(after=timedelta(0), severity=["critical"]),
    Escalation(after=timedelta(minutes=15), severity=["high"]),
    Escalation(after=None),
]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, validate_default=True
    )

    settings_file: Path | None = None
    database_url: str = "sqlite:///./data/bot.db"
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = ""
    rules_path: str = ""
    shipped_rules: bool = True
    playbooks_path: str = ""  # BOT_PLAYBOOKS_PATH: folders or files, os.pathsep-separated
    # BOT_FIELD_EXTRACTIONS_PATH: a user's field extractions (docs/field-extraction.md)
    field_extractions_path: str = ""
    shipped_playbooks: bool = True
    # remediation limits (docs/playbooks.md); admins may lower the concurrency at run time
    max_concurrent_resolutions: int = Field(default=10, ge=1, le=1000)
    approval_window: Duration = timedelta(minutes=15)
    breaker_failures: int = Field(default=3, ge=1, le=100)
    breaker_window: Duration = timedelta(hours=1)
    roles_file: Path | None = None
    redaction_mode: Literal["strict", "balanced", "off"] = "balanced"
    console_token: SecretStr | None = None
    retention_days: int = Field(default=30, ge=1)
    audit_retention_days: int = Field(default=365, ge=1)
    search_backend: Literal["local", "splunk"] = "local"
    generator: bool | None = None
    local_events_path: Path = Path("./data/events.db")
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    flap_window: Duration = timedelta(minutes=30)
    card_refresh: Duration = timedelta(seconds=60)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    outbox_rate_limits: dict[str, RateLimit] = {}
    outbox_max_attempts: int = Field(default=12, ge=1)
    routes: list[Route] = []
    escalation: list[Escalation] = DEFAULT_ESCALATION
    schedule_jitter: Duration = timedelta(seconds=2)
    # how late an event may reach the index and still be counted (docs/rules.md, "Late data")
    max_index_lag: Duration = Field(default=timedelta(minutes=5), ge=timedelta(seconds=1))
    # the generator's events become searchable a random time up to this long after they are
    # written (simulated indexing lag, to try late-event handling on the embedded default)
    generator_index_lag: Duration = timedelta(0)
    # rules over one index share one index-time-incremental search (docs/rules.md)
    shared_searches: bool = True
    # how often a shared search re-reads the rest of max_index_lag for events later than the lag
    # it has measured
    late_sweep: Duration = Field(default=timedelta(minutes=5), ge=timedelta(seconds=1))
    # at most this many events in one shared search's cache (beyond: its rules search alone)
    feed_max_events: int = Field(default=200_000, ge=100)
    # the scheduler lease is renewed every heartbeat and lasts 2 x heartbeat (docs/replicas.md)
    lease_heartbeat: Duration = Field(default=timedelta(seconds=5), ge=timedelta(milliseconds=100))
    outbox_claim_timeout: Duration = Field(default=timedelta(seconds=60), ge=timedelta(seconds=1))
    rca: Literal["bedrock", "heuristic", "off"] = "heuristic"
    rca_timeout: Duration = timedelta(seconds=30)
    # who is calling (docs/identity.md): token (shared BOT_CONSOLE_TOKEN), alb, oidc
    auth_mode: Literal["token", "alb", "oidc"] = "token"
    alb_arn: str = ""
    alb_key_url: str = ""  # default: the key server of BOT_ALB_ARN's region
    alb_issuer: str = ""
    identity_claim: str = Field(default="email", min_length=1)
    oidc_issuer: str = ""  # the provider's issuer URL; discovery at <issuer>/.well-known/…
    oidc_client_id: str = ""
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = "openid email profile"
    session_secret: SecretStr | None = None  # signs console session cookies
    session_ttl: Duration = timedelta(hours=12)
    # push ingest (docs/push.md): senders, routes, Splunk push-only rules; off without senders
    push: PushSettings = PushSettings()

    @model_validator(mode="before")
    @classmethod
    def _splunk_when_configured(cls, data: Any) -> Any:
        """``SPLUNK_HOST`` set and no backend chosen: search Splunk."""
        if (
            isinstance(data, dict)
            and "search_backend" not in data
            and os.environ.get("SPLUNK_HOST")
        ):
            return {**data, "search_backend": "splunk"}
        return data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlFileSource(settings_cls))

    # derived values -------------------------------------------------------------------------

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.http_host)

    @property
    def generator_enabled(self) -> bool:
        return self.generator if self.generator is not None else self.search_backend == "local"

    @property
    def rule_paths(self) -> list[Path]:
        return [Path(p) for p in self.rules_path.split(":") if p.strip()]

    @property
    def playbook_paths(self) -> list[Path]:
        return [Path(p) for p in self.playbooks_path.split(os.pathsep) if p.strip()]

    @property
    def field_extraction_paths(self) -> list[Path]:
        return [Path(p) for p in self.field_extractions_path.split(os.pathsep) if p.strip()]

    @property
    def console_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.http_host}:{self.http_port}"

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log redaction filter."""
        return [
            v.get_secret_value()
            for v in (self.console_token, self.oidc_client_secret, self.session_secret)
            if v is not None and v.get_secret_value()
        ]


class _YamlFileSource(PydanticBaseSettingsSource):
    """Values from ``BOT_SETTINGS_FILE`` (YAML with the setting names in lower case)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = os.environ.get(ENV_PREFIX + "SETTINGS_FILE")
        self._data: dict[str, Any] = {}
        if path:
            try:
                loaded = yaml.safe_load(Path(path).read_text()) or {}
            except OSError as exc:
                raise ConfigError(f"BOT_SETTINGS_FILE: cannot read {path}: {exc.strerror}") from exc
            except yaml.YAMLError as exc:
                raise ConfigError(f"BOT_SETTINGS_FILE: {path} is not valid YAML: {exc}") from exc
            if not isinstance(loaded, dict):
                raise ConfigError(f"BOT_SETTINGS_FILE: {path} must hold a mapping of settings")
            self._data = loaded

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def is_loopback_host(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(**overrides: Any) -> Settings:
    """Build and validate settings; raise ConfigError naming each bad variable."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    check_auth_settings(settings)
    shared = settings.console_token
    if settings.auth_mode == "token" and not settings.is_loopback and shared is None:
        raise ConfigError(
            f"BOT_CONSOLE_TOKEN: required when BOT_HTTP_HOST is not a loopback address "
            f"(BOT_HTTP_HOST={settings.http_host}); set a token, bind to 127.0.0.1, or sign "
            f"people in with BOT_AUTH_MODE=alb or oidc (docs/identity.md)"
        )
    return settings


def describe_errors(
    exc: ValidationError, model: type[BaseModel], env_name: Callable[[str], str]
) -> str:
    """One line per invalid setting, naming its variable (``env_name(field)``) and what is
    wrong; the value is shown unless the field is a secret (any ``SecretStr`` in its type)."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        detail = ".".join(str(p) for p in error["loc"][1:])
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        got = error.get("input")
        info = model.model_fields.get(field)
        secret = info is not None and "SecretStr" in str(info.annotation)
        hide = secret or isinstance(got, dict | list) or error["type"] == "missing"
        shown = "" if hide else f" (got {got!r})"
        lines.append(f"{env_name(field)}{'.' + detail if detail else ''}: {message}{shown}")
    return "\n".join(lines)


_Model = TypeVar("_Model", bound=BaseModel)


def load_checked(
    model: type[_Model],
    env_names: Mapping[str, str],
    problems: Callable[[_Model], list[str]],
    **overrides: Any,
) -> _Model:
    """``model`` from the environment (``overrides`` by field name win), then ``problems`` of
    it; ConfigError naming each bad variable (``env_names`` by field, else the field name)."""
    try:
        settings = model(**overrides)
    except ValidationError as exc:
        raise ConfigError(
            describe_errors(exc, model, lambda field: env_names.get(field, field))
        ) from None
    found = problems(settings)
    if found:
        raise ConfigError("\n".join(found))
    return settings


def _describe(exc: ValidationError) -> str:
    return describe_errors(exc, Settings, lambda field: ENV_PREFIX + field.upper())
