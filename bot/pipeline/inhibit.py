"""Inhibition, with Alertmanager's semantics.

An inhibit rule has source matchers, target matchers and ``equal`` label names. An incident
that matches the target matchers is muted while some *active* incident matches the source
matchers and has the same values for every ``equal`` label (a label missing on both sides counts
as equal: both are empty). When the target also matches the source matchers, only sources that
do not match the target matchers inhibit it, so an incident never inhibits itself and two
incidents that each match both sides do not silence each other.

The index is built once per run: per rule, ``equal`` values -> the first source incident, so
checking one incident is a dictionary look-up per rule, also with 10,000 groups in a run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bot.pipeline.matchers import Matcher, matches_all


@dataclass(frozen=True, slots=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()
    name: str = ""

    def key(self, labels: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(labels.get(name, "") for name in self.equal)

    def describe(self) -> str:
        source = ", ".join(map(str, self.source))
        target = ", ".join(map(str, self.target))
        same = f" with the same {', '.join(self.equal)}" if self.equal else ""
        return f"{source} inhibits {target}{same}"


@dataclass(frozen=True, slots=True)
class Source:
    """An active incident that may inhibit others: its id, title and labels."""

    incident_id: int
    labels: Mapping[str, str]
    title: str = ""


@dataclass(frozen=True, slots=True)
class Inhibition:
    rule: InhibitRule
    source: Source

    @property
    def muted_by(self) -> str:
        return f"inhibit:INC-{self.source.incident_id}"

    @property
    def note(self) -> str:
        same = ", ".join(f"{n}={self.source.labels.get(n, '')}" for n in self.rule.equal)
        rule = self.source.labels.get("rule", "") or self.source.title
        where = f" ({same})" if same else ""
        return f"inhibited by INC-{self.source.incident_id} {rule}{where} while it is active"


@dataclass(slots=True)
class _RuleIndex:
    rule: InhibitRule
    any_source: dict[tuple[str, ...], Source] = field(default_factory=dict)
    one_sided: dict[tuple[str, ...], Source] = field(default_factory=dict)

    def add(self, source: Source) -> None:
        if not matches_all(self.rule.source, source.labels):
            return
        key = self.rule.key(source.labels)
        self.any_source.setdefault(key, source)
        if not matches_all(self.rule.target, source.labels):
            self.one_sided.setdefault(key, source)

    def find(self, labels: Mapping[str, str]) -> Source | None:
        if not matches_all(self.rule.target, labels):
            return None
        two_sided = matches_all(self.rule.source, labels)
        return (self.one_sided if two_sided else self.any_source).get(self.rule.key(labels))


class Inhibitor:
    """The rules and the active sources of one run."""

    def __init__(self, rules: Sequence[InhibitRule], sources: Iterable[Source] = ()) -> None:
        self._indexes = [_RuleIndex(rule) for rule in rules]
        self.observe(sources)

    def __bool__(self) -> bool:
        return bool(self._indexes)

    def observe(self, sources: Iterable[Source]) -> None:
        """Add active incidents as possible sources (those of the current run too)."""
        if not self._indexes:
            return
        for source in sources:
            for index in self._indexes:
                index.add(source)

    def mutes(self, labels: Mapping[str, str], incident_id: int = 0) -> Inhibition | None:
        for index in self._indexes:
            found = index.find(labels)
            if found is not None and found.incident_id != incident_id:
                return Inhibition(index.rule, found)
        return None


__all__ = ["InhibitRule", "Inhibition", "Inhibitor", "Source"]
