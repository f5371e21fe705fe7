"""The ``correlation`` rule type: events meeting each of several named ``conditions`` for the
same group within ``within`` (Windows event 6008 followed by 41: an unexpected shutdown; an
iowait spike together with a write burst).

Each condition is a field match on a result row (see :mod:`detectors.types.match`). With
``ordered: true`` the events must come in the conditions' order (times may be equal; one event
serves one step); otherwise in any order (one event may meet several conditions). A group fires
once for each completed set whose last event is later than the last one it fired for, so
overlapping windows do not repeat it.

Partial sets carry over between runs: each group's matching events of the last ``within``
(times and ids only, never the event text) are remembered, at most ``KEEP`` per condition.
Memory: ``seq:<group>`` (``{"key": [...], "events": [[condition, epoch, id], ...], "fired":
epoch or null}``), at most ``max_keys`` groups (the least recently seen are evicted).
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.domain.durations import format_duration
from bot.domain.hits import Alert, Hit
from detectors.memory import RuleMemory
from detectors.model import (
    SLUG,
    FieldRef,
    PositiveDuration,
    Rule,
    rule_error,
)
from detectors.types.common import (
    FieldName,
    Key,
    entries,
    evict,
    from_epoch,
    group_hits,
    iso,
    make_alert,
    memory_key,
    to_epoch,
)
from detectors.types.match import FieldMatch, matches_all
from detectors.window import Window

log = logging.getLogger(__name__)
KEEP = 100
MAX_CONDITIONS = 10
Event = tuple[float, str]  # (epoch, hit id)


class Condition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    match: dict[FieldName, FieldMatch] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not SLUG.fullmatch(value):
            raise rule_error(f"'{value}' is not a name: use lowercase letters, digits, '-', '_'")
        return value


class CorrelationSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    conditions: tuple[Condition, ...]
    within: PositiveDuration
    ordered: bool = False
    max_keys: int = Field(default=10_000, ge=1, le=1_000_000)

    @field_validator("conditions")
    @classmethod
    def _unique(cls, value: tuple[Condition, ...]) -> tuple[Condition, ...]:
        if not 2 <= len(value) <= MAX_CONDITIONS:
            raise rule_error(f"give 2 to {MAX_CONDITIONS} conditions (got {len(value)})")
        names = [c.name for c in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise rule_error(f"condition name '{twice[0]}' is used twice")
        return value


class CorrelationRule(Rule):
    type: Literal["correlation"] = "correlation"
    correlation: CorrelationSettings

    def result_fields(self) -> list[FieldRef]:
        refs = super().result_fields()
        for i, condition in enumerate(self.correlation.conditions):
            for name in condition.match:
                refs.append((("correlation", "conditions", i, "match", name), name))
        return refs


def evaluate(
    rule: CorrelationRule, hits: Sequence[Hit], window: Window, memory: RuleMemory | None = None
) -> list[Alert]:
    """One alert per group that completed its conditions since it last fired."""
    memory = memory if memory is not None else RuleMemory()
    spec = rule.correlation
    within = spec.within.total_seconds()
    cutoff = to_epoch(window.end) - within
    keep_fired = to_epoch(window.end) - within - rule.window.total_seconds()
    matching = [
        hit for hit in hits if any(matches_all(c.match, hit.fields) for c in spec.conditions)
    ]
    groups = group_hits(matching, rule.group_by)
    remembered: dict[Key, tuple[str, dict[str, Any]]] = {
        tuple(value["key"]): (name, value) for name, value in entries(memory, "seq")
    }
    alerts = []
    for key in sorted(set(groups) | set(remembered)):
        name, stored = remembered.get(key, (memory_key("seq", key), None))
        members = groups.get(key, [])
        steps: list[dict[str, float]] = [{} for _ in spec.conditions]
        for index, at, hit_id in stored["events"] if stored else []:
            steps[index][hit_id] = at
        for hit in members:
            for index, condition in enumerate(spec.conditions):
                if matches_all(condition.match, hit.fields):
                    steps[index][hit.id] = to_epoch(hit.time)
        lists = [sorted((at, hit_id) for hit_id, at in step.items()) for step in steps]
        fired = stored.get("fired") if stored else None
        found = _latest(lists, within, fired, spec.ordered)
        if found is not None:
            fired = found[-1][0]
            alerts.append(_alert(rule, key, found, members, window))
        kept = [
            [index, at, hit_id]
            for index, events in enumerate(lists)
            for at, hit_id in events[-KEEP:]
            if at >= cutoff
        ]
        if fired is not None and fired < keep_fired:
            fired = None
        value = {"key": list(key), "events": kept, "fired": fired}
        if not kept and fired is None:
            memory.delete(name)
        elif value != stored:
            memory.set(name, value)
    evicted = evict(
        memory,
        "seq",
        spec.max_keys,
        lambda value: max([at for _, at, _ in value["events"]] + [value["fired"] or 0.0]),
        keep={memory_key("seq", key) for key in groups},
    )
    if evicted:
        log.warning("rule %s: %d groups forgotten (max_keys %d)", rule.id, evicted, spec.max_keys)
    return alerts


def _latest(
    lists: list[list[Event]], within: float, fired: float | None, in_order: bool
) -> list[Event] | None:
    """The completed set (one event per condition, in condition order) whose last event is the
    latest, later than ``fired``, spanning at most ``within``; None when there is none."""
    ends = sorted({at for events in lists for at, _ in events}, reverse=True)
    if in_order:
        ends = sorted({at for at, _ in lists[-1]}, reverse=True)
    for end in ends:
        if fired is not None and end <= fired:
            break
        found = _chain(lists, end, within) if in_order else _together(lists, end, within)
        if found is not None:
            return found
    return None


def _before(events: list[Event], at: float, used: set[str]) -> Event | None:
    """The latest event at or before ``at`` not in ``used``."""
    i = bisect_right(events, (at, "\uffff"))
    while i > 0:
        i -= 1
        if events[i][1] not in used:
            return events[i]
    return None


def _chain(lists: list[list[Event]], end: float, within: float) -> list[Event] | None:
    last = _before(lists[-1], end, set())
    if last is None or last[0] != end:
        return None
    chain, used = [last], {last[1]}
    for events in reversed(lists[:-1]):
        step = _before(events, chain[0][0], used)
        if step is None or step[0] < end - within:
            return None
        chain.insert(0, step)
        used.add(step[1])
    return chain


def _together(lists: list[list[Event]], end: float, within: float) -> list[Event] | None:
    picked = [_before(events, end, set()) for events in lists]
    if any(p is None or p[0] < end - within for p in picked):
        return None
    found = [p for p in picked if p is not None]
    return found if max(at for at, _ in found) == end else None


def _alert(
    rule: CorrelationRule, key: Key, found: list[Event], members: list[Hit], window: Window
) -> Alert:
    spec = rule.correlation
    ids = {hit_id for _, hit_id in found}
    mine = [hit for hit in members if hit.id in ids]
    first, last = min(at for at, _ in found), max(at for at, _ in found)
    labels = {
        "sequence": (" → " if spec.ordered else " + ").join(c.name for c in spec.conditions),
        "span": format_duration(timedelta(seconds=last - first)),
    }
    for condition, (at, _) in zip(spec.conditions, found, strict=True):
        labels[f"{condition.name}_at"] = iso(from_epoch(at))
    new = len({hit_id for at, hit_id in found if at >= to_epoch(window.new_since)})
    alert = make_alert(
        rule, key, mine, last - first, window, labels=labels, events=len(ids), new_events=new
    )
    return replace(alert, first_seen=from_epoch(first), last_seen=from_epoch(last))
