"""One shared search: fetch what became searchable since the last fetch, once.

Every fetch is bounded by index time (``[cursor, target)``, Splunk's ``index_earliest`` /
``index_latest``) and reaches back in event time only as far as the indexing lag the feed has
measured needs (``scan_back``: 1.25 times the largest lag of the last fetches + 2 s, within
``max_index_lag``). An event later than that is found by the *late sweep*, which reads the rest
of ``max_index_lag`` for the index time passed since the previous sweep: every ``late_sweep``,
and at once when a fetch finds events close to its bound (the lag is growing).
docs/rules.md, "Late data and search cost", tells the whole story.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time as clock
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.domain.hits import Hit, SearchQuery
from bot.errors import TransientError
from bot.ports import SearchBackend
from detectors.feeds.cache import EventCache
from detectors.feeds.plan import FeedSpec

log = logging.getLogger(__name__)

MIN_SCAN_BACK_S = 2.0
#: a feed scans back the whole max_index_lag until it has measured lags for this long
LEARN_S = 600.0
#: the scan-back follows the largest lag measured over this much index time
LAG_MEMORY_S = 3600.0
BACKOFF_S = (2.0, 5.0, 15.0, 30.0, 60.0)


class FeedBroken(TransientError):
    """The feed cannot promise complete data (a fetch hit the result cap, or the cache grew
    past its bound): its rules run their own searches from now on."""


@dataclass(slots=True)
class FeedFigures:
    searches: int = 0
    sweeps: int = 0
    rows: int = 0
    #: event-time seconds the feed's searches covered (what Splunk must scan)
    scanned_s: float = 0.0
    late_found: int = 0
    errors: int = 0


class Feed:
    """The fetch side of one :class:`FeedSpec`; rules read through :class:`FeedView`."""

    def __init__(
        self,
        spec: FeedSpec,
        backend: SearchBackend,
        max_index_lag: timedelta,
        late_sweep: timedelta,
        max_events: int,
        on_lag: Callable[[str, float], None] = lambda sourcetype, seconds: None,
        shared_lags: deque[tuple[float, float]] | None = None,
        learn: timedelta = timedelta(seconds=LEARN_S),
    ) -> None:
        self.spec = spec
        self.cache = EventCache()
        self.figures = FeedFigures()
        self.broken = ""
        self.last_error = ""
        self._backend = backend
        self._max_lag = max_index_lag.total_seconds()
        self._learn = learn.total_seconds()
        self._late_sweep = late_sweep.total_seconds()
        self._max_events = max_events
        self._on_lag = on_lag
        self._lock = asyncio.Lock()
        self.cursor: float | None = None  # index time fetched up to (exclusive)
        self._complete_from = math.inf  # event time from which the cache is complete
        self._sweep_from = 0.0  # index time the next sweep starts at
        self._swept_at = 0.0  # cursor at the last sweep
        self._lower_max = -math.inf  # highest event-time lower bound since the last sweep
        self._back_min = math.inf  # the smallest scan-back since the last sweep
        self._sweep_now = False
        #: (index time, the largest lag a fetch found), over the last LAG_MEMORY_S, shared by
        #: every feed (the same forwarders and indexers)
        self._lags: deque[tuple[float, float]] = shared_lags if shared_lags is not None else deque()
        self._failures = 0
        self._retry_at = 0.0
        #: (seen, event time) of events that arrived after the tick their time belongs to
        self._late: deque[tuple[float, float]] = deque()

    # what the rules ask ----------------------------------------------------------------------

    @property
    def scan_back(self) -> float:
        """How far before its index-time start a fetch reaches in event time (seconds)."""
        if not self._lags or self._lags[-1][0] - self._lags[0][0] < self._learn:
            return self._max_lag  # still learning how late this pipeline indexes
        # at least one interval: a lag that jumps within it is still found in time, and a fetch
        # covers at most twice the time it fetches
        floor = max(MIN_SCAN_BACK_S, self.spec.interval.total_seconds())
        return min(self._max_lag, max(floor, self.lag_allowance))

    @property
    def lag_allowance(self) -> float:
        """How long this feed's events take to become searchable, as measured (seconds): 1.25
        times the largest lag found over the last hour + 2 s, within ``max_index_lag``."""
        largest = max((lag for _, lag in self._lags), default=0.0)
        return min(self._max_lag, 1.25 * largest + 2.0)

    async def advance(self, target: datetime) -> datetime:
        """Fetch up to index time ``target`` (whole seconds) unless the feed is already there
        (another rule of the same tick fetched it); returns the index-time end the caller's
        window must use."""
        wanted = math.floor(target.timestamp())
        async with self._lock:
            self._check_usable()
            if self.cursor is None:
                await self._warm(wanted)
            elif wanted > self.cursor:
                since = self.cursor
                await self._fetch(wanted)
                if self._sweep_due():  # in the same tick: what it finds counts in this run
                    await self._sweep(since)
            assert self.cursor is not None
            return datetime.fromtimestamp(min(self.cursor, wanted), UTC)

    async def ensure_from(self, start: datetime) -> None:
        """Make the cache complete from event time ``start`` (a run catching up, or the first
        run of a rule whose window reaches further back than the others')."""
        begin = start.timestamp()
        if begin >= self._complete_from or self.cursor is None:
            return
        async with self._lock:
            self._check_usable()
            if begin >= self._complete_from:
                return
            cursor = self.cursor
            found = await self._search(begin, self._complete_from, None, cursor)
            for hit in found:
                self._keep(hit, None, measure=False)
            self._complete_from = begin

    def late_seen(self, row: dict) -> float | None:
        return self.cache.late_seen(row)

    def late_times(self, since: float, until: float) -> list[float]:
        """Event times of the events seen in ``[since, until)`` that happened before ``since``:
        the windows that ended before they arrived did not count them."""
        return [t for seen, t in self._late if since <= seen < until and t < since]

    # fetching --------------------------------------------------------------------------------

    async def _warm(self, target: int) -> None:
        """The first fetch: everything a member's window and the lag allowance can reach."""
        start = target - self.spec.longest_window.total_seconds() - self._max_lag
        found = await self._search(start, target, None, target)
        for hit in found:
            self._keep(hit, None, measure=False)
        self.cursor = float(target)
        self._complete_from = start
        self._sweep_from = self._swept_at = float(target)
        self._check_size()

    async def _fetch(self, target: int) -> None:
        assert self.cursor is not None
        back = self.scan_back
        lower = self.cursor - back
        found = await self._search(lower, target, self.cursor, target)
        largest = 0.0
        for hit in found:
            lag = self._keep(hit, None, measure=True)
            if lag is None:
                continue
            largest = max(largest, lag)
            at = hit.time.timestamp()
            if at < self.cursor:
                self._late.append((at + lag, at))
        self._remember(float(target), largest)
        if largest >= 0.8 * back and back < self._max_lag:
            self._sweep_now = True  # events close to the bound: there may be later ones
        self._lower_max = max(self._lower_max, lower)
        self._back_min = min(self._back_min, back)
        self.cursor = float(target)
        self._prune()
        self._check_size()

    def _remember(self, at: float, largest: float) -> None:
        lags = self._lags
        if not lags or at > lags[-1][0]:
            lags.append((at, largest))
        elif largest > lags[-1][1]:
            lags[-1] = (lags[-1][0], largest)
        while lags and lags[0][0] < at - LAG_MEMORY_S:
            lags.popleft()

    def _sweep_due(self) -> bool:
        assert self.cursor is not None
        if self.cursor <= self._sweep_from:
            return False
        return self._sweep_now or self.cursor - self._swept_at >= self._late_sweep

    async def _sweep(self, since: float) -> None:
        """Read the event time the regular fetches since the last sweep left out, for the index
        time they covered: events later than ``scan_back``, each counted once, as seen by the
        run of this tick (whose index time starts at ``since``): when it was indexed, or at
        ``since`` when that was before."""
        assert self.cursor is not None
        start = self._sweep_from - self._max_lag
        end = self._lower_max
        if end > start and self._back_min < self._max_lag:
            self.figures.sweeps += 1
            # only events later than the smallest scan-back: the fetches found the others
            bound = math.floor(self._back_min * 1000) / 1000
            late = f"{self.spec.query} | where _indextime - _time > {bound:g}"
            found = await self._search(start, end, self._sweep_from, self.cursor, late)
            largest = 0.0
            for hit in found:
                at = hit.time.timestamp()
                indexed = hit.indexed.timestamp() if hit.indexed is not None else at
                seen = max(indexed, since)
                lag = self._keep(hit, seen, measure=True)
                if lag is not None:
                    self.figures.late_found += 1
                    largest = max(largest, lag)
                    self._late.append((seen, at))
            self._remember(self.cursor, largest)
        self._sweep_from = self._swept_at = self.cursor
        self._lower_max = -math.inf
        self._back_min = math.inf
        self._sweep_now = False

    async def _search(
        self,
        earliest: float,
        latest: float,
        index_earliest: float | None,
        index_latest: float,
        text: str | None = None,
    ) -> list[Hit]:
        if latest <= earliest:
            return []
        query = SearchQuery(
            text=text or self.spec.query,
            earliest=_at(earliest),
            latest=_at(latest),
            max_results=self._cap(),
            index_earliest=None if index_earliest is None else _at(index_earliest),
            index_latest=_at(index_latest),
            all_fields=True,
        )
        try:
            found = await self._backend.search(query)
        except TransientError as exc:
            self._failed(exc)
            raise
        self._failures = 0
        self.last_error = ""
        self.figures.searches += 1
        self.figures.rows += len(found)
        self.figures.scanned_s += latest - earliest
        if len(found) >= self._cap():
            self.broken = (
                f"one fetch returned {len(found)} events, the most a search may return: "
                "its rules run their own searches"
            )
            raise FeedBroken(f"{self.spec.name}: {self.broken}")
        return found

    def _keep(self, hit: Hit, late_at: float | None, measure: bool) -> float | None:
        """Cache ``hit``; returns its indexing lag (seconds) when it was new, else None."""
        epoch = hit.time.timestamp()
        indexed = hit.indexed.timestamp() if hit.indexed is not None else epoch
        row: dict[str, object] = dict(hit.fields)
        row["_raw"] = hit.raw
        row["_time"] = epoch
        row["_indextime"] = indexed
        seen = indexed if late_at is None else late_at
        if not self.cache.add(row, epoch, seen, late=late_at is not None):
            return None
        lag = max(0.0, indexed - epoch)
        if measure:
            self._on_lag(str(hit.fields.get("sourcetype", "")), lag)
        return lag

    # bounds ------------------------------------------------------------------------------------

    def _prune(self) -> None:
        assert self.cursor is not None
        keep = self.spec.longest_window.total_seconds() + self._max_lag
        keep += 2 * self.spec.interval.total_seconds()
        # what the late sweep finds is evaluated where it happened: keep its windows around
        keep += self._late_sweep
        horizon = self.cursor - keep
        while self._late and self._late[0][0] < horizon:
            self._late.popleft()
        if horizon > self._complete_from:
            self.cache.prune(horizon)
            self._complete_from = horizon

    def _cap(self) -> int:
        backend_cap = getattr(self._backend, "max_results_cap", None)
        return (
            min(self._max_events, backend_cap)
            if isinstance(backend_cap, int)
            else (self._max_events)
        )

    def _check_size(self) -> None:
        if len(self.cache) > self._max_events:
            self.broken = (
                f"{len(self.cache)} events in its rules' windows, more than BOT_FEED_MAX_EVENTS "
                f"({self._max_events}): its rules run their own searches"
            )
            self.cache = EventCache()
            raise FeedBroken(f"{self.spec.name}: {self.broken}")

    def _check_usable(self) -> None:
        if self.broken:
            raise FeedBroken(f"{self.spec.name}: {self.broken}")
        wait = self._retry_at - clock.monotonic()
        if wait > 0:
            raise TransientError(
                f"{self.spec.name}: backing off {wait:.0f}s after: {self.last_error}"
            )

    def _failed(self, exc: Exception) -> None:
        self.figures.errors += 1
        self.last_error = str(exc)
        pause = BACKOFF_S[min(self._failures, len(BACKOFF_S) - 1)]
        self._failures += 1
        self._retry_at = clock.monotonic() + pause
        log.warning("%s: search failed (%s); next try in %.0fs", self.spec.name, exc, pause)


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


__all__ = ["Feed", "FeedBroken", "FeedFigures"]
