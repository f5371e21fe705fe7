"""The shared RPM budget: a burst waits its turn, a deadline is never overrun, pauses hold all."""

from __future__ import annotations

import asyncio
import itertools
import time

from integrations.bedrock.throttle import RpmThrottle


async def test_a_burst_takes_at_least_n_minus_burst_over_rate() -> None:
    throttle = RpmThrottle(rpm=1200)  # 20 per second, one at a time
    granted: list[float] = []

    async def one() -> None:
        assert await throttle.acquire()
        granted.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(8)))
    assert time.monotonic() - started >= (8 - 1) / 20 - 0.01
    gaps = [b - a for a, b in itertools.pairwise(granted)]
    assert min(gaps) >= 1 / 20 - 0.01  # never two starts closer than the token interval


async def test_waiters_are_counted_with_the_age_of_the_oldest() -> None:
    throttle = RpmThrottle(rpm=600)
    assert await throttle.acquire()
    waiters = [asyncio.create_task(throttle.acquire()) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert throttle.depth == 3 and 0.03 <= throttle.oldest_wait < 0.5
    assert throttle.expected_wait() > 0.25
    await asyncio.gather(*waiters)
    assert throttle.depth == 0 and throttle.oldest_wait == 0.0


async def test_a_token_that_would_come_after_the_deadline_is_not_waited_for() -> None:
    throttle = RpmThrottle(rpm=6)  # one every 10 s
    assert await throttle.acquire()
    started = time.monotonic()
    assert not await throttle.acquire(deadline=time.monotonic() + 1.0)
    assert time.monotonic() - started < 0.1  # refused at once, no token taken


async def test_a_pause_holds_every_caller() -> None:
    throttle = RpmThrottle(rpm=6000)
    throttle.pause(0.3)
    started = time.monotonic()
    await asyncio.gather(throttle.acquire(), throttle.acquire())
    assert time.monotonic() - started >= 0.29
