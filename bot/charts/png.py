"""The chart as a PNG (matplotlib's Agg canvas), for the Slack thread and the Teams card.

matplotlib is imported on first use (it costs about a second), never at start-up, and only its
object API is used (``Figure`` + ``FigureCanvasAgg``: no pyplot, no global state, safe in a
worker thread). The picture has a fixed size (``WIDTH`` x ``HEIGHT`` pixels) and a chart holds
at most :data:`~bot.charts.model.MAX_POINTS` points, so a PNG stays small; one over
``MAX_BYTES`` is refused rather than sent.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

from bot.charts.model import Chart, number
from bot.errors import PermanentError, TransientError

WIDTH, HEIGHT, DPI = 800, 320, 100
MAX_BYTES = 512 * 1024
SIGNATURE = b"\x89PNG\r\n\x1a\n"
SERIES, THRESHOLD, BAND, FIRED = "#1f6feb", "#d1242f", "#8c959f", "#bf8700"


def render_png(chart: Chart) -> bytes:
    """Draw ``chart``; raises PermanentError if the picture would be larger than allowed."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import DateFormatter
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    axes: Any = figure.add_subplot(1, 1, 1)
    times = [p.at for p in chart.points]
    values = [p.value if p.value is not None else float("nan") for p in chart.points]
    if chart.band is not None:
        axes.axhspan(chart.band.low, chart.band.high, color=BAND, alpha=0.2, label="baseline band")
        axes.axhline(chart.band.center, color=BAND, linewidth=1, linestyle=":")
    axes.plot(times, values, color=SERIES, marker="o", markersize=3, label=chart.measure)
    if chart.threshold is not None:
        axes.axhline(
            chart.threshold,
            color=THRESHOLD,
            linestyle="--",
            linewidth=1.2,
            label=f"threshold {chart.threshold_label}",
        )
    axes.axvline(chart.fired_at, color=FIRED, linewidth=1.5, label=f"fired {chart.fired_at:%H:%M}")
    if chart.resolved_at is not None and chart.start <= chart.resolved_at <= chart.end:
        axes.axvline(chart.resolved_at, color=BAND, linewidth=1, linestyle="-.", label="resolved")
    axes.set_xlim(chart.start, chart.end)
    if chart.values or chart.threshold is not None:
        axes.set_ylim(bottom=min(0.0, *chart.values, chart.threshold or 0.0))
    axes.xaxis.set_major_formatter(DateFormatter("%H:%M"))
    axes.set_title(_shorten(chart.title, 90), fontsize=10, loc="left")
    axes.set_ylabel(_shorten(chart.measure, 40), fontsize=8)
    axes.set_xlabel(f"UTC · {_shorten(chart.group_text, 80)}", fontsize=8)
    axes.tick_params(labelsize=8)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    data = out.getvalue()
    if len(data) > MAX_BYTES:
        raise PermanentError(
            f"the chart of {chart.human_id} is {len(data)} bytes, over {MAX_BYTES}"
        )
    return data


async def render_png_bounded(chart: Chart, seconds: float, gate: asyncio.Semaphore) -> bytes:
    """:func:`render_png` in a worker thread, at most ``gate`` at once, within ``seconds``."""
    async with gate:
        try:
            async with asyncio.timeout(seconds):
                return await asyncio.to_thread(render_png, chart)
        except TimeoutError:
            raise TransientError(
                f"drawing the chart of {chart.human_id} took longer than {seconds:g}s"
            ) from None


def caption(chart: Chart) -> str:
    """A one-line comment for the upload: what was compared, and the value when it fired."""
    fired = chart.value_at_fire()
    value = f" ({number(fired)} when it fired)" if fired is not None else ""
    return f"What {chart.rule_id} saw: {chart.measure}{value}, {chart.compared_with()}."


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
