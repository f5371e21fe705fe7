"""The ``frequency`` rule type: at least ``num_events`` events within ``timeframe``, per group.

The timeframe may be shorter than the rule's window: each run looks for any timeframe-long span
inside its window (events whose times differ by less than ``timeframe``) holding enough events.
Only spans that end with an event new to this run count, so a burst that an earlier run already
reported does not fire again on its own; new events close to it do (and join its incident).
Under index-time runs an event is new in the first run after it was indexed, so a burst that
reaches the index late still fires once (docs/rules.md, "Late data and search cost").
Stateless.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from bot.domain.durations import format_duration
from bot.domain.hits import Alert, Hit
from detectors.memory import RuleMemory
from detectors.model import OptionalPositiveDuration, Rule, rule_error
from detectors.types.common import fmt, group_hits, iso, make_alert, ordered
from detectors.window import Window


class FrequencySettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    num_events: int = Field(ge=1)
    timeframe: OptionalPositiveDuration = None


class FrequencyRule(Rule):
    type: Literal["frequency"] = "frequency"
    frequency: FrequencySettings

    @field_validator("frequency")
    @classmethod
    def _fits_window(cls, value: FrequencySettings, info: ValidationInfo) -> FrequencySettings:
        window = info.data.get("window")
        if window is not None and value.timeframe is not None and value.timeframe > window:
            raise rule_error(
                f"timeframe {format_duration(value.timeframe)} is longer than the rule's window "
                f"{format_duration(window)}: a run never sees a whole timeframe"
            )
        return value

    @property
    def timeframe(self) -> timedelta:
        """The span events must fall within (the whole window when not set)."""
        return self.frequency.timeframe or self.window


def evaluate(
    rule: FrequencyRule, hits: Sequence[Hit], window: Window, memory: RuleMemory | None = None
) -> list[Alert]:
    """One alert per group whose densest new timeframe-long span has ``num_events`` events."""
    need = rule.frequency.num_events
    timeframe = rule.timeframe
    alerts = []
    for key, members in group_hits(hits, rule.group_by).items():
        if len(members) < need:
            continue
        span = _densest_new_span(ordered(members), timeframe, window)
        if span is None or len(span) < need:
            continue
        alerts.append(
            make_alert(
                rule,
                key,
                members,
                float(len(span)),
                window,
                labels={
                    "count": fmt(len(span)),
                    "timeframe": format_duration(timeframe),
                    "span_start": iso(span[0].time),
                    "span_end": iso(span[-1].time),
                },
            )
        )
    return alerts


def _densest_new_span(hits: list[Hit], timeframe: timedelta, window: Window) -> list[Hit] | None:
    """The span of most events (last minus first below ``timeframe``) holding a new event: the
    latest such span when several are equally dense; None when no event is new.

    By event time the new events are the latest ones, so such a span ends with one; by index
    time a late event may sit anywhere in a span, which counts once that event arrives."""
    best: tuple[int, int] | None = None
    first = 0
    newest = -1  # the position of the latest new event so far
    for last, hit in enumerate(hits):
        while hit.time - hits[first].time >= timeframe:
            first += 1
        if window.is_new(hit):
            newest = last
        if newest < first:
            continue
        if best is None or last - first >= best[1] - best[0]:
            best = (first, last)
    if best is None:
        return None
    return hits[best[0] : best[1] + 1]
