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

DEFAULT_LATE_SWEEP = timedelta(minutes=5)
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
        if not getattr(backend, "index_time_bounds", False):
            reason = "the search backend cannot bound searches by index time"
            self.plan = FeedPlan((), {rule.id: reason for rule in rules})
        #: told the indexing lag of each event a fetch finds new (sourcetype, seconds)
        self.on_lag = on_lag
        self._backend = backend
        self._extractor = extractor or DEFAULT_EXTRACTOR
        shared: deque[tuple[float, float]] = deque()
        self._lags = shared  # every feed's measured lags (the same forwarders and indexers)
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
        #: feeds that have not fetched since their warm-up: no lag of theirs measured yet
        self._unmeasured: set[str] = set(self._feeds)
        self._by_rule: dict[str, list[str]] = {}
        for spec in self.plan.specs:
            for rule_id in spec.rules:
                self._by_rule.setdefault(rule_id, []).append(spec.name)

    def fed(self, rule_id: str) -> bool:
        """Whether ``rule_id`` reads feeds (not when it runs alone, or one of them broke)."""
        names = self._by_rule.get(rule_id, [])
        return bool(names) and not any(self._feeds[name].broken for name in names)

    def feeds(self, rule_id: str) -> list[Feed]:
        """The feeds ``rule_id`` reads: one per index its query names."""
        return [self._feeds[name] for name in self._by_rule.get(rule_id, [])]

    async def end_for(self, rule: Rule, wanted: datetime) -> datetime:
        """The index-time end of ``rule``'s next window: its feeds fetched up to ``wanted``
        (whole seconds; rules of one tick share the fetch)."""
        ends = []
        for feed in self.feeds(rule.id):
            before = feed.cursor
            ends.append(await feed.advance(wanted))
            if before is not None and feed.cursor is not None and feed.cursor > before:
                self._unmeasured.discard(feed.spec.name)  # a fetch measured its lags
        return min(ends)

    def lag_history(self) -> list[tuple[float, float]]:
        """The lags the feeds measured over the last hour: (index time, the largest lag a fetch
        found), oldest first; what a restarted process resumes from (:meth:`resume_lags`)."""
        return list(self._lags)

    def resume_lags(self, history: Sequence[tuple[float, float]]) -> None:
        """Take up the lags an earlier process (or the previous lease holder) measured, unless
        this one has measured some already: the scan-back and the hold follow them at once
        instead of learning for ten minutes (entries older than an hour before the next fetch
        are forgotten then)."""
        if self._lags or not history:
            return
        self._lags.extend(sorted(history))
        self._unmeasured.clear()

    def lag_allowance(self, rule_id: str) -> timedelta | None:
        """How long the events of ``rule_id``'s feeds take to become searchable, as measured:
        the largest :attr:`Feed.lag_allowance` over them. None until each of them has fetched
        once after its warm-up (the warm-up fetch measures no lag: nothing is known yet)."""
        feeds = self.feeds(rule_id)
        if not feeds or any(feed.spec.name in self._unmeasured for feed in feeds):
            return None
        return timedelta(seconds=max(feed.lag_allowance for feed in feeds))

    def data_end(self, rule_id: str) -> datetime | None:
        """The index time up to which ``rule_id``'s feeds have fetched (the earliest of their
        cursors); None before their first fetch."""
        cursors = [feed.cursor for feed in self.feeds(rule_id)]
        if not cursors or any(cursor is None for cursor in cursors):
            return None
        return datetime.fromtimestamp(min(c for c in cursors if c is not None), UTC)

    def view(self, rule_id: str) -> FeedView:
        return FeedView(self.feeds(rule_id), self._backend, self._extractor)

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

    def __init__(
        self, feeds: Sequence[Feed], backend: SearchBackend, extractor: FieldExtractor
    ) -> None:
        self._feeds = feeds
        self._backend = backend
        self._extractor = extractor

    async def search(self, query: SearchQuery) -> list[Hit]:
        for feed in self._feeds:
            await feed.ensure_from(query.earliest)
        pipeline = parse(query.text)
        start, end = pipeline.window(query.earliest, query.latest, query.latest)
        seen_before = (query.index_latest or query.latest).timestamp()
        rows: list[dict] = []
        for feed in self._feeds:
            rows.extend(feed.cache.window(start.timestamp(), end.timestamp(), seen_before))
        if len(self._feeds) > 1:  # newest first across indexes, as Splunk returns them
            rows.sort(key=lambda row: row["_time"], reverse=True)
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

    def late_times(self, since: datetime, until: datetime) -> list[float]:
        """Event times of events seen in ``[since, until)`` that happened before ``since``."""
        a, b = since.timestamp(), until.timestamp()
        return [t for feed in self._feeds for t in feed.late_times(a, b)]

    def _as_seen(self, hit: Hit, row: dict) -> Hit:
        """An event the late sweep found counts as indexed when the sweep found it."""
        seen = next((s for f in self._feeds if (s := f.late_seen(row)) is not None), None)
        if seen is None:
            return hit
        return replace(hit, indexed=datetime.fromtimestamp(seen, UTC))

    async def check(self) -> Health:
        return await self._backend.check()

    def search_link(self, query: SearchQuery) -> str:
        link_of = getattr(self._backend, "search_link", None)
        return str(link_of(query)) if callable(link_of) else ""


__all__ = ["DEFAULT_LATE_SWEEP", "DEFAULT_MAX_EVENTS", "FeedInfo", "FeedSet", "FeedView"]
