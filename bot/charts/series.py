"""Pure steps of building a chart: the incident's group, the span and the moments to value,
and the values themselves from search rows.

The span runs from ``SPAN_WINDOWS`` of the rule's windows before the incident fired to its
resolution (or now), capped at ``MAX_SPAN``. Each point is the measure over the window ending
at it, as a rule run ending there saw it: points follow the rule's interval (sliding types)
or its buckets (``anomaly``), the step widened until at most ``MAX_POINTS`` fit.

A query that returns events is searched once over the whole span and windowed here; a query
that aggregates (``stats``, ``timechart`` …) has to be asked once per point, so those charts
hold at most ``MAX_AGGREGATE_POINTS``.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from bot.charts.measure import Measure
from bot.charts.model import MAX_POINTS, Point
from bot.domain.hits import Hit
from detectors.model import Rule

SPAN_WINDOWS = 6
MAX_SPAN = timedelta(days=2)
MAX_AGGREGATE_POINTS = 24
_AGGREGATING = re.compile(
    r"\|\s*(stats|chart|timechart|tstats|top|rare|transaction|dedup)\b", re.IGNORECASE
)


def group_of(group_key: str, rule_id: str) -> tuple[tuple[str, str], ...]:
    """The ``group_by`` values in an incident's group key (``rule|k=v,k=v``, with ``\\``,
    ``,`` and ``=`` escaped; see :func:`bot.domain.hits.group_key`)."""
    body = group_key.removeprefix(rule_id + "|")
    pairs: list[tuple[str, str]] = []
    name: list[str] = []
    value: list[str] = []
    current, in_value, escaped = name, False, False
    for char in body:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "=" and not in_value:
            current, in_value = value, True
        elif char == ",":
            pairs.append(("".join(name), "".join(value)))
            name, value = [], []
            current, in_value = name, False
        else:
            current.append(char)
    if name or value or in_value:
        pairs.append(("".join(name), "".join(value)))
    return tuple(pairs)


def in_group(row: Hit, group: Sequence[tuple[str, str]]) -> bool:
    return all(row.fields.get(name, "") == value for name, value in group)


def aggregates(query: str) -> bool:
    """Whether the query's rows are aggregates rather than events."""
    return bool(_AGGREGATING.search(query))


def span_of(fired_at: datetime, until: datetime, rule: Rule) -> tuple[datetime, datetime]:
    """``[start, end)``: the windows before the incident fired up to ``until``."""
    start = fired_at - SPAN_WINDOWS * rule.window
    end = max(until, fired_at + rule.window / 2)
    return start, min(end, start + MAX_SPAN)


def moments(
    rule: Rule,
    measure: Measure,
    start: datetime,
    end: datetime,
    fired_at: datetime,
    most: int = MAX_POINTS,
) -> list[datetime]:
    """The ends of the windows to value, oldest first, at most ``most`` of them: one of them
    the moment the rule fired (for sliding types; bucket ends for ``anomaly``)."""
    if measure.aligned:
        step = measure.window.total_seconds()
    else:
        step = (rule.interval or measure.window / 5).total_seconds()
    step = max(step, 1.0)
    first, last = start.timestamp() + measure.window.total_seconds(), end.timestamp()
    if first > last:
        first = last
    while (last - first) / step + 1 > most:
        step *= 2
    if measure.aligned:
        first = math.ceil(first / step) * step
    elif first <= fired_at.timestamp() <= last:
        fired = fired_at.timestamp()
        first = fired - math.floor((fired - first) / step) * step
    count = int((last - first) // step) + 1
    return [datetime.fromtimestamp(first + i * step, UTC) for i in range(max(count, 1))]


def from_events(
    rows: Sequence[Hit],
    group: Sequence[tuple[str, str]],
    measure: Measure,
    at: Sequence[datetime],
) -> list[Point]:
    """Values from one search over the span: each moment's window of the group's events."""
    mine = sorted((r for r in rows if in_group(r, group)), key=lambda r: r.time)
    times = [r.time for r in mine]
    points = []
    for moment in at:
        lo = bisect.bisect_left(times, moment - measure.window)
        hi = bisect.bisect_left(times, moment)
        points.append(Point(moment, measure.value(mine[lo:hi])))
    return points


def from_windows(
    rows_by_moment: Mapping[datetime, Sequence[Hit]],
    group: Sequence[tuple[str, str]],
    measure: Measure,
) -> list[Point]:
    """Values from one search per moment (aggregating queries): the group's rows of each."""
    return [
        Point(moment, measure.value([r for r in rows if in_group(r, group)]))
        for moment, rows in sorted(rows_by_moment.items())
    ]
