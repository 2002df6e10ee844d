"""What an ``OOM`` reply means to each component (issue 12, item 10).

The decisions are in the failure table of docs/operations.md; the rate
limiter's is in test_limiter_hostile.py. Each test fills a private server
past a ``maxmemory`` set afterwards, so every write that may grow memory is
refused while reads and deletes still work.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from sentia_core.breaker import CircuitBreaker, RedisStateStore
from sentia_core.cache import TieredCache
from sentia_core.registry import ServiceRegistry
from sentia_core.testing import ManualClock
from tests._servers import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
def client() -> Iterator[Any]:
    server = RedisServer("--maxmemory-policy", "noeviction")
    c = redis.Redis(host="127.0.0.1", port=server.port)
    yield c
    c.close()
    server.stop()


def _fill(client: Any) -> None:
    client.set("fill", b"x" * (4 * 1024 * 1024))
    client.config_set("maxmemory", str(1024 * 1024))
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        client.set("probe", b"1")


def test_the_cache_treats_oom_as_an_answer_and_keeps_no_stale_value(client: Any) -> None:
    cache = TieredCache(redis=client, namespace="o", invalidation=False, max_items=0)
    try:
        cache.set("k", "old")
        _fill(client)
        cache.set("k", "new")  # refused: the old value is removed, not kept
        assert cache.get("k") is None
        assert cache.get_or_set("k", lambda: "loaded") == "loaded"
        s = cache.stats()
        assert s.backend_errors >= 1 and not s.degraded and s.redis is not None
        assert s.redis.breaker == "closed"  # Redis answered: not an outage
        client.config_set("maxmemory", "0")
        cache.set("k", "again")
        assert cache.get("k") == "again"
    finally:
        cache.close()


def test_a_registration_refused_for_oom_stays_pending_and_completes(client: Any) -> None:
    clock = ManualClock()
    registry = ServiceRegistry(
        redis=client, refresh_interval=3600, health_check_interval=3600, clock=clock
    )
    try:
        first = registry.register("svc", "10.0.0.1:80")
        _fill(client)
        registry.register("svc", "10.0.0.2:80")  # no exception to the caller
        assert registry.stats().pending_registrations == 1
        assert first.id in {i.id for i in registry._backend.instances("svc")}  # reads work
        client.config_set("maxmemory", "0")
        clock.advance(60)
        registry.run_once()
        assert registry.stats().pending_registrations == 0
        assert len(registry._backend.instances("svc")) == 2
    finally:
        registry.close()


def test_a_shared_breaker_decides_locally_while_its_writes_are_refused(client: Any) -> None:
    clock = ManualClock()
    store = RedisStateStore(client, clock=clock)
    breaker = CircuitBreaker("b", state_store=store, consecutive_failures=2, clock=clock)
    assert breaker.call(lambda: "ok") == "ok"
    _fill(client)
    for _ in range(2):
        with contextlib.suppress(RuntimeError):
            breaker.call(_boom)
    m = breaker.metrics()
    assert m.shared_state == "unavailable" and m.store_errors >= 1
    assert breaker.state.value == "open"  # the local window still trips it


def _boom() -> None:
    raise RuntimeError("down")
