"""Policy with the real RateLimiter, in memory and on a real redis-server."""

from __future__ import annotations

import pytest

from sentia_core.errors import RateLimitExceeded
from sentia_core.policies import Policy, RateLimiterLike, Retry
from sentia_core.policies._ratelimit import RateLimiter
from sentia_core.testing import ManualClock


def test_the_real_limiter_fits_the_protocol(clock: ManualClock) -> None:
    assert isinstance(RateLimiter({"partner": "2/second"}, clock=clock), RateLimiterLike)


def test_a_blocking_policy_paces_calls_to_the_partners_limit(clock: ManualClock) -> None:
    limiter = RateLimiter({"partner": "2/second"}, clock=clock)
    p = Policy(
        rate_limit=limiter,
        rate_tier="partner",
        rate_key=lambda tenant: tenant,
        rate_block=True,
        clock=clock,
    )

    @p
    def push(tenant: str) -> float:
        return clock.monotonic()

    start = clock.monotonic()
    sent_at = [push("acme") - start for _ in range(6)]
    assert sent_at[:2] == [0.0, 0.0]  # the burst
    assert all(b >= a for a, b in zip(sent_at, sent_at[1:], strict=False))
    assert sent_at[-1] == pytest.approx(2.0)  # then 2 per second
    assert push("globex") - start == sent_at[-1]  # another tenant is not slowed down
    assert p.stats().rate_waits == 4


def test_a_denial_is_retried_after_its_retry_after(clock: ManualClock) -> None:
    limiter = RateLimiter({"partner": "1/second"}, clock=clock)
    p = Policy(
        retry=Retry(attempts=2, clock=clock),
        rate_limit=limiter,
        rate_tier="partner",
        clock=clock,
    )
    assert p.call(lambda: "first") == "first"
    assert p.call(lambda: "second") == "second"
    assert clock.sleeps == [pytest.approx(1.0)]


@pytest.mark.redis
def test_policy_over_a_redis_limiter_raises_with_the_servers_retry_after(redis_url: str) -> None:
    with RateLimiter({"partner": "2/minute"}, redis=redis_url) as limiter:
        p = Policy(rate_limit=limiter, rate_tier="partner", rate_key="tenant-1")
        assert p.call(lambda: 1) == 1
        assert p.call(lambda: 2) == 2
        with pytest.raises(RateLimitExceeded) as info:
            p.call(lambda: 3)
    assert info.value.key == "tenant-1"
    assert 0 < info.value.retry_after <= 60


@pytest.mark.redis
async def test_async_policy_over_a_redis_limiter(redis_url: str) -> None:
    async def send() -> str:
        return "sent"

    async with RateLimiter({"partner": "1/minute"}, redis=redis_url) as limiter:
        p = Policy(rate_limit=limiter, rate_tier="partner", rate_key="tenant-2")
        assert await p.call_async(send) == "sent"
        with pytest.raises(RateLimitExceeded):
            await p.call_async(send)
