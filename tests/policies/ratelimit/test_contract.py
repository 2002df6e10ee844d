"""The behaviour every backend must share: memory, fakeredis, real Redis, Redis Cluster (sync).

Limits here are per hour or per day, so the real clock (Redis decides on its
own server time) cannot refill anything while a test runs. Time-dependent
behaviour is covered exactly in test_algorithms.py and, for the Lua scripts,
in test_redis.py.
"""

from __future__ import annotations

import math

import pytest

from sentia_core.errors import ConfigError, RateLimitExceeded
from sentia_core.policies._ratelimit import RateDecision

from .conftest import Factory

ALGORITHMS = ["gcra", "sliding_window"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_allows_the_limit_then_denies_with_retry_after(
    limiter_factory: Factory, algorithm: str
) -> None:
    limiter = limiter_factory({"auth": "5/hour"}, algorithm=algorithm)
    decisions = [limiter.hit("auth", "1.2.3.4") for _ in range(7)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0, 0]
    assert all(d.retry_after == 0.0 for d in decisions[:5])
    denied = decisions[5]
    assert isinstance(denied, RateDecision)
    assert (denied.tier, denied.key) == ("auth", "1.2.3.4")
    if algorithm == "gcra":
        assert denied.retry_after == pytest.approx(720.0, abs=2.0)
        assert denied.reset_after == pytest.approx(3600.0, abs=2.0)
    else:
        assert 0.0 < denied.retry_after <= 2 * 3600.0
        assert denied.retry_after < denied.reset_after <= 2 * 3600.0


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_peek_reports_without_consuming(limiter_factory: Factory, algorithm: str) -> None:
    limiter = limiter_factory({"api": "3/day"}, algorithm=algorithm)
    assert limiter.peek("api", "u").remaining == 3
    for _ in range(5):
        assert limiter.peek("api", "u").allowed
    assert limiter.hit("api", "u").remaining == 2
    assert limiter.peek("api", "u").remaining == 2
    assert limiter.peek("api", "u", cost=2).allowed
    assert not limiter.peek("api", "u", cost=3).allowed
    assert limiter.peek("api", "u", cost=3).retry_after > 0
    assert limiter.stats().decisions == 1


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_costs(limiter_factory: Factory, algorithm: str) -> None:
    limiter = limiter_factory({"api": "10/day"}, algorithm=algorithm)
    assert limiter.hit("api", "u", cost=6).remaining == 4
    free = limiter.hit("api", "u", cost=0)
    assert free.allowed and free.remaining == 4
    too_much = limiter.hit("api", "u", cost=5)
    assert not too_much.allowed and too_much.remaining == 4 and too_much.retry_after > 0
    never = limiter.hit("api", "u", cost=11)
    assert not never.allowed and math.isinf(never.retry_after)
    assert limiter.hit("api", "u", cost=4).allowed
    assert not limiter.hit("api", "u").allowed


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_zero_limit_denies_everything(
    limiter_factory: Factory, algorithm: str, redis_client: object
) -> None:
    limiter = limiter_factory({"blocked": "0/minute", "api": "5/day"}, algorithm=algorithm)
    for cost in (0, 1, 100):
        d = limiter.hit("blocked", "x", cost=cost)
        assert (d.allowed, d.remaining, d.retry_after) == (False, 0, math.inf)
    assert not limiter.peek("blocked", "x").allowed
    assert limiter.stats().tiers["blocked"].denied == 3
    if redis_client is not None:
        assert not redis_client.exists("sentia:{rl:blocked:x}:g", "sentia:{rl:blocked:x}:w")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_keys_and_tiers_are_independent(limiter_factory: Factory, algorithm: str) -> None:
    limiter = limiter_factory(
        {"api": "2/day", "auth": "1/day"}, algorithm=algorithm, namespace="contract"
    )
    assert limiter.hit("api", "alice").allowed
    assert limiter.hit("api", "alice").allowed
    assert not limiter.hit("api", "alice").allowed
    assert limiter.hit("api", "bob").allowed
    assert limiter.hit("auth", "alice").allowed
    assert not limiter.hit("auth", "alice").allowed
    assert limiter.hit("api").allowed  # the shared "" key
    other = limiter_factory({"api": "2/day"}, algorithm=algorithm, namespace="other")
    assert other.hit("api", "alice").remaining == 1


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_reset_forgets_a_key(limiter_factory: Factory, algorithm: str) -> None:
    limiter = limiter_factory({"api": "1/day"}, algorithm=algorithm)
    assert limiter.hit("api", "u").allowed
    assert not limiter.hit("api", "u").allowed
    assert limiter.reset("api", "u") is True
    assert limiter.hit("api", "u").allowed
    assert limiter.reset("api", "never-seen") is False


def test_stats_count_hits_per_tier(limiter_factory: Factory) -> None:
    limiter = limiter_factory({"api": "2/day", "auth": "1/day"})
    for _ in range(3):
        limiter.hit("api", "u")
    limiter.hit("auth", "u")
    limiter.peek("auth", "u")
    stats = limiter.stats()
    assert (stats.decisions, stats.allowed, stats.denied) == (4, 3, 1)
    assert stats.tiers["api"].allowed == 2 and stats.tiers["api"].denied == 1
    assert stats.tiers["auth"].decisions == 1
    assert stats.redis_errors == 0 and stats.fail_open_decisions == 0
    assert stats.algorithm == "gcra"
    assert stats.backend in {"memory", "redis"}


def test_decorator_raises_rate_limit_exceeded(limiter_factory: Factory) -> None:
    limiter = limiter_factory({"partner": "2/day"})
    calls: list[str] = []

    @limiter.limit("partner", key=lambda shop, **_: f"shop:{shop}")
    def fetch(shop: str, *, page: int = 1) -> str:
        calls.append(shop)
        return f"{shop}:{page}"

    assert fetch("a", page=2) == "a:2"
    assert fetch("a") == "a:1"
    with pytest.raises(RateLimitExceeded) as err:
        fetch("a")
    assert (err.value.tier, err.value.key) == ("partner", "shop:a")
    assert err.value.retry_after > 0
    assert fetch("b") == "b:1"
    assert calls == ["a", "a", "b"]


def test_bad_calls_raise_config_error(limiter_factory: Factory) -> None:
    limiter = limiter_factory({"api": "2/day"})
    with pytest.raises(ConfigError) as err:
        limiter.hit("nope", "u")
    assert err.value.parameter == "tier"
    for cost in (-1, 1.0, True, "1", None):
        with pytest.raises(ConfigError) as err:
            limiter.hit("api", "u", cost=cost)  # type: ignore[arg-type]
        assert err.value.parameter == "cost"
        with pytest.raises(ConfigError):
            limiter.peek("api", "u", cost=cost)  # type: ignore[arg-type]
    assert limiter.stats().decisions == 0


@pytest.mark.parametrize("key", ["a}b{c", "{x}", "ü\n\t ", "", "k" * 500, "1.2.3.4:80"])
def test_any_key_string_is_just_a_key(limiter_factory: Factory, key: str) -> None:
    limiter = limiter_factory({"api": "2/day"})
    assert [limiter.hit("api", key).allowed for _ in range(3)] == [True, True, False]
    assert limiter.hit("api", key + "-other").allowed
    assert limiter.stats().redis_errors == 0
