"""Per rule type: which value the rule compared, over which window, and with what.

* ``threshold``: the group's row count in the rule's window, or (with ``threshold.field``) the
  most extreme value of that field among its rows; the line is ``threshold.value``.
* ``frequency``: events in the last ``timeframe``; the line is ``num_events``.
* ``flatline``: events in the last ``timeframe``; the line is ``threshold`` (fires below it).
* ``spike``: the count (or the sum of ``field``) in the window; the line is the reference the
  incident's labels name times ``ratio`` (divided by it for ``direction: down``; a band from
  one to the other for ``both``).
* ``anomaly``: the epoch-aligned ``bucket`` value (count, or ``aggregate`` of ``field``; the
  first metric for ``isolation_forest``); the band is the baseline ± ``threshold`` deviations,
  the deviation read back from the incident's labels (``|observed - baseline| / |score|``).
* every other type: the event count in the rule's window, without a line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from bot.charts.model import Band
from bot.domain.durations import format_duration
from bot.domain.hits import Hit
from detectors.model import Rule
from detectors.types.anomaly import AnomalyRule, Method
from detectors.types.common import Direction, number
from detectors.types.flatline import FlatlineRule
from detectors.types.frequency import FrequencyRule
from detectors.types.spike import SpikeRule
from detectors.types.threshold import ThresholdRule

Values = Callable[[Sequence[Hit]], float | None]


@dataclass(frozen=True, slots=True)
class Measure:
    """How to turn the rows of one window into the value the rule compared."""

    window: timedelta  # each value covers [at - window, at)
    value: Values
    label: str  # "events per 5m"
    aligned: bool = False  # values at epoch-aligned bucket ends (anomaly), not sliding
    threshold: float | None = None
    threshold_label: str = ""
    band: Band | None = None


def count(rows: Sequence[Hit]) -> float:
    return float(len(rows))


def field_values(rows: Sequence[Hit], field: str) -> list[float]:
    return [v for row in rows if (v := number(row.fields.get(field))) is not None]


def measure_for(rule: Rule, labels: Mapping[str, str]) -> Measure:
    """What ``rule`` compared, and with what (``labels``: the incident's, when it fired)."""
    per = f"per {format_duration(rule.window)}"
    if isinstance(rule, ThresholdRule):
        return _threshold(rule, per)
    if isinstance(rule, FrequencyRule):
        spec = rule.frequency
        return Measure(
            rule.timeframe,
            count,
            f"events per {format_duration(rule.timeframe)}",
            threshold=float(spec.num_events),
            threshold_label=f">= {spec.num_events}",
        )
    if isinstance(rule, FlatlineRule):
        limit = rule.flatline.threshold
        return Measure(
            rule.timeframe,
            count,
            f"events per {format_duration(rule.timeframe)}",
            threshold=float(limit),
            threshold_label=f"< {limit}",
        )
    if isinstance(rule, SpikeRule):
        return _spike(rule, labels, per)
    if isinstance(rule, AnomalyRule):
        return _anomaly(rule, labels)
    return Measure(rule.window, count, f"events {per}")


def _threshold(rule: ThresholdRule, per: str) -> Measure:
    spec = rule.threshold
    line = f"{spec.op.value} {_num(spec.value)}"
    if spec.field is None:
        return Measure(
            rule.window, count, f"events {per}", threshold=spec.value, threshold_label=line
        )
    name = spec.field

    def extreme(rows: Sequence[Hit]) -> float | None:
        found = field_values(rows, name)
        return spec.op.most_extreme(found) if found else None

    return Measure(
        rule.window, extreme, f"{name} {per}", threshold=spec.value, threshold_label=line
    )


def _spike(rule: SpikeRule, labels: Mapping[str, str], per: str) -> Measure:
    spec = rule.spike
    name = spec.field

    def total(rows: Sequence[Hit]) -> float:
        return math.fsum(field_values(rows, name)) if name else float(len(rows))

    label = f"sum of {name} {per}" if name else f"events {per}"
    reference = number(labels.get("reference"))
    if reference is None:
        return Measure(rule.window, total, label)
    up, down = reference * spec.ratio, reference / spec.ratio
    words = f"{_num(spec.ratio)}x the window before ({_num(reference)})"
    if spec.direction is Direction.UP:
        return Measure(rule.window, total, label, threshold=up, threshold_label=f">= {words}")
    if spec.direction is Direction.DOWN:
        return Measure(rule.window, total, label, threshold=down, threshold_label=f"<= 1/{words}")
    return Measure(rule.window, total, label, band=Band(down, up, reference))


def _anomaly(rule: AnomalyRule, labels: Mapping[str, str]) -> Measure:
    spec = rule.anomaly
    name = spec.metrics[0] if spec.metrics else spec.field
    per = f"per {format_duration(spec.bucket)}"

    def bucket_value(rows: Sequence[Hit]) -> float | None:
        if name is None:
            return float(len(rows))
        found = field_values(rows, name)
        return spec.aggregate.of(found) if found else None

    label = f"{spec.aggregate.value} {name} {per}" if name else f"events {per}"
    band = None
    if spec.method is not Method.ISOLATION_FOREST:
        band = _band(labels, spec.score_threshold)
    return Measure(spec.bucket, bucket_value, label, aligned=True, band=band)


def _band(labels: Mapping[str, str], threshold: float) -> Band | None:
    """Baseline ± ``threshold`` deviations, the deviation read back from the fired labels."""
    observed = number(labels.get("observed"))
    center = number(labels.get("baseline"))
    score = number(labels.get("score"))
    if observed is None or center is None:
        return None
    if score is None or score == 0:
        return Band(center, center, center)
    spread = abs(observed - center) / abs(score) * threshold
    return Band(center - spread, center + spread, center)


def _num(value: float) -> str:
    return f"{value:g}"
