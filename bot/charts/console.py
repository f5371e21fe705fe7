"""The chart on the console's incident page: inline SVG, or a line saying why there is none.

The page waits at most ``PAGE_WAIT`` seconds for the chart; a slower search goes on in the
background (its result is cached), so a reload a moment later shows it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from markupsafe import Markup

from bot.charts.service import Charts
from bot.errors import BotError, NotFound

log = logging.getLogger(__name__)

PAGE_WAIT = 3.0
SLOW = "The chart is still being drawn (the search is slow): reload in a moment."


@dataclass(frozen=True, slots=True)
class PageChart:
    svg: Markup | None
    note: str = ""


async def page_chart(charts: Charts, incident_id: int, wait: float = PAGE_WAIT) -> PageChart:
    try:
        async with asyncio.timeout(wait):
            return PageChart(Markup(await charts.svg(incident_id)))
    except TimeoutError:
        return PageChart(
            None, "The chart is still being drawn (the search is slow): reload in a moment."
        )
    except NotFound as exc:
        return PageChart(None, str(exc))
    except BotError as exc:
        log.info("INC-%s: no chart on the page: %s", incident_id, exc)
        return PageChart(None, f"No chart: {exc}")
