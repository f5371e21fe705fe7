"""Per-key memory of a rule (baselines, seen terms, last values) that survives restarts.

A stateful rule type reads and writes a :class:`RuleMemory` while it evaluates a window; the
scheduler loads it before the run and saves what changed in the same database transaction as
the incidents the run produced and its window end, so a restart never makes a spike or new-term
rule fire on everything, and a failed run never half-saves its memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from typing import Any


class RuleMemory:
    """JSON-serialisable values by key; remembers which keys changed since it was loaded."""

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        self._values: dict[str, Any] = dict(values or {})
        self._changed: set[str] = set()
        self._deleted: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        return self._values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        json.dumps(value)  # refuse what cannot be stored, at the place that tried
        self._values[key] = value
        self._changed.add(key)
        self._deleted.discard(key)

    def delete(self, key: str) -> None:
        if key in self._values:
            del self._values[key]
            self._deleted.add(key)
            self._changed.discard(key)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._values))

    def __len__(self) -> int:
        return len(self._values)

    def items(self) -> list[tuple[str, Any]]:
        return list(self._values.items())

    def changes(self) -> tuple[dict[str, Any], AbstractSet[str]]:
        """(keys set or changed with their values, keys deleted) since loading or ``saved()``."""
        return {k: self._values[k] for k in self._changed}, set(self._deleted)

    def saved(self) -> None:
        self._changed.clear()
        self._deleted.clear()
