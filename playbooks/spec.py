"""The playbook file schema: what a remediation is, validated into frozen models.

A playbook file holds one playbook or a list under ``playbooks:``. Parameter values and step
arguments may name the incident's labels in braces (``{host}``, ``{service}``); they are filled in
when a run is planned (:mod:`playbooks.plan`). ``run_bot.py validate`` reports every problem of a
file as ``file:line: message`` (:mod:`playbooks.loader`).
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.domain.hits import Category
from detectors.model import SLUG, Duration, PositiveDuration, rule_error

#: ``{label}`` references inside parameter defaults and step arguments
LABEL_REF = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.:-]*)\}")


class Risk(StrEnum):
    LOW = "low"
    HIGH = "high"


class ParamType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    LIST = "list"


ArgValue = str | int | float | bool | list[str]


class Parameter(BaseModel):
    """A typed parameter; ``default`` may name labels (``"{host}"``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: ParamType = ParamType.STRING
    default: ArgValue | None = None
    description: str = ""
    required: bool = True
    pattern: str | None = None  # a value must match it in full (checked at plan time)


class Matches(BaseModel):
    """Which incidents a playbook applies to: any listed rule, or every label matcher.

    ``labels`` maps a label to an exact value, or to ``~regex`` for a full-match regex.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: tuple[str, ...] = ()
    labels: dict[str, str] = Field(default_factory=dict)
    categories: tuple[Category, ...] = ()

    @model_validator(mode="after")
    def _something(self) -> Matches:
        if not (self.rules or self.labels or self.categories):
            raise rule_error("names no rule, label or category: a playbook must say what it fixes")
        for value in self.labels.values():
            if value.startswith("~"):
                try:
                    re.compile(value[1:])
                except re.error as exc:
                    raise rule_error(f"bad regex {value[1:]!r}: {exc}") from None
        return self


class Step(BaseModel):
    """One executor call, with its timeout and retry policy.

    ``reversible``: whether it can be undone; ``undo`` names the rollback step that undoes it.
    A step that cannot be undone never runs in automatic mode and always needs an approval.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    executor: str
    action: str
    args: dict[str, ArgValue] = Field(default_factory=dict)
    timeout: PositiveDuration = timedelta(minutes=5)
    retries: int = Field(default=0, ge=0, le=10)
    retry_delay: Duration = timedelta(seconds=5)
    reversible: bool = False
    undo: str | None = None

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value.strip():
            raise rule_error("must not be empty")
        return value.strip()


class Verify(BaseModel):
    """After the steps: wait, then re-run the incident's own rule over data newer than the run.

    Cleared (the rule no longer fires for this incident's group) means success.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    wait: Duration = timedelta(minutes=1)
    window: PositiveDuration | None = None  # default: the rule's own window
    timeout: PositiveDuration = timedelta(minutes=10)


class Playbook(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    title: str
    description: str = ""
    category: Category
    risk: Risk = Risk.LOW
    matches: Matches
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    #: where the run acts, one string per target (``ecs:{cluster}/{service}``): one live run per
    #: target, and the cooldown is kept per target
    target: str = "{host}"
    steps: tuple[Step, ...]
    verify: Verify = Verify()
    rollback: tuple[Step, ...] = ()
    cooldown: Duration = timedelta(minutes=30)
    max_targets: int = Field(default=1, ge=1, le=100)
    auto: bool = False
    enabled: bool = True
    embedded_only: bool = False  # runs only on the embedded default (generator, shell)
    source_file: str = ""
    source_line: int = 0

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.fullmatch(value):
            raise rule_error(f"'{value}' is not a slug: use lowercase letters, digits, '-' and '_'")
        return value

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: tuple[Step, ...]) -> tuple[Step, ...]:
        if not value:
            raise rule_error("a playbook needs at least one step")
        return value

    @model_validator(mode="after")
    def _names(self) -> Playbook:
        for phase in ("steps", "rollback"):
            seen: set[str] = set()
            for index, step in enumerate(getattr(self, phase)):
                if step.name in seen:
                    raise rule_error(
                        f"two {phase} are named {step.name!r}: name each step once",
                        at=(phase, index, "name"),
                    )
                seen.add(step.name)
        names = {s.name for s in self.rollback}
        for index, step in enumerate(self.steps):
            if step.undo is not None and step.undo not in names:
                known = ", ".join(repr(n) for n in sorted(names)) or "none"
                raise rule_error(
                    f"step {step.name!r} names undo {step.undo!r}, which is not a rollback step"
                    f" (rollback steps: {known})",
                    at=("steps", index, "undo"),
                )
        return self

    @property
    def irreversible_steps(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if not (s.reversible or s.undo))

    def label_refs(self) -> set[str]:
        """Every label this playbook takes from the incident (``{host}`` …)."""
        texts: list[str] = [self.target]
        for param in self.parameters.values():
            if isinstance(param.default, str):
                texts.append(param.default)
        for step in (*self.steps, *self.rollback):
            for value in step.args.values():
                texts.extend(value if isinstance(value, list) else [str(value)])
        refs = {m for text in texts for m in LABEL_REF.findall(text)}
        return refs - set(self.parameters)


class PlaybookFile(BaseModel):
    """A file of several playbooks."""

    model_config = ConfigDict(extra="forbid")

    playbooks: list[dict[str, object]]
    kind: Literal["playbooks"] | None = None
