"""The rule types, by the name a rule file gives in ``type:``.

A rule type is a pydantic model (a :class:`~detectors.model.Rule` subclass holding its own
settings) and an evaluator turning one window's hits into alerts: pure apart from the rule's
:class:`~detectors.memory.RuleMemory`, which stateful types read and update (types without
state ignore it). ``sliding`` types look back
``window`` on every run, so their windows overlap and ``Window.new_since`` says what is new.
To add a type, write its module next to ``threshold`` and register it below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bot.domain.hits import Alert, Hit
from bot.errors import NotFound
from detectors.memory import RuleMemory
from detectors.model import Rule
from detectors.types import threshold
from detectors.window import Window


@dataclass(frozen=True, slots=True)
class RuleType:
    name: str
    model: type[Rule]
    sliding: bool
    evaluate: Callable[[Any, Sequence[Hit], Window, RuleMemory], list[Alert]]


RULE_TYPES: dict[str, RuleType] = {
    "threshold": RuleType(
        name="threshold",
        model=threshold.ThresholdRule,
        sliding=True,
        evaluate=threshold.evaluate,
    ),
}


def rule_type(name: str) -> RuleType:
    """The registered type called ``name``; raises ``NotFound`` naming the known ones."""
    try:
        return RULE_TYPES[name]
    except KeyError:
        known = ", ".join(sorted(RULE_TYPES))
        raise NotFound(f"unknown rule type '{name}' (known: {known})") from None


__all__ = ["RULE_TYPES", "RuleType", "rule_type"]
