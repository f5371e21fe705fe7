"""The fields every rule has, whatever its type. Each rule type subclasses :class:`Rule` with its
own ``type`` literal and settings (see :mod:`detectors.types`)."""

from __future__ import annotations

import re
from datetime import UTC, timedelta
from typing import Annotated, Any, Literal

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bot.domain.durations import parse_duration
from bot.domain.hits import Category, Severity

DEFAULT_INTERVAL = "60s"
SLUG = re.compile(r"[a-z0-9][a-z0-9_-]*")
FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]*")
#: Fields the loader fills in; a rule file may not set them.
SOURCE_FIELDS = ("source_file", "source_line")

FieldRef = tuple[tuple[str | int, ...], str]


def rule_error(message: str, at: tuple[str | int, ...] = ()) -> PydanticCustomError:
    """A validation error whose text is exactly ``message`` (no pydantic prefix). ``at``: where
    inside the model the problem is, when a model-level check knows better than its own loc
    (file loaders report that key's line)."""
    context: dict[str, Any] = {"message": message}
    if at:
        context["at"] = at
    return PydanticCustomError("rule_value", "{message}", context)


def _duration(value: Any) -> timedelta:
    if not isinstance(value, str | int | float | timedelta):
        raise rule_error(f"bad duration {value!r}: use forms like 30s, 5m, 1h, 1d")
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise rule_error(str(exc)) from None


def _optional_duration(value: Any) -> timedelta | None:
    return None if value is None else _duration(value)


def _at_least_a_second(value: timedelta | None) -> timedelta | None:
    if value is not None and value < timedelta(seconds=1):
        raise rule_error("must be at least 1s")
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
OptionalDuration = Annotated[timedelta | None, BeforeValidator(_optional_duration)]
#: a duration of at least one second (windows, intervals, timeframes, horizons …)
PositiveDuration = Annotated[
    timedelta, BeforeValidator(_duration), AfterValidator(_at_least_a_second)
]
OptionalPositiveDuration = Annotated[
    timedelta | None, BeforeValidator(_optional_duration), AfterValidator(_at_least_a_second)
]


class Rule(BaseModel):
    """One detection rule. ``interval`` is None exactly when ``schedule`` (cron) is set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    title: str
    description: str = ""
    query: str
    type: str
    interval: OptionalPositiveDuration = None
    schedule: str | None = None
    window: PositiveDuration = timedelta(minutes=5)
    query_delay: Duration = timedelta(0)
    max_catchup: Duration = timedelta(hours=1)
    #: how late an event may reach the index and still be counted (index-time runs); None: the
    #: global ``BOT_MAX_INDEX_LAG``
    max_index_lag: OptionalPositiveDuration = None
    group_by: tuple[str, ...] = ()
    severity: Severity
    category: Category
    service: str = ""
    owner: str = ""
    runbook: str = ""
    realert: Duration = timedelta(0)
    enabled: bool = True
    max_results: int = Field(default=10_000, ge=1, le=1_000_000)
    search_mode: Literal["export", "job"] = "export"
    evidence_lines: int = Field(default=20, ge=0, le=1_000)
    resolve_after: int | None = Field(default=None, ge=1)
    #: the playbook that fixes what this rule detects (checked against the playbook registry)
    suggested_playbook: str | None = None
    #: how much one hit of this rule alone is trusted to mean its situation (0..1)
    confidence: float = Field(default=0.6, ge=0.0, le=1.0)
    #: run the suggested playbook without a press when every check of the gate passes
    auto_resolve: bool = False
    source_file: str = ""
    source_line: int = 0

    @model_validator(mode="before")
    @classmethod
    def _default_interval(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("interval") is None and data.get("schedule") is None:
            return {**data, "interval": DEFAULT_INTERVAL}
        return data

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.fullmatch(value):
            raise rule_error(f"'{value}' is not a slug: use lowercase letters, digits, '-' and '_'")
        return value

    @field_validator("title", "query")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise rule_error("must not be empty")
        return value.strip()

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if info.data.get("interval") is not None:
            raise rule_error("'interval' and 'schedule' are both set: use one of them")
        try:
            CronTrigger.from_crontab(value, timezone=UTC)
        except ValueError as exc:
            raise rule_error(f"bad cron expression '{value}': {exc}") from None
        return value

    @field_validator("group_by")
    @classmethod
    def _field_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not FIELD_NAME.fullmatch(name):
                raise rule_error(f"'{name}' is not a field name")
        duplicates = sorted({name for name in value if value.count(name) > 1})
        if duplicates:
            raise rule_error(f"'{duplicates[0]}' is listed twice")
        return value

    def result_fields(self) -> list[FieldRef]:
        """The result fields this rule reads, each with where the rule names it."""
        return [(("group_by", i), name) for i, name in enumerate(self.group_by)]
