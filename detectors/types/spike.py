"""The ``spike`` rule type: a group's count in this window against the window just before it.

How the reference is obtained: the query covers one window (the *current* one, ``window`` long),
and every run remembers each group's count under the window's end. The reference of a run is the
count remembered for the window that ended where the current one starts (the remembered window
end nearest to the current start, at most half a window away). So the reference survives
restarts: the first run after one compares with the remembered counts, not with zero. Until a
run a whole window ago is remembered (a new rule, or a gap longer than ``max_catchup``), there
is no reference and nothing fires.

With ``field``, a group's count is the sum of that field over its rows (for queries ending in
``stats count by ...``); otherwise it is the number of rows.

Memory: ``runs`` (the remembered window ends) and ``ref:<group>`` (``{"key": [...], "counts":
[[end, count], ...]}``, zero counts left out). Entries older than the window before the current
one are dropped, a group with none left is forgotten, and at most ``max_keys`` groups are kept
(the least recently seen are evicted).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.domain.hits import Alert, Hit
from detectors.memory import RuleMemory
from detectors.model import FieldRef, Rule
from detectors.types.common import (
    Direction,
    FieldName,
    Key,
    entries,
    evict,
    fmt,
    from_epoch,
    group_hits,
    iso,
    make_alert,
    memory_key,
    number,
    to_epoch,
)
from detectors.window import Window

log = logging.getLogger(__name__)


class SpikeSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    direction: Direction = Direction.UP
    ratio: float = Field(gt=1)
    min_current: float = Field(default=0, ge=0)
    min_reference: float = Field(default=0, ge=0)
    field: FieldName | None = None
    max_keys: int = Field(default=10_000, ge=1, le=1_000_000)


class SpikeRule(Rule):
    type: Literal["spike"] = "spike"
    spike: SpikeSettings

    def result_fields(self) -> list[FieldRef]:
        refs = super().result_fields()
        if self.spike.field is not None:
            refs.append((("spike", "field"), self.spike.field))
        return refs


def evaluate(
    rule: SpikeRule, hits: Sequence[Hit], window: Window, memory: RuleMemory | None = None
) -> list[Alert]:
    """One alert per group whose count moved by ``ratio`` against the remembered reference."""
    memory = memory if memory is not None else RuleMemory()
    spec = rule.spike
    end = to_epoch(window.end)
    start = to_epoch(window.start)
    tolerance = rule.window.total_seconds() / 2
    runs: list[float] = [t for t in memory.get("runs", []) if t != end]
    reference_end = _nearest(runs, start, tolerance)

    groups = group_hits(hits, rule.group_by)
    current = {key: _measure(members, spec.field) for key, members in groups.items()}
    remembered = {tuple(value["key"]): (name, value) for name, value in entries(memory, "ref")}
    alerts = []
    for key in sorted(set(current) | set(remembered)):
        now_count = current.get(key, 0.0)
        if reference_end is not None:
            counts = dict(remembered[key][1]["counts"]) if key in remembered else {}
            before = _at(counts, reference_end)
            if _fires(spec, now_count, before):
                alerts.append(
                    _alert(rule, key, groups.get(key, []), now_count, before, window, reference_end)
                )
        _remember(memory, key, remembered.get(key), now_count, end, start - tolerance)
    memory.set("runs", sorted(t for t in [*runs, end] if t >= start - tolerance))
    evicted = evict(
        memory,
        "ref",
        spec.max_keys,
        lambda value: max((t for t, _ in value["counts"]), default=0.0),
        keep={memory_key("ref", key) for key in current},
    )
    if evicted:
        log.warning("rule %s: %d groups forgotten (max_keys %d)", rule.id, evicted, spec.max_keys)
    return alerts


def _measure(members: Sequence[Hit], field: str | None) -> float:
    if field is None:
        return float(len(members))
    return sum(number(hit.fields.get(field)) or 0.0 for hit in members)


def _nearest(runs: Sequence[float], target: float, tolerance: float) -> float | None:
    close = [t for t in runs if abs(t - target) <= tolerance]
    return min(close, key=lambda t: (abs(t - target), -t)) if close else None


def _at(counts: dict[float, float], end: float) -> float:
    return float(counts.get(end, 0.0))


def _fires(spec: SpikeSettings, current: float, reference: float) -> bool:
    if current < spec.min_current or reference < spec.min_reference:
        return False
    up = current > reference and current >= reference * spec.ratio
    down = current < reference and current * spec.ratio <= reference
    if spec.direction is Direction.UP:
        return up
    if spec.direction is Direction.DOWN:
        return down
    return up or down


def _remember(
    memory: RuleMemory,
    key: Key,
    seen: tuple[str, dict] | None,
    count: float,
    end: float,
    oldest: float,
) -> None:
    old = seen[1]["counts"] if seen is not None else []
    counts = [[t, c] for t, c in old if t >= oldest and t != end]
    if count:
        counts.append([end, count])
    name = seen[0] if seen is not None else memory_key("ref", key)
    if not counts:
        memory.delete(name)
    elif counts != old:
        memory.set(name, {"key": list(key), "counts": counts})


def _alert(
    rule: SpikeRule,
    key: Key,
    members: list[Hit],
    current: float,
    reference: float,
    window: Window,
    reference_end: float,
) -> Alert:
    ratio = current / reference if reference else float("inf")
    reference_start = from_epoch(reference_end) - rule.window
    return make_alert(
        rule,
        key,
        members,
        current,
        window,
        labels={
            "current": fmt(current),
            "reference": fmt(reference),
            "ratio": fmt(round(ratio, 2)) if reference else "inf",
            "direction": "up" if current > reference else "down",
            "reference_window": f"{iso(reference_start)}/{iso(from_epoch(reference_end))}",
        },
    )
