"""``Charts``: an incident's chart built from its rule and the search backend, cached briefly.

The rule's query is asked again over the span around the incident (:mod:`bot.charts.series`)
within ``search_timeout``; the result is kept for ``CACHE_SECONDS`` so the console page, the
Slack upload and Teams fetching the card's image share one search. Concurrent requests for one
incident share one build. PNGs are drawn in worker threads, a few at a time, within
``render_timeout`` (:func:`bot.charts.png.render_png_bounded`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from bot.charts.measure import Measure, measure_for
from bot.charts.model import Chart, ChartUnavailable, Point
from bot.charts.png import render_png_bounded
from bot.charts.series import (
    MAX_AGGREGATE_POINTS,
    aggregates,
    from_events,
    from_windows,
    group_of,
    moments,
    span_of,
)
from bot.charts.signing import ChartKeys
from bot.charts.svg import render_svg
from bot.domain.hits import Hit, SearchQuery
from bot.domain.incident import Incident
from bot.errors import NotFound, TransientError
from bot.ports import Clock, SearchBackend
from bot.settings import Settings
from bot.store.repo import INCIDENTS, to_incident
from detectors.model import Rule

log = logging.getLogger(__name__)

CACHE_SECONDS = 60.0
CACHE_SIZE = 128
MAX_EVENTS = 20_000  # events one chart search reads
SEARCHES_AT_ONCE = 4  # per-point searches of an aggregating query
RENDERS_AT_ONCE = 2
BUILDS_AT_ONCE = 2  # charts searching at once (each may ask SEARCHES_AT_ONCE searches)


@dataclass(frozen=True, slots=True)
class Stored:
    incident: Incident
    labels: dict[str, str]


class Charts:
    def __init__(
        self,
        engine: Engine,
        backend: SearchBackend,
        rules: Sequence[Rule],
        clock: Clock,
        keys: ChartKeys,
        public_url: str = "",
        search_timeout: float = 20.0,
        render_timeout: float = 10.0,
    ) -> None:
        self._public_url = public_url.rstrip("/")
        self._engine = engine
        self._backend = backend
        self._rules = {rule.id: rule for rule in rules}
        self._clock = clock
        self.keys = keys
        self._search_timeout = search_timeout
        self._render_timeout = render_timeout
        self._charts: OrderedDict[int, tuple[float, Chart]] = OrderedDict()
        self._pngs: OrderedDict[int, tuple[float, bytes]] = OrderedDict()
        self._building: dict[int, asyncio.Task[Chart]] = {}
        self._drawing: dict[int, asyncio.Task[bytes]] = {}
        self._render_gate = asyncio.Semaphore(RENDERS_AT_ONCE)
        self._build_gate = asyncio.Semaphore(BUILDS_AT_ONCE)

    # what callers ask for ----------------------------------------------------------------------

    async def chart(self, incident_id: int) -> Chart:
        """The incident's chart; NotFound (ChartUnavailable) when there is nothing to chart,
        TransientError when the search failed or took too long."""
        cached = _fresh(self._charts, incident_id)
        if cached is not None:
            return cached
        task = self._building.get(incident_id)
        if task is None:
            task = asyncio.ensure_future(self._build(incident_id))
            self._building[incident_id] = task
            task.add_done_callback(lambda done: self._building.pop(incident_id, None))
            task.add_done_callback(_retrieved)
        return await asyncio.shield(task)  # a caller that gives up leaves it to finish

    async def svg(self, incident_id: int) -> str:
        return render_svg(await self.chart(incident_id), f"chart-{incident_id}")

    async def png(self, incident_id: int) -> bytes:
        cached = _fresh(self._pngs, incident_id)
        if cached is not None:
            return cached
        data = await render_png_bounded(
            await self.chart(incident_id), self._render_timeout, self._render_gate
        )
        _keep(self._pngs, incident_id, data)
        return data

    def png_if_ready(self, incident_id: int) -> bytes | None:
        """The PNG when it is drawn; else None, after starting to draw it in the background
        (so a caller that must not wait, the outbox, asks again later). A failed drawing
        raises its error once."""
        cached = _fresh(self._pngs, incident_id)
        if cached is not None:
            return cached
        task = self._drawing.get(incident_id)
        if task is None:
            drawing = asyncio.ensure_future(self.png(incident_id))
            drawing.add_done_callback(_retrieved)
            self._drawing[incident_id] = drawing
            return None
        if not task.done():
            return None
        del self._drawing[incident_id]
        return task.result()

    async def image_url(self, incident_id: int) -> str:
        """The signed, expiring URL of the incident's PNG (for a card to fetch)."""
        now = self._clock.now()
        signer = await asyncio.to_thread(self.keys.signer, now)
        return self._public_url + signer.path(incident_id, now)

    async def check_link(self, incident_id: int, exp: str, sig: str) -> None:
        """Raise ``PolicyViolation`` unless ``exp``/``sig`` sign a live link to the chart."""
        now = self._clock.now()
        signer = await asyncio.to_thread(self.keys.signer, now)
        signer.check(incident_id, exp, sig, now)

    # building ----------------------------------------------------------------------------------

    async def _build(self, incident_id: int) -> Chart:
        async with self._build_gate:  # a storm of new cards: a few searches at a time
            chart = await self._build_now(incident_id)
        _keep(self._charts, incident_id, chart)  # kept even when nobody waited for it
        return chart

    async def _build_now(self, incident_id: int) -> Chart:
        stored = await asyncio.to_thread(self._load, incident_id)
        incident = stored.incident
        rule = self._rules.get(incident.rule_id)
        if rule is None:
            raise ChartUnavailable(
                f"no chart for {incident.human_id}: rule {incident.rule_id!r} is not loaded"
            )
        measure = measure_for(rule, stored.labels)
        group = group_of(incident.group_key, rule.id)
        start, end = span_of(incident.created_at, incident.resolved_at or self._clock.now(), rule)
        try:
            async with asyncio.timeout(self._search_timeout):
                span = (start, end, incident.created_at)
                points, note = await self._points(rule, measure, group, span)
        except TimeoutError:
            raise TransientError(
                f"the chart search of {incident.human_id} took longer than "
                f"{self._search_timeout:g}s"
            ) from None
        return Chart(
            incident_id=incident.id,
            rule_id=rule.id,
            rule_title=incident.title,
            rule_type=rule.type,
            measure=measure.label,
            group=group,
            points=tuple(points),
            fired_at=incident.created_at,
            start=start,
            end=end,
            threshold=measure.threshold,
            threshold_label=measure.threshold_label,
            band=measure.band,
            resolved_at=incident.resolved_at,
            note=note,
        )

    async def _points(
        self,
        rule: Rule,
        measure: Measure,
        group: tuple[tuple[str, str], ...],
        span: tuple[datetime, datetime, datetime],
    ) -> tuple[list[Point], str]:
        start, end, fired_at = span
        if aggregates(rule.query):
            at = moments(rule, measure, start, end, fired_at, MAX_AGGREGATE_POINTS)
            gate = asyncio.Semaphore(SEARCHES_AT_ONCE)

            async def one(moment: datetime) -> list[Hit]:
                async with gate:
                    return await self._search(rule, moment - measure.window, moment)

            found = await asyncio.gather(*(one(m) for m in at))
            return from_windows(dict(zip(at, found, strict=True)), group, measure), ""
        at = moments(rule, measure, start, end, fired_at)
        rows = await self._search(rule, at[0] - measure.window, at[-1], MAX_EVENTS)
        note = ""
        if len(rows) >= MAX_EVENTS:
            note = f"The search stopped at {MAX_EVENTS} events: later values may undercount."
        return from_events(rows, group, measure, at), note

    async def _search(
        self, rule: Rule, earliest: datetime, latest: datetime, limit: int | None = None
    ) -> list[Hit]:
        query = SearchQuery(
            rule.query,
            earliest,
            latest,
            max_results=limit or rule.max_results,
            mode=rule.search_mode,
        )
        return await self._backend.search(query)

    def _load(self, incident_id: int) -> Stored:
        with self._engine.connect() as conn:
            row = conn.execute(select(INCIDENTS).where(INCIDENTS.c.id == incident_id)).first()
        if row is None:
            raise NotFound(f"no incident INC-{incident_id}")
        labels: Any = json.loads(row.labels_json or "{}")
        return Stored(to_incident(row), {str(k): str(v) for k, v in dict(labels).items()})


def _retrieved(task: asyncio.Future[Any]) -> None:
    """Mark a background task's failure as seen (its caller reads it when it asks again)."""
    if not task.cancelled():
        task.exception()


def _fresh(cache: OrderedDict[int, tuple[float, Any]], key: int) -> Any:
    found = cache.get(key)
    if found is None or time.monotonic() - found[0] > CACHE_SECONDS:
        return None
    return found[1]


def _keep(cache: OrderedDict[int, tuple[float, Any]], key: int, value: Any) -> None:
    cache[key] = (time.monotonic(), value)
    cache.move_to_end(key)
    while len(cache) > CACHE_SIZE:
        cache.popitem(last=False)


def charts_from_settings(
    settings: Settings, engine: Engine, backend: SearchBackend, rules: Sequence[Rule], clock: Clock
) -> Charts:
    """Charts signing their image links with the console's secret (see bot.charts.signing)."""
    keys = ChartKeys(settings.session_secret or settings.console_token, engine)
    return Charts(engine, backend, rules, clock, keys, settings.console_url)
