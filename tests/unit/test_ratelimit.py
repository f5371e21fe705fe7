from __future__ import annotations

import pytest

from bot.ratelimit import TokenBucket


class Monotonic:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock() -> Monotonic:
    return Monotonic()


def take_all(bucket: TokenBucket) -> int:
    taken = 0
    while bucket.try_take() == 0.0:
        taken += 1
        assert taken <= 1000
    return taken


def test_a_full_bucket_allows_a_burst(clock: Monotonic) -> None:
    bucket = TokenBucket(rate=1, burst=5, monotonic=clock)
    assert [bucket.try_take() for _ in range(5)] == [0.0] * 5
    assert bucket.try_take() == pytest.approx(1.0)


def test_wait_time_does_not_take_a_token(clock: Monotonic) -> None:
    bucket = TokenBucket(rate=1, burst=1, monotonic=clock)
    assert bucket.wait_time() == 0.0
    assert bucket.wait_time() == 0.0
    assert bucket.try_take() == 0.0
    assert bucket.wait_time() == pytest.approx(1.0)


def test_a_refused_take_takes_nothing(clock: Monotonic) -> None:
    bucket = TokenBucket(rate=2, burst=1, monotonic=clock)
    bucket.try_take()
    for _ in range(3):
        assert bucket.try_take() == pytest.approx(0.5)
    clock.advance(0.5)
    assert bucket.try_take() == 0.0


def test_tokens_refill_at_the_rate(clock: Monotonic) -> None:
    bucket = TokenBucket(rate=4, burst=10, monotonic=clock)
    assert take_all(bucket) == 10
    assert bucket.try_take() == pytest.approx(0.25)
    clock.advance(0.1)
    assert bucket.try_take() == pytest.approx(0.15)
    clock.advance(0.15)
    assert bucket.try_take() == 0.0
    clock.advance(1.0)
    assert take_all(bucket) == 4


def test_a_slow_rate_waits_longer(clock: Monotonic) -> None:
    bucket = TokenBucket(rate=0.1, burst=1, monotonic=clock)
    bucket.try_take()
    assert bucket.wait_time() == pytest.approx(10.0)
    clock.advance(9.9)
    assert bucket.try_take() > 0
    clock.advance(0.1)
    assert bucket.try_take() == 0.0


def test_refill_stops_at_the_burst(clock: Monotonic) -> None:
    bucket = TokenBucket(rate=10, burst=3, monotonic=clock)
    take_all(bucket)
    clock.advance(3600)
    assert take_all(bucket) == 3


def test_pause_blocks_until_its_end(clock: Monotonic) -> None:
    bucket = TokenBucket(rate=100, burst=10, monotonic=clock)
    bucket.pause(30)
    assert bucket.try_take() == pytest.approx(30.0)
    clock.advance(12)
    assert bucket.wait_time() == pytest.approx(18.0)
    assert bucket.try_take() == pytest.approx(18.0)
    clock.advance(17.75)
    assert bucket.try_take() == pytest.approx(0.25)
    clock.advance(0.25)
    assert bucket.try_take() == 0.0


def test_pause_empties_the_bucket(clock: Monotonic) -> None:
    bucket = TokenBucket(rate=1, burst=5, monotonic=clock)
    bucket.pause(0)
    assert bucket.try_take() == pytest.approx(1.0)


def test_a_shorter_pause_does_not_cut_a_longer_one(clock: Monotonic) -> None:
    bucket = TokenBucket(rate=1, burst=1, monotonic=clock)
    bucket.pause(60)
    clock.advance(10)
    bucket.pause(5)
    assert bucket.wait_time() == pytest.approx(50.0)


def test_a_longer_pause_extends_the_wait(clock: Monotonic) -> None:
    bucket = TokenBucket(rate=1, burst=1, monotonic=clock)
    bucket.pause(5)
    clock.advance(1)
    bucket.pause(60)
    assert bucket.wait_time() == pytest.approx(60.0)


@pytest.mark.parametrize(
    ("rate", "burst"),
    [(0, 1), (-1, 1), (1, 0), (1, -3), (0, 0)],
)
def test_invalid_parameters_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match=r"^a token bucket needs rate > 0 and burst >= 1$"):
        TokenBucket(rate=rate, burst=burst)


def test_default_clock_starts_full() -> None:
    bucket = TokenBucket(rate=1, burst=2)
    assert bucket.try_take() == 0.0
    assert bucket.try_take() == 0.0
    assert bucket.try_take() > 0
