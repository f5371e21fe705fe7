"""The ``Retry-After`` header (RFC 9110 10.2.3): seconds, or an HTTP date; one reading serves
every outbound integration."""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, datetime

_SECONDS = re.compile(r"\d+(\.\d+)?")


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (``"12"``, ``"1.5"`` or an HTTP date; a
    date in the past is 0); None when absent or unreadable (``"soon"``, ``"-1"``, ``"inf"``)."""
    if not value:
        return None
    value = value.strip()
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


__all__ = ["retry_after_seconds"]
