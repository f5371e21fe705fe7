"""Which ``group_by`` fields the result rows lacked: the rule tools' warning that a rule groups
on a field its data does not have (every event would fall into one group).

:class:`GapCounter` wraps the backend the tools search: each search made for a rule counts, for
each of the rule's ``group_by`` fields, the result rows where it is missing or empty.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from bot.domain.hits import Hit, SearchQuery
from bot.ports import Health, SearchBackend
from detectors.model import Rule


@dataclass(frozen=True, slots=True)
class FieldGap:
    """``missing`` of ``rows`` result rows had no value for the ``group_by`` field ``field``."""

    field: str
    missing: int
    rows: int
    others: tuple[str, ...] = ()

    def text(self) -> str:
        head = f"{self.field} missing in {self.missing} of {self.rows} rows"
        if self.missing < self.rows:
            return f"{head}: those fall into one group, titled '{self.field} unknown'"
        if not self.others:
            return f"{head}: every event falls into one group"
        return f"{head}: events are grouped by {', '.join(self.others)} alone"


class GapCounter:
    """A :class:`~bot.ports.SearchBackend` that counts missing ``group_by`` values per rule.

    Searches are matched to rules by query text (rules sharing a query share the counts).
    """

    def __init__(self, backend: SearchBackend, rules: Sequence[Rule]) -> None:
        self._backend = backend
        self._rules: dict[str, list[Rule]] = defaultdict(list)
        for rule in rules:
            if rule.group_by:
                self._rules[rule.query].append(rule)
        self._rows: dict[str, int] = defaultdict(int)
        self._missing: dict[tuple[str, str], int] = defaultdict(int)

    async def search(self, query: SearchQuery) -> list[Hit]:
        hits = await self._backend.search(query)
        for rule in self._rules.get(query.text, ()):
            self._rows[rule.id] += len(hits)
            for name in rule.group_by:
                self._missing[rule.id, name] += sum(1 for hit in hits if not hit.fields.get(name))
        return hits

    async def check(self) -> Health:
        return await self._backend.check()

    def search_link(self, query: SearchQuery) -> str:
        link_of = getattr(self._backend, "search_link", None)
        return str(link_of(query)) if callable(link_of) else ""

    def gaps(self, rule: Rule) -> tuple[FieldGap, ...]:
        """The ``group_by`` fields of ``rule`` that some result row lacked, in rule order."""
        rows = self._rows.get(rule.id, 0)
        return tuple(
            FieldGap(
                name,
                self._missing[rule.id, name],
                rows,
                tuple(other for other in rule.group_by if other != name),
            )
            for name in rule.group_by
            if self._missing.get((rule.id, name), 0)
        )
