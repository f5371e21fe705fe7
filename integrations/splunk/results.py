"""Reading Splunk's JSON results line by line, and turning result rows into Hits.

Export (``output_mode=json``) streams one JSON object per line: ``{"preview":…,"offset":n,
"result":{…}}`` and ``{"messages":[{"type":…,"text":…}]}``; a job's results come as one line
``{"preview":false,"results":[…]}``. splunklib's ``JSONResultsReader`` reads the whole response
(``readlines()``) before yielding its first row and keeps only the last message of a line, so
this reader parses the same format as it arrives: it stops (and lets the caller close the
response) as soon as the cap is reached, and sees every message.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.domain.hits import Hit
from bot.errors import TransientError
from detectors.spl.hits import render_row
from integrations.splunk.errors import raise_for_messages
from integrations.splunk.transport import Abort

_READ_BUFFER = 1 << 16
_ABORT_CHECK_EVERY = 256


@dataclass(frozen=True, slots=True)
class SplunkMessage:
    """A message Splunk attached to a search: ``level`` is FATAL, ERROR, WARN, INFO or DEBUG."""

    level: str
    text: str


@dataclass(slots=True)
class ReadResult:
    """What was read; ``capped`` when reading stopped at the cap (more rows may have followed)."""

    rows: list[dict[str, object]] = field(default_factory=list)
    capped: bool = False
    messages: list[SplunkMessage] = field(default_factory=list)


def read_results(stream: io.RawIOBase, cap: int, abort: Abort | None = None) -> ReadResult:
    """Final (non-preview) rows of a JSON results stream, at most ``cap`` of them.

    Raises a :class:`bot.errors.PermanentError` with Splunk's text for FATAL and ERROR messages,
    :class:`~integrations.splunk.transport.Aborted` when ``abort`` was requested meanwhile.
    """
    result = ReadResult()
    rows = result.rows
    if cap <= 0:
        return result
    reader = io.BufferedReader(stream, _READ_BUFFER)
    count = 0
    for line in reader:
        count += 1
        if abort is not None and count % _ABORT_CHECK_EVERY == 0:
            abort.check()
        line = line.strip()
        if not line:
            continue
        try:
            item = json.loads(line)
        except ValueError:
            if abort is not None:
                abort.check()
            raise TransientError(
                "Splunk's result stream broke off in the middle of a line"
            ) from None
        if not isinstance(item, dict):
            continue
        messages = item.get("messages")
        if messages:
            found = [
                SplunkMessage(str(m.get("type", "")).upper(), str(m.get("text", "")))
                for m in messages
                if isinstance(m, dict)
            ]
            raise_for_messages([(m.level, m.text) for m in found])
            result.messages.extend(found)
        if item.get("preview"):
            continue
        row = item.get("result")
        if isinstance(row, dict):
            rows.append(row)
            if len(rows) >= cap:
                result.capped = True
                return result
        batch = item.get("results")
        if isinstance(batch, list):
            rows.extend(r for r in batch[: cap - len(rows)] if isinstance(r, dict))
            if len(rows) >= cap:
                result.capped = True
                return result
    if abort is not None:
        abort.check()  # a shut-down socket reads as a clean end of stream
    return result


def field_text(value: object) -> str:
    """A result value as a string: multi-value lists joined with a comma."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(field_text(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_time(text: str) -> datetime | None:
    """Splunk's ``_time``: ISO 8601 with an offset (``2024-05-01T12:00:00.000+02:00``) or epoch
    seconds; None when it is neither."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            return datetime.fromtimestamp(float(text), UTC)
        except (ValueError, OverflowError, OSError):
            return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def to_hit(row: Mapping[str, object], window_end: datetime) -> Hit:
    """One result row as a Hit: ``time`` from ``_time`` (else the window end), every field as a
    string, ``raw`` from ``_raw`` (else the row rendered as sorted ``key=value`` pairs)."""
    fields = {str(k): v if isinstance(v, str) else field_text(v) for k, v in row.items()}
    stamp = fields.get("_time")
    time = (parse_time(stamp) if stamp else None) or window_end
    raw = fields.get("_raw")
    if raw is None:
        raw = render_row(fields)
    return Hit(time=time, fields=fields, raw=raw, indexed=_epoch(fields.get("_indextime")))


def _epoch(text: str | None) -> datetime | None:
    """``_indextime`` (whole epoch seconds, on event rows) as a time."""
    if not text:
        return None
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except (ValueError, OverflowError, OSError):
        return None


__all__ = ["ReadResult", "SplunkMessage", "field_text", "parse_time", "read_results", "to_hit"]
