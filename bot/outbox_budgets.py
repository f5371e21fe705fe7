"""The outbox's rate budgets per lane, and how a message spends its share.

Posts and replies spend their channel's budget (``<surface>`` or ``<surface>:<channel>``);
updates and charts their surface's (``<surface>.update``, ``<surface>.chart``) when one is set,
since chat APIs budget in-place edits per method rather than per channel. Budgets live in the
database (:class:`bot.ratelimit.SharedBucket`), shared by every replica.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from sqlalchemy import Engine

from bot.charts.delivery import CHART
from bot.pipeline.notify import MessageKind
from bot.ratelimit import Budget, SharedBucket, SlidingWindow
from bot.settings import RateLimit


class OverBudget(Exception):
    """The lane's budget has no room for this message yet: try again in ``wait`` seconds."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"over budget for {wait:.3f}s")
        self.wait = wait


Spend = Callable[[], Awaitable[None]]


class LaneBudgets:
    def __init__(
        self, engine: Engine, limits: Mapping[str, RateLimit], monotonic: Callable[[], float]
    ) -> None:
        self._engine = engine
        self._limits = dict(limits)
        self._monotonic = monotonic
        self._buckets: dict[tuple[str, str], Budget] = {}

    def of(self, surface: str, channel: str, kind: str) -> Budget | None:
        """The budget a message of ``kind`` to ``surface:channel`` spends (None: no limit)."""
        limit: RateLimit | None
        if kind in (MessageKind.UPDATE.value, CHART) and f"{surface}.{kind}" in self._limits:
            key, limit = (surface, f"*{kind}*"), self._limits[f"{surface}.{kind}"]
        else:
            limit = self._limits.get(f"{surface}:{channel}") or self._limits.get(surface)
            key = (surface, channel)
        if limit is None:
            return None
        if key not in self._buckets:
            lane = f"{key[0]}:{key[1]}"
            bucket = SharedBucket(self._engine, lane, limit.rate, limit.burst, self._monotonic)
            window = None
            if limit.window_max is not None:
                window = SlidingWindow(
                    self._engine, f"{lane}@window", limit.window_max, limit.window, self._monotonic
                )
            self._buckets[key] = Budget(bucket, window)
        return self._buckets[key]


def spender(bucket: Budget | None) -> Spend:
    """Spends one message's budget; called right before the outside call (after the claim is
    renewed and the card is read from the database), since the surface counts requests when
    they arrive: a token taken earlier would let the next message follow too soon. Raises
    :class:`OverBudget` when the budget has no room yet."""

    async def spend() -> None:
        if bucket is not None:
            wait = await asyncio.to_thread(bucket.try_take)
            if wait > 0:
                raise OverBudget(wait)

    return spend
