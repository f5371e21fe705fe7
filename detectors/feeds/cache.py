"""The events one feed has fetched, kept as long as a member rule's window can reach them.

Each event is stored once (by Splunk's ``_bkt`` + ``_cd``, or its time and text), with the
moment it counts as *seen*: its ``_indextime`` when a regular fetch found it, or the feed's
index-time cursor when the late sweep found it after the runs over its index time had passed
(it is then new to the next run, and counted once there).
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass


@dataclass(slots=True)
class Cached:
    time: float
    seen: float
    row: dict


def identity(row: dict) -> str:
    """Splunk's event identity (bucket and offset) when the row has it, else time and text."""
    bucket, offset = row.get("_bkt"), row.get("_cd")
    if bucket and offset:
        return f"{bucket}|{offset}"
    digest = hashlib.blake2b(
        f"{float(row.get('_time', 0.0)):.6f}\x00{row.get('_raw', '')}".encode(), digest_size=8
    )
    return digest.hexdigest()


class EventCache:
    """Events ordered by time, each once; ``window`` reads a span, ``prune`` forgets old ones."""

    def __init__(self) -> None:
        self._items: list[Cached] = []
        self._times: list[float] = []
        self._keys: set[str] = set()
        self._late: dict[str, float] = {}
        self._sorted = True

    def __len__(self) -> int:
        return len(self._items)

    def add(self, row: dict, time: float, seen: float, late: bool = False) -> bool:
        """Keep ``row`` unless the same event is already here; True when it was new. ``late``:
        found by the sweep, so ``seen`` is not its index time."""
        key = identity(row)
        if key in self._keys:
            return False
        self._keys.add(key)
        if late:
            self._late[key] = seen
        if self._items and time < self._items[-1].time:
            self._sorted = False
        self._items.append(Cached(time, seen, row))
        return True

    def window(self, start: float, end: float, seen_before: float) -> list[dict]:
        """Rows with ``start <= time < end`` seen before ``seen_before``, newest first (the
        order Splunk returns events in)."""
        self._order()
        low = bisect.bisect_left(self._times, start)
        high = bisect.bisect_left(self._times, end)
        return [item.row for item in reversed(self._items[low:high]) if item.seen < seen_before]

    def late_seen(self, row: dict) -> float | None:
        """For an event the late sweep found: when it counts as seen (its index time otherwise)."""
        return self._late.get(identity(row)) if self._late else None

    def prune(self, before: float) -> int:
        """Forget events older than ``before``; returns how many went."""
        self._order()
        cut = bisect.bisect_left(self._times, before)
        if cut == 0:
            return 0
        for item in self._items[:cut]:
            key = identity(item.row)
            self._keys.discard(key)
            self._late.pop(key, None)
        del self._items[:cut]
        del self._times[:cut]
        return cut

    def _order(self) -> None:
        if not self._sorted:
            self._items.sort(key=lambda item: item.time)  # nearly sorted: linear
            self._sorted = True
            self._times = [item.time for item in self._items]
        elif len(self._times) != len(self._items):
            self._times.extend(item.time for item in self._items[len(self._times) :])


__all__ = ["Cached", "EventCache", "identity"]
