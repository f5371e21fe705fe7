"""The playbooks a deployment has, and which of them fit an incident.

:func:`playbooks.loader.load_playbooks` builds the registry from files; tests and the engine may
build one from :class:`~playbooks.spec.Playbook` values directly. Playbooks with ``enabled:
false`` are left out of every answer but :meth:`Registry.disabled`.

Order of :meth:`Registry.matching` (most specific first):

0. on the embedded default, playbooks marked ``embedded_only`` come before the others: the
   simulated fleet is all a playbook can act on there;
1. the playbook the incident's rule names in ``suggested_playbook``;
2. playbooks that list the rule in ``matches.rules`` (and whose other matchers hold);
3. playbooks that match by category or labels only;

ties by id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import cache

from detectors.model import Rule
from playbooks.spec import Matches, Playbook

#: the labels every incident has, whatever its rule (``bot.pipeline.ingest.labels_of_incident``)
STANDARD_LABELS = frozenset({"rule", "severity", "category", "service", "host"})


def produced_labels(rule: Rule) -> frozenset[str]:
    """The labels an incident of ``rule`` has: its ``group_by`` fields and the standard ones."""
    return STANDARD_LABELS | frozenset(rule.group_by)


def static_labels(rule: Rule) -> dict[str, str]:
    """The labels whose value the rule itself fixes (the others come from its results)."""
    labels = {"rule": rule.id, "severity": rule.severity.value, "category": rule.category.value}
    if rule.service:
        labels["service"] = rule.service
    return labels


@cache
def _regex(text: str) -> re.Pattern[str]:
    return re.compile(text)


def label_matches(expected: str, value: str | None) -> bool:
    """``expected`` is an exact value, or ``~regex`` matching the whole value."""
    if value is None:
        return False
    if expected.startswith("~"):
        return _regex(expected[1:]).fullmatch(value) is not None
    return value == expected


def applies(matches: Matches, rule_id: str, category: str, labels: Mapping[str, str]) -> bool:
    """Whether an incident fits ``matches``: every criterion given (rules, categories, labels)
    must hold."""
    if matches.rules and rule_id not in matches.rules:
        return False
    if matches.categories and category not in matches.categories:
        return False
    return all(label_matches(want, labels.get(name)) for name, want in matches.labels.items())


def may_apply(matches: Matches, rule: Rule) -> bool:
    """Whether some incident of ``rule`` could fit ``matches`` (labels the rule fixes must
    match; labels it produces from its results may)."""
    if matches.rules and rule.id not in matches.rules:
        return False
    if matches.categories and rule.category not in matches.categories:
        return False
    fixed, produced = static_labels(rule), produced_labels(rule)
    for name, want in matches.labels.items():
        if name not in produced:
            return False
        if name in fixed and not label_matches(want, fixed[name]):
            return False
    return True


class Registry:
    """The deployment's playbooks by id; ``rules`` give each rule's ``suggested_playbook``."""

    def __init__(
        self, playbooks: Iterable[Playbook] = (), rules: Iterable[Rule] = (), embedded: bool = True
    ) -> None:
        kept = [p for p in playbooks if embedded or not p.embedded_only]
        self._enabled = {p.id: p for p in sorted(kept, key=lambda p: p.id) if p.enabled}
        self._disabled = tuple(sorted((p for p in kept if not p.enabled), key=lambda p: p.id))
        self._rules = tuple(rules)
        self._suggested = {r.id: r.suggested_playbook for r in self._rules if r.suggested_playbook}
        self.embedded = embedded

    def __len__(self) -> int:
        return len(self._enabled)

    def get(self, playbook_id: str) -> Playbook | None:
        """The enabled playbook ``playbook_id``, or None."""
        return self._enabled.get(playbook_id)

    def ids(self) -> tuple[str, ...]:
        """Every enabled playbook's id, sorted: the names an RCA engine may suggest."""
        return tuple(self._enabled)

    def all(self) -> tuple[Playbook, ...]:
        return tuple(self._enabled.values())

    def disabled(self) -> tuple[Playbook, ...]:
        """Playbooks whose file says ``enabled: false`` (listed, never matched or run)."""
        return self._disabled

    def matching(self, rule_id: str, category: str, labels: Mapping[str, str]) -> list[Playbook]:
        """The enabled playbooks that fit an incident of ``rule_id``, most specific first (see the
        module docstring for the order)."""
        suggested = self._suggested.get(rule_id)
        ranked: list[tuple[int, int, str, Playbook]] = []
        for playbook in self._enabled.values():
            if playbook.id == suggested:
                tier = 0
            elif applies(playbook.matches, rule_id, category, labels):
                tier = 1 if playbook.matches.rules else 2
            else:
                continue
            ranked.append((0 if playbook.embedded_only else 1, tier, playbook.id, playbook))
        ranked.sort(key=lambda item: item[:3])
        return [item[3] for item in ranked]

    def suggestions(self) -> dict[str, str]:
        """For each rule given, the id of the playbook that best fits its incidents (judged by
        the labels the rule fixes); rules nothing fits are left out. What an RCA engine may
        suggest for an incident of that rule."""
        out: dict[str, str] = {}
        for rule in self._rules:
            found = self.matching(rule.id, rule.category.value, static_labels(rule))
            if found:
                out[rule.id] = found[0].id
        return out


__all__ = [
    "STANDARD_LABELS",
    "Registry",
    "applies",
    "label_matches",
    "may_apply",
    "produced_labels",
    "static_labels",
]
