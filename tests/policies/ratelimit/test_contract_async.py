"""The contract suite again, through ``ahit``/``apeek``/``areset`` and asyncio Redis clients.

Mirrors test_contract.py: memory, fakeredis (async), a real redis-server
(``redis.asyncio.Redis``) and the Redis Cluster (``redis.asyncio.RedisCluster``).
"""

from __future__ import annotations

import math

import pytest

from sentia_core.errors import ConfigError, RateLimitExceeded

from .conftest import Factory

ALGORITHMS = ["gcra", "sliding_window"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_allows_the_limit_then_denies_with_retry_after(
    async_limiter_factory: Factory, algorithm: str
) -> None:
    limiter = async_limiter_factory({"auth": "5/hour"}, algorithm=algorithm)
    decisions = [await limiter.ahit("auth", "1.2.3.4") for _ in range(7)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0, 0]
    denied = decisions[5]
    assert (denied.tier, denied.key) == ("auth", "1.2.3.4")
    if algorithm == "gcra":
        assert denied.retry_after == pytest.approx(720.0, abs=2.0)
    else:
        assert 0.0 < denied.retry_after <= 2 * 3600.0


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_apeek_reports_without_consuming(
    async_limiter_factory: Factory, algorithm: str
) -> None:
    limiter = async_limiter_factory({"api": "3/day"}, algorithm=algorithm)
    assert (await limiter.apeek("api", "u")).remaining == 3
    assert (await limiter.ahit("api", "u")).remaining == 2
    assert (await limiter.apeek("api", "u", cost=2)).allowed
    assert not (await limiter.apeek("api", "u", cost=3)).allowed
    assert limiter.stats().decisions == 1


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_costs(async_limiter_factory: Factory, algorithm: str) -> None:
    limiter = async_limiter_factory({"api": "10/day"}, algorithm=algorithm)
    assert (await limiter.ahit("api", "u", cost=6)).remaining == 4
    assert (await limiter.ahit("api", "u", cost=0)).remaining == 4
    assert not (await limiter.ahit("api", "u", cost=5)).allowed
    assert math.isinf((await limiter.ahit("api", "u", cost=11)).retry_after)
    assert (await limiter.ahit("api", "u", cost=4)).allowed


async def test_a_zero_limit_denies_everything(async_limiter_factory: Factory) -> None:
    limiter = async_limiter_factory({"blocked": "0/minute"})
    d = await limiter.ahit("blocked", "x")
    assert (d.allowed, d.retry_after) == (False, math.inf)
    assert not (await limiter.apeek("blocked", "x")).allowed


async def test_keys_tiers_and_reset(async_limiter_factory: Factory) -> None:
    limiter = async_limiter_factory({"api": "1/day", "auth": "1/day"})
    assert (await limiter.ahit("api", "alice")).allowed
    assert not (await limiter.ahit("api", "alice")).allowed
    assert (await limiter.ahit("api", "bob")).allowed
    assert (await limiter.ahit("auth", "alice")).allowed
    assert await limiter.areset("api", "alice") is True
    assert (await limiter.ahit("api", "alice")).allowed


async def test_async_decorator_raises_rate_limit_exceeded(async_limiter_factory: Factory) -> None:
    limiter = async_limiter_factory({"partner": "1/day"})

    @limiter.limit("partner", key=lambda shop: shop)
    async def fetch(shop: str) -> str:
        return shop.upper()

    assert await fetch("a") == "A"
    with pytest.raises(RateLimitExceeded) as err:
        await fetch("a")
    assert (err.value.tier, err.value.key) == ("partner", "a")
    assert await fetch("b") == "B"
    assert limiter.stats().tiers["partner"].denied == 1


async def test_bad_calls_raise_config_error(async_limiter_factory: Factory) -> None:
    limiter = async_limiter_factory({"api": "2/day"})
    with pytest.raises(ConfigError):
        await limiter.ahit("nope")
    with pytest.raises(ConfigError):
        await limiter.ahit("api", "u", cost=-1)
    with pytest.raises(ConfigError):
        await limiter.apeek("api", "u", cost=2.5)  # type: ignore[arg-type]
