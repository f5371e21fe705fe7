"""Named incidents the built-in generator can stage: what a real system would log during each one.

Every scenario writes its events over the minute before ``now`` (never after it), on one host
(or, for ``web-5xx-burst`` and ``app-error-storm``, one service). The later ones are built in
:mod:`integrations.local.more_scenarios`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from integrations.local import fleet, more_scenarios
from integrations.local.events import Event
from integrations.local.fleet import Logon

SPAN_S = 60.0
ATTACKER = "203.0.113.9"
CHECKOUT_PATHS = ("/api/cart", "/api/cart/items", "/api/checkout", "/api/checkout/confirm")
_GATEWAY_ERRORS = {
    502: "connect() failed (111: Connection refused) while connecting to upstream",
    503: "no live upstreams while connecting to upstream",
    504: "upstream timed out (110: Connection timed out) while reading response header",
}


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    host: str  # where it happens; "" when it spans hosts
    service: str  # the service it hits; "" for host-level trouble
    build: Callable[[datetime, random.Random], list[Event]]

    def events(self, now: datetime, rng: random.Random) -> list[Event]:
        """The scenario's events, oldest first, all within the minute before ``now``."""
        return sorted(self.build(now, rng), key=lambda event: event.time)


def _spaced(now: datetime, count: int) -> list[datetime]:
    """``count`` evenly spaced times over the last minute, oldest first, the last before now."""
    step = SPAN_S / count
    return [now - timedelta(seconds=SPAN_S - i * step) for i in range(count)]


def _scattered(now: datetime, count: int, rng: random.Random) -> list[datetime]:
    return sorted(now - timedelta(seconds=rng.uniform(0.01, SPAN_S)) for _ in range(count))


def _client(rng: random.Random) -> str:
    return f"198.51.100.{rng.randint(2, 250)}"


def _web_5xx_burst(now: datetime, rng: random.Random) -> list[Event]:
    events = []
    for t in _scattered(now, rng.randint(45, 70), rng):
        status = rng.choices((502, 503, 504), weights=(2, 5, 3))[0]
        events.append(
            fleet.nginx_access(
                t,
                rng.choice(fleet.WEB_HOSTS),
                "checkout",
                method=rng.choice(("GET", "POST")),
                path=rng.choice(CHECKOUT_PATHS),
                status=status,
                latency_ms=30_000 if status == 504 else rng.randint(1, 40),
                client=_client(rng),
                msg=_GATEWAY_ERRORS[status],
            )
        )
    for t in _scattered(now, 8, rng):
        events.append(
            fleet.app_log(
                t,
                "app-1",
                "checkout",
                "ERROR",
                "connection pool exhausted: 50 of 50 in use, waited 2000 ms",
                pool="orders-db",
            )
        )
    return events


def _high_cpu(now: datetime, rng: random.Random) -> list[Event]:
    times = _spaced(now, 12)
    events = [
        fleet.metric(t, "app-1", "cpu_pct", min(99.9, 91 + i * 0.6 + rng.uniform(0, 2)))
        for i, t in enumerate(times)
    ]
    events += [
        fleet.app_log(
            t,
            "app-1",
            "checkout",
            "WARN",
            f"request exceeded latency budget: {rng.randint(1800, 4200)} ms",
            path=rng.choice(CHECKOUT_PATHS),
        )
        for t in times[4::2]
    ]
    return events


def _memory_pressure(now: datetime, rng: random.Random) -> list[Event]:
    times = _spaced(now, 12)
    events = [
        fleet.metric(t, "app-2", "mem_used_pct", min(99.5, 93 + i * 0.45 + rng.uniform(0, 0.5)))
        for i, t in enumerate(times)
    ]
    events += [
        fleet.app_log(t, "app-2", "catalog", "WARN", "GC overhead: 94% of time spent collecting")
        for t in times[3:9:2]
    ]
    events.append(
        fleet.app_log(times[-2], "app-2", "catalog", "ERROR", "java.lang.OutOfMemoryError: heap")
    )
    events.append(
        fleet.syslog(
            times[-1],
            "app-2",
            "kernel",
            "Out of memory: Killed process 2231 (java) total-vm:8388608kB, anon-rss:6291456kB",
            process="java",
        )
    )
    return events


def _failed_logon_burst(now: datetime, rng: random.Random) -> list[Event]:
    real = ("administrator", "jdoe", "asmith", "svc_backup")
    unknown = ("admin", "test", "guest")
    events = []
    for t in _scattered(now, rng.randint(40, 55), rng):
        user = rng.choice(real + unknown)
        sub_status = "0xC0000064" if user in unknown else "0xC000006A"
        events.append(fleet.logon_failure(t, "win-dc-1", Logon(user, ATTACKER), sub_status))
    return events


def _unexpected_shutdown(now: datetime, rng: random.Random) -> list[Event]:
    host = "win-app-1"
    booted = now - timedelta(seconds=50 + rng.uniform(0, 5))
    crashed = booted - timedelta(minutes=3, seconds=rng.randint(0, 59))
    at = crashed.strftime("%H:%M:%S on %m/%d/%Y")

    def later(seconds: float) -> datetime:
        return booted + timedelta(seconds=seconds)

    return [
        fleet.winevent(
            later(0),
            host,
            "System",
            12,
            "The operating system started.",
            SourceName="Microsoft-Windows-Kernel-General",
        ),
        fleet.winevent(
            later(2),
            host,
            "System",
            6009,
            "Microsoft (R) Windows (R) 10.00. 17763  Multiprocessor Free.",
            SourceName="EventLog",
        ),
        fleet.winevent(
            later(2.1),
            host,
            "System",
            6005,
            "The Event log service was started.",
            SourceName="EventLog",
        ),
        fleet.winevent(
            later(2.2),
            host,
            "System",
            6008,
            f"The previous system shutdown at {at} was unexpected.",
            SourceName="EventLog",
        ),
        fleet.winevent(
            later(4),
            host,
            "System",
            41,
            "The system has rebooted without cleanly shutting down first.",
            SourceName="Microsoft-Windows-Kernel-Power",
        ),
        fleet.winevent(
            later(20),
            host,
            "System",
            7036,
            "The Print Spooler service entered the running state.",
            SourceName="Service Control Manager",
        ),
    ]


def _disk_filling(now: datetime, rng: random.Random) -> list[Event]:
    return [
        fleet.metric(t, "db-1", "disk_used_pct", 85 + i + rng.uniform(0, 0.5), mount="/var")
        for i, t in enumerate(_spaced(now, 12))
    ]


def _smart_reallocated(now: datetime, rng: random.Random) -> list[Event]:
    host, device = fleet.STORAGE_HOST, "/dev/sdc"
    values = [100]
    for _ in range(4):
        values.append(values[-1] - rng.randint(1, 3))
    times = _spaced(now, 6)
    events = [
        fleet.smart_attribute(t, host, device, 5, "Reallocated_Sector_Ct", old, new)
        for t, old, new in zip(times, values, values[1:], strict=False)
    ]
    events.append(
        fleet.smartd(
            times[-1],
            host,
            device,
            "8 Currently unreadable (pending) sectors",
            attribute="Current_Pending_Sector",
            new_value="8",
        )
    )
    events += [
        fleet.syslog(
            t + timedelta(seconds=1),
            host,
            "kernel",
            f"blk_update_request: I/O error, dev sdc, sector {rng.randint(10**8, 10**9)} "
            "op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0",
        )
        for t in times[1::2]
    ]
    return events


def _thermal_warning(now: datetime, rng: random.Random) -> list[Event]:
    host = "db-2"
    events = []
    warned = critical = False
    for i, t in enumerate(_spaced(now, 12)):
        reading = 80 + i * 1.3 + rng.uniform(0, 0.8)
        status = "cr" if reading >= 90 else "nc" if reading >= 85 else "ok"
        events.append(fleet.bmc_sensor(t, host, "CPU1_Temp", reading, "C", status))
        events.append(fleet.bmc_sensor(t, host, "FAN1", 9000 + i * 150, "RPM", "ok"))
        if status != "ok" and not warned:
            warned = True
            events.append(
                fleet.bmc_sel(
                    t,
                    host,
                    "Temperature",
                    "CPU1_Temp",
                    "Upper Non-critical going high",
                    "Asserted",
                    f"{reading:.0f} C",
                )
            )
        if status == "cr" and not critical:
            critical = True
            events.append(
                fleet.bmc_sel(
                    t,
                    host,
                    "Temperature",
                    "CPU1_Temp",
                    "Upper Critical going high",
                    "Asserted",
                    f"{reading:.0f} C",
                )
            )
            events.append(
                fleet.syslog(
                    t + timedelta(seconds=0.5),
                    host,
                    "kernel",
                    "CPU0: Core temperature above threshold, cpu clock throttled",
                )
            )
    return events


def _iowait_write_burst(now: datetime, rng: random.Random) -> list[Event]:
    host = fleet.STORAGE_HOST
    events = []
    for t in _spaced(now, 12):
        events.append(fleet.metric(t, host, "iowait_pct", rng.uniform(38, 62)))
        events.append(fleet.metric(t, host, "disk_write_mbps", rng.uniform(380, 640)))
    events.append(
        fleet.syslog(
            now - timedelta(seconds=5),
            host,
            "kernel",
            "INFO: task jbd2/sdb1-8:412 blocked for more than 120 seconds.",
        )
    )
    return events


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            "web-5xx-burst",
            "checkout's upstream fails: nginx answers 502/503/504 on every web host",
            "",
            "checkout",
            _web_5xx_burst,
        ),
        Scenario("high-cpu", "app-1 runs above 90% CPU", "app-1", "checkout", _high_cpu),
        Scenario(
            "memory-pressure",
            "app-2 runs out of memory until the kernel kills java",
            "app-2",
            "catalog",
            _memory_pressure,
        ),
        Scenario(
            "failed-logon-burst",
            f"{ATTACKER} guesses passwords for several accounts on win-dc-1",
            "win-dc-1",
            "",
            _failed_logon_burst,
        ),
        Scenario(
            "unexpected-shutdown",
            "win-app-1 lost power and rebooted (events 6008 and 41)",
            "win-app-1",
            "",
            _unexpected_shutdown,
        ),
        Scenario("disk-filling", "/var on db-1 fills past 90%", "db-1", "", _disk_filling),
        Scenario(
            "smart-reallocated",
            "/dev/sdc on stor-1 keeps reallocating sectors",
            "stor-1",
            "",
            _smart_reallocated,
        ),
        Scenario(
            "thermal-warning",
            "db-2's BMC reports CPU1 past its upper critical temperature",
            "db-2",
            "",
            _thermal_warning,
        ),
        Scenario(
            "iowait-write-burst",
            "stor-1 writes hundreds of MB/s while its CPUs wait on I/O",
            "stor-1",
            "",
            _iowait_write_burst,
        ),
        *(Scenario(*spec) for spec in more_scenarios.SPECS),
    )
}
