"""Durations as people write them: ``30s``, ``5m``, ``1h30m``, ``1d``, or plain seconds."""

from __future__ import annotations

import math
import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse a duration; raise ``ValueError`` with a message that shows the accepted forms."""
    try:
        return _parse(text)
    except OverflowError:
        raise ValueError(f"bad duration {text!r}: too long") from None


def _parse(text: str | int | float | timedelta) -> timedelta:
    if isinstance(text, timedelta):
        return text
    if isinstance(text, bool):
        raise ValueError(f"bad duration {text!r}: use forms like 30s, 5m, 1h, 1d")
    if isinstance(text, int | float):
        if not math.isfinite(text):
            raise ValueError(f"bad duration {text!r}: use forms like 30s, 5m, 1h, 1d")
        if text < 0:
            raise ValueError(f"bad duration {text!r}: must not be negative")
        return timedelta(seconds=text)
    value = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return timedelta(seconds=float(value))
    pos, total = 0, 0.0
    for match in _PART.finditer(value):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not value or pos != len(value):
        raise ValueError(f"bad duration {text!r}: use forms like 30s, 5m, 1h, 1d")
    return timedelta(seconds=total)


def format_duration(value: timedelta) -> str:
    """``timedelta(hours=1, minutes=30)`` -> ``1h30m``."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(out)
