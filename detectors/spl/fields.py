"""Fields of event rows: extraction from ``_raw`` on first use, and field patterns.

An event row (:class:`EventRow`) carries the field extractor of its search. The first time a
command asks a row for a field it does not hold, the extractions for the row's sourcetype run
once (see detectors/fields) and their fields join the row; a field still missing is then
looked for as a ``key=value`` pair, following Splunk's KV_MODE=auto: ``key=value`` and
``key="quoted value"`` where the key starts at a word boundary, the first occurrence winning.
Fields already on the row (explicit fields, built-ins, eval or rex results) win over extracted
ones, and sourcetype extractions win over ``key=value`` pairs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from detectors.fields.extractor import FieldExtractor
from detectors.spl.values import wildcard

#: the fields every event row has, whatever its sourcetype
BUILTIN_FIELDS = ("_time", "_raw", "index", "sourcetype", "source", "host")


class EventRow(dict):
    """An event in a search: its fields, and the extractor that has not run on it yet.

    Made as ``row = EventRow(fields); row.pending = extractor`` (dict's own constructor: an
    event costs no more to make than a plain dict).
    """

    __slots__ = ("pending",)
    pending: FieldExtractor | None


def _extract(row: EventRow, raw: str) -> None:
    extractor = row.pending
    row.pending = None
    if extractor is None:
        return
    sourcetype = row.get("sourcetype")
    found = extractor.extract(sourcetype if isinstance(sourcetype, str) else "", raw)
    if found:  # fields on the row win: merge them over the extracted ones, then back
        found.update(row)
        row.update(found)


_BOUNDARY = r"(?<![^\s,;\[(])"
_VALUE = r'=(?:"([^"\\]*(?:\\.[^"\\]*)*)"|([^\s,;"]+))'
_KV_RE = re.compile(_BOUNDARY + r"([A-Za-z_][A-Za-z0-9_.\-]*)" + _VALUE)
_UNESCAPE_RE = re.compile(r"\\(.)")


def _value(quoted: str | None, bare: str | None) -> str:
    """The value of a match: ``bare`` is never empty, so an empty or None one means quoted."""
    if bare:
        return bare
    quoted = quoted or ""
    return _UNESCAPE_RE.sub(r"\1", quoted) if "\\" in quoted else quoted


def extract_kv(raw: str) -> dict[str, str]:
    """Every ``key=value`` pair of ``raw``; the first occurrence of a key wins."""
    found: dict[str, str] = {}
    for key, quoted, bare in _KV_RE.findall(raw):
        if key not in found:
            found[key] = _value(quoted, bare)
    return found


@lru_cache(maxsize=2048)
def _field_re(name: str) -> re.Pattern[str]:
    return re.compile(_BOUNDARY + re.escape(name) + _VALUE)


def extract_field(raw: str, name: str) -> str | None:
    """The value of ``name=...`` in ``raw``, or None."""
    if name + "=" not in raw:
        return None
    m = _field_re(name).search(raw)
    return None if m is None else _value(m.group(1), m.group(2))


def lazy_get(row: dict, name: str) -> object:
    """A field of an event row, extracting it from ``_raw`` (and remembering it) if needed."""
    if name in row:
        return row[name]
    raw = row.get("_raw")
    if raw is None or not isinstance(raw, str):
        return None
    if type(row) is EventRow and row.pending is not None:
        _extract(row, raw)
        if name in row:
            return row[name]
    value = extract_field(raw, name)
    if value is not None:
        row[name] = value
    return value


def plain_get(row: dict, name: str) -> object:
    """A field of a result row that has no more fields to extract."""
    return row.get(name)


def materialize(row: dict) -> dict:
    """Add every extracted field of ``_raw`` that the row does not have yet."""
    raw = row.get("_raw")
    if type(row) is EventRow and row.pending is not None and isinstance(raw, str):
        _extract(row, raw)
    if isinstance(raw, str) and "=" in raw:
        for key, value in extract_kv(raw).items():
            if key not in row:
                row[key] = value
    return row


def match_fields(patterns: Iterable[str], keys: Iterable[str]) -> list[str]:
    """Keys named by ``patterns`` (``*`` wildcards, case-sensitive), in pattern order."""
    keys = list(keys)
    chosen: list[str] = []
    seen: set[str] = set()
    for pattern in patterns:
        if "*" not in pattern:
            candidates = [pattern] if pattern in keys else []
        else:
            rx = wildcard(pattern, ignore_case=False)
            candidates = [k for k in keys if rx.fullmatch(k)]
        for key in candidates:
            if key not in seen:
                seen.add(key)
                chosen.append(key)
    return chosen
