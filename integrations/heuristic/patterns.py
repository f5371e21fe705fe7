"""Known failure patterns: which evidence lines point at which cause, and what to do about it.

A :class:`KnownPattern` is a set of :class:`Signal` s. A signal matches one evidence line, by
regular expression over its text or by a metric reading over a threshold (``metric=cpu_pct
value=97.5`` or ``cpu_pct=97.5``). A pattern fires when at least ``min_lines`` lines match one of
its signals and every signal named in ``required`` matched somewhere; its ``describe`` function
turns the matched lines into a cause sentence that quotes what the lines say (counts, hosts,
devices), never more.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from bot.domain.hits import Evidence

# --- reading lines ----------------------------------------------------------------------------

_METRIC_PAIR = re.compile(
    r"""\bmetric(?:_name)?=["']?(?P<name>[\w.\-/]+)["']?.*?\bvalue=["']?(?P<value>-?\d+(?:\.\d+)?)"""
)
_DIRECT_METRIC = re.compile(
    r"""(?<![\w.\-])(?P<name>[A-Za-z][\w.]*?_(?:pct|percent|mbps|util))["']?\s*[=:]\s*["']?"""
    r"(?P<value>-?\d+(?:\.\d+)?)"
)


def metric_readings(text: str) -> tuple[tuple[str, float], ...]:
    """The ``(metric, value)`` readings in one line: ``metric=X value=Y`` and ``x_pct=Y`` forms."""
    readings: list[tuple[str, float]] = []
    if "metric" in text:
        readings.extend((m["name"], float(m["value"])) for m in _METRIC_PAIR.finditer(text))
    if "_" in text:
        readings.extend((m["name"], float(m["value"])) for m in _DIRECT_METRIC.finditer(text))
    return tuple(readings)


def field_values(lines: Sequence[Evidence], pattern: re.Pattern[str]) -> Counter[str]:
    """How often each value captured by the first group of ``pattern`` occurs in ``lines``."""
    found: Counter[str] = Counter()
    for line in lines:
        for match in pattern.finditer(line.text):
            value = match.group(1).strip("\"'")
            if value and value not in ("-", "[REDACTED:host]", "[REDACTED:ip]"):
                found[value] += 1
    return found


def _top(counter: Counter[str], limit: int = 3) -> str:
    """``a (3), b (1)`` (just ``a`` when alone): most common first, ties in name order."""
    ranked = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    if len(counter) == 1:
        return ranked[0][0]
    text = ", ".join(f"{name} ({count})" for name, count in ranked)
    if len(counter) > limit:
        text += f" and {len(counter) - limit} more"
    return text


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


_HOST = re.compile(r"""\b(?:host|hostname|ComputerName|Computer)=["']?([^\s"',]+)""")


def _on_hosts(lines: Sequence[Evidence]) -> str:
    hosts = field_values(lines, _HOST)
    return f" on {_top(hosts)}" if hosts else ""


# --- the model --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricThreshold:
    """A reading of one of ``names`` at or above ``at_least``."""

    names: frozenset[str]
    at_least: float

    def exceeded_by(self, readings: Sequence[tuple[str, float]]) -> float | None:
        """The highest offending value in ``readings``, or None."""
        hits = [value for name, value in readings if name in self.names and value >= self.at_least]
        return max(hits) if hits else None


@dataclass(frozen=True, slots=True)
class Signal:
    name: str
    regexes: tuple[re.Pattern[str], ...] = ()
    metric: MetricThreshold | None = None

    def matches(self, text: str, readings: Sequence[tuple[str, float]]) -> bool:
        if self.metric is not None and self.metric.exceeded_by(readings) is not None:
            return True
        return any(regex.search(text) for regex in self.regexes)


@dataclass(frozen=True, slots=True)
class PatternMatch:
    """The lines of one evidence set that matched a pattern, overall and per signal."""

    lines: tuple[Evidence, ...]
    by_signal: Mapping[str, tuple[Evidence, ...]]
    total_lines: int

    def signal(self, name: str) -> tuple[Evidence, ...]:
        return self.by_signal.get(name, ())


@dataclass(frozen=True, slots=True)
class KnownPattern:
    key: str
    title: str
    signals: tuple[Signal, ...]
    describe: Callable[[PatternMatch], str]
    recommendations: tuple[str, ...]
    required: frozenset[str] = field(default_factory=frozenset)
    min_lines: int = 1


def _rx(*patterns: str, flags: int = re.IGNORECASE) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, flags) for p in patterns)


def _max_metric(lines: Sequence[Evidence], names: frozenset[str]) -> float | None:
    values = [v for line in lines for n, v in metric_readings(line.text) if n in names]
    return max(values) if values else None


def _num(value: float) -> str:
    return f"{value:g}"


# --- web 5xx / backend errors -----------------------------------------------------------------

_STATUS_5XX = re.compile(
    r"""\b(?:status|status_code|http_status|response_code|sc_status|code)["']?\s*[=:]\s*["']?"""
    r"(5\d\d)\b"
    r"""|HTTP/\d(?:\.\d)?"\s+(5\d\d)\s""",
    re.IGNORECASE,
)
_UPSTREAM_ERRORS = {
    "upstream timed out": r"upstream timed out|upstream_response_time.*timeout",
    "connection refused": r"connection refused|ECONNREFUSED",
    "connection reset": r"connection reset by peer|ECONNRESET",
    "no live upstreams": r"no live upstreams",
    "upstream closed early": r"upstream prematurely closed",
    "bad gateway": r"\bbad gateway\b",
    "service unavailable": r"\bservice (?:temporarily )?unavailable\b",
    "gateway timeout": r"\bgateway time-?out\b",
}
_UPSTREAM_RX = {label: re.compile(rx, re.IGNORECASE) for label, rx in _UPSTREAM_ERRORS.items()}
_UPSTREAM_ADDR = re.compile(r"""\bupstream[:=]\s*["']?(?:https?://)?([^\s"',/]+)""")
_PATH = re.compile(r"""\b(?:path|uri|url)=["']?([^\s"'?]+)|"[A-Z]+ ([^\s"?]+)[^"]*HTTP/""")


def _status_codes(lines: Sequence[Evidence]) -> Counter[str]:
    codes: Counter[str] = Counter()
    for line in lines:
        for match in _STATUS_5XX.finditer(line.text):
            codes[match.group(1) or match.group(2)] += 1
    return codes


def _describe_web(m: PatternMatch) -> str:
    codes = _status_codes(m.signal("http-5xx"))
    errors: Counter[str] = Counter()
    for line in m.signal("upstream-error"):
        for label, rx in _UPSTREAM_RX.items():
            if rx.search(line.text):
                errors[label] += 1
    parts: list[str] = []
    if codes:
        paths = Counter[str]()
        for line in m.signal("http-5xx"):
            for match in _PATH.finditer(line.text):
                paths[match.group(1) or match.group(2)] += 1
        where = f" for {_top(paths, 2)}" if paths else ""
        parts.append(
            f"{_plural(sum(codes.values()), 'HTTP 5xx response')} "
            f"({_top(codes, 5)})"
            f"{_on_hosts(m.signal('http-5xx'))}{where}"
        )
    if errors:
        upstreams = field_values(m.signal("upstream-error"), _UPSTREAM_ADDR)
        behind = f" from upstream {_top(upstreams, 2)}" if upstreams else ""
        parts.append(f"backend errors{behind}: {_top(errors)}")
    lead = "Burst of " if codes else "Web tier "
    return lead + "; ".join(parts) + ": the service behind the web tier is failing or slow."


WEB_5XX = KnownPattern(
    key="web-5xx-burst",
    title="web 5xx burst",
    signals=(
        Signal("http-5xx", (_STATUS_5XX,)),
        Signal("upstream-error", tuple(_UPSTREAM_RX.values())),
    ),
    describe=_describe_web,
    recommendations=(
        "Check the health and recent deploys of the upstream service named in the errors.",
        "Compare upstream latency with the proxy timeouts; look for saturated workers or pools.",
        "If a deploy lines up with the first 5xx, consider rolling it back.",
    ),
    min_lines=2,
)

# --- high CPU ---------------------------------------------------------------------------------

_CPU = frozenset(
    {"cpu_pct", "cpu_percent", "cpu_used_pct", "cpu_util", "cpu_usage_pct", "cpu.utilization"}
)


def _describe_cpu(m: PatternMatch) -> str:
    peak = _max_metric(m.lines, _CPU)
    peak_text = f" peaking at {_num(peak)}%" if peak is not None else ""
    return (
        f"CPU saturation{_on_hosts(m.lines)}: {_plural(len(m.lines), 'line')} report CPU at or "
        f"above 90%{peak_text}."
    )


HIGH_CPU = KnownPattern(
    key="high-cpu",
    title="high CPU",
    signals=(
        Signal(
            "cpu-high",
            _rx(
                r"\bcpu (?:usage|utili[sz]ation|load)\b[^0-9]{0,20}(?:9\d|100)(?:\.\d+)?\s*%",
                r"\bhigh cpu\b",
            ),
            MetricThreshold(_CPU, 90.0),
        ),
    ),
    describe=_describe_cpu,
    recommendations=(
        "Find the busiest processes on the host (top, pidstat) and what changed when CPU rose.",
        "Check for runaway queries, retry storms or a traffic spike driving the load.",
    ),
)

# --- memory pressure / OOM --------------------------------------------------------------------

_MEM = frozenset({"mem_used_pct", "mem_pct", "memory_used_pct", "mem_usage_pct", "memory_pct"})
_OOM_VICTIM = re.compile(r"Kill(?:ed)? process \d+ \(([^)]+)\)", re.IGNORECASE)


def _describe_memory(m: PatternMatch) -> str:
    oom = m.signal("oom")
    parts: list[str] = []
    if oom:
        victims = field_values(oom, _OOM_VICTIM)
        killed = f", killing {_top(victims)}" if victims else ""
        parts.append(f"the OOM killer fired ({_plural(len(oom), 'line')}{killed})")
    pressure = m.signal("mem-high")
    if pressure:
        peak = _max_metric(pressure, _MEM)
        peak_text = f" (peak {_num(peak)}%)" if peak is not None else ""
        parts.append(f"memory use at or above 90% in {_plural(len(pressure), 'line')}{peak_text}")
    return f"Memory pressure{_on_hosts(m.lines)}: " + "; ".join(parts) + "."


MEMORY = KnownPattern(
    key="memory-pressure",
    title="memory pressure / OOM",
    signals=(
        Signal(
            "oom",
            _rx(
                r"\bout of memory\b",
                r"\boom[-_ ]kill",
                r"invoked oom-killer",
                r"\boom_reaper\b",
                r"java\.lang\.OutOfMemoryError",
                r"cannot allocate memory|\bENOMEM\b",
                r"memory cgroup out of memory",
            ),
        ),
        Signal("mem-high", metric=MetricThreshold(_MEM, 90.0)),
    ),
    describe=_describe_memory,
    recommendations=(
        "Find which process grew (RSS over time) and whether its memory limit is too low.",
        "Look for a leak or an unbounded cache/batch introduced by a recent change.",
        "Restarting the killed service buys time; fix the cause before it recurs.",
    ),
)

# --- failed-logon burst -----------------------------------------------------------------------

_ACCOUNT = re.compile(
    r"""\b(?:TargetUserName|user(?:name)?|account)=["']?([^\s"',]+)"""
    r"|Account Name:\s+([^\s-][^\s]*)"
    r"|Failed password for (?:invalid user )?(\S+)",
    re.IGNORECASE,
)
_SOURCE = re.compile(
    r"""\b(?:IpAddress|src(?:_ip)?|source_ip|client_ip)=["']?([^\s"',]+)"""
    r"|Source Network Address:\s+([^\s-][^\s]*)"
    r"|Failed password for .*? from (\S+)",
    re.IGNORECASE,
)


def _any_group(lines: Sequence[Evidence], pattern: re.Pattern[str]) -> Counter[str]:
    found: Counter[str] = Counter()
    for line in lines:
        match = pattern.search(line.text)
        if match is None:
            continue
        value = next((g for g in match.groups() if g), "").strip("\"'")
        if value and value not in ("-", "[REDACTED:ip]", "[REDACTED:host]"):
            found[value] += 1
    return found


def _describe_logons(m: PatternMatch) -> str:
    accounts = _any_group(m.lines, _ACCOUNT)
    sources = _any_group(m.lines, _SOURCE)
    n = len(m.lines)
    src_text = f" from {_plural(len(sources), 'source')} ({_top(sources)})" if sources else ""
    if len(accounts) >= 3:
        return (
            f"{_plural(n, 'failed logon')} against {len(accounts)} different accounts "
            f"({_top(accounts)}){src_text}: looks like password spraying."
        )
    if len(accounts) == 1:
        (account,) = accounts
        if len(sources) >= 3:
            return (
                f"{_plural(n, 'failed logon')} for the single account {account}{src_text}: "
                "looks like a brute-force attempt against that account."
            )
        return (
            f"{_plural(n, 'failed logon')} for the single account {account}{src_text}: "
            "likely a locked-out user or a service still using an old password."
        )
    named = f" for {_top(accounts)}" if accounts else ""
    return f"Burst of {_plural(n, 'failed logon')}{named}{src_text}."


FAILED_LOGONS = KnownPattern(
    key="failed-logon-burst",
    title="failed-logon burst",
    signals=(
        Signal(
            "failed-logon",
            _rx(
                r"""\bevent[_ ]?(?:code|id)["'>]?\s*[=:>]?\s*["']?4625\b""",
                r"an account failed to log ?on",
                r"\bFailed password for\b",
                r"\bauthentication failure\b",
                r"\blogon failure\b",
            ),
        ),
    ),
    describe=_describe_logons,
    recommendations=(
        "Many accounts from few sources: block the sources and check for any successful logon "
        "(4624) from them.",
        "One account: find the service or device still using an old password (Caller Process, "
        "Workstation Name) and check the account's lockout state.",
        "Confirm MFA and the lockout policy cover the targeted accounts.",
    ),
    min_lines=3,
)

# --- unexpected shutdown ----------------------------------------------------------------------


def _describe_shutdown(m: PatternMatch) -> str:
    parts = []
    if m.signal("event-6008"):
        count = _plural(len(m.signal("event-6008")), "event")
        parts.append(f"event 6008, previous shutdown was unexpected ({count})")
    if m.signal("kernel-power-41"):
        count = _plural(len(m.signal("kernel-power-41")), "event")
        parts.append(f"Kernel-Power 41, rebooted without a clean shutdown ({count})")
    return (
        f"Unexpected shutdown{_on_hosts(m.lines)}: "
        + " and ".join(parts)
        + "; the machine lost power, crashed or was hard-reset."
    )


UNEXPECTED_SHUTDOWN = KnownPattern(
    key="unexpected-shutdown",
    title="unexpected shutdown",
    signals=(
        Signal(
            "event-6008",
            _rx(
                r"""\bevent[_ ]?(?:code|id)["'>]?\s*[=:>]?\s*["']?6008\b""",
                r"previous system shutdown .{0,60}was unexpected",
            ),
        ),
        Signal(
            "kernel-power-41",
            _rx(
                r"""^(?=.*kernel-power)(?=.*\bevent[_ ]?(?:code|id)["'>]?\s*[=:>]?\s*["']?41\b)""",
                r"rebooted without cleanly shutting down",
            ),
        ),
    ),
    describe=_describe_shutdown,
    recommendations=(
        "Check power (UPS, PSU, BMC power events) and hardware logs around the shutdown time.",
        "Look for a bugcheck (event 1001) or memory dump to tell a crash from a power loss.",
    ),
)

# --- disk filling -----------------------------------------------------------------------------

_DISK = frozenset({"disk_used_pct", "disk_pct", "fs_used_pct", "filesystem_used_pct"})
_MOUNT = re.compile(r"""\b(?:mount|mountpoint|path|fs)=["']?(/[^\s"',]*)""")


def _describe_disk(m: PatternMatch) -> str:
    parts = []
    full = m.signal("disk-high")
    if full:
        peak = _max_metric(full, _DISK)
        mounts = field_values(full, _MOUNT)
        where = f" on {_top(mounts)}" if mounts else ""
        peak_text = f", peak {_num(peak)}%" if peak is not None else ""
        parts.append(f"disk use at or above 90%{where} ({_plural(len(full), 'line')}{peak_text})")
    no_space = m.signal("no-space")
    if no_space:
        count = _plural(len(no_space), "line")
        if any("no space left on device" in line.text.lower() for line in no_space):
            parts.append(f"writes failing with 'No space left on device' ({count})")
        else:
            parts.append(f"the disk reported full ({count})")
    return f"Disk filling up{_on_hosts(m.lines)}: " + "; ".join(parts) + "."


DISK_FILLING = KnownPattern(
    key="disk-filling",
    title="disk filling",
    signals=(
        Signal("disk-high", metric=MetricThreshold(_DISK, 90.0)),
        Signal(
            "no-space",
            _rx(
                r"no space left on device",
                r"\bENOSPC\b",
                r"\bdisk (?:is )?full\b",
                r"(?:file ?system|disk|volume|partition|/[\w/.\-]*)\b.{0,80}?"
                r"\b(?:9\d|100)(?:\.\d+)?% full(?![\w-])",
            ),
        ),
    ),
    describe=_describe_disk,
    recommendations=(
        "Find what grew (du -x on the mount, logs, temp files, core dumps) and free space.",
        "Check log rotation and retention for the writer that filled the disk.",
    ),
)

# --- SMART reallocated sectors ----------------------------------------------------------------

_DEVICE = re.compile(r"Device:\s*(/dev/[\w/\-]+)")
_SMART_ATTRS = (
    r"(?:Reallocated_Sector_Ct|Reallocated_Event_Count|Current_Pending_Sector"
    r"|Offline_Uncorrectable)"
)


def _describe_smart(m: PatternMatch) -> str:
    devices = field_values(m.lines, _DEVICE)
    where = f" on {_top(devices)}" if devices else ""
    return (
        f"Disk wearing out{where}{_on_hosts(m.lines)}: SMART reports reallocated or pending "
        f"sectors changing ({_plural(len(m.lines), 'line')}); the drive is failing."
    )


SMART_SECTORS = KnownPattern(
    key="smart-reallocated-sectors",
    title="SMART reallocated sectors growing",
    signals=(
        Signal(
            "smart-sectors",
            _rx(
                rf"\b{_SMART_ATTRS}\b.{{0,40}}\bchanged from\b",
                r"currently unreadable \(pending\) sectors",
                r"offline uncorrectable sectors",
                rf"\b{_SMART_ATTRS}\b.{{0,40}}\b(?:increased|FAILING_NOW)\b",
            ),
        ),
    ),
    describe=_describe_smart,
    recommendations=(
        "Plan a replacement of the drive; make sure backups and RAID redundancy are healthy.",
        "Run a long SMART self-test (smartctl -t long) and watch the sector counts.",
    ),
)

# --- BMC thermal / fan / PSU ------------------------------------------------------------------

_SEL_SENSOR = re.compile(r"\b(Temperature|Fan|Power Supply)\b\s*([^|]*?)\s*\|", re.IGNORECASE)
_READING = re.compile(
    r"reading\s+(\d+(?:\.\d+)?)(?:\s*>\s*threshold\s+\d+(?:\.\d+)?)?\s*(?:degrees\s*)?C\b",
    re.IGNORECASE,
)


def _describe_bmc(m: PatternMatch) -> str:
    sensors: Counter[str] = Counter()
    for line in m.lines:
        match = _SEL_SENSOR.search(line.text)
        if match:
            sensors[f"{match.group(1).title()} {match.group(2)}".strip()] += 1
    readings = [float(r) for line in m.lines for r in _READING.findall(line.text)]
    peak = f", reading up to {_num(max(readings))} C" if readings else ""
    named = f": {_top(sensors)}" if sensors else ""
    return (
        f"Hardware environment alarm from the BMC{_on_hosts(m.lines)}{named} "
        f"({_plural(len(m.lines), 'event')}{peak}); cooling or power is degraded."
    )


BMC_THERMAL = KnownPattern(
    key="bmc-thermal",
    title="BMC thermal/fan/PSU warning",
    signals=(
        Signal(
            "sel-threshold",
            _rx(
                r"^(?!.*\bdeasserted\b).*\b(?:temperature|fan|power supply)\b.*"
                r"\b(?:upper|lower) (?:non-)?(?:critical|recoverable) going (?:high|low)",
                r"^(?!.*\bdeasserted\b).*\bpower supply\b.*"
                r"\b(?:power supply ac lost|failure detected|predictive failure)",
                r"core temperature above threshold",
                r"\bthermal (?:trip|shutdown|event)\b",
            ),
        ),
    ),
    describe=_describe_bmc,
    recommendations=(
        "Check fans, airflow and inlet temperature in the rack; clear dust or failed fans.",
        "Check PSU redundancy and the power feed; replace a failed supply.",
    ),
)

# --- iowait spike with write burst ------------------------------------------------------------

_IOWAIT = frozenset({"iowait_pct", "cpu_iowait_pct", "iowait_percent", "cpu.iowait"})
_WRITES = frozenset({"disk_write_mbps", "write_mbps", "disk_write_mb_s"})


def _describe_iowait(m: PatternMatch) -> str:
    iowait = _max_metric(m.signal("iowait-high"), _IOWAIT)
    peak = f" (peak {_num(iowait)}%)" if iowait is not None else ""
    text = (
        f"I/O wait spike{_on_hosts(m.lines)}{peak} in "
        f"{_plural(len(m.signal('iowait-high')), 'line')}"
    )
    writes = m.signal("write-burst")
    if writes:
        peak_w = _max_metric(writes, _WRITES)
        w_text = f" up to {_num(peak_w)} MB/s" if peak_w is not None else ""
        text += f", together with a disk write burst{w_text}: storage is saturated by writes"
    else:
        text += ": processes are waiting on storage"
    return text + "."


IOWAIT_WRITES = KnownPattern(
    key="iowait-write-burst",
    title="iowait spike with write burst",
    signals=(
        Signal(
            "iowait-high",
            _rx(r"\biowait\b[^0-9]{0,20}(?:[3-9]\d|100)(?:\.\d+)?\s*%"),
            MetricThreshold(_IOWAIT, 30.0),
        ),
        Signal("write-burst", metric=MetricThreshold(_WRITES, 100.0)),
    ),
    describe=_describe_iowait,
    recommendations=(
        "Find the writer (iotop, pidstat -d): backups, compaction, log floods or a batch job.",
        "Move or throttle the bulk writes, or give the volume more IOPS.",
    ),
    required=frozenset({"iowait-high"}),
)

PATTERNS: tuple[KnownPattern, ...] = (
    WEB_5XX,
    HIGH_CPU,
    MEMORY,
    FAILED_LOGONS,
    UNEXPECTED_SHUTDOWN,
    DISK_FILLING,
    SMART_SECTORS,
    BMC_THERMAL,
    IOWAIT_WRITES,
)
"""Every built-in pattern, in the order ties between equally confident causes are listed."""

__all__ = [
    "PATTERNS",
    "KnownPattern",
    "MetricThreshold",
    "PatternMatch",
    "Signal",
    "field_values",
    "metric_readings",
]
