"""Setup for bench/search_cost.py: generated data with indexing lags and bursts, the two
backends, the runner with or without shared searches, the scheduler's timetable, 500 rules, and
the child interpreter's side of the 500-rule part."""

from __future__ import annotations

import argparse
import asyncio
import heapq
import inspect
import itertools
import logging
import math
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import START, percentile, sqlite_url
from pydantic import SecretStr
from sqlalchemy import Engine, select

from bot.domain.hits import Hit, SearchQuery
from bot.metrics import Metrics
from bot.pipeline.ingest import IngestPolicy
from bot.pipeline.notify import Router, Target
from bot.ports import Clock, Health, HealthStatus, SearchBackend
from bot.redaction import Redactor
from bot.scheduler import FEED_TICK_OFFSET_S, RuleRunner
from bot.store.db import make_engine, migrate
from bot.store.repo import RULE_STATE
from detectors.model import Rule
from detectors.rules import load_rules
from detectors.spl import parse
from integrations.local import Event, EventStore, LocalSearchBackend, fleet
from integrations.local.generator import Generator
from integrations.local.more_scenarios import sshd_failure
from integrations.splunk import SplunkSearchBackend, SplunkSettings
from tests.fakes.splunk_quota import SearchLedger, SearchRecord

TOKEN = "bench-token"
MAX_INDEX_LAG = timedelta(minutes=5)
LEAD_IN = timedelta(minutes=15)  # data before the first run
BURST_EVERY_S = 150.0
MAX_RESULTS = 200_000
QUOTA = 3  # SPLUNK_MAX_CONCURRENT, and the Splunk role's srchJobsQuota in part two
JITTER_S = 2.0  # BOT_SCHEDULE_JITTER's default
DRAIN_S = 15.0  # after the 500-rule span, how long runs in flight may take to finish


# data ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Burst:
    group_key: str  # the incident it must raise
    at: datetime  # its first event
    lag: float
    searchable: datetime  # when its last event became searchable


@dataclass(slots=True)
class Data:
    events: list[Event]
    bursts: list[Burst]
    start: datetime  # the first runs
    calm_end: datetime  # lags of seconds until here (and for the noise until slow_end)
    slow_end: datetime  # until here one slow forwarder: bursts 45 s to 2 min late
    end: datetime  # no data after this


def calm_lag(rng: random.Random) -> float:
    """Seconds, under one interval."""
    return min(25.0, 0.2 + rng.expovariate(1 / 2.5))


def storm_lag(at: float, since: float, rng: random.Random) -> float:
    """A forwarder backlog after ``since``: swells to 2 minutes and drains, every 10 min."""
    phase = ((at - since) % 600) / 600
    backlog = 110 * (1 - abs(2 * phase - 1))
    return min(120.0, backlog + rng.expovariate(1 / 3))


def make_data(minutes: int, seed: int) -> Data:
    rng = random.Random(seed)
    start = START
    end = start + timedelta(minutes=minutes)
    calm_end = start + timedelta(minutes=min(minutes - 10, max(minutes / 2, 20)))
    slow_end = calm_end + (end - calm_end) / 3
    with tempfile.TemporaryDirectory() as folder:
        store = EventStore(Path(folder) / "unused.db")
        noise = Generator(store, seed=seed).noise(end, (end - start + LEAD_IN).total_seconds())
        store.close()
    events = []
    for event in noise:
        if event.time < slow_end:
            lag = calm_lag(rng)
        else:
            lag = storm_lag(event.time.timestamp(), slow_end.timestamp(), rng)
        events.append(replace(event, indexed=event.time + timedelta(seconds=lag)))
    rules = {r.id: r for r in load_rules([])}
    need_ssh = rules["ssh-password-guessing"].frequency.num_events  # type: ignore[attr-defined]
    need_app = rules["app-error-burst"].frequency.num_events  # type: ignore[attr-defined]
    bursts = []
    first = start + timedelta(seconds=60)
    n = 0
    while first + timedelta(seconds=30) < end:
        n += 1
        if first < calm_end:
            lag = rng.uniform(0.5, 25)
        elif first < slow_end:  # the burst's forwarder is slow, the others are not
            lag = rng.uniform(45, 120)
        else:
            lag = rng.uniform(30, 120)
        times = [first + timedelta(seconds=i) for i in range(need_ssh if n % 2 else need_app)]
        if n % 2:
            host, address = fleet.WEB_HOSTS[n % 3], f"192.0.2.{n}"
            made = [sshd_failure(t, host, "root", address, True) for t in times]
            key = f"ssh-password-guessing|host={host},src={address}"
        else:
            service = f"burst-{n}"
            made = [
                fleet.app_log(t, "app-1", service, "ERROR", "upstream timed out") for t in times
            ]
            key = f"app-error-burst|service={service}"
        made = [replace(e, indexed=e.time + timedelta(seconds=lag)) for e in made]
        events.extend(made)
        searchable = max(e.indexed for e in made if e.indexed is not None)
        bursts.append(Burst(key, made[0].time, lag, searchable))
        first += timedelta(seconds=BURST_EVERY_S)
    return Data(events, bursts, start, calm_end, slow_end, end)


# backends -----------------------------------------------------------------------------------


class ClockedLocal:
    """The embedded backend with an index clock: a search sees only events indexed by now (as a
    generator writing them late would), counted as the Splunk fake counts."""

    index_time_bounds = True

    def __init__(self, store: EventStore, clock: Clock) -> None:
        self._inner = LocalSearchBackend(store)
        self._clock = clock
        self.ledger = SearchLedger()

    async def search(self, query: SearchQuery) -> list[Hit]:
        now = self._clock.now()
        bound = now if query.index_latest is None else min(query.index_latest, now)
        hits = await self._inner.search(replace(query, index_latest=bound))
        events = not parse(query.text).is_transforming
        record = SearchRecord(
            "export",
            query.text,
            query.earliest,
            query.latest,
            query.index_earliest,
            query.index_latest,
            len(hits),
            events,
            now,
        )
        ids = (f"{h.time.timestamp()}|{h.raw}" for h in hits) if events else ()
        self.ledger.record(record, ids)
        return hits

    async def check(self) -> Health:
        return Health(HealthStatus.OK)


def splunk_backend(port: int) -> SplunkSearchBackend:
    return SplunkSearchBackend(
        SplunkSettings(
            host="127.0.0.1",
            port=port,
            scheme="http",
            token=SecretStr(TOKEN),
            max_concurrent=QUOTA,
            max_results=MAX_RESULTS,
            search_timeout=60,
        )
    )


def fed_by(feeds: Any) -> Callable[[str], bool]:
    return (lambda rule_id: False) if feeds is None else feeds.fed


def feeds_supported() -> bool:
    return "feeds" in inspect.signature(RuleRunner.__init__).parameters


def make_runner(
    engine: Engine,
    backend: SearchBackend,
    rules: Sequence[Rule],
    clock: Clock,
    shared: bool,
    late_sweep: timedelta | None = None,
) -> tuple[RuleRunner, Any]:
    """The runner, and its FeedSet when searches are shared (None: every rule searches alone)."""
    router = Router(rules=(), defaults=(Target("console", "console"),))

    def policy_for(rule: Rule) -> IngestPolicy:
        return IngestPolicy(router, timedelta(minutes=30), timedelta(seconds=60), rule.realert)

    extra: dict[str, Any] = {"max_index_lag": MAX_INDEX_LAG}
    feeds = None
    if shared:
        from detectors.feeds import FeedSet

        knobs = {} if late_sweep is None else {"late_sweep": late_sweep}
        feeds = FeedSet(backend, rules, max_index_lag=MAX_INDEX_LAG, **knobs)
    if feeds_supported():
        extra["feeds"] = feeds
    redact = Redactor("balanced").redact
    runner = RuleRunner(engine, backend, rules, clock, redact, policy_for, Metrics(), **extra)
    return runner, feeds


class Timetable:
    """When each rule runs, as ``bot.scheduler.Scheduler`` plans it: a fed rule first runs
    within a second of the start, then on its interval's grid (so one fetch serves every
    member); any other rule first runs 0.2 to 3 s after the start, then every interval plus
    APScheduler's jitter (up to ``BOT_SCHEDULE_JITTER``, 2 s)."""

    def __init__(
        self, rules: Sequence[Rule], start: datetime, fed: Callable[[str], bool], seed: int
    ) -> None:
        self._rng = random.Random(seed)
        self._heap: list[tuple[datetime, int, str, datetime | None, bool]] = []
        self._order = itertools.count()
        for rule in rules:
            if not rule.enabled:
                continue
            assert rule.interval is not None, f"{rule.id}: cron schedules are not simulated"
            period = rule.interval.total_seconds()
            if fed(rule.id):
                self._push(start + timedelta(seconds=self._rng.uniform(0.2, 1.0)), rule.id)
                base = math.floor(start.timestamp() / period) * period + FEED_TICK_OFFSET_S
                grid = datetime.fromtimestamp(base, UTC)
                while grid <= start:
                    grid += rule.interval
                self._push(grid, rule.id, grid, aligned=True)
            else:
                first = start + timedelta(seconds=self._rng.uniform(0.2, 1.0 + JITTER_S))
                self._push(first, rule.id, first)
        self._periods = {r.id: r.interval for r in rules if r.interval is not None}

    def _push(
        self, due: datetime, rule_id: str, nominal: datetime | None = None, aligned: bool = False
    ) -> None:
        heapq.heappush(self._heap, (due, next(self._order), rule_id, nominal, aligned))

    def next_due(self) -> datetime:
        return self._heap[0][0]

    def pop(self) -> tuple[datetime, str]:
        """The next run (its time and rule); the rule's following run is planned."""
        due, _, rule_id, nominal, aligned = heapq.heappop(self._heap)
        if nominal is not None:
            following = nominal + self._periods[rule_id]
            jitter = 0.0 if aligned else self._rng.uniform(0, JITTER_S)
            self._push(following + timedelta(seconds=jitter), rule_id, following, aligned)
        return due, rule_id


def make_rules(count: int, seed: int = 500) -> list[Rule]:
    """``count`` rules from the shipped ones: new ids, thresholds and event counts scaled,
    groupings varied where the rule's title allows it."""
    shipped = [r for r in load_rules([]) if r.enabled and r.interval is not None]
    rng = random.Random(seed)
    made = []
    for i in range(count):
        base = shipped[i % len(shipped)]
        data = base.model_dump()
        data["id"] = f"{base.id}-{i}"
        factor = rng.choice((0.8, 1.0, 1.25, 1.5, 2.0))
        if isinstance(data.get("threshold"), dict):
            data["threshold"]["value"] = round(data["threshold"]["value"] * factor, 3)
        if isinstance(data.get("frequency"), dict):
            data["frequency"]["num_events"] = max(
                2, round(data["frequency"]["num_events"] * factor)
            )
        grouped = tuple(data.get("group_by") or ())
        if grouped and rng.random() < 0.5:
            data["group_by"] = grouped[:-1] if len(grouped) > 1 else (*grouped, "host")
        try:
            made.append(type(base).model_validate(data))
        except ValueError:  # the title names the field: keep the grouping
            data["group_by"] = grouped
            made.append(type(base).model_validate(data))
    return made


class WallClock:
    """Simulated time that moves with the wall clock: ``origin`` at wall time ``wall0``."""

    def __init__(self, origin: datetime, wall0: float) -> None:
        self._origin, self._wall0 = origin, wall0

    def now(self) -> datetime:
        return self._origin + timedelta(seconds=time.time() - self._wall0)


# the 500-rule part's child ---------------------------------------------------------------


class GaveUp(logging.Handler):
    """Counts the runner's "… of data older than max_catchup … was not searched"."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "was not searched" in str(record.msg):
            self.count += 1


async def many_rules(args: argparse.Namespace) -> dict[str, Any]:
    clock = WallClock(datetime.fromtimestamp(args.origin, UTC), args.wall0)
    rules = make_rules(args.rules)
    gave_up = GaveUp()
    logging.getLogger("bot.runner").addHandler(gave_up)
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(sqlite_url(folder))
        await asyncio.to_thread(migrate, engine)
        backend = splunk_backend(args.port)
        runner, feeds = make_runner(engine, backend, rules, clock, args.mode == "shared")
        start = clock.now()
        timetable = Timetable(rules, start, fed_by(feeds), seed=11)
        fast = {r.id for r in rules if r.interval == timedelta(seconds=30)}
        running: dict[str, asyncio.Task[Any]] = {}
        started: list[asyncio.Task[Any]] = []
        skipped = 0
        lags: list[float] = []

        async def sample() -> None:
            while True:
                await asyncio.sleep(1.0)
                now = clock.now()
                # read in the loop itself: the worker threads may all be busy with runs
                ends = last_ends(engine)
                for rule_id in fast:  # before its first run: the data since the start
                    lags.append((now - ends.get(rule_id, start)).total_seconds())

        sampler = asyncio.create_task(sample())
        stop = start + timedelta(seconds=args.span)
        while timetable.next_due() < stop:
            due, rule_id = timetable.pop()
            wait = (due - clock.now()).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
            previous = running.get(rule_id)
            if previous is not None and not previous.done():
                skipped += 1  # as APScheduler's max_instances=1: the next run covers it
            else:
                running[rule_id] = asyncio.create_task(runner.run(rule_id))
                started.append(running[rule_id])
        sampler.cancel()
        done, pending = await asyncio.wait(started, timeout=DRAIN_S)
        for task in pending:  # still queued for a search: stopped, as a shutdown would
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        errors = sum(1 for t in done if not t.cancelled() and t.result().error)
        ran = len(done)
        engine.dispose()
    return {
        "windows_lost": gave_up.count,
        "lag_p99_s": percentile(lags, 99) if lags else None,
        "lag_max_s": max(lags) if lags else None,
        "skipped": skipped,
        "unfinished": len(pending),
        "errors": errors,
        "runs": ran,
        "coalesced": sum(getattr(runner, "coalesced", {}).values()),
        "max_active": backend.counters.max_active,
    }


def last_ends(engine: Engine) -> dict[str, datetime]:
    with engine.connect() as conn:
        rows = conn.execute(select(RULE_STATE.c.rule_id, RULE_STATE.c.last_window_end)).all()
    return {rule_id: as_utc(end) for rule_id, end in rows if end is not None}


def as_utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
