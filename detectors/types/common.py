"""Helpers the rule types share: grouping hits, filling titles, building alerts, and keeping
their memory small (bounded key lengths, eviction of the least recently seen entries)."""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator

from bot.domain.hits import Alert, Evidence, Hit
from detectors.memory import RuleMemory
from detectors.model import FIELD_NAME, Rule, rule_error
from detectors.window import Window

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.:-]*)\}")
#: Memory keys longer than this are replaced by a digest (the store allows 512 characters).
MAX_KEY_CHARS = 400
#: A remembered "last seen" time is rewritten only when it is older than this, so a busy key
#: does not cost a memory write on every run.
REFRESH_SECONDS = 3600.0

Key = tuple[str, ...]


def _field_name(value: str) -> str:
    if not FIELD_NAME.fullmatch(value):
        raise rule_error(f"'{value}' is not a field name")
    return value


FieldName = Annotated[str, AfterValidator(_field_name)]


def unique_names(names: Sequence[str]) -> Sequence[str]:
    """``names`` unchanged; a name listed twice is a rule error."""
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise rule_error(f"'{duplicates[0]}' is listed twice")
    return names


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"
    BOTH = "both"

    def allows(self, observed: float, expected: float) -> bool:
        """Whether a move from ``expected`` to ``observed`` is in this direction."""
        if self is Direction.UP:
            return observed > expected
        if self is Direction.DOWN:
            return observed < expected
        return observed != expected


def number(text: str | None) -> float | None:
    """``text`` as a finite number, or None."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def to_epoch(moment: datetime) -> float:
    return moment.timestamp()


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def iso(moment: datetime) -> str:
    """``2026-11-22T10:05:00Z``: how times appear in labels."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt(value: float) -> str:
    """A number as people read it in a title or label: ``12``, ``84.23``, ``0.0012``."""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    if abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.4g}"


def approx(delta: timedelta) -> str:
    """A rounded duration for titles: ``now``, ``45s``, ``20m``, ``6h``, ``3d``."""
    seconds = delta.total_seconds()
    if seconds < 1:
        return "now"
    if seconds < 60:
        return f"{round(seconds)}s"
    if seconds < 3600:
        return f"{round(seconds / 60)}m"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)}h"
    return f"{round(seconds / 86400)}d"


def ordered(hits: Iterable[Hit]) -> list[Hit]:
    """Oldest first, ties broken by id: the same hits always come out in the same order."""
    return sorted(hits, key=lambda hit: (hit.time, hit.id))


def key_of(hit: Hit, names: Sequence[str]) -> Key:
    return tuple(hit.fields.get(name, "") for name in names)


def group_hits(hits: Iterable[Hit], names: Sequence[str]) -> dict[Key, list[Hit]]:
    """Hits by their values of ``names`` (a missing field counts as ``""``), in first-seen order."""
    if len(names) == 1:  # the common case, kept free of per-hit tuple building
        (name,) = names
        by_value: dict[str, list[Hit]] = {}
        for hit in hits:
            value = hit.fields.get(name, "")
            found = by_value.get(value)
            if found is None:
                by_value[value] = [hit]
            else:
                found.append(hit)
        return {(value,): members for value, members in by_value.items()}
    groups: dict[Key, list[Hit]] = {}
    for hit in hits:
        groups.setdefault(key_of(hit, names), []).append(hit)
    return groups


def shared(members: Sequence[Hit], name: str) -> str:
    """The value of ``name`` when every hit of the group has the same one, else ``""``."""
    seen = {hit.fields.get(name, "") for hit in members}
    return seen.pop() if len(seen) == 1 else ""


def fill_title(
    template: str,
    values: Mapping[str, str],
    members: Sequence[Hit],
    labels: Mapping[str, str] | None = None,
) -> str:
    """Fill ``{name}`` placeholders: from the group's values, then the alert's labels, then
    values all of the group's hits share (``(various)`` when they differ). A value that is
    missing reads as missing: ``src unknown`` (see :func:`missing_value`)."""
    extra = labels or {}

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return values[name] or missing_value(name)
        if name in extra:
            return extra[name] or missing_value(name)
        seen = {hit.fields.get(name, "") for hit in members}
        if len(seen) > 1:
            return "(various)"
        found = seen.pop() if seen else ""
        return found or missing_value(name)

    return _PLACEHOLDER.sub(fill, template)


def missing_value(name: str) -> str:
    """How a title shows a field the events lacked: ``src unknown``, never an empty slot."""
    return f"{name} unknown"


def missing_group_fields(group: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """The ``group_by`` fields an alert's group has no value for (its events lacked them)."""
    return tuple(name for name, value in group if not value)


def has_placeholder(template: str, *names: str) -> bool:
    return any(match.group(1) in names for match in _PLACEHOLDER.finditer(template))


_BY_TIME = operator.attrgetter("time")


def make_alert(
    rule: Rule,
    key: Key,
    members: Sequence[Hit],
    value: float,
    window: Window,
    *,
    names: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    events: int | None = None,
    new_events: int | None = None,
    title: str | None = None,
) -> Alert:
    """One group's alert. ``key`` holds the values of ``names`` (the rule's ``group_by`` unless
    given); ``members`` are the hits the alert is about: they give the evidence (newest first),
    the first and last seen times (the window end when there are none) and, unless ``events`` /
    ``new_events`` say otherwise, the counts."""
    group = tuple(zip(rule.group_by if names is None else names, key, strict=True))
    values = dict(group)
    # one C-level sort by time gives the first and last seen and the newest lines as evidence
    # (a storm evaluates 100,000 hits per run: no Python-level key functions here)
    ordered = sorted(members, key=_BY_TIME)
    kept = ordered[: -rule.evidence_lines - 1 : -1] if rule.evidence_lines else []
    first = ordered[0].time if ordered else window.end
    last = ordered[-1].time if ordered else window.end
    if window.index_since is None:
        fresh = len(ordered) - bisect.bisect_left(ordered, window.new_since, key=_BY_TIME)
    else:  # new by index time: a late event may be older than events already seen
        fresh = sum(1 for hit in ordered if window.is_new(hit))
    label_map = dict(labels or {})
    return Alert(
        rule_id=rule.id,
        group=group,
        title=fill_title(rule.title if title is None else title, values, members, label_map),
        severity=rule.severity,
        category=rule.category,
        service=rule.service or values.get("service") or shared(members, "service"),
        host=values.get("host") or shared(members, "host"),
        owner=rule.owner,
        first_seen=first,
        last_seen=last,
        new_events=fresh if new_events is None else new_events,
        events=len(members) if events is None else events,
        value=value,
        evidence=tuple(Evidence(id=hit.id, time=hit.time, text=hit.raw) for hit in kept),
        runbook=rule.runbook,
        labels=label_map,
    )


# memory ------------------------------------------------------------------------------------


def memory_key(prefix: str, key: Sequence[str]) -> str:
    """The memory key of one series: ``prefix:["v1","v2"]``, or a digest when that is long."""
    text = prefix + ":" + json.dumps(list(key), ensure_ascii=False, separators=(",", ":"))
    if len(text) <= MAX_KEY_CHARS:
        return text
    return f"{prefix}:#{hashlib.blake2b(text.encode(), digest_size=16).hexdigest()}"


def entries(memory: RuleMemory, prefix: str) -> list[tuple[str, Any]]:
    """The ``(memory key, value)`` pairs written under ``prefix``."""
    start = prefix + ":"
    return [(name, value) for name, value in memory.items() if name.startswith(start)]


def evict(
    memory: RuleMemory, prefix: str, cap: int, age: Callable[[Any], float], keep: set[str]
) -> int:
    """Delete the entries under ``prefix`` with the smallest ``age(value)`` (the least recently
    seen) until at most ``cap`` remain, sparing ``keep``; returns how many were deleted."""
    found = entries(memory, prefix)
    excess = len(found) - cap
    if excess <= 0:
        return 0
    candidates = sorted(
        (item for item in found if item[0] not in keep), key=lambda item: (age(item[1]), item[0])
    )
    for name, _ in candidates[:excess]:
        memory.delete(name)
    return min(excess, len(candidates))


def stale(last: float, now: float) -> bool:
    """Whether a remembered "last seen" time is worth rewriting (see ``REFRESH_SECONDS``)."""
    return now - last >= REFRESH_SECONDS
