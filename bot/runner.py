"""Runs one rule end to end: plan its windows, search, evaluate, ingest, record its state.

Every write goes through the engine the runtime hands in, which fences each transaction with
the scheduler lease's generation (``bot.store.leases``). Windows: a run covers from the rule's
last successful window end to ``now - query_delay`` (looking back ``window`` for sliding rule
types); after a restart or an outage the gap is replayed in interval-sized steps, bounded by
``max_catchup``. The window end advances in the same transaction as the incidents it produced:
no gap, no overlap, no double incident. Rules that share a search read it through their feed
(``detectors.feeds``); a fed rule whose type judges by event time and cannot revisit past
windows is held back by the feed's measured lag, so a window's events have arrived when it is
judged (``detectors.revisit``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update

from bot.errors import BotError
from bot.metrics import Metrics, export_feeds
from bot.pipeline.ingest import Detection, IngestPolicy, IngestResult, ingest
from bot.pipeline.inhibit import InhibitRule
from bot.pipeline.mute import Silence
from bot.pipeline.recover import clean_runs
from bot.ports import Clock, SearchBackend
from bot.store.feed_lags import LagKeeper
from bot.store.leases import FencedWrite
from bot.store.maintenance import active_silences, muter_for
from bot.store.repo import INCIDENTS, RULE_STATE
from bot.store.rule_state import (
    ensure_state,
    merge_results,
    read_memory,
    save_memory,
    success_values,
)
from detectors.feeds import FeedSet, FeedView
from detectors.memory import RuleMemory
from detectors.model import Rule
from detectors.planning import plan_windows
from detectors.revisit import held_back, held_window, with_late_events
from detectors.runner import run_rule
from detectors.types import rule_type
from detectors.window import Window

log = logging.getLogger(__name__)
SILENCE_TTL = timedelta(seconds=2)

DEFAULT_MAX_INDEX_LAG = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class IndexLag:
    """The indexing lag of one sourcetype's events as runs found them: the latest, the largest
    and how many events were measured (seconds)."""

    last: float
    largest: float
    events: int

    def add(self, seconds: float) -> IndexLag:
        return IndexLag(seconds, max(self.largest, seconds), self.events + 1)


@dataclass(frozen=True, slots=True)
class RunSummary:
    rule_id: str
    windows: int
    hits: int
    result: IngestResult
    error: str = ""


class RuleRunner:
    """Runs one rule end to end: plan windows, search, evaluate, ingest, record state."""

    def __init__(
        self,
        engine: Engine,
        backend: SearchBackend,
        rules: Sequence[Rule],
        clock: Clock,
        redact: Callable[[str], str],
        policy_for: Callable[[Rule], IngestPolicy],
        metrics: Metrics,
        on_ingested: Callable[[IngestResult], None] = lambda result: None,
        clear: Callable[[int], Awaitable[object]] | None = None,
        max_index_lag: timedelta = DEFAULT_MAX_INDEX_LAG,
        feeds: FeedSet | None = None,
    ) -> None:
        self._max_index_lag = max_index_lag
        #: shared searches (None: every rule runs its own search over its whole window)
        self.feeds = feeds
        if feeds is not None:
            feeds.on_lag = self._observe_lag
            self._lags = LagKeeper(engine, feeds)
        #: runs that covered more than one interval, and how far each rule's data trails now
        self.coalesced: dict[str, int] = {}
        self._busy: set[str] = set()
        self.search_lag: dict[str, float] = {}
        #: the indexing lag seen per sourcetype (the rules page shows it)
        self.index_lag: dict[str, IndexLag] = {}
        self._clear = clear
        self._silence_cache: tuple[datetime, list[Silence]] | None = None
        #: inhibit rules from the rule files (an active incident mutes lower ones)
        self.inhibit_rules: tuple[InhibitRule, ...] = ()
        # each rule's last window end and memory as this process committed them
        self._state: dict[str, tuple[datetime | None, RuleMemory]] = {}
        self._engine = engine
        self._backend = backend
        self.rules: dict[str, Rule] = {r.id: r for r in rules}
        self._clock = clock
        self._redact = redact
        self._policy_for = policy_for
        self._metrics = metrics
        self._on_ingested = on_ingested

    async def run(self, rule_id: str) -> RunSummary:
        if rule_id in self._busy:  # its first run and its first tick may meet: one at a time
            await asyncio.to_thread(self.record_skip, rule_id)
            return RunSummary(rule_id, 0, 0, IngestResult(), "a run of this rule is still going")
        self._busy.add(rule_id)
        try:
            return await self._run(rule_id)
        finally:
            self._busy.discard(rule_id)

    async def _run(self, rule_id: str) -> RunSummary:
        rule = self.rules[rule_id]
        started = time.perf_counter()
        now = self._clock.now()
        cached = self._state.pop(rule_id, None)  # taken out: a failed run must reload it
        try:
            if cached is None:
                cached = await asyncio.to_thread(self._load_state, rule_id)
            last_end, memory = cached
        except Exception as exc:  # the database is away (or the lease): recorded when back
            log.warning("rule %s: state not readable: %s", rule_id, exc)
            return RunSummary(rule_id, 0, 0, IngestResult(), str(exc))
        total = IngestResult()
        hits = 0
        fired: set[str] = set()
        windows: list[Window] = []
        try:
            backend, windows = await self._plan(rule, now, last_end)
            for index, window in enumerate(windows):
                outcome = await run_rule(rule, backend, window, self._redact, memory)
                if isinstance(backend, FeedView):
                    allowance = rule.max_index_lag or self._max_index_lag
                    outcome = await with_late_events(
                        rule, backend, window, outcome, self._redact, allowance, memory
                    )
                fired.update(alert.group_key for alert in outcome.alerts)
                hits += outcome.hits
                if backend is self._backend:  # a feed measures each event once, as it fetches
                    self._observe_lags(outcome.index_lags)
                last = index == len(windows) - 1 and not rule.resolve_after
                # the last window also records the run, in the same transaction
                finish = (hits, time.perf_counter() - started) if last else None
                result = await asyncio.to_thread(
                    self._commit, rule, outcome.alerts, window, memory, now, finish
                )
                merge_results(total, result)
                self._on_ingested(result)
        except FencedWrite as exc:  # the lease moved on: the new holder runs this window
            log.warning("rule %s: run refused, %s", rule_id, exc)
            return RunSummary(rule_id, len(windows), hits, total, str(exc))
        except Exception as exc:  # a rule's failure is recorded; it never stops the others
            if not isinstance(exc, BotError | OSError | TimeoutError):
                log.exception("rule %s: unexpected failure", rule_id)
            elapsed = time.perf_counter() - started
            await asyncio.to_thread(self._record_failure, rule_id, now, str(exc), elapsed)
            self._metrics.rule_runs.labels(rule_id, "error").inc()
            log.warning("rule %s failed: %s", rule_id, exc)
            return RunSummary(rule_id, len(windows), hits, total, str(exc))
        if rule.resolve_after and windows and self._clear is not None:
            await self._recover(rule, fired, memory, now)
        # what this process just committed is the rule's state: the next run needs no read
        self._state[rule_id] = (windows[-1].end if windows else last_end, memory)
        elapsed = time.perf_counter() - started
        if not windows or rule.resolve_after:
            await asyncio.to_thread(self._record_success, rule_id, now, hits, elapsed, total)
        self._metrics.rule_runs.labels(rule_id, "ok").inc()
        self._metrics.rule_duration.labels(rule_id).observe(elapsed)
        self._metrics.rule_hits.labels(rule_id).inc(hits)
        self._metrics.incidents_created.inc(len(total.created))
        searched_to = windows[-1].end if windows else last_end
        if searched_to is not None:
            lag = max(0.0, (now - searched_to).total_seconds())
            self.search_lag[rule_id] = lag
            self._metrics.rule_search_lag.labels(rule_id).set(lag)
        return RunSummary(rule_id, len(windows), hits, total)

    async def _plan(
        self, rule: Rule, now: datetime, last_end: datetime | None
    ) -> tuple[SearchBackend, list[Window]]:
        """Where the rule's rows come from (its feed, or its own search) and its windows."""
        backend, end, seen_until = self._backend, None, None
        if self.feeds is not None and self.feeds.fed(rule.id):
            try:
                await self._lags.resume()  # what the previous process measured
                end = await self.feeds.end_for(rule, now - rule.query_delay)
                await self._lags.keep(now)
            finally:
                self._export_feeds()
            backend = self.feeds.view(rule.id)
            if held_back(rule):
                held = self._held_end(rule, end)
                if held is None:  # no lag measured yet: the next run knows how long to wait
                    return backend, []
                end, seen_until = held
        kind = rule_type(rule.type)
        windows, skipped = plan_windows(
            now, last_end, rule, kind.sliding, self.index_lag_for(rule, backend), end=end
        )
        if seen_until is not None and isinstance(backend, FeedView):  # held back
            windows = [held_window(rule, backend, w, seen_until) for w in windows]
        if skipped > timedelta(0):
            log.warning(
                "rule %s: %s of data older than max_catchup (%s) was not searched",
                rule.id,
                skipped,
                rule.max_catchup,
            )
        step = rule.interval or rule.window
        late_run = windows and windows[0].end - windows[0].new_since > 1.5 * step
        if last_end is not None and (len(windows) > 1 or late_run):
            # a run that was late, failed or was refused covers the time it missed
            self.coalesced[rule.id] = self.coalesced.get(rule.id, 0) + 1
            self._metrics.rule_coalesced.labels(rule.id).inc()
        return backend, windows

    def _held_end(self, rule: Rule, end: datetime) -> tuple[datetime, datetime] | None:
        """A held-back rule's window end and how far its events count as seen: the measured lag
        allowance before its feeds' data end (every event of the window within the allowance is
        fetched), never after ``end``; with the feed current, ``max(0, allowance - query_delay)``
        before the rule's own end. None until the feeds have measured a lag."""
        assert self.feeds is not None
        allowance = self.feeds.lag_allowance(rule.id)
        data_end = self.feeds.data_end(rule.id)
        if allowance is None or data_end is None:
            return None
        return min(end, data_end - allowance), data_end

    def index_lag_for(self, rule: Rule, backend: SearchBackend | None = None) -> timedelta | None:
        """How far back in event time the rule's runs reach for late events; None when its runs
        are bounded by event time (its type or the backend cannot use index time)."""
        if not rule_type(rule.type).index_time:
            return None
        if not getattr(backend or self._backend, "index_time_bounds", False):
            return None
        return rule.max_index_lag or self._max_index_lag

    def _export_feeds(self) -> None:
        assert self.feeds is not None
        export_feeds(self._metrics, self.feeds.describe())

    def _observe_lags(self, lags: Sequence[tuple[str, float]]) -> None:
        for sourcetype, seconds in lags:
            self._observe_lag(sourcetype, seconds)

    def _observe_lag(self, sourcetype: str, seconds: float) -> None:
        self._metrics.index_lag.labels(sourcetype).observe(seconds)
        seen = self.index_lag.get(sourcetype)
        self.index_lag[sourcetype] = (
            IndexLag(seconds, seconds, 1) if seen is None else seen.add(seconds)
        )

    async def _recover(
        self, rule: Rule, fired: set[str], memory: RuleMemory, now: datetime
    ) -> None:
        assert rule.resolve_after is not None and self._clear is not None
        active = await asyncio.to_thread(self._active_groups, rule.id)
        due = clean_runs(active, fired, memory, rule.resolve_after)

        def save() -> None:
            with self._engine.begin() as conn:
                save_memory(conn, rule.id, memory, now)

        await asyncio.to_thread(save)
        for incident_id in due:
            try:
                await self._clear(incident_id)
            except BotError as exc:  # resolved by someone else meanwhile: nothing to do
                log.info("rule %s: INC-%s not cleared: %s", rule.id, incident_id, exc)

    def _active_groups(self, rule_id: str) -> list[tuple[int, str]]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(INCIDENTS.c.id, INCIDENTS.c.group_key).where(
                    INCIDENTS.c.rule_id == rule_id, INCIDENTS.c.active_key.is_not(None)
                )
            )
            return [(r.id, r.group_key) for r in rows]

    # state -----------------------------------------------------------------------------------

    def _silences(self, conn: Any, now: datetime) -> list[Silence]:
        """Active silences, read at most every ``SILENCE_TTL`` (every run needs them; they
        change rarely). ``silences_changed()`` makes the next read fresh."""
        cached = self._silence_cache
        if cached is not None and timedelta(0) <= now - cached[0] < SILENCE_TTL:
            return [s for s in cached[1] if s.active(now)]
        found = active_silences(conn, now)
        self._silence_cache = (now, found)
        return found

    def silences_changed(self) -> None:
        self._silence_cache = None

    def forget_state(self) -> None:
        """Read every rule's state from the database again (another replica may have run
        the rules meanwhile, e.g. after this one lost and regained the scheduler lease)."""
        self._state.clear()

    def _load_state(self, rule_id: str) -> tuple[datetime | None, RuleMemory]:
        """Where the last run ended and the rule's memory: one connection, one thread hop."""
        with self._engine.connect() as conn:
            row = conn.execute(
                select(RULE_STATE.c.last_window_end).where(RULE_STATE.c.rule_id == rule_id)
            ).first()
            return (row[0] if row else None), read_memory(conn, rule_id)

    def _commit(
        self,
        rule: Rule,
        alerts: list[Any],
        window: Window,
        memory: RuleMemory,
        now: datetime,
        finish: tuple[int, float] | None = None,
    ) -> IngestResult:
        with self._engine.begin() as conn:
            silences = muter_for(conn, now, self._silences(conn, now), self.inhibit_rules)
            found_by = Detection(rule.id, rule.query, window.start, window.end)
            result = ingest(conn, alerts, now, self._policy_for(rule), silences, found_by)
            save_memory(conn, rule.id, memory, now)
            values: dict[str, Any] = {"last_window_end": window.end, "last_alerts": len(alerts)}
            if finish is not None:
                hits, elapsed = finish
                values.update(success_values(now, hits, elapsed))
            done = conn.execute(
                update(RULE_STATE).where(RULE_STATE.c.rule_id == rule.id).values(**values)
            )
            if done.rowcount == 0:  # the rule's first run: its state row is new
                ensure_state(conn, rule.id)
                conn.execute(
                    update(RULE_STATE).where(RULE_STATE.c.rule_id == rule.id).values(**values)
                )
        return result

    def _record_success(
        self, rule_id: str, now: datetime, hits: int, elapsed: float, result: IngestResult
    ) -> None:
        with self._engine.begin() as conn:
            ensure_state(conn, rule_id)
            conn.execute(
                update(RULE_STATE)
                .where(RULE_STATE.c.rule_id == rule_id)
                .values(**success_values(now, hits, elapsed))
            )

    def _record_failure(self, rule_id: str, now: datetime, error: str, elapsed: float) -> None:
        with self._engine.begin() as conn:
            ensure_state(conn, rule_id)
            conn.execute(
                update(RULE_STATE)
                .where(RULE_STATE.c.rule_id == rule_id)
                .values(
                    last_run_at=now,
                    last_duration_ms=elapsed * 1000,
                    last_error=error[:2000],
                    consecutive_failures=RULE_STATE.c.consecutive_failures + 1,
                    runs=RULE_STATE.c.runs + 1,
                    errors=RULE_STATE.c.errors + 1,
                )
            )

    def record_skip(self, rule_id: str) -> None:
        with self._engine.begin() as conn:
            ensure_state(conn, rule_id)
            conn.execute(
                update(RULE_STATE)
                .where(RULE_STATE.c.rule_id == rule_id)
                .values(skipped=RULE_STATE.c.skipped + 1)
            )
        self._metrics.rule_skipped.labels(rule_id).inc()

    def record_next_runs(self, next_runs: Mapping[str, datetime | None]) -> None:
        with self._engine.begin() as conn:
            for rule_id, at in next_runs.items():
                ensure_state(conn, rule_id)
                conn.execute(
                    update(RULE_STATE).where(RULE_STATE.c.rule_id == rule_id).values(next_run_at=at)
                )


__all__ = ["DEFAULT_MAX_INDEX_LAG", "IndexLag", "RuleRunner", "RunSummary", "plan_windows"]
