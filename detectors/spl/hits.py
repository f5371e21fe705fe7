"""Result rows of the SPL engine as :class:`~bot.domain.hits.Hit` values, the way Splunk's REST
API shows them (``_time`` as ISO text, aggregated rows rendered as ``key=value`` pairs)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from bot.domain.hits import Hit
from detectors.spl.values import format_value, to_number


def format_time(epoch: float) -> str:
    """``_time`` as Splunk's REST API shows it: ``2024-05-01T12:00:00.000+00:00``."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+00:00"


def render_row(fields: dict[str, str]) -> str:
    """A result row as ``k=v k=v`` (sorted keys; values with spaces or quotes are quoted)."""
    parts = []
    for key in sorted(fields):
        value = fields[key]
        if value == "" or any(c.isspace() or c in "\"'=" for c in value):
            value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        parts.append(f"{key}={value}")
    return " ".join(parts)


def indexed_time(fields: Mapping[str, str], transforming: bool) -> datetime | None:
    """An event row's ``_indextime`` (epoch seconds) as a time; None for aggregated rows."""
    stamp = fields.get("_indextime")
    if transforming or not stamp:
        return None
    try:
        return datetime.fromtimestamp(float(stamp), UTC)
    except (ValueError, OverflowError, OSError):
        return None


def to_hit(row: dict, transforming: bool, window_end: datetime) -> Hit:
    """One engine result row as a Hit; ``window_end`` is the time of aggregated rows."""
    fields = {k: format_value(v) for k, v in row.items()}
    epoch = to_number(row.get("_time"))
    time = window_end
    if epoch is not None:
        time = datetime.fromtimestamp(epoch, UTC)
        fields["_time"] = format_time(epoch)
    raw = row.get("_raw")
    if transforming or not isinstance(raw, str):
        raw = render_row(fields)
    return Hit(time=time, fields=fields, raw=raw, indexed=indexed_time(fields, transforming))


__all__ = ["format_time", "indexed_time", "render_row", "to_hit"]
