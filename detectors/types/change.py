"""The ``change`` rule type: the value of ``compare_field`` changed for a group.

Each group's last value is remembered with the time of the event that carried it. Events are
taken oldest first; an event no later than the remembered one was already taken (overlapping
windows) or arrived out of order, and is skipped. The first value a group is ever seen with
is recorded without firing. With ``ignore_null`` (the default) events without the field, or
with it empty, are skipped; otherwise a missing value is a value of its own (``(null)``).

Memory: ``last:<group>`` (``{"key": [...], "value": text or null, "time": epoch}``; the time is
rewritten at most hourly while the value stays the same), at most ``max_keys`` groups (the
least recently seen are evicted; an evicted group's next value is a first sighting again).
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
    FieldName,
    Key,
    evict,
    fmt,
    group_hits,
    iso,
    make_alert,
    memory_key,
    ordered,
    stale,
    to_epoch,
)
from detectors.window import Window

log = logging.getLogger(__name__)
NULL = "(null)"


class ChangeSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    compare_field: FieldName
    ignore_null: bool = True
    max_keys: int = Field(default=10_000, ge=1, le=1_000_000)


class ChangeRule(Rule):
    type: Literal["change"] = "change"
    change: ChangeSettings

    def result_fields(self) -> list[FieldRef]:
        refs = super().result_fields()
        refs.append((("change", "compare_field"), self.change.compare_field))
        return refs


def evaluate(
    rule: ChangeRule, hits: Sequence[Hit], window: Window, memory: RuleMemory | None = None
) -> list[Alert]:
    """One alert per group whose value changed, naming the value before and after."""
    memory = memory if memory is not None else RuleMemory()
    spec = rule.change
    alerts = []
    for key, members in group_hits(ordered(hits), rule.group_by).items():
        name = memory_key("last", key)
        stored = memory.get(name)
        changes: list[tuple[str | None, str | None, Hit]] = []
        for hit in members:
            value = hit.fields.get(spec.compare_field) or None
            if value is None and spec.ignore_null:
                continue
            at = to_epoch(hit.time)
            if stored is None:  # first sighting: remember, never fire
                stored = {"key": list(key), "value": value, "time": at}
                memory.set(name, stored)
            elif at <= stored["time"]:
                continue
            elif value != stored["value"]:
                changes.append((stored["value"], value, hit))
                stored = {"key": list(key), "value": value, "time": at}
                memory.set(name, stored)
            elif stale(stored["time"], at):
                stored = {**stored, "time": at}
                memory.set(name, stored)
        if changes:
            alerts.append(_alert(rule, key, changes, window))
    evicted = evict(
        memory,
        "last",
        spec.max_keys,
        lambda value: value["time"],
        keep={memory_key("last", key) for key in group_hits(hits, rule.group_by)},
    )
    if evicted:
        log.warning("rule %s: %d groups forgotten (max_keys %d)", rule.id, evicted, spec.max_keys)
    return alerts


def _alert(
    rule: ChangeRule,
    key: Key,
    changes: list[tuple[str | None, str | None, Hit]],
    window: Window,
) -> Alert:
    old, _, _ = changes[0]
    _, new, last = changes[-1]
    members = [hit for _, _, hit in changes]
    return make_alert(
        rule,
        key,
        members,
        float(len(changes)),
        window,
        labels={
            "old": old if old is not None else NULL,
            "new": new if new is not None else NULL,
            "changes": fmt(len(changes)),
            "changed_at": iso(last.time),
        },
    )
