"""The simulated fleet the built-in generator writes logs for, and how each source spells a line.

Lines keep ``key=value`` pairs (values with spaces quoted) so the local engine extracts them;
sources whose real format has no such pairs (smartd, the BMC event log, the kernel) carry their
fields as explicit event fields, the way a Splunk field extraction would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from integrations.local.events import Event

WEB_HOSTS = ("web-1", "web-2", "web-3")
APP_HOSTS = {"app-1": "checkout", "app-2": "catalog"}  # host -> the service it runs
DB_HOSTS = ("db-1", "db-2")
STORAGE_HOST = "stor-1"
STORAGE_DISKS = ("/dev/sda", "/dev/sdb", "/dev/sdc", "/dev/sdd")
WINDOWS_HOSTS = ("win-dc-1", "win-app-1")
BMC_HOSTS = {"db-2": "db-2-bmc", "stor-1": "stor-1-bmc"}  # server -> its BMC
LINUX_HOSTS = (*WEB_HOSTS, *APP_HOSTS, *DB_HOSTS, STORAGE_HOST)
DISK_IO_HOSTS = (*APP_HOSTS, *DB_HOSTS, STORAGE_HOST)
SERVICES = tuple(APP_HOSTS.values())
UPSTREAMS = {"checkout": "10.0.3.12:8080", "catalog": "10.0.3.13:8080"}


@dataclass(frozen=True, slots=True)
class Logon:
    user: str
    address: str


def stamp(t: datetime) -> str:
    """``2026-11-22T10:00:00.123Z``."""
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def to_millis(t: datetime) -> datetime:
    """``t`` cut to whole milliseconds, so the event time matches its stamped line."""
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def pairs(**values: object) -> str:
    """``key=value`` pairs in order; values with spaces, quotes or ``=`` are quoted."""
    out = []
    for key, value in values.items():
        text = str(value)
        if not text or any(ch in text for ch in ' "=,;'):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out.append(f"{key}={text}")
    return " ".join(out)


def nginx_access(
    t: datetime,
    host: str,
    service: str,
    *,
    method: str,
    path: str,
    status: int,
    latency_ms: int,
    client: str,
    msg: str = "",
) -> Event:
    t = to_millis(t)
    extra = {"msg": msg} if msg else {}
    raw = f"{stamp(t)} " + pairs(
        host=host,
        service=service,
        client=client,
        method=method,
        path=path,
        status=status,
        latency_ms=latency_ms,
        upstream=UPSTREAMS[service],
        **extra,
    )
    return Event(
        t,
        raw,
        index="web",
        sourcetype="nginx:access",
        source="/var/log/nginx/access.log",
        host=host,
    )


def app_log(t: datetime, host: str, service: str, level: str, msg: str, **extra: object) -> Event:
    t = to_millis(t)
    raw = f"{stamp(t)} " + pairs(host=host, service=service, level=level, msg=msg, **extra)
    return Event(
        t, raw, index="app", sourcetype="app:log", source=f"/var/log/{service}/app.log", host=host
    )


def postgres_log(t: datetime, host: str, level: str, msg: str, **extra: object) -> Event:
    t = to_millis(t)
    raw = f"{stamp(t)} " + pairs(host=host, service="postgresql", level=level, msg=msg, **extra)
    return Event(
        t,
        raw,
        index="app",
        sourcetype="postgresql",
        source="/var/log/postgresql/postgresql.log",
        host=host,
    )


def metric(t: datetime, host: str, name: str, value: float, **dims: str) -> Event:
    t = to_millis(t)
    raw = f"{stamp(t)} " + pairs(host=host, metric=name, value=round(value, 1), **dims)
    return Event(t, raw, index="metrics", sourcetype="metrics", source="collector", host=host)


def heartbeat(t: datetime, host: str, uptime_s: int) -> Event:
    t = to_millis(t)
    raw = f"{stamp(t)} " + pairs(host=host, agent="collector", status="ok", uptime_s=uptime_s)
    return Event(t, raw, index="os", sourcetype="heartbeat", source="collector", host=host)


def syslog(t: datetime, host: str, program: str, text: str, **fields: str) -> Event:
    t = to_millis(t)
    raw = f"{stamp(t)} {host} {program}: {text}"
    return Event(
        t, raw, index="os", sourcetype="syslog", source="/var/log/syslog", host=host, fields=fields
    )


def winevent(
    t: datetime, host: str, log_name: str, code: int, message: str, **values: object
) -> Event:
    t = to_millis(t)
    raw = f"{stamp(t)} " + pairs(
        host=host, EventCode=code, LogName=log_name, **values, Message=message
    )
    sourcetype = f"WinEventLog:{log_name}"
    return Event(t, raw, index="wineventlog", sourcetype=sourcetype, source=sourcetype, host=host)


def logon_success(t: datetime, host: str, logon: Logon) -> Event:
    return winevent(
        t,
        host,
        "Security",
        4624,
        "An account was successfully logged on.",
        LogonType=3,
        TargetUserName=logon.user,
        IpAddress=logon.address,
    )


def logon_failure(t: datetime, host: str, logon: Logon, sub_status: str = "0xC000006A") -> Event:
    return winevent(
        t,
        host,
        "Security",
        4625,
        "An account failed to log on.",
        LogonType=3,
        TargetUserName=logon.user,
        IpAddress=logon.address,
        Status="0xC000006D",
        SubStatus=sub_status,
    )


def smartd(t: datetime, host: str, device: str, text: str, **fields: str) -> Event:
    """A smartd syslog line about ``device``; ``fields`` name the attribute and its values."""
    t = to_millis(t)
    raw = f"{stamp(t)} {host} smartd[1187]: Device: {device} [SAT], {text}"
    return Event(
        t,
        raw,
        index="hardware",
        sourcetype="smartd",
        source="/var/log/syslog",
        host=host,
        fields={"device": device, **fields},
    )


def smart_attribute(
    t: datetime, host: str, device: str, number: int, attribute: str, old: int, new: int
) -> Event:
    kind = "Prefailure" if number in (1, 5) else "Usage"
    return smartd(
        t,
        host,
        device,
        f"SMART {kind} Attribute: {number} {attribute} changed from {old} to {new}",
        attribute=attribute,
        old_value=str(old),
        new_value=str(new),
    )


def bmc_sensor(
    t: datetime, host: str, sensor: str, reading: float, unit: str, status: str
) -> Event:
    t = to_millis(t)
    bmc = BMC_HOSTS[host]
    raw = f"{stamp(t)} " + pairs(
        bmc=bmc, sensor=sensor, reading=round(reading, 1), unit=unit, status=status
    )
    return Event(t, raw, index="hardware", sourcetype="ipmi:sensor", source=bmc, host=host)


def bmc_sel(
    t: datetime, host: str, sensor_type: str, sensor: str, event: str, state: str, reading: str
) -> Event:
    """An entry of the BMC's system event log (SEL)."""
    t = to_millis(t)
    bmc = BMC_HOSTS[host]
    detail = f" | reading {reading}" if reading else ""
    raw = f"{stamp(t)} bmc={bmc} sel: {sensor_type} {sensor} | {event} | {state}{detail}"
    fields = {"sensor_type": sensor_type, "sensor": sensor, "event": event, "state": state}
    if reading:
        fields["reading"] = reading.split()[0]
    return Event(
        t, raw, index="hardware", sourcetype="ipmi:sel", source=bmc, host=host, fields=fields
    )
