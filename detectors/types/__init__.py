"""The rule types, by the name a rule file gives in ``type:``.

A rule type is a pydantic model (a :class:`~detectors.model.Rule` subclass holding its own
settings) and an evaluator turning one window's hits into alerts: pure apart from the rule's
:class:`~detectors.memory.RuleMemory`, which stateful types read and update (types without
state ignore it). ``sliding`` types look back
``window`` on every run, so their windows overlap and ``Window.is_new`` says what is new.
To add a type, write its module next to the others and register it below; helpers they share
live in :mod:`detectors.types.common`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.domain.hits import Alert, Hit
from bot.errors import NotFound
from detectors.memory import RuleMemory
from detectors.model import Rule
from detectors.types import (
    anomaly,
    cardinality,
    change,
    correlation,
    flatline,
    forecast,
    frequency,
    new_term,
    spike,
    threshold,
)
from detectors.window import Window


@dataclass(frozen=True, slots=True)
class RuleType:
    name: str
    model: type[Rule]
    sliding: bool
    evaluate: Callable[[Any, Sequence[Hit], Window, RuleMemory], list[Alert]]
    #: judges "new" by index time (or by its memory of what it has seen) and tolerates a search
    #: reaching back ``max_index_lag`` further than its window, so its runs are bounded by index
    #: time where the backend can (late events counted once); the other types keep event-time
    #: windows (held back by the measured lag when they read a feed: ``detectors.revisit``)
    index_time: bool = False
    #: whether a run may re-evaluate past windows of this rule that events arriving late now
    #: complete (stateless types whose condition more events can only make true)
    revisit: Callable[[Any], bool] = lambda rule: False
    #: its memory skips every event it has already taken, so a run may read further back than
    #: its window: a held-back run reaches back for events that arrived later than the lag
    #: allowance, older than the window (``detectors.revisit.held_window``)
    reads_back: bool = False


RULE_TYPES: dict[str, RuleType] = {
    entry.name: entry
    for entry in (
        RuleType(
            "threshold",
            threshold.ThresholdRule,
            sliding=True,
            evaluate=threshold.evaluate,
            revisit=threshold.revisitable,
        ),
        RuleType(
            "frequency",
            frequency.FrequencyRule,
            sliding=True,
            evaluate=frequency.evaluate,
            index_time=True,
        ),
        RuleType("spike", spike.SpikeRule, sliding=True, evaluate=spike.evaluate),
        RuleType("flatline", flatline.FlatlineRule, sliding=True, evaluate=flatline.evaluate),
        RuleType(
            "new_term",
            new_term.NewTermRule,
            sliding=True,
            evaluate=new_term.evaluate,
            index_time=True,
        ),
        RuleType(
            "change", change.ChangeRule, sliding=True, evaluate=change.evaluate, reads_back=True
        ),
        RuleType(
            "cardinality",
            cardinality.CardinalityRule,
            sliding=True,
            evaluate=cardinality.evaluate,
            revisit=cardinality.revisitable,
        ),
        RuleType("anomaly", anomaly.AnomalyRule, sliding=True, evaluate=anomaly.evaluate),
        RuleType("forecast", forecast.ForecastRule, sliding=True, evaluate=forecast.evaluate),
        RuleType(
            "correlation",
            correlation.CorrelationRule,
            sliding=True,
            evaluate=correlation.evaluate,
        ),
    )
}


def rule_type(name: str) -> RuleType:
    """The registered type called ``name``; raises ``NotFound`` naming the known ones."""
    try:
        return RULE_TYPES[name]
    except KeyError:
        known = ", ".join(sorted(RULE_TYPES))
        raise NotFound(f"unknown rule type '{name}' (known: {known})") from None


__all__ = ["RULE_TYPES", "RuleType", "rule_type"]
