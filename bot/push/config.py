"""Push settings (the ``push:`` block of the settings file): senders, routes, Splunk rules.

Secrets are stored as SHA-256 hex digests only (``printf %s "$TOKEN" | sha256sum``); a sender
authenticates with a bearer token or with basic auth, as Prometheus and Grafana both offer.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from bot.domain.durations import parse_duration
from bot.domain.hits import Category, Severity
from bot.errors import PermanentError
from bot.push.matchers import LabelMatcher, parse_matchers

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
SLUG = re.compile(r"[a-z0-9][a-z0-9_-]*")
SHA256 = re.compile(r"[0-9a-f]{64}")
#: ``group_by: ["..."]`` groups by every label, as in Alertmanager
ALL_LABELS = "..."


def _slug(value: str) -> str:
    if not SLUG.fullmatch(value):
        raise ValueError(f"'{value}' is not a slug: use lowercase letters, digits, '-' and '_'")
    return value


def _sha256(value: str) -> str:
    value = value.strip().lower()
    if value and not SHA256.fullmatch(value):
        raise ValueError(
            "must be the SHA-256 of the secret as 64 hex digits (printf %s SECRET | sha256sum)"
        )
    return value


Slug = Annotated[str, AfterValidator(_slug)]
Sha256 = Annotated[str, BeforeValidator(_sha256)]


class PushSender(BaseModel):
    """One system allowed to push, with its credentials (hashed) and its rate limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Slug
    token_sha256: Sha256 = ""  # bearer token
    username: str = ""  # basic auth: username and the SHA-256 of the password
    password_sha256: Sha256 = ""
    rate: float = Field(default=100.0, gt=0)  # requests per second, on average
    burst: int = Field(default=200, ge=1)

    @model_validator(mode="after")
    def _one_way_in(self) -> PushSender:
        basic = bool(self.username or self.password_sha256)
        if basic and not (self.username and self.password_sha256):
            raise ValueError(f"sender {self.name}: basic auth needs username and password_sha256")
        if not basic and not self.token_sha256:
            raise ValueError(
                f"sender {self.name}: set token_sha256 (bearer) or username and password_sha256"
            )
        return self


class PushRoute(BaseModel):
    """Alerts whose labels match every matcher become incidents of rule ``push-<name>``,
    one incident per ``group_by`` label values. The first matching route wins."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Slug
    matchers: tuple[str, ...] = ()
    group_by: tuple[str, ...] = ("alertname",)
    severity: Severity = Severity.MEDIUM  # when the alert's `severity` label says nothing known
    category: Category = Category.APPLICATION  # when it has no known `category` label
    realert: Duration = timedelta(0)

    @field_validator("matchers")
    @classmethod
    def _matchers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        try:
            parse_matchers(value)
        except PermanentError as exc:
            raise ValueError(str(exc)) from None
        return value

    @property
    def rule_id(self) -> str:
        return f"push-{self.name}"

    def parsed(self) -> tuple[LabelMatcher, ...]:
        return parse_matchers(self.matchers)


DEFAULT_ROUTE = PushRoute(name="default")


class SplunkPushRule(BaseModel):
    """A push-only rule: what a Splunk alert action for ``search_name`` becomes."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    search_name: str = Field(min_length=1)
    id: Slug
    title: str = ""
    severity: Severity = Severity.MEDIUM
    category: Category = Category.APPLICATION
    group_by: tuple[str, ...] = ()
    service: str = ""
    owner: str = ""
    runbook: str = ""
    realert: Duration = timedelta(0)


class PushSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    senders: tuple[PushSender, ...] = ()
    routes: tuple[PushRoute, ...] = ()
    #: an alert sent without endsAt resolves this long after its last push (Alertmanager's
    #: global resolve_timeout)
    resolve_timeout: Duration = timedelta(minutes=5)
    splunk_rules: tuple[SplunkPushRule, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> PushSettings:
        for what, names in (
            ("sender", [s.name for s in self.senders]),
            ("sender username", [s.username for s in self.senders if s.username]),
            ("route", [r.name for r in self.routes]),
            ("splunk rule search_name", [r.search_name for r in self.splunk_rules]),
        ):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"{what} '{twice[0]}' is listed twice")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.senders)

    def all_routes(self) -> tuple[PushRoute, ...]:
        """The configured routes, then the default one (group by alertname) for the rest."""
        if any(r.name == DEFAULT_ROUTE.name for r in self.routes):
            return self.routes
        return (*self.routes, DEFAULT_ROUTE)
