"""The in-memory limiter works end to end (the contract suite goes deeper)."""

from __future__ import annotations

from sentia_core.policies._ratelimit import RateLimiter
from sentia_core.testing import ManualClock


def test_five_per_minute_allows_five_then_denies_until_refill() -> None:
    clock = ManualClock()
    limiter = RateLimiter({"api": "5/minute"}, clock=clock)
    assert [limiter.hit("api", "ip").allowed for _ in range(6)] == [True] * 5 + [False]
    clock.advance(12)
    assert limiter.hit("api", "ip").allowed
