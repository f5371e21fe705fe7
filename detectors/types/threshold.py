"""The ``threshold`` rule type: compare a per-group count, or a result field, with a number.

Without ``threshold.field`` the hits are grouped by the rule's ``group_by`` fields and each
group's row count is compared. With ``field``, each result row's value of that field is compared
(each row is its own group, keyed by its ``group_by`` values).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from bot.domain.hits import Alert, Evidence, Hit
from detectors.memory import RuleMemory
from detectors.model import FIELD_NAME, FieldRef, Rule, rule_error
from detectors.window import Window

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.:-]*)\}")


class Op(StrEnum):
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    EQ = "=="
    NE = "!="

    def holds(self, left: float, right: float) -> bool:
        return _OPERATORS[self](left, right)

    def most_extreme(self, values: Sequence[float]) -> float:
        """The value that best shows how far past the threshold a group is."""
        if self in (Op.GT, Op.GE):
            return max(values)
        if self in (Op.LT, Op.LE):
            return min(values)
        return values[0]


_OPERATORS: dict[Op, Callable[[float, float], bool]] = {
    Op.GT: operator.gt,
    Op.GE: operator.ge,
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
}


class Threshold(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str | None = None
    op: Op
    value: float

    @field_validator("field")
    @classmethod
    def _field_name(cls, value: str | None) -> str | None:
        if value is not None and not FIELD_NAME.fullmatch(value):
            raise rule_error(f"'{value}' is not a field name")
        return value


class ThresholdRule(Rule):
    type: Literal["threshold"] = "threshold"
    threshold: Threshold

    def result_fields(self) -> list[FieldRef]:
        refs = super().result_fields()
        if self.threshold.field is not None:
            refs.append((("threshold", "field"), self.threshold.field))
        return refs


def evaluate(
    rule: ThresholdRule, hits: Sequence[Hit], window: Window, memory: RuleMemory | None = None
) -> list[Alert]:
    """The alerts ``hits`` (one search over ``window``) raise, one per firing group.

    Threshold rules keep no memory between runs."""
    groups: dict[tuple[str, ...], list[Hit]] = {}
    for hit in hits:
        key = tuple(hit.fields.get(name, "") for name in rule.group_by)
        groups.setdefault(key, []).append(hit)
    spec = rule.threshold
    alerts = []
    if spec.field is None:
        if not groups and not rule.group_by:
            groups[()] = []  # one implicit group: "count < 1" fires on silence
        for key, members in groups.items():
            count = float(len(members))
            if spec.op.holds(count, spec.value):
                alerts.append(_alert(rule, key, members, count, window))
        return alerts
    for key, members in groups.items():
        firing = [
            number
            for hit in members
            if (number := _number(hit.fields.get(spec.field))) is not None
            and spec.op.holds(number, spec.value)
        ]
        if firing:
            alerts.append(_alert(rule, key, members, spec.op.most_extreme(firing), window))
    return alerts


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return None if math.isnan(number) else number


def _alert(
    rule: ThresholdRule,
    key: tuple[str, ...],
    members: list[Hit],
    value: float,
    window: Window,
) -> Alert:
    group = tuple(zip(rule.group_by, key, strict=True))
    values = dict(group)
    newest_first = sorted(members, key=lambda hit: hit.time, reverse=True)
    kept = newest_first[: rule.evidence_lines]
    return Alert(
        rule_id=rule.id,
        group=group,
        title=_title(rule.title, values, members),
        severity=rule.severity,
        category=rule.category,
        service=rule.service or values.get("service") or _shared(members, "service"),
        host=values.get("host") or _shared(members, "host"),
        owner=rule.owner,
        first_seen=newest_first[-1].time if members else window.end,
        last_seen=newest_first[0].time if members else window.end,
        new_events=sum(1 for hit in members if hit.time >= window.new_since),
        events=len(members),
        value=value,
        evidence=tuple(Evidence(id=hit.id, time=hit.time, text=hit.raw) for hit in kept),
        runbook=rule.runbook,
    )


def _shared(members: Sequence[Hit], name: str) -> str:
    """The value of ``name`` when every hit of the group has the same one, else ``""``."""
    seen = {hit.fields.get(name, "") for hit in members}
    return seen.pop() if len(seen) == 1 else ""


def _title(template: str, values: Mapping[str, str], members: Sequence[Hit]) -> str:
    """Fill ``{field}`` placeholders from the group's values, else from values its hits share."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return values[name] or "(none)"
        seen = {hit.fields.get(name, "") for hit in members}
        if len(seen) > 1:
            return "(various)"
        shared = seen.pop() if seen else ""
        return shared or "(none)"

    return _PLACEHOLDER.sub(fill, template)
