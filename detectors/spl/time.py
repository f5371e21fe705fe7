"""Time modifiers (``earliest=-15m``, ``-1h@h``, epoch seconds) and spans (``span=5m``)."""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta

_UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "s"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "m"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "h"),
    **dict.fromkeys(("d", "day", "days"), "d"),
    **dict.fromkeys(("w", "week", "weeks"), "w"),
    **dict.fromkeys(("mon", "month", "months"), "mon"),
    **dict.fromkeys(("y", "yr", "yrs", "year", "years"), "y"),
}
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_SPAN_UNITS = {k: v for k, v in _UNITS.items() if v in ("s", "m", "h", "d")}

_OFFSET = r"[+-]\d*[a-zA-Z]+"
_RELATIVE_RE = re.compile(
    rf"(?P<offset>{_OFFSET})?(?:@(?P<snap>[a-zA-Z]+)(?P<weekday>\d)?(?P<after>{_OFFSET})?)?",
    re.ASCII,
)
_OFFSET_RE = re.compile(r"([+-])(\d*)([a-zA-Z]+)", re.ASCII)
_EPOCH_RE = re.compile(r"\d+(?:\.\d+)?", re.ASCII)
_SPAN_RE = re.compile(r"(\d+(?:\.\d+)?)([a-zA-Z]*)", re.ASCII)


def resolve_time(text: str, now: datetime) -> datetime:
    """The instant a time modifier names, relative to ``now``. Raises ValueError if malformed.

    Accepts ``now``, epoch seconds, ``MM/DD/YYYY:HH:MM:SS``, ISO 8601, and relative times:
    ``[+|-]<n><unit>`` optionally snapped with ``@<unit>`` (and an offset after the snap),
    e.g. ``-15m``, ``-1h@h``, ``@d``, ``-1d@d+8h``, ``@w1``. Units: s, m, h, d, w, mon, y.
    """
    try:
        return _resolve(text, now)
    except (OverflowError, OSError) as exc:
        raise ValueError(f"time out of range: {text!r}") from exc


def _resolve(text: str, now: datetime) -> datetime:
    spec = text.strip()
    if not spec:
        raise ValueError("empty time")
    if spec.lower() == "now":
        return now
    if _EPOCH_RE.fullmatch(spec):
        return datetime.fromtimestamp(float(spec), UTC)
    absolute = _absolute(spec)
    if absolute is not None:
        return absolute
    m = _RELATIVE_RE.fullmatch(spec)
    if m is None or (m.group("offset") is None and m.group("snap") is None):
        raise ValueError(f"not a time: {text!r}")
    t = now.astimezone(UTC)
    if m.group("offset"):
        t = _shift(t, m.group("offset"))
    if m.group("snap"):
        t = _snap(t, m.group("snap"), m.group("weekday"))
        if m.group("after"):
            t = _shift(t, m.group("after"))
    elif m.group("weekday"):
        raise ValueError(f"not a time: {text!r}")
    return t


def _absolute(spec: str) -> datetime | None:
    for parse in (
        lambda s: datetime.strptime(s, "%m/%d/%Y:%H:%M:%S"),
        datetime.fromisoformat,
    ):
        try:
            t = parse(spec)
        except ValueError:
            continue
        return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return None


def _unit(name: str) -> str:
    unit = _UNITS.get(name.lower())
    if unit is None:
        raise ValueError(f"unknown time unit {name!r}")
    return unit


def _shift(t: datetime, offset: str) -> datetime:
    m = _OFFSET_RE.fullmatch(offset)
    if m is None:
        raise ValueError(f"bad offset {offset!r}")
    sign = -1 if m.group(1) == "-" else 1
    amount = sign * int(m.group(2) or "1")
    unit = _unit(m.group(3))
    if unit == "mon":
        return _add_months(t, amount)
    if unit == "y":
        return _add_months(t, 12 * amount)
    return t + timedelta(seconds=amount * _SECONDS[unit])


def _add_months(t: datetime, months: int) -> datetime:
    index = t.year * 12 + (t.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    day = min(t.day, calendar.monthrange(year, month)[1])
    return t.replace(year=year, month=month, day=day)


def _snap(t: datetime, name: str, weekday: str | None) -> datetime:
    unit = _unit(name)
    if weekday is not None and unit != "w":
        raise ValueError(f"bad snap unit {name}{weekday!r}")
    if unit == "s":
        return t.replace(microsecond=0)
    if unit == "m":
        return t.replace(second=0, microsecond=0)
    if unit == "h":
        return t.replace(minute=0, second=0, microsecond=0)
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "d":
        return day
    if unit == "w":  # @w / @w0 is Sunday, @w1 Monday ... @w6 Saturday (w7 is Sunday too)
        target = int(weekday or "0") % 7
        sunday_based = (day.weekday() + 1) % 7
        return day - timedelta(days=(sunday_based - target) % 7)
    if unit == "mon":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def parse_span(text: str) -> tuple[float, bool]:
    """``(size, is_time)`` of a bin span: ``30s``, ``5m``, ``1h``, ``1d`` or a plain number.

    A plain number has ``is_time`` False (a numeric bin width). Raises ValueError if malformed.
    """
    m = _SPAN_RE.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not a span: {text!r}")
    size = float(m.group(1))
    if size <= 0:
        raise ValueError(f"span must be positive: {text!r}")
    if not m.group(2):
        return size, False
    unit = _SPAN_UNITS.get(m.group(2).lower())
    if unit is None:
        raise ValueError(f"unknown span unit {m.group(2)!r} (use s, m, h or d)")
    return size * _SECONDS[unit], True
