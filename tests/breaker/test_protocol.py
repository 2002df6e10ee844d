"""One ``BreakerLike`` for the cache, the registry and Policy: a foreign breaker fits all three."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import fakeredis

from sentia_core import Policy, ServiceRegistry, TieredCache, breaker, policies, registry
from sentia_core.breaker import BreakerLike, BreakerState, CircuitBreaker

T = TypeVar("T")


class CountingBreaker:
    """Not a CircuitBreaker: counts the calls it lets through."""

    def __init__(self, name: str = "mine") -> None:
        self.name = name
        self.state = BreakerState.CLOSED
        self.calls = 0

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        self.calls += 1
        return fn(*args, **kwargs)

    async def call_async(self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        self.calls += 1
        return await fn(*args, **kwargs)


def test_the_protocol_is_one_object_everywhere() -> None:
    assert policies.BreakerLike is breaker.BreakerLike is registry.BreakerLike
    assert isinstance(CircuitBreaker("x"), BreakerLike)
    assert isinstance(CountingBreaker(), BreakerLike)


def test_policy_calls_through_a_foreign_breaker() -> None:
    mine = CountingBreaker()
    policy = Policy(name="p", breaker=mine)
    assert policy(lambda: 41 + 1)() == 42
    assert mine.calls == 1


def test_cache_guards_redis_with_a_foreign_breaker() -> None:
    mine = CountingBreaker()
    cache = TieredCache(redis=fakeredis.FakeRedis(), breaker=mine, invalidation=False)
    try:
        cache.set("k", 1)  # written through to Redis, through the breaker
        assert mine.calls >= 1
        assert cache.get("k") == 1
    finally:
        cache.close()


def test_registry_builds_foreign_breakers_per_instance() -> None:
    made: list[CountingBreaker] = []

    def factory(name: str) -> CountingBreaker:
        made.append(CountingBreaker(name))
        return made[-1]

    reg = ServiceRegistry(breaker_factory=factory)
    try:
        reg.register("svc", "127.0.0.1:1")
        assert reg.call("svc", lambda inst: inst.address) == "127.0.0.1:1"
        assert [b.calls for b in made] == [1]
    finally:
        reg.close()
