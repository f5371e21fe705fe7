"""One request budget for every Bedrock call of the process: a token bucket at the RPM quota.

Callers wait their turn in arrival order. With the default burst of 1, no 60-second window
ever holds more than ``rpm`` request starts. When Bedrock throttles anyway (other clients share
the account's quota), :meth:`RpmThrottle.pause` stops every caller for a while, not just the
one that was refused.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

from bot.ratelimit import TokenBucket


class RpmThrottle:
    """``rpm`` requests per minute, ``burst`` at once; for one event loop."""

    def __init__(
        self, rpm: int, burst: int = 1, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.rpm = rpm
        self._bucket = TokenBucket(rpm / 60.0, burst, monotonic)
        self._now = monotonic
        self._turn = asyncio.Lock()  # fair: waiters get the lock in arrival order
        self._ids = itertools.count()
        self._waiting: dict[int, float] = {}  # waiter -> when it started waiting

    @property
    def interval(self) -> float:
        """Seconds between two tokens."""
        return 60.0 / self.rpm

    @property
    def depth(self) -> int:
        """Callers waiting for a token now."""
        return len(self._waiting)

    @property
    def oldest_wait(self) -> float:
        """How long the longest-waiting caller has waited, in seconds (0 when none)."""
        if not self._waiting:
            return 0.0
        return max(0.0, self._now() - min(self._waiting.values()))

    def expected_wait(self) -> float:
        """Roughly how long a caller joining the line now waits for its token."""
        return self._bucket.wait_time() + self.depth * self.interval

    async def acquire(self, deadline: float | None = None) -> bool:
        """Wait for a token. False, without taking one, when none comes before ``deadline``
        (a value of ``monotonic``)."""
        me = next(self._ids)
        self._waiting[me] = self._now()
        try:
            async with self._turn:
                while True:
                    wait = self._bucket.wait_time()
                    if wait == 0.0:
                        self._bucket.try_take()
                        return True
                    if deadline is not None and self._now() + wait > deadline:
                        return False
                    await asyncio.sleep(wait)
        finally:
            del self._waiting[me]

    def pause(self, seconds: float) -> None:
        """Bedrock said to slow down: no caller gets a token for ``seconds``."""
        self._bucket.pause(seconds)


__all__ = ["RpmThrottle"]
