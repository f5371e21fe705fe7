"""The ``new_term`` rule type: a value (or a tuple of values) of ``fields`` never seen before.

Seen terms are remembered, so overlapping windows and restarts never report a known term
again. A term is new when it is first *seen*: runs are bounded by index time where the backend
can (a window reaches ``max_index_lag`` further back in event time, and the remembered terms
keep what was already seen from counting twice), so a term whose first event reaches the index
late still fires, once, in the first run after it became searchable (docs/rules.md, "Late data
and search cost"). The first ``learn_for`` of the rule's data (from the start of its first
window, by event time) is a learning period: terms are recorded without firing. Each new term
fires once, grouped by its ``fields`` (plus any ``group_by`` fields that are not among them).

Memory: ``learning`` (``{"since": epoch}``) and ``term:<values>`` (``{"first": epoch, "last":
epoch}``; ``last`` is rewritten at most hourly). At most ``max_terms`` terms are kept: past
that, the least recently seen are evicted (a warning is logged and the run's alerts carry the
``terms_evicted`` label); an evicted term fires again when it comes back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.domain.hits import Alert, Hit
from detectors.memory import RuleMemory
from detectors.model import Duration, FieldRef, Rule, rule_error
from detectors.types.common import (
    FieldName,
    Key,
    evict,
    fmt,
    from_epoch,
    group_hits,
    iso,
    key_of,
    make_alert,
    memory_key,
    ordered,
    stale,
    to_epoch,
    unique_names,
)
from detectors.window import Window

log = logging.getLogger(__name__)


class NewTermSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    fields: tuple[FieldName, ...]
    learn_for: Duration = timedelta(days=1)
    max_terms: int = Field(default=10_000, ge=1, le=1_000_000)
    ignore_null: bool = True

    @field_validator("fields")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise rule_error("name at least one field")
        return tuple(unique_names(value))


class NewTermRule(Rule):
    type: Literal["new_term"] = "new_term"
    new_term: NewTermSettings

    def result_fields(self) -> list[FieldRef]:
        refs = super().result_fields()
        refs.extend(
            (("new_term", "fields", i), name) for i, name in enumerate(self.new_term.fields)
        )
        return refs

    @property
    def alert_fields(self) -> tuple[str, ...]:
        """The fields that make one alert: the term's, then the other ``group_by`` fields."""
        fields = self.new_term.fields
        return fields + tuple(name for name in self.group_by if name not in fields)


def evaluate(
    rule: NewTermRule, hits: Sequence[Hit], window: Window, memory: RuleMemory | None = None
) -> list[Alert]:
    """One alert per term (and group) first seen after the learning period."""
    memory = memory if memory is not None else RuleMemory()
    spec = rule.new_term
    learning = memory.get("learning")
    since = learning["since"] if learning else to_epoch(window.start)
    if not learning:
        memory.set("learning", {"since": since})
    learned_until = from_epoch(since) + spec.learn_for

    new_terms: set[Key] = set()
    touched: set[str] = set()
    for hit in ordered(hits):
        term = key_of(hit, spec.fields)
        if spec.ignore_null and not all(term):
            continue
        name = memory_key("term", term)
        at = to_epoch(hit.time)
        stored = memory.get(name)
        touched.add(name)
        if stored is None:
            memory.set(name, {"first": at, "last": at})
            if hit.time >= learned_until:
                new_terms.add(term)
        elif stale(stored["last"], at):
            memory.set(name, {"first": stored["first"], "last": at})
    evicted = evict(memory, "term", spec.max_terms, lambda value: value["last"], touched)
    if evicted:
        log.warning(
            "rule %s: %d known terms forgotten (max_terms %d)", rule.id, evicted, spec.max_terms
        )
    if not new_terms:
        return []
    fresh = group_hits(
        (hit for hit in hits if key_of(hit, spec.fields) in new_terms), rule.alert_fields
    )
    alerts = []
    for key, members in fresh.items():
        labels = {
            "term": ", ".join(f"{n}={v}" for n, v in zip(spec.fields, key, strict=False)),
            "first_seen": iso(min(hit.time for hit in members)),
        }
        if evicted:
            labels["terms_evicted"] = fmt(evicted)
        alerts.append(
            make_alert(
                rule,
                key,
                members,
                float(len(members)),
                window,
                names=rule.alert_fields,
                labels=labels,
            )
        )
    return alerts
