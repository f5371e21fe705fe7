"""The chart as a small inline SVG for the console's incident page (no script, no fonts).

The drawing carries its meaning as text too: ``<title>`` and ``<desc>`` name the rule, what it
compared with and every value (``role="img"`` with ``aria-labelledby``), each point has its own
``<title>`` (a tooltip on hover), and the series, threshold and fired-at marks carry their
values in ``data-`` attributes.
"""

from __future__ import annotations

import math
from datetime import datetime
from html import escape

from bot.charts.model import Chart, number

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 36


class _Scale:
    def __init__(self, chart: Chart) -> None:
        values = list(chart.values)
        if chart.threshold is not None:
            values.append(chart.threshold)
        if chart.band is not None:
            values += [chart.band.low, chart.band.high]
        low, high = min([0.0, *values]), max([1.0, *values])
        self.step = _nice_step((high - low) * 1.08 or 1.0)
        self.low = math.floor(low / self.step) * self.step
        self.high = math.ceil(high * 1.04 / self.step) * self.step
        if self.high <= self.low:
            self.high = self.low + self.step
        self.start = chart.start.timestamp()
        self.span = max(chart.end.timestamp() - self.start, 1.0)

    def x(self, moment: datetime) -> float:
        share = (moment.timestamp() - self.start) / self.span
        return round(LEFT + min(max(share, 0.0), 1.0) * (WIDTH - LEFT - RIGHT), 1)

    def y(self, value: float) -> float:
        share = (value - self.low) / (self.high - self.low)
        return round(HEIGHT - BOTTOM - share * (HEIGHT - TOP - BOTTOM), 1)


def render_svg(chart: Chart, element_id: str = "chart") -> str:
    """The SVG markup (escaped; safe to embed in HTML as is)."""
    scale = _Scale(chart)
    title_id, desc_id = f"{element_id}-title", f"{element_id}-desc"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(element_id)}" class="rule-chart" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" style="max-width:{WIDTH + 160}px" '
        f'role="img" '
        f'aria-labelledby="{title_id} {desc_id}">',
        f'<title id="{title_id}">{escape(chart.title)}</title>',
        f'<desc id="{desc_id}">{escape(chart.describe())}</desc>',
        _axes(chart, scale),
    ]
    if chart.band is not None:
        top, bottom = scale.y(chart.band.high), scale.y(chart.band.low)
        parts.append(
            f'<rect class="band" x="{LEFT}" y="{top}" width="{WIDTH - LEFT - RIGHT}" '
            f'height="{max(bottom - top, 1.0)}" fill="#8c959f" fill-opacity="0.2" '
            f'data-low="{number(chart.band.low)}" data-high="{number(chart.band.high)}" '
            f'data-center="{number(chart.band.center)}"/>'
        )
    if chart.threshold is not None:
        y = scale.y(chart.threshold)
        parts.append(
            f'<line class="threshold" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}" '
            f'stroke="#d1242f" stroke-dasharray="6 4" data-value="{number(chart.threshold)}">'
            f"<title>threshold {escape(chart.threshold_label)}</title></line>"
            f'<text x="{WIDTH - RIGHT}" y="{y - 4}" text-anchor="end" font-size="11" '
            f'fill="#d1242f">{escape(chart.threshold_label)}</text>'
        )
    parts.append(_series(chart, scale))
    fired = scale.x(chart.fired_at)
    parts.append(
        f'<line class="fired" x1="{fired}" x2="{fired}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" '
        f'stroke="#bf8700" stroke-width="2" data-at="{chart.fired_at.isoformat()}">'
        f"<title>fired at {chart.fired_at:%H:%M:%S} UTC</title></line>"
        f'<text x="{fired + 4 if fired < WIDTH - 100 else fired - 4}" y="{TOP + 10}" '
        f'text-anchor="{"start" if fired < WIDTH - 100 else "end"}" font-size="11" '
        'fill="#bf8700">'
        f"fired {chart.fired_at:%H:%M}</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def _nice_step(span: float) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) for about four ticks."""
    raw = span / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)


def _axes(chart: Chart, scale: _Scale) -> str:
    base = HEIGHT - BOTTOM
    count = round((scale.high - scale.low) / scale.step)
    ticks = [scale.low + i * scale.step for i in range(count + 1)]
    out = [
        f'<g class="axes" font-size="11" fill="#57606a">'
        f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}" stroke="#d0d7de"/>'
        f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{base}" stroke="#d0d7de"/>'
    ]
    for value in ticks:
        out.append(
            f'<text x="{LEFT - 6}" y="{scale.y(value) + 4}" text-anchor="end">'
            f"{escape(number(round(value, 2)))}</text>"
        )
    for moment, anchor in ((chart.start, "start"), (chart.end, "end")):
        out.append(
            f'<text x="{scale.x(moment)}" y="{base + 16}" text-anchor="{anchor}">'
            f"{moment:%H:%M}</text>"
        )
    out.append(
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 4}" text-anchor="middle">'
        f"{escape(chart.measure)} · {escape(chart.group_text)} · UTC</text></g>"
    )
    return "".join(out)


def _series(chart: Chart, scale: _Scale) -> str:
    runs: list[list[str]] = [[]]
    dots = []
    for point in chart.points:
        if point.value is None:
            if runs[-1]:
                runs.append([])
            continue
        x, y = scale.x(point.at), scale.y(point.value)
        runs[-1].append(f"{x},{y}")
        dots.append(
            f'<circle cx="{x}" cy="{y}" r="2.5" fill="#1f6feb">'
            f"<title>{point.at:%H:%M} {escape(number(point.value))}</title></circle>"
        )
    values = ",".join(number(p.value) if p.value is not None else "" for p in chart.points)
    lines = "".join(
        f'<polyline points="{" ".join(run)}" fill="none" stroke="#1f6feb" stroke-width="2"/>'
        for run in runs
        if run
    )
    return f'<g class="series" data-values="{values}">{lines}{"".join(dots)}</g>'
