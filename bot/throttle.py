"""At most one event a key per interval: audited refusals are throttled by (kind, address), so a
flood of bad requests cannot flood the audit chain."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

#: seconds between two audited refusals of one kind from one address
AUDIT_EVERY = 60.0


class Throttle:
    """``due(key)`` is True at most once every ``every`` seconds (monotonic) for one key.
    Thread-safe; past ``most`` keys it forgets them all, so it stays small. ``now`` is the
    monotonic clock in seconds."""

    def __init__(
        self,
        every: float = AUDIT_EVERY,
        most: int = 1024,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every = every
        self.most = most
        self._now = now
        self._lock = threading.Lock()
        self._last: dict[Hashable, float] = {}

    def due(self, key: Hashable) -> bool:
        now = self._now()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.every:
                return False
            if len(self._last) > self.most:
                self._last.clear()
            self._last[key] = now
            return True


__all__ = ["AUDIT_EVERY", "Throttle"]
