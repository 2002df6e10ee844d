"""Every Redis-backed component doing everything it does with Redis, once.

Used by the least-privilege test (tests/test_redis_acl.py): run against a
redis-server where the only usable user is the one ``sentia redis-acl``
describes, it must succeed, and afterwards the server's command statistics
and ACL LOG show that nothing outside the generated list was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from sentia_core import CircuitBreaker, Sentia
from sentia_core.breaker import RedisStateStore
from sentia_core.cache import AsyncTieredCache, TieredCache
from sentia_core.errors import CircuitOpenError
from sentia_core.policies import RateLimiter
from sentia_core.registry import ServiceRegistry


def _wait(predicate: Any, seconds: float = 10.0) -> bool:
    done = threading.Event()
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return True
        done.wait(0.02)
    return bool(predicate())


def cache_workload(url: str, namespace: str) -> None:
    """L2 reads/writes, tags, patterns, clear, single-flight lock, and pub/sub invalidation."""
    a = TieredCache(redis=url, namespace=f"{namespace}.cache.default", distributed_lock=True)
    b = TieredCache(redis=url, namespace=f"{namespace}.cache.default")
    try:
        a.set("user:1", {"name": "ada"}, tags=["users"])
        a.set_many({"user:2": 2, "user:3": 3}, tags=["users"])
        assert b.get("user:1") == {"name": "ada"}
        assert b.get_many(["user:2", "user:3"]) == {"user:2": 2, "user:3": 3}
        assert a.get_or_set("loaded", lambda: 41 + 1) == 42
        assert b.get("user:2") == 2  # now in b's L1
        a.delete("user:2")  # announced on the channel: b drops its L1 copy
        assert _wait(lambda: b.get("user:2") is None)
        a.delete_many(["user:3"])
        a.invalidate_tags("users")
        assert _wait(lambda: b.get("user:1") is None)  # b held it in its L1
        a.set("page:1", 1)
        a.invalidate_pattern("page:*")
        assert b.get("page:1") is None
        a.clear()
        assert not a.degraded and not b.degraded, (a.stats(), b.stats())
    finally:
        a.close()
        b.close()


def async_cache_workload(url: str, namespace: str) -> None:
    async def run() -> None:
        cache = AsyncTieredCache(redis=url, namespace=f"{namespace}.cache.async")
        try:
            await cache.set("k", 1, tags=["t"])
            assert await cache.get("k") == 1
            assert await cache.get_many(["k"]) == {"k": 1}
            await cache.invalidate_tags("t")
            await cache.invalidate_pattern("k*")
            await cache.delete("k")
            await cache.clear()
            assert not cache.degraded
        finally:
            await cache.aclose()

    asyncio.run(run())


def limiter_workload(url: str, namespace: str) -> None:
    for algorithm in ("gcra", "sliding_window"):
        limiter = RateLimiter(
            {"api": "3/minute"}, redis=url, namespace=f"{namespace}:ratelimit", algorithm=algorithm
        )
        try:
            allowed = [limiter.hit("api", "caller").allowed for _ in range(4)]
            assert allowed == [True, True, True, False], (algorithm, allowed)
            assert not limiter.peek("api", "caller").allowed
            assert limiter.reset("api", "caller")
            assert limiter.hit("api", "caller").allowed
        finally:
            limiter.close()


def registry_workload(url: str, namespace: str) -> None:
    owner = ServiceRegistry(url, namespace=f"{namespace}:registry", ttl=5, heartbeat_interval=1)
    other = ServiceRegistry(url, namespace=f"{namespace}:registry", ttl=5, heartbeat_interval=1)
    try:
        seen: list[Any] = []
        other.watch("api", lambda *args: seen.append(args))
        owner.start()
        other.start()
        one = owner.register("api", "127.0.0.1:9001", metadata={"v": "1"})
        owner.register("api", "127.0.0.1:9002")
        assert _wait(lambda: len(other.instances("api")) == 2)
        assert "api" in other.services()
        assert other.call("api", lambda inst: inst.address).startswith("127.0.0.1:")
        owner.run_once()
        owner.deregister(one)
        assert _wait(lambda: len(other.instances("api")) == 1)
        assert seen
    finally:
        other.close()
        owner.close()


def breaker_workload(url: str, namespace: str) -> None:
    store = RedisStateStore(url, namespace=namespace)
    try:
        a = CircuitBreaker("partner", consecutive_failures=2, state_store=store)
        b = CircuitBreaker("partner", consecutive_failures=2, state_store=store)
        for _ in range(2):
            with contextlib.suppress(ZeroDivisionError):
                a.call(_fail)
        assert a.state.value == "open"
        try:  # b learns the shared state on its next call
            b.call(lambda: None)
        except CircuitOpenError:
            pass
        else:
            raise AssertionError("the shared breaker did not reject the call")
    finally:
        store.close()


def _fail() -> None:
    raise ZeroDivisionError


def facade_workload(url: str, namespace: str) -> None:
    config = {
        "redis_url": url,
        "namespace": namespace,
        "breakers": {"partner": {"shared": True}},
        "monitor": {"system_metrics": False},
    }
    with Sentia(config) as app:
        app.cache.set("k", 1)
        assert app.cache.get("k") == 1
        assert app.limiter.hit("api", "me").allowed
        app.breaker("partner").call(lambda: None)
        app.registry.register("svc", "127.0.0.1:9100")
        assert app.health().status.value == "healthy", app.health().to_dict()


WORKLOADS = {
    "cache": cache_workload,
    "async_cache": async_cache_workload,
    "limiter": limiter_workload,
    "registry": registry_workload,
    "breaker": breaker_workload,
    "facade": facade_workload,
}
