"""Plain log files as events for the rule tools: ``--data auth.log --sourcetype linux_secure``.

Each line is one event, except Windows events in classic rendering (an event starts at its
``11/22/2026 09:00:02 AM`` line and runs to the next) and CloudTrail files as AWS delivers them
(``{"Records": [...]}``: one event per record). The time comes from the event itself, read in
the format the sourcetype writes:

======================================  ================================================
sourcetype                              time format
======================================  ================================================
``linux_secure``, ``syslog``, others    ``Nov 22 09:00:01`` (RFC 3164) or ISO 8601
``access_combined``, ``nginx:access``   ``[22/Nov/2026:09:00:01 +0000]``
``apache_error``                        ``[Sun Nov 22 09:17:05.375951 2026]``
``WinEventLog:*`` (classic rendering)   ``11/22/2026 09:00:02 AM``
``XmlWinEventLog:*`` or XML events      ``<TimeCreated SystemTime='2026-11-22T...'/>``
``aws:cloudtrail``, JSON lines          ``eventTime``, ``timestamp``, ``@timestamp``, ``time``
======================================  ================================================

Syslog omits the year: it is ``year`` when given, else the year of the file's modification
date (a line from a later month than that date belongs to the year before). A December line
followed by a January one moves to the next year. Times without a zone are read as UTC. The
event's host is ``host`` when given, else the host the line names (syslog, Windows), else the
file's name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.errors import ConfigError
from integrations.local import Event

MAX_REPORTED = 20
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_RFC3164 = re.compile(
    r"^(?:<\d{1,3}>)?(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) "
    r"(?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})(?:\.(?P<frac>\d{1,6}))? (?P<host>[^\s:]+) "
)
_ISO = re.compile(
    r"^(?:<\d{1,3}>1? ?)?(?P<t>\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?"
    r"(?:Z|[+-]\d{2}:?\d{2})?)(?: (?P<host>[^\s:=]+) )?"
)
_CLF = re.compile(r"\[(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\]")
_APACHE_ERROR = re.compile(
    r"^\[[A-Z][a-z]{2} (?P<mon>[A-Z][a-z]{2}) (?P<day>\d{2}) "
    r"(?P<clock>\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d{1,6}))? (?P<year>\d{4})\]"
)
_CLASSIC = re.compile(r"^(\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}:\d{2} [AP]M)\s*$")
_XML_TIME = re.compile(r"<TimeCreated SystemTime=['\"]([^'\"]+)['\"]")
_XML_HOST = re.compile(r"<Computer>([^<]+)</Computer>")
_CLASSIC_HOST = re.compile(r"^ComputerName=(\S+)", re.MULTILINE)
_JSON_TIME_KEYS = ("eventTime", "timestamp", "@timestamp", "time", "ts")
_JSON_HOST_KEYS = ("host", "hostname")


@dataclass(frozen=True, slots=True)
class LogOptions:
    """How to read a plain log file: what its events are and, for syslog, which year."""

    sourcetype: str
    index: str = "main"
    host: str = ""
    year: int | None = None


@dataclass(frozen=True, slots=True)
class _Stamp:
    time: datetime
    host: str = ""
    yearless: bool = False


class _NoTime(ValueError):
    pass


def read_log(path: Path, options: LogOptions) -> list[Event]:
    """The events of the plain log file ``path``; raises ConfigError listing ``file:line``
    problems (a line with no time in the sourcetype's format)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
        modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    kind = options.sourcetype.lower()
    chunks = _records(text) if kind == "aws:cloudtrail" else None
    if chunks is None:
        classic = kind.startswith("wineventlog") or bool(_CLASSIC.match(text.lstrip()[:40]))
        chunks = list(_classic_events(text) if classic else _lines(text))
    events: list[Event] = []
    problems: list[str] = []
    years = _Years(options.year, modified)
    for number, raw in chunks:
        try:
            stamp = _stamp(raw)
        except _NoTime as exc:
            problems.append(f"{path}:{number}: {exc} ({_example(kind)})")
            continue
        when = years.place(stamp.time) if stamp.yearless else stamp.time
        host = options.host or stamp.host or path.stem
        events.append(
            Event(
                when,
                raw,
                index=options.index,
                sourcetype=options.sourcetype,
                source=str(path),
                host=host,
            )
        )
    if problems:
        more = len(problems) - MAX_REPORTED
        shown = problems[:MAX_REPORTED] + ([f"... and {more} more"] if more > 0 else [])
        raise ConfigError("\n".join(shown))
    if not events:
        raise ConfigError(f"{path}: no events in the file")
    return events


def is_plain_log(path: Path) -> bool:
    """Whether ``path`` is a log file rather than the rule tools' JSON lines of events: its
    first non-empty line is not a JSON object, or is one without ``raw``."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            first = next((line for line in handle if line.strip()), "")
    except OSError:
        return False
    if not first.lstrip().startswith("{"):
        return bool(first)
    try:
        value = json.loads(first)
    except json.JSONDecodeError:
        return False  # a broken events file: its reader names the line
    return isinstance(value, dict) and "raw" not in value


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            yield number, line.rstrip("\r")


def _classic_events(text: str) -> Iterator[tuple[int, str]]:
    """Classic-rendering Windows events: each starts at a line holding only its time."""
    start, lines = 0, list[str]()
    for number, line in enumerate(text.splitlines(), 1):
        line = line.rstrip("\r")
        if _CLASSIC.match(line):
            if lines:
                yield start, "\n".join(lines).rstrip()
            start, lines = number, [line]
        elif lines:
            lines.append(line)
        elif line.strip():
            yield number, line  # before the first event: reported as a line without a time
    if lines:
        yield start, "\n".join(lines).rstrip()


def _records(text: str) -> list[tuple[int, str]] | None:
    """CloudTrail's ``{"Records": [...]}`` as one compact JSON event per record; None when the
    file is not such a document (JSON lines are read line by line)."""
    stripped = text.lstrip()
    if not stripped.startswith('{"Records"') and not stripped.startswith('{ "Records"'):
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return None
    records = document.get("Records") if isinstance(document, dict) else None
    if not isinstance(records, list):
        return None
    return [(1, json.dumps(record, separators=(",", ":"))) for record in records]


def _stamp(raw: str) -> _Stamp:
    if raw.startswith("{"):
        return _json_stamp(raw)
    for parse in _PARSERS:
        found = parse(raw)
        if found is not None:
            return found
    raise _NoTime("no time at the start of the event")


def _syslog(raw: str) -> _Stamp | None:
    match = _RFC3164.match(raw)
    if match is None or match["mon"] not in _MONTHS:
        return None
    micro = int((match["frac"] or "0").ljust(6, "0"))
    moment = datetime(
        2000,  # a leap year, so Feb 29 parses; the year is placed later
        _MONTHS[match["mon"]],
        int(match["day"]),
        int(match["h"]),
        int(match["m"]),
        int(match["s"]),
        micro,
        tzinfo=UTC,
    )
    return _Stamp(moment, match["host"], yearless=True)


def _iso_start(raw: str) -> _Stamp | None:
    match = _ISO.match(raw)
    if match is None:
        return None
    moment = _iso(match["t"])
    return None if moment is None else _Stamp(moment, match["host"] or "")


def _clf(raw: str) -> _Stamp | None:
    match = _CLF.search(raw[:200])
    if match is None:
        return None
    return _Stamp(datetime.strptime(match[1], "%d/%b/%Y:%H:%M:%S %z").astimezone(UTC))


def _apache_error(raw: str) -> _Stamp | None:
    match = _APACHE_ERROR.match(raw)
    if match is None or match["mon"] not in _MONTHS:
        return None
    moment = datetime.strptime(
        f"{match['year']}-{_MONTHS[match['mon']]:02d}-{match['day']} {match['clock']}",
        "%Y-%m-%d %H:%M:%S",
    )
    micro = int((match["frac"] or "0").ljust(6, "0"))
    return _Stamp(moment.replace(microsecond=micro, tzinfo=UTC))


def _classic(raw: str) -> _Stamp | None:
    match = _CLASSIC.match(raw.split("\n", 1)[0])
    if match is None:
        return None
    moment = datetime.strptime(match[1], "%m/%d/%Y %I:%M:%S %p").replace(tzinfo=UTC)
    host = _CLASSIC_HOST.search(raw)
    return _Stamp(moment, host[1] if host else "")


def _xml(raw: str) -> _Stamp | None:
    match = _XML_TIME.search(raw)
    if match is None:
        return None
    moment = _iso(match[1])
    if moment is None:
        return None
    host = _XML_HOST.search(raw)
    return _Stamp(moment, host[1] if host else "")


_PARSERS: tuple[Callable[[str], _Stamp | None], ...] = (
    _syslog,
    _iso_start,
    _classic,
    _apache_error,
    _xml,
    _clf,
)


def _json_stamp(raw: str) -> _Stamp:
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _NoTime(f"not JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise _NoTime("a JSON event must be an object")
    for key in _JSON_TIME_KEYS:
        found = value.get(key)
        moment = _json_time(found)
        if moment is not None:
            names = (value[k] for k in _JSON_HOST_KEYS if isinstance(value.get(k), str))
            host = next(names, "")
            return _Stamp(moment, host)
    raise _NoTime(f"no time: none of {', '.join(_JSON_TIME_KEYS)} holds one")


def _json_time(value: object) -> datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value  # epoch milliseconds or seconds
        return datetime.fromtimestamp(seconds, UTC)
    return _iso(value) if isinstance(value, str) else None


def _iso(text: str) -> datetime | None:
    text = text.strip().replace(",", ".")
    head, dot, tail = text.partition(".")
    if dot:  # Python takes at most 6 fraction digits; Windows writes 7 (and 9 appear too)
        digits = re.match(r"\d+", tail)
        if digits:
            tail = digits[0][:6] + tail[len(digits[0]) :]
        text = f"{head}.{tail}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


class _Years:
    """Places year-less syslog times in a year (see the module documentation)."""

    def __init__(self, year: int | None, modified: datetime) -> None:
        self._given = year
        self._modified = modified
        self._year: int | None = year
        self._last_month = 0

    def place(self, moment: datetime) -> datetime:
        if self._year is None:
            late = (moment.month, moment.day) > (self._modified.month, self._modified.day)
            self._year = self._modified.year - (1 if late else 0)
        elif moment.month < self._last_month - 6:  # December, then January: a new year
            self._year += 1
        self._last_month = moment.month
        try:
            return moment.replace(year=self._year)
        except ValueError:  # Feb 29 in a year without one
            return moment.replace(year=self._year, day=28)


def _example(kind: str) -> str:
    if kind in ("access_combined", "nginx:access") or kind.startswith("access_"):
        return "expected [22/Nov/2026:09:00:01 +0000]"
    if kind == "apache_error":
        return "expected [Sun Nov 22 09:17:05.375951 2026]"
    if kind.startswith("wineventlog"):
        return "expected 11/22/2026 09:00:02 AM on the event's first line"
    if kind.startswith("xmlwineventlog"):
        return "expected <TimeCreated SystemTime='...'/>"
    if kind == "aws:cloudtrail" or kind.startswith("_json") or "json" in kind:
        return "expected a JSON object with eventTime, timestamp or time"
    return "expected a syslog time like 'Nov 22 09:00:01' or ISO 8601"
