"""The feeds of a rule set, and the view through which a fed rule searches its feed."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from bot.domain.hits import Hit, SearchQuery
from bot.ports import Health, SearchBackend
from detectors.feeds.feed import LEARN_S, Feed, FeedFigures
from detectors.feeds.plan import FeedPlan, plan_feeds
from detectors.fields import DEFAULT as DEFAULT_EXTRACTOR
from detectors.fields import FieldExtractor
from detectors.model import Rule
from detectors.spl import parse, run
from detectors.spl.hits import to_hit

DEFAULT_LATE_SWEEP = timedelta(minutes=15)
DEFAULT_MAX_EVENTS = 200_000


@dataclass(frozen=True, slots=True)
class FeedInfo:
    """What the rules page and ``/metrics`` show of one feed."""

    name: str
    query: str
    rules: tuple[str, ...]
    cursor: datetime | None
    cached: int
    scan_back_s: float
    figures: FeedFigures
    broken: str
    last_error: str


class FeedSet:
    """Plans the feeds of ``rules`` and runs them on ``backend``."""

    def __init__(
        self,
        backend: SearchBackend,
        rules: Sequence[Rule],
        *,
        max_index_lag: timedelta,
        late_sweep: timedelta = DEFAULT_LATE_SWEEP,
        max_events: int = DEFAULT_MAX_EVENTS,
        extractor: FieldExtractor | None = None,
        on_lag: Callable[[str, float], None] = lambda sourcetype, seconds: None,
        learn: timedelta = timedelta(seconds=LEARN_S),
    ) -> None:
        self.plan: FeedPlan = plan_feeds(rules)
        #: told the indexing lag of each event a fetch finds new (sourcetype, seconds)
        self.on_lag = on_lag
        self._backend = backend
        self._extractor = extractor or DEFAULT_EXTRACTOR
        shared: deque[tuple[float, float]] = deque()
        self._feeds = {
            spec.name: Feed(
                spec,
                backend,
                max_index_lag,
                late_sweep,
                max_events,
                lambda sourcetype, seconds: self.on_lag(sourcetype, seconds),
                shared_lags=shared,
                learn=learn,
            )
            for spec in self.plan.specs
        }
        self._by_rule = {rule_id: spec.name for spec in self.plan.specs for rule_id in spec.rules}

    def fed(self, rule_id: str) -> bool:
        """Whether ``rule_id`` reads a feed (not when it runs alone, or its feed broke)."""
        name = self._by_rule.get(rule_id)
        return name is not None and not self._feeds[name].broken

    def feed(self, rule_id: str) -> Feed:
        return self._feeds[self._by_rule[rule_id]]

    async def end_for(self, rule: Rule, wanted: datetime) -> datetime:
        """The index-time end of ``rule``'s next window: its feed fetched up to ``wanted``
        (or within a few seconds of it, when another member just fetched)."""
        return await self.feed(rule.id).advance(wanted)

    def view(self, rule_id: str) -> FeedView:
        return FeedView(self.feed(rule_id), self._backend, self._extractor)

    def describe(self) -> list[FeedInfo]:
        return [
            FeedInfo(
                name=feed.spec.name,
                query=feed.spec.query,
                rules=feed.spec.rules,
                cursor=None if feed.cursor is None else datetime.fromtimestamp(feed.cursor, UTC),
                cached=len(feed.cache),
                scan_back_s=feed.scan_back,
                figures=feed.figures,
                broken=feed.broken,
                last_error=feed.last_error,
            )
            for feed in self._feeds.values()
        ]

    @property
    def totals(self) -> FeedFigures:
        total = FeedFigures()
        for feed in self._feeds.values():
            f = feed.figures
            total = replace(
                total,
                searches=total.searches + f.searches,
                sweeps=total.sweeps + f.sweeps,
                rows=total.rows + f.rows,
                scanned_s=total.scanned_s + f.scanned_s,
                late_found=total.late_found + f.late_found,
                errors=total.errors + f.errors,
            )
        return total


class FeedView:
    """A :class:`~bot.ports.SearchBackend` answering one fed rule's queries from its feed's
    cache: the rule's whole query, run by the bot's SPL engine over the cached events of the
    window that were seen before the window's end."""

    index_time_bounds = True

    def __init__(self, feed: Feed, backend: SearchBackend, extractor: FieldExtractor) -> None:
        self._feed = feed
        self._backend = backend
        self._extractor = extractor

    async def search(self, query: SearchQuery) -> list[Hit]:
        await self._feed.ensure_from(query.earliest)
        pipeline = parse(query.text)
        start, end = pipeline.window(query.earliest, query.latest, query.latest)
        seen_before = (query.index_latest or query.latest).timestamp()
        rows = self._feed.cache.window(start.timestamp(), end.timestamp(), seen_before)
        transforming = pipeline.is_transforming

        def evaluate() -> list[Hit]:
            found = run(
                pipeline,
                rows,
                query.earliest,
                query.latest,
                now=query.latest,
                limit=query.max_results,
                extractor=self._extractor,
            )
            hits = [to_hit(row, transforming, query.latest) for row in found]
            if transforming:
                return hits
            return [self._as_seen(hit, row) for hit, row in zip(hits, found, strict=True)]

        return await asyncio.to_thread(evaluate)

    def _as_seen(self, hit: Hit, row: dict) -> Hit:
        """An event the late sweep found counts as indexed when the sweep found it."""
        seen = self._feed.late_seen(row)
        if seen is None:
            return hit
        return replace(hit, indexed=datetime.fromtimestamp(seen, UTC))

    async def check(self) -> Health:
        return await self._backend.check()

    def search_link(self, query: SearchQuery) -> str:
        link_of = getattr(self._backend, "search_link", None)
        return str(link_of(query)) if callable(link_of) else ""


__all__ = ["DEFAULT_LATE_SWEEP", "DEFAULT_MAX_EVENTS", "FeedInfo", "FeedSet", "FeedView"]
