"""The ``flatline`` rule type: fewer than ``threshold`` events within ``timeframe``, per group.

A heartbeat gone quiet: every group seen before is remembered with the time of its last event,
so a group that vanished entirely (no result rows at all) still fires, until it has been unseen
for longer than ``forget_after``; then it is forgotten and stops firing. A rule without
``group_by`` is one series that is always expected, so it fires on silence from its first run.

Memory: ``seen:<group>`` (``{"key": [...], "last": epoch}``), at most ``max_keys`` groups (the
least recently seen are evicted).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from bot.domain.durations import format_duration
from bot.domain.hits import Alert, Hit
from detectors.memory import RuleMemory
from detectors.model import OptionalPositiveDuration, PositiveDuration, Rule, rule_error
from detectors.types.common import (
    Key,
    entries,
    evict,
    fmt,
    from_epoch,
    group_hits,
    iso,
    make_alert,
    memory_key,
    to_epoch,
)
from detectors.window import Window

log = logging.getLogger(__name__)


class FlatlineSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: int = Field(default=1, ge=1)
    timeframe: OptionalPositiveDuration = None
    forget_after: PositiveDuration = timedelta(hours=24)
    max_keys: int = Field(default=10_000, ge=1, le=1_000_000)


class FlatlineRule(Rule):
    type: Literal["flatline"] = "flatline"
    flatline: FlatlineSettings

    @field_validator("flatline")
    @classmethod
    def _fits_window(cls, value: FlatlineSettings, info: ValidationInfo) -> FlatlineSettings:
        window = info.data.get("window")
        if window is None:
            return value
        if value.timeframe is not None and value.timeframe > window:
            raise rule_error(
                f"timeframe {format_duration(value.timeframe)} is longer than the rule's window "
                f"{format_duration(window)}: a run would not see the whole timeframe"
            )
        if value.forget_after < (value.timeframe or window):
            raise rule_error("forget_after is shorter than the timeframe: nothing would fire")
        return value

    @property
    def timeframe(self) -> timedelta:
        return self.flatline.timeframe or self.window


def evaluate(
    rule: FlatlineRule, hits: Sequence[Hit], window: Window, memory: RuleMemory | None = None
) -> list[Alert]:
    """One alert per known group with fewer than ``threshold`` events in the last timeframe."""
    memory = memory if memory is not None else RuleMemory()
    spec = rule.flatline
    end = to_epoch(window.end)
    cutoff = window.end - rule.timeframe
    groups = group_hits(hits, rule.group_by)
    remembered: dict[Key, tuple[str, dict[str, Any]]] = {
        tuple(value["key"]): (name, value) for name, value in entries(memory, "seen")
    }
    keys = set(groups) | set(remembered)
    if not rule.group_by:
        keys.add(())
    alerts = []
    for key in sorted(keys):
        members = groups.get(key, [])
        name, stored = remembered.get(key, (memory_key("seen", key), None))
        last = stored["last"] if stored is not None else None
        newest = max((to_epoch(hit.time) for hit in members), default=None)
        if newest is not None and (last is None or newest > last):
            last = newest
            memory.set(name, {"key": list(key), "last": last})
        if last is not None and end - last > spec.forget_after.total_seconds() and key != ():
            memory.delete(name)
            continue
        recent = [hit for hit in members if hit.time >= cutoff]
        if len(recent) >= spec.threshold:
            continue
        alerts.append(
            make_alert(
                rule,
                key,
                members,
                float(len(recent)),
                window,
                events=len(recent),
                new_events=sum(1 for hit in recent if hit.time >= window.new_since),
                labels={
                    "count": fmt(len(recent)),
                    "threshold": fmt(spec.threshold),
                    "timeframe": format_duration(rule.timeframe),
                    "last_seen": iso(from_epoch(last)) if last is not None else "never",
                },
            )
        )
    evicted = evict(
        memory,
        "seen",
        spec.max_keys,
        lambda value: value["last"],
        keep={memory_key("seen", key) for key in groups},
    )
    if evicted:
        log.warning("rule %s: %d groups forgotten (max_keys %d)", rule.id, evicted, spec.max_keys)
    return alerts
