"""RateLimiter: construction checks, decisions as values, the decorator, events, memory bounds."""

from __future__ import annotations

import math
import pickle
from typing import Any

import pytest

from sentia_core.errors import ConfigError, RateLimitExceeded
from sentia_core.policies._ratelimit import (
    Rate,
    RateDecision,
    RateLimitDenied,
    RateLimiter,
    RateLimiterStats,
)
from sentia_core.testing import ManualClock

# -- construction ---------------------------------------------------------------


def test_the_original_specs_tiers() -> None:
    limiter = RateLimiter({"api": "1000/15min", "auth": "50/15min", "admin": "200/15min"})
    assert limiter.tiers == {
        "api": Rate(1000, 900.0),
        "auth": Rate(50, 900.0),
        "admin": Rate(200, 900.0),
    }
    assert limiter.algorithm == "gcra"
    assert "api" in repr(limiter) and "1000/15min" in repr(limiter)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"tiers": {}}, "tiers"),
        ({"tiers": ["api"]}, "tiers"),
        ({"tiers": {"": "1/s"}}, "tiers"),
        ({"tiers": {"api": "lots/minute"}}, "tiers['api']"),
        ({"tiers": {"api": "10/fortnight"}}, "tiers['api']"),
        ({"tiers": {"api": 10}}, "tiers['api']"),
        ({"algorithm": "leaky_bucket"}, "algorithm"),
        ({"namespace": ""}, "namespace"),
        ({"namespace": "a{b}"}, "namespace"),
        ({"fail_open": "yes"}, "fail_open"),
        ({"clock": object()}, "clock"),
        ({"max_keys": 1}, "max_keys"),
        ({"max_keys": 10.5}, "max_keys"),
        ({"burst": 0}, "burst"),
        ({"burst": 2.5}, "burst"),
        ({"burst": {"nope": 3}}, "burst"),
        ({"burst": {"api": 0}}, "burst['api']"),
        ({"burst": 3, "algorithm": "sliding_window"}, "burst"),
        ({"cluster": 1}, "cluster"),
        ({"fail_closed_retry_after": 0}, "fail_closed_retry_after"),
        ({"fail_closed_retry_after": math.inf}, "fail_closed_retry_after"),
        ({"redis_backoff": -1}, "redis_backoff"),
        ({"name": ""}, "name"),
        ({"redis": "localhost:6379"}, "redis"),
    ],
)
def test_invalid_configuration_names_the_parameter(kwargs: dict[str, Any], parameter: str) -> None:
    tiers = kwargs.pop("tiers", {"api": "10/second"})
    with pytest.raises(ConfigError) as err:
        RateLimiter(tiers, **kwargs)
    assert err.value.parameter == parameter
    assert isinstance(err.value, ValueError)


# -- decisions are values ----------------------------------------------------------


def test_a_decision_is_a_frozen_named_value() -> None:
    d = RateDecision.of(
        allowed=True, remaining=3, retry_after=0.0, reset_after=1.5, tier="api", key="k"
    )
    assert (d.allowed, d.remaining, d.retry_after, d.reset_after, d.tier, d.key) == (
        True,
        3,
        0.0,
        1.5,
        "api",
        "k",
    )
    assert bool(d) and not bool(RateDecision((False, 0, 1.0, 1.0, "api", "k")))
    assert repr(d).startswith("RateDecision(allowed=True, remaining=3")
    assert pickle.loads(pickle.dumps(d)) == d
    with pytest.raises(AttributeError):
        d.allowed = False  # type: ignore[misc]
    with pytest.raises(AttributeError):
        d.extra = 1  # type: ignore[attr-defined]
    assert not hasattr(d, "__dict__")


def test_stats_are_a_frozen_snapshot() -> None:
    limiter = RateLimiter({"api": "1/hour"})
    before = limiter.stats()
    limiter.hit("api")
    assert isinstance(before, RateLimiterStats) and before.decisions == 0
    assert limiter.stats().decisions == 1
    with pytest.raises(AttributeError):
        before.decisions = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        before.tiers["api"] = None  # type: ignore[index]


# -- the decorator -------------------------------------------------------------------


def test_block_waits_on_the_clock_then_runs() -> None:
    clock = ManualClock()
    limiter = RateLimiter({"partner": "2/second"}, clock=clock)

    @limiter.limit("partner", block=True, max_wait=5.0)
    def call(n: int) -> int:
        return n * 2

    assert [call(i) for i in range(5)] == [0, 2, 4, 6, 8]
    assert clock.sleeps == pytest.approx([0.5, 0.5, 0.5])
    assert limiter.stats().denied == 3 and limiter.stats().allowed == 5


def test_block_raises_at_once_when_the_wait_would_exceed_max_wait() -> None:
    clock = ManualClock()
    limiter = RateLimiter({"partner": "1/minute"}, clock=clock)

    @limiter.limit("partner", block=True, max_wait=10.0)
    def call() -> str:
        return "ok"

    assert call() == "ok"
    with pytest.raises(RateLimitExceeded) as err:
        call()
    assert err.value.retry_after == pytest.approx(60.0)
    assert clock.sleeps == []


class _RacyClock(ManualClock):
    """Each sleep ends with another caller taking the token the sleeper waited for."""

    steal: Any = None

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.steal()


def test_block_gives_up_when_contention_uses_the_budget() -> None:
    clock = _RacyClock()
    limiter = RateLimiter({"partner": "1/second"}, clock=clock)
    clock.steal = lambda: limiter.hit("partner")
    limiter.hit("partner")

    @limiter.limit("partner", block=True, max_wait=2.5)
    def call() -> str:
        return "ok"

    with pytest.raises(RateLimitExceeded):
        call()
    assert clock.sleeps == pytest.approx([1.0, 1.0])  # a third 1 s wait would pass 2.5 s


def test_never_satisfiable_calls_raise_even_when_blocking() -> None:
    clock = ManualClock()
    limiter = RateLimiter({"partner": "3/second", "off": "0/second"}, clock=clock)

    @limiter.limit("partner", cost=4, block=True)
    def big() -> None: ...

    @limiter.limit("off", block=True)
    def disabled() -> None: ...

    for fn in (big, disabled):
        with pytest.raises(RateLimitExceeded) as err:
            fn()
        assert math.isinf(err.value.retry_after)
    assert clock.sleeps == []


async def test_async_block_waits_with_async_sleep() -> None:
    clock = ManualClock()
    limiter = RateLimiter({"partner": "2/second"}, clock=clock)

    @limiter.limit("partner", key=lambda shop: shop, block=True)
    async def call(shop: str) -> str:
        return shop

    assert [await call("s") for _ in range(4)] == ["s"] * 4
    assert clock.sleeps == pytest.approx([0.5, 0.5])


def test_the_decorator_keeps_the_function_identity() -> None:
    limiter = RateLimiter({"api": "1/s"})

    @limiter.limit("api")
    def documented() -> None:
        """Docs."""

    assert documented.__name__ == "documented" and documented.__doc__ == "Docs."


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"tier": "nope"}, "tier"),
        ({"key": 42}, "key"),
        ({"cost": -1}, "cost"),
        ({"cost": 1.5}, "cost"),
        ({"block": "yes"}, "block"),
        ({"max_wait": -1}, "max_wait"),
        ({"max_wait": math.nan}, "max_wait"),
    ],
)
def test_the_decorator_checks_its_arguments_at_decoration(
    kwargs: dict[str, Any], parameter: str
) -> None:
    limiter = RateLimiter({"api": "1/s"})
    tier = kwargs.pop("tier", "api")
    with pytest.raises(ConfigError) as err:
        limiter.limit(tier, **kwargs)
    assert err.value.parameter == parameter


# -- events ----------------------------------------------------------------------------


def test_denials_are_events_for_listeners_only() -> None:
    clock = ManualClock()
    limiter = RateLimiter({"api": "1/minute"}, clock=clock, name="edge")
    limiter.hit("api", "k")
    limiter.hit("api", "k")  # denied, nobody listens: nothing built
    seen: list[Any] = []
    unsubscribe = limiter.listeners.add(seen.append)
    limiter.hit("api", "k")
    limiter.peek("api", "k")  # peeks are not events

    @limiter.limit("api", key="k")
    def call() -> None: ...

    with pytest.raises(RateLimitExceeded):
        call()
    unsubscribe()
    limiter.hit("api", "k")
    assert len(seen) == 2
    event = seen[0]
    assert isinstance(event, RateLimitDenied)
    assert (event.source, event.tier, event.key) == ("ratelimiter:edge", "api", "k")
    assert event.retry_after == pytest.approx(60.0)
    assert event.at == clock.time()


def test_a_failing_listener_does_not_break_the_limiter() -> None:
    limiter = RateLimiter({"api": "0/minute"})

    def broken(event: object) -> None:
        raise RuntimeError("listener bug")

    limiter.listeners.add(broken)
    assert not limiter.hit("api").allowed
    assert limiter.listeners.errors == 1


# -- memory stays bounded --------------------------------------------------------------


def test_memory_never_holds_more_than_max_keys() -> None:
    clock = ManualClock()
    limiter = RateLimiter({"api": "5/hour"}, clock=clock, max_keys=100)
    for i in range(1000):
        limiter.hit("api", f"ip{i}")
        assert limiter.stats().keys <= 100
    stats = limiter.stats()
    assert stats.evictions >= 800  # every dropped key still held state
    assert stats.expired == 0


def test_a_key_touched_every_generation_keeps_its_state_under_churn() -> None:
    clock = ManualClock()
    limiter = RateLimiter({"api": "3/hour"}, clock=clock, max_keys=20)
    for _ in range(3):
        limiter.hit("api", "hot")
    for i in range(200):
        limiter.peek("api", "hot")  # a touch: moves it to the young generation
        limiter.hit("api", f"churn{i}")
        assert not limiter.peek("api", "hot").allowed


def test_idle_keys_expire_without_changing_any_decision() -> None:
    clock = ManualClock()
    limiter = RateLimiter({"api": "2/minute"}, clock=clock, max_keys=1000)
    for i in range(50):
        limiter.hit("api", f"ip{i}")
        limiter.hit("api", f"ip{i}")
    assert limiter.stats().keys == 50
    clock.advance(61.0)  # every bucket has refilled: the states are idle
    limiter.hit("api", "newcomer")  # a miss triggers the rotation
    clock.advance(61.0)
    limiter.hit("api", "another")
    stats = limiter.stats()
    assert stats.keys == 2 and stats.expired == 50 and stats.evictions == 0
    assert limiter.hit("api", "ip0").remaining == 1  # a full bucket, as it should be


def test_sliding_window_states_expire_after_two_periods() -> None:
    clock = ManualClock()
    limiter = RateLimiter({"api": "2/minute"}, clock=clock, algorithm="sliding_window")
    limiter.hit("api", "a")
    clock.advance(121.0)
    limiter.hit("api", "b")
    clock.advance(121.0)
    limiter.hit("api", "c")
    assert limiter.stats().keys == 2 and limiter.stats().expired == 1
