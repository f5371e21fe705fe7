"""The built-in log generator: background noise from a small fleet, plus staged incidents.

With no Splunk configured, the embedded backend searches what this writes, so the shipped rules
raise real incidents: :meth:`Generator.run` writes noise every few seconds and, after a short
delay, one scenario of :data:`~integrations.local.scenarios.SCENARIOS` after another.

A scenario started with :meth:`Generator.start` keeps running (it is written again each minute by
:meth:`Generator.advance`, which ``run`` calls) until :meth:`Generator.end` stops it, the way a
fix would, or its time is up; :meth:`Generator.inject` writes one minute of it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial

from bot.errors import NotFound
from bot.ports import Clock
from integrations.local import fleet
from integrations.local.events import Event, EventStore
from integrations.local.fleet import Logon
from integrations.local.scenarios import SCENARIOS, SPAN_S

log = logging.getLogger(__name__)

METRIC_EVERY_S = 15.0
HEARTBEAT_EVERY_S = 30.0
SENSOR_EVERY_S = 30.0
REQUESTS_PER_S = 0.5  # per web host
APP_LINES_PER_S = 0.2  # per app host
_STATUSES = (200, 201, 204, 301, 304, 400, 401, 404, 499, 500, 502, 503)
_STATUS_WEIGHTS = (860, 20, 20, 10, 50, 10, 10, 15, 3, 1, 0.5, 0.5)
_PATHS = {
    "checkout": ("/api/cart", "/api/cart/items", "/api/checkout", "/api/orders"),
    "catalog": ("/api/products", "/api/products/1042", "/api/search", "/static/app.js"),
}
_APP_INFO = {
    "checkout": ("order placed", "cart updated", "payment authorized", "session refreshed"),
    "catalog": ("product page rendered", "search served", "cache refreshed", "price list loaded"),
}
_APP_WARN = ("slow query: 812 ms", "retrying upstream call, attempt 2", "cache miss storm")
_STATEMENTS = (
    "SELECT id, price FROM products WHERE id = $1",
    "UPDATE carts SET updated_at = now() WHERE id = $1",
    "INSERT INTO orders (cart_id, total) VALUES ($1, $2)",
)
_OFFICE = tuple(
    Logon(user, f"10.0.2.{n}")
    for n, user in enumerate(("jdoe", "asmith", "bwong", "mgarcia", "svc_backup", "svc_sql"), 21)
)


@dataclass(frozen=True, slots=True)
class RunningScenario:
    """A scenario that is still happening: its next minute is written at ``next_at``."""

    name: str
    next_at: datetime
    until: datetime | None  # None: until it is ended


class Generator:
    """Writes simulated fleet logs to ``store``; ``seed`` makes the output reproducible."""

    def __init__(
        self, store: EventStore, seed: int | None = None, index_lag: timedelta = timedelta(0)
    ) -> None:
        """``index_lag``: each event becomes searchable a random time up to this long after it
        is written (a forwarder queue or a busy indexer, to try late-event handling)."""
        self._store = store
        self._rng = random.Random(seed)
        self._index_lag = index_lag.total_seconds()
        self._running: dict[str, RunningScenario] = {}
        self._lock = threading.Lock()  # writes of running scenarios vs. ending one

    def noise(self, now: datetime, seconds: float) -> list[Event]:
        """Background logs for ``(now - seconds, now]``, oldest first; they raise no incident."""
        start = now - timedelta(seconds=max(0.0, seconds))
        events = [
            *self._web(start, now),
            *self._apps(start, now),
            *self._databases(start, now),
            *self._metrics(start, now),
            *self._windows(start, now),
            *self._hardware(start, now),
            *(
                fleet.heartbeat(t, host, int(t.timestamp()) % 864_000)
                for host in (*fleet.LINUX_HOSTS, *fleet.WINDOWS_HOSTS)
                for t in _ticks(start, now, HEARTBEAT_EVERY_S, f"heartbeat/{host}")
            ),
        ]
        return sorted(events, key=lambda event: event.time)

    def inject(self, name: str, now: datetime) -> int:
        """Write scenario ``name`` ending at ``now``; returns how many events were written."""
        return self._store.add(self._searchable(self._scenario(name, now), now))

    def start(self, name: str, now: datetime, lasts_s: float | None = None) -> int:
        """Write scenario ``name`` ending at ``now`` and keep it running: :meth:`advance` writes
        its next minute every minute until :meth:`end` stops it or, with ``lasts_s``, until that
        many seconds after ``now``. Returns how many events were written."""
        events = self._searchable(self._scenario(name, now), now)
        until = now + timedelta(seconds=lasts_s) if lasts_s is not None else None
        with self._lock:
            self._running[name] = RunningScenario(name, now + timedelta(seconds=SPAN_S), until)
            return self._store.add(events)

    def advance(self, now: datetime) -> int:
        """Write the next minute (ending at ``now``) of every running scenario that is due, and
        forget those whose time is up; returns how many events were written."""
        written = 0
        with self._lock:
            for name, running in list(self._running.items()):
                if running.until is not None and now > running.until:
                    del self._running[name]
                elif running.next_at <= now:
                    written += self._store.add(self._searchable(self._scenario(name, now), now))
                    next_at = now + timedelta(seconds=SPAN_S)
                    self._running[name] = RunningScenario(name, next_at, running.until)
        return written

    def end(self, name: str, host: str | None = None) -> bool:
        """Stop running scenario ``name`` (``host``, when given, must be where it happens): once
        this returns, none of its events are written any more. False if it was not running;
        NotFound for an unknown scenario or the wrong host."""
        self.check_end(name, host)
        with self._lock:
            return self._running.pop(name, None) is not None

    def check_end(self, name: str, host: str | None = None) -> None:
        """NotFound, naming the problem, unless :meth:`end` could end ``name`` on ``host``."""
        scenario = SCENARIOS.get(name)
        if scenario is None:
            raise NotFound(f"unknown scenario '{name}' (known: {', '.join(SCENARIOS)})")
        if host and scenario.host and scenario.host != host:
            raise NotFound(f"scenario '{name}' happens on {scenario.host}, not on {host}")

    def running(self) -> tuple[str, ...]:
        """The scenarios running now, by name."""
        with self._lock:
            return tuple(self._running)

    async def run(
        self,
        clock: Clock,
        stop: asyncio.Event,
        noise_every: float = 5.0,
        scenario_every: float = 45.0,
        first_scenario_after: float = 10.0,
        scenario_lasts: float | None = 300.0,
        background: bool = True,
    ) -> None:
        """Write noise every ``noise_every`` s and start a scenario every ``scenario_every`` s
        (the first after ``first_scenario_after`` s), cycling through all of them, until
        ``stop``. Each keeps running ``scenario_lasts`` s (None: until ended) unless ended.
        Without ``background`` only the scenarios started by hand (``simulate``) go on."""
        loop = asyncio.get_running_loop()
        names = list(SCENARIOS)
        turn = 0
        next_scenario = loop.time() + first_scenario_after
        written_to = clock.now() - timedelta(seconds=noise_every)
        while not stop.is_set():
            now = clock.now()
            if background:
                noise = self.noise(now, (now - written_to).total_seconds())
                await self._write(self._searchable(noise, now), "noise")
                written_to = max(written_to, now)
            await self._guarded("running scenarios", partial(self.advance, now))
            if background and loop.time() >= next_scenario:
                name = names[turn % len(names)]
                turn += 1
                start = partial(self.start, name, clock.now(), scenario_lasts)
                await self._guarded(f"scenario {name}", start)
                next_scenario = loop.time() + scenario_every
            pause = noise_every
            if background:  # (without, no scenario is due: waiting for one would spin)
                pause = max(0.0, min(noise_every, next_scenario - loop.time()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=pause)

    def _searchable(self, events: Sequence[Event], now: datetime) -> list[Event]:
        if not self._index_lag:
            return searchable(events, now)
        lag = self._index_lag
        return [
            e
            if e.indexed is not None
            else replace(e, indexed=max(e.time, now) + timedelta(seconds=self._rng.uniform(0, lag)))
            for e in events
        ]

    def _scenario(self, name: str, now: datetime) -> list[Event]:
        scenario = SCENARIOS.get(name)
        if scenario is None:
            known = ", ".join(SCENARIOS)
            raise NotFound(f"unknown scenario '{name}' (known: {known})")
        return scenario.events(now, self._rng)

    async def _write(self, events: Sequence[Event], what: str) -> None:
        await self._guarded(what, partial(self._store.add, events))

    async def _guarded(self, what: str, write: Callable[[], int]) -> None:
        """``write()`` in a worker thread; a failure is logged, not raised."""
        try:
            count = await asyncio.to_thread(write)
        except Exception:
            log.exception("could not write generated %s", what)
            return
        if what != "noise" and count:
            log.info("generated %s (%d events)", what, count)

    def _arrivals(self, start: datetime, end: datetime, per_second: float) -> list[datetime]:
        """Random (Poisson) event times in ``(start, end]``."""
        times = []
        at, stop = start.timestamp(), end.timestamp()
        while (at := at + self._rng.expovariate(per_second)) <= stop:
            times.append(datetime.fromtimestamp(at, UTC))
        return times

    def _web(self, start: datetime, end: datetime) -> list[Event]:
        rng = self._rng
        events = []
        for host in fleet.WEB_HOSTS:
            for t in self._arrivals(start, end, REQUESTS_PER_S):
                service = rng.choices(fleet.SERVICES, weights=(1, 2))[0]
                status = rng.choices(_STATUSES, weights=_STATUS_WEIGHTS)[0]
                events.append(
                    fleet.nginx_access(
                        t,
                        host,
                        service,
                        method="POST" if service == "checkout" and rng.random() < 0.4 else "GET",
                        path=rng.choice(_PATHS[service]),
                        status=status,
                        latency_ms=int(rng.lognormvariate(3.4, 0.6)) + 1,
                        client=f"198.51.100.{rng.randint(2, 250)}",
                        msg="upstream prematurely closed connection" if status >= 500 else "",
                    )
                )
        return events

    def _apps(self, start: datetime, end: datetime) -> list[Event]:
        rng = self._rng
        events = []
        for host, service in fleet.APP_HOSTS.items():
            for t in self._arrivals(start, end, APP_LINES_PER_S):
                if rng.random() < 0.05:
                    events.append(fleet.app_log(t, host, service, "WARN", rng.choice(_APP_WARN)))
                else:
                    msg = rng.choice(_APP_INFO[service])
                    took = rng.randint(3, 120)
                    events.append(fleet.app_log(t, host, service, "INFO", msg, took_ms=took))
        return events

    def _databases(self, start: datetime, end: datetime) -> list[Event]:
        rng = self._rng
        events = []
        for host in fleet.DB_HOSTS:
            events += [
                fleet.postgres_log(
                    t,
                    host,
                    "LOG",
                    "checkpoint complete",
                    buffers_written=rng.randint(200, 4000),
                    write_s=round(rng.uniform(0.5, 25), 3),
                )
                for t in _ticks(start, end, 300.0, f"checkpoint/{host}")
            ]
            events += [
                fleet.postgres_log(
                    t,
                    host,
                    "LOG",
                    f"duration: {rng.uniform(1, 400):.3f} ms  statement: {rng.choice(_STATEMENTS)}",
                    db="shop",
                    user="app",
                )
                for t in self._arrivals(start, end, 0.03)
            ]
        return events

    def _metrics(self, start: datetime, end: datetime) -> list[Event]:
        rng = self._rng
        events = []
        for host in (*fleet.LINUX_HOSTS, *fleet.WINDOWS_HOSTS):
            mounts = ("C:",) if host in fleet.WINDOWS_HOSTS else ("/", "/var")
            for t in _ticks(start, end, METRIC_EVERY_S, f"metrics/{host}"):
                cpu = 12 + 25 * _base(host, "cpu") + rng.gauss(0, 4)
                mem = 42 + 25 * _base(host, "mem") + rng.gauss(0, 1.5)
                events.append(fleet.metric(t, host, "cpu_pct", _clamp(cpu, 1, 70)))
                events.append(fleet.metric(t, host, "mem_used_pct", _clamp(mem, 20, 75)))
                for mount in mounts:
                    used = 35 + 38 * _base(host, mount) + rng.gauss(0, 0.1)
                    events.append(
                        fleet.metric(t, host, "disk_used_pct", _clamp(used, 5, 75), mount=mount)
                    )
                if host in fleet.DISK_IO_HOSTS:
                    iowait = 0.5 + 3 * _base(host, "iowait") + abs(rng.gauss(0, 1))
                    writes = 8 + 40 * _base(host, "writes") + abs(rng.gauss(0, 10))
                    events.append(fleet.metric(t, host, "iowait_pct", _clamp(iowait, 0, 9)))
                    events.append(fleet.metric(t, host, "disk_write_mbps", _clamp(writes, 0, 120)))
        return events

    def _windows(self, start: datetime, end: datetime) -> list[Event]:
        rng = self._rng
        events = []
        for host in fleet.WINDOWS_HOSTS:
            events += [
                fleet.logon_success(t, host, rng.choice(_OFFICE))
                for t in self._arrivals(start, end, 0.05)
            ]
            events += [
                fleet.winevent(
                    t,
                    host,
                    "System",
                    7036,
                    f"The {rng.choice(('Windows Update', 'BITS', 'WinHTTP'))} service entered"
                    f" the {rng.choice(('running', 'stopped'))} state.",
                    SourceName="Service Control Manager",
                )
                for t in self._arrivals(start, end, 0.01)
            ]
        # someone mistypes a password now and then
        events += [
            fleet.logon_failure(t, "win-dc-1", rng.choice(_OFFICE))
            for t in self._arrivals(start, end, 0.004)
        ]
        return events

    def _hardware(self, start: datetime, end: datetime) -> list[Event]:
        rng = self._rng
        events = []
        host = fleet.STORAGE_HOST
        for device in fleet.STORAGE_DISKS:
            for t in _ticks(start, end, 300.0, f"smart-temp/{device}"):
                old = 30 + int(8 * _base(host, device))
                new = old + rng.choice((-1, 1))
                events.append(
                    fleet.smart_attribute(t, host, device, 194, "Temperature_Celsius", old, new)
                )
            for t in _ticks(start, end, 900.0, f"smart-read/{device}"):
                old = rng.randint(110, 118)
                events.append(
                    fleet.smart_attribute(t, host, device, 1, "Raw_Read_Error_Rate", old, old + 1)
                )
        for server in fleet.BMC_HOSTS:
            for t in _ticks(start, end, SENSOR_EVERY_S, f"sensors/{server}"):
                temp = 45 + 12 * _base(server, "cpu1") + rng.gauss(0, 1.5)
                fan = 4200 + 1500 * _base(server, "fan1") + rng.gauss(0, 100)
                events.append(fleet.bmc_sensor(t, server, "CPU1_Temp", temp, "C", "ok"))
                events.append(fleet.bmc_sensor(t, server, "FAN1", round(fan, -1), "RPM", "ok"))
            events += [
                fleet.bmc_sel(t, server, "Power Supply", "PS2", "Presence detected", "Asserted", "")
                for t in self._arrivals(start, end, 1 / 1800)
            ]
        return events


def _ticks(start: datetime, end: datetime, every: float, source: str) -> list[datetime]:
    """The times in ``(start, end]`` a periodic source reports at: every ``every`` seconds, at a
    phase of its own, so consecutive windows neither repeat nor miss a report."""
    phase = zlib.crc32(source.encode()) % int(every * 1000) / 1000
    k = math.floor((start.timestamp() - phase) / every) + 1
    times = []
    while (at := k * every + phase) <= end.timestamp():
        if at > start.timestamp():
            times.append(datetime.fromtimestamp(at, UTC))
        k += 1
    return times


def _base(host: str, what: str) -> float:
    """A stable number in [0, 1) per host and measure, so each host has its own normal."""
    return zlib.crc32(f"{host}/{what}".encode()) % 1000 / 1000


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def searchable(events: Sequence[Event], now: datetime) -> list[Event]:
    """``events`` as a live source writes them: indexed when written (``now``), as Splunk
    indexes an event when it receives it, not at its timestamp."""
    return [e if e.indexed is not None else replace(e, indexed=max(e.time, now)) for e in events]
