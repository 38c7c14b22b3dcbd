"""Token buckets: the rate, the burst, separate keys, bounded memory."""

from __future__ import annotations

import pytest

from smartcity.core.ratelimit import RateLimiter


class Ticks:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate() -> None:
    ticks = Ticks()
    limiter = RateLimiter(rate=2.0, burst=3, monotonic=ticks)
    assert [limiter.take("lamp-7") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("lamp-7") == pytest.approx(0.5)
    assert limiter.take("air-1") == 0.0  # another key has its own bucket
    ticks.now += 0.5
    assert limiter.take("lamp-7") == 0.0
    assert limiter.take("lamp-7") == pytest.approx(0.5)
    ticks.now += 60
    assert [limiter.take("lamp-7") for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # never above burst


def test_a_refused_attempt_costs_nothing() -> None:
    ticks = Ticks()
    limiter = RateLimiter(rate=1.0, burst=1, monotonic=ticks)
    assert limiter.take("k") == 0.0
    for _ in range(10):
        assert limiter.take("k") > 0
    ticks.now += 1.0
    assert limiter.take("k") == 0.0


def test_made_up_keys_cost_bounded_memory() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_keys=100)
    for number in range(10_000):
        limiter.take(f"guess-{number}")
    assert len(limiter._buckets) == 100


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(rate=0, burst=1)
