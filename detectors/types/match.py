"""A small field matcher for rule settings (used by ``correlation`` conditions).

``match`` maps result fields to what their value must be; every listed field must match:

* a plain value (``EventCode: 6008``): equal, as text, or as numbers when both are numbers;
* ``{in: [a, b]}``: equal to one of the values;
* ``{">=": 20}``, ``{"<=": 5}``, ``{">": 0}``, ``{"<": 1}``: a numeric comparison (several may
  be combined, e.g. ``{">=": 10, "<": 20}``); a value that is not a number never matches.

A field the hit does not have never matches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from detectors.model import rule_error
from detectors.types.common import number


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise rule_error(f"expected a plain value, got {value!r}")


class FieldMatch(BaseModel):
    """What one field's value must be."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    equals: str | None = None
    in_: tuple[str, ...] | None = Field(default=None, alias="in", min_length=1)
    ge: float | None = Field(default=None, alias=">=")
    le: float | None = Field(default=None, alias="<=")
    gt: float | None = Field(default=None, alias=">")
    lt: float | None = Field(default=None, alias="<")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str | int | float | bool):
            return {"equals": _text(data)}
        if isinstance(data, Mapping):
            data = dict(data)
            if isinstance(data.get("equals"), int | float | bool):
                data["equals"] = _text(data["equals"])
            if isinstance(data.get("in"), list | tuple):
                data["in"] = [_text(item) for item in data["in"]]
            return data
        if isinstance(data, list | tuple):
            raise rule_error("write {in: [...]} to match one of several values")
        raise rule_error("expected a value, or a mapping of 'in', '>=', '<=', '>' or '<'")

    @model_validator(mode="after")
    def _something(self) -> FieldMatch:
        if all(v is None for v in (self.equals, self.in_, self.ge, self.le, self.gt, self.lt)):
            raise rule_error("give a value, 'in', '>=', '<=', '>' or '<'")
        return self

    def matches(self, value: str | None) -> bool:
        if value is None:
            return False
        if self.equals is not None and not _equal(value, self.equals):
            return False
        if self.in_ is not None and not any(_equal(value, item) for item in self.in_):
            return False
        bounds = (self.ge, self.le, self.gt, self.lt)
        if all(bound is None for bound in bounds):
            return True
        measured = number(value)
        if measured is None:
            return False
        return (
            (self.ge is None or measured >= self.ge)
            and (self.le is None or measured <= self.le)
            and (self.gt is None or measured > self.gt)
            and (self.lt is None or measured < self.lt)
        )


def _equal(value: str, expected: str) -> bool:
    if value == expected:
        return True
    left, right = number(value), number(expected)
    return left is not None and right is not None and left == right


def matches_all(match: Mapping[str, FieldMatch], fields: Mapping[str, str]) -> bool:
    """Whether every field of ``match`` matches ``fields``."""
    return all(spec.matches(fields.get(name)) for name, spec in match.items())
