"""The ``threshold`` rule type: compare a per-group count, or a result field, with a number.

Without ``threshold.field`` the hits are grouped by the rule's ``group_by`` fields and each
group's row count is compared. With ``field``, each result row's value of that field is compared
(each row is its own group, keyed by its ``group_by`` values).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from bot.domain.hits import Alert, Hit
from detectors.memory import RuleMemory
from detectors.model import FIELD_NAME, FieldRef, Rule, rule_error
from detectors.types.common import group_hits, make_alert, number
from detectors.window import Window


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
    groups = group_hits(hits, rule.group_by)
    spec = rule.threshold
    alerts = []
    if spec.field is None:
        if not groups and not rule.group_by:
            groups[()] = []  # one implicit group: "count < 1" fires on silence
        for key, members in groups.items():
            count = float(len(members))
            if spec.op.holds(count, spec.value):
                alerts.append(make_alert(rule, key, members, count, window))
        return alerts
    for key, members in groups.items():
        firing = [
            measured
            for hit in members
            if (measured := number(hit.fields.get(spec.field))) is not None
            and spec.op.holds(measured, spec.value)
        ]
        if firing:
            alerts.append(make_alert(rule, key, members, spec.op.most_extreme(firing), window))
    return alerts


def revisitable(rule: ThresholdRule) -> bool:
    """A past window completed by late events may be evaluated again, unless the rule fires on
    too little (``<``, ``<=``: data still on its way would look like a drop)."""
    return rule.threshold.op not in (Op.LT, Op.LE)
