"""What a chart shows: the values a rule compared over a span around an incident, the threshold
or baseline band it compared them with, and the moment it fired.

A :class:`Chart` is a plain value built by :mod:`bot.charts.series` and drawn by the SVG
(:mod:`bot.charts.svg`) and PNG (:mod:`bot.charts.png`) renderers; :meth:`Chart.describe` is
the text a screen reader (and the Slack upload's alt text) gets instead of the picture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from bot.errors import NotFound

#: most points a chart holds (the renderers' size bound; the builder widens its step to fit)
MAX_POINTS = 120


class ChartUnavailable(NotFound):
    """There is nothing to chart for this incident (its rule is gone, it has no rule, …)."""


@dataclass(frozen=True, slots=True)
class Point:
    """One value the rule compared: the measure over ``[at - window, at)``; None: no value
    (a field missing from every row of that window)."""

    at: datetime
    value: float | None


@dataclass(frozen=True, slots=True)
class Band:
    """The baseline band: values inside it were normal to the rule."""

    low: float
    high: float
    center: float


@dataclass(frozen=True, slots=True)
class Chart:
    incident_id: int
    rule_id: str
    rule_title: str
    rule_type: str
    measure: str  # what each value is, e.g. "events per 5m", "max latency_ms per 5m"
    group: tuple[tuple[str, str], ...]
    points: tuple[Point, ...]
    fired_at: datetime
    start: datetime
    end: datetime
    threshold: float | None = None
    threshold_label: str = ""  # e.g. "> 100", ">= 3x the window before (40)"
    band: Band | None = None
    resolved_at: datetime | None = None
    note: str = ""  # e.g. "the search stopped at 20000 events: later buckets undercount"

    @property
    def human_id(self) -> str:
        return f"INC-{self.incident_id}"

    @property
    def values(self) -> list[float]:
        return [p.value for p in self.points if p.value is not None]

    @property
    def group_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.group) or "all events"

    @property
    def title(self) -> str:
        return f"{self.human_id}: {self.rule_title} ({self.rule_id})"

    def value_at_fire(self) -> float | None:
        """The value of the last point at or before the moment the rule fired."""
        found = None
        for point in self.points:
            if point.at > self.fired_at:
                break
            found = point.value if point.value is not None else found
        return found

    def compared_with(self) -> str:
        """What the values were compared with, in words."""
        parts = []
        if self.threshold is not None:
            parts.append(f"threshold {self.threshold_label or number(self.threshold)}")
        if self.band is not None:
            parts.append(
                f"baseline {number(self.band.center)} "
                f"(normal {number(self.band.low)} to {number(self.band.high)})"
            )
        return "; ".join(parts) or "no threshold (the rule compares something else)"

    def describe(self) -> str:
        """One paragraph naming the rule, what it compared with, and every value."""
        clock = "%H:%M:%S" if any(p.at.second for p in self.points) else "%H:%M"
        shown = ", ".join(
            f"{p.at.strftime(clock)} {number(p.value) if p.value is not None else 'none'}"
            for p in self.points
        )
        fired = self.value_at_fire()
        at_fire = f" with {number(fired)}" if fired is not None else ""
        text = (
            f"Rule {self.rule_id} ({self.rule_type}): {self.measure} for {self.group_text}, "
            f"{self.compared_with()}. Fired at {self.fired_at:%Y-%m-%d %H:%M} UTC{at_fire}. "
            f"Values from {self.start:%H:%M} to {self.end:%H:%M} UTC: {shown or 'none'}."
        )
        return f"{text} {self.note}" if self.note else text


def number(value: float) -> str:
    """A value as people read it: ``12``, ``84.2``, ``0.0012``."""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.3g}"
