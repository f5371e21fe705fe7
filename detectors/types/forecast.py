"""The ``forecast`` rule type: a linear trend of ``field`` per group, predicted to cross
``threshold`` within ``horizon`` (a disk filling up, a certificate pool draining).

Each run fits a least-squares line through the window's points (each result row's time and its
``field``); rows must carry distinct times (events, or ``bin _time ... | stats ... by _time``).
With ``direction: up`` (the default) the line must rise towards the threshold, with ``down``
fall towards it; a flat or opposite trend, or fewer than ``min_points`` points, never fires.
The predicted crossing time goes into the labels (``predicted_at``, ``predicted_in``) and the
title: use ``{predicted_in}`` in it, or it is appended (``… (crosses 90 in ~6h)``). A line that
has already crossed says ``now``. Stateless.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.domain.hits import Alert, Hit
from detectors.memory import RuleMemory
from detectors.model import (
    FieldRef,
    PositiveDuration,
    Rule,
)
from detectors.types.common import (
    FieldName,
    Key,
    approx,
    fmt,
    group_hits,
    has_placeholder,
    iso,
    make_alert,
    number,
    to_epoch,
)
from detectors.window import Window


class Trend(StrEnum):
    UP = "up"
    DOWN = "down"


class ForecastSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    field: FieldName
    threshold: float
    horizon: PositiveDuration
    min_points: int = Field(default=5, ge=3, le=100_000)
    direction: Trend = Trend.UP


class ForecastRule(Rule):
    type: Literal["forecast"] = "forecast"
    forecast: ForecastSettings

    def result_fields(self) -> list[FieldRef]:
        refs = super().result_fields()
        refs.append((("forecast", "field"), self.forecast.field))
        return refs


def evaluate(
    rule: ForecastRule, hits: Sequence[Hit], window: Window, memory: RuleMemory | None = None
) -> list[Alert]:
    """One alert per group whose trend reaches the threshold within the horizon."""
    spec = rule.forecast
    alerts = []
    for key, members in group_hits(hits, rule.group_by).items():
        points: dict[str, tuple[float, float, Hit]] = {}
        for hit in members:  # the same event twice (overlapping pages) is one point
            value = number(hit.fields.get(spec.field))
            if value is not None:
                points[hit.id] = (to_epoch(hit.time), value, hit)
        if len(points) < spec.min_points:
            continue
        fit = _fit([(t, v) for t, v, _ in points.values()])
        if fit is None:
            continue
        slope, intercept = fit
        rising = spec.direction is Trend.UP
        if (slope <= 0) if rising else (slope >= 0):
            continue
        end = to_epoch(window.end)
        crossing = (spec.threshold - intercept) / slope
        wait = timedelta(seconds=max(0.0, crossing - end))
        if wait > spec.horizon:
            continue
        used = [hit for _, _, hit in points.values()]
        latest = max(points.values(), key=lambda p: (p[0], p[2].id))[1]
        alerts.append(_alert(rule, key, used, latest, slope, wait, window))
    return alerts


def _fit(points: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """Least squares ``value = slope * t + intercept``; None when all times are the same."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    slope = sum((t - mean_t) * (v - mean_v) for t, v in points) / spread
    return slope, mean_v - slope * mean_t


def _alert(
    rule: ForecastRule,
    key: Key,
    members: list[Hit],
    latest: float,
    slope: float,
    wait: timedelta,
    window: Window,
) -> Alert:
    spec = rule.forecast
    eta = approx(wait)
    title = rule.title
    if not has_placeholder(title, "predicted_in", "predicted_at"):
        title += f" (crosses {fmt(spec.threshold)} {'now' if eta == 'now' else 'in ~' + eta})"
    return make_alert(
        rule,
        key,
        members,
        latest,
        window,
        title=title,
        labels={
            "predicted_at": iso(window.end + wait),
            "predicted_in": eta,
            "threshold": fmt(spec.threshold),
            "latest": fmt(latest),
            "slope_per_hour": fmt(slope * 3600),
            "points": fmt(len(members)),
        },
    )
