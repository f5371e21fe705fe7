"""The ``cardinality`` rule type: the number of distinct values of ``cardinality_field`` in the
window, per group, above ``above`` or below ``below`` (password spraying: one source trying
many accounts; a cluster with fewer reporting nodes than it should have).

Events without the field (or with it empty) are not counted. A rule without ``group_by`` and no
results is one empty group, so ``below`` fires when a source goes quiet. Stateless.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bot.domain.hits import Alert, Hit
from detectors.memory import RuleMemory
from detectors.model import FieldRef, Rule, rule_error
from detectors.types.common import FieldName, fmt, group_hits, make_alert
from detectors.window import Window

SAMPLE = 10


class CardinalitySettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    cardinality_field: FieldName
    above: int | None = Field(default=None, ge=0)
    below: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> CardinalitySettings:
        if self.above is None and self.below is None:
            raise rule_error("set 'above', 'below' or both")
        if self.above is not None and self.below is not None and self.below > self.above:
            raise rule_error(
                f"below ({self.below}) is more than above ({self.above}): every count would fire"
            )
        return self


class CardinalityRule(Rule):
    type: Literal["cardinality"] = "cardinality"
    cardinality: CardinalitySettings

    def result_fields(self) -> list[FieldRef]:
        refs = super().result_fields()
        refs.append((("cardinality", "cardinality_field"), self.cardinality.cardinality_field))
        return refs


def evaluate(
    rule: CardinalityRule, hits: Sequence[Hit], window: Window, memory: RuleMemory | None = None
) -> list[Alert]:
    """One alert per group whose distinct count is past a bound."""
    spec = rule.cardinality
    groups = group_hits(hits, rule.group_by)
    if not groups and not rule.group_by:
        groups[()] = []
    alerts = []
    for key, members in groups.items():
        distinct = sorted({v for hit in members if (v := hit.fields.get(spec.cardinality_field))})
        count = len(distinct)
        if spec.above is not None and count > spec.above:
            bound = f"above {spec.above}"
        elif spec.below is not None and count < spec.below:
            bound = f"below {spec.below}"
        else:
            continue
        sample = ", ".join(distinct[:SAMPLE]) + (", …" if count > SAMPLE else "")
        alerts.append(
            make_alert(
                rule,
                key,
                members,
                float(count),
                window,
                labels={"distinct": fmt(count), "bound": bound, "values": sample},
            )
        )
    return alerts


def revisitable(rule: CardinalityRule) -> bool:
    """Only ``above`` rules: more late values can only make them true."""
    return rule.cardinality.below is None
