"""Token buckets for outbound traffic, with pauses ordered by a peer (``Retry-After``)."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``. Not thread-safe (one loop)."""

    def __init__(
        self, rate: float, burst: int, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._now = monotonic
        self._tokens = float(burst)
        self._stamp = monotonic()
        self._paused_until = 0.0

    def _refill(self) -> float:
        now = self._now()
        if now < self._paused_until:  # nothing accrues while the peer asked us to wait
            self._stamp = now
            return now
        if self._stamp < self._paused_until:  # the first token is due the moment a pause ends
            self._tokens = max(self._tokens, 1.0)
            self._stamp = self._paused_until
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        return now

    def wait_time(self) -> float:
        """Seconds until a token is available (0 when one is available now)."""
        now = self._refill()
        if now < self._paused_until:
            return self._paused_until - now
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    def try_take(self) -> float:
        """Take a token and return 0, or return how long to wait for one."""
        wait = self.wait_time()
        if wait == 0.0:
            self._tokens -= 1
        return wait

    def pause(self, seconds: float) -> None:
        """The peer said to wait (HTTP 429 Retry-After): no token before then."""
        now = self._refill()
        self._paused_until = max(self._paused_until, now + seconds)
        self._tokens = 0.0
