"""Redis failing under a TieredCache: killed, restarted, hung (SIGSTOP), full.

Each test runs its own private redis-server. Callers must never see an
exception, an acknowledged invalidation must never be undone, and the L2 must
be used again once Redis is back. Waits are polls with generous deadlines on
real events (a breaker opening, a subscription returning); no duration is
asserted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from sentia_core.breaker import CircuitBreaker
from sentia_core.cache import TieredCache
from sentia_core.cache._redis_backend import _record_exceptions
from tests._servers import RedisServer
from tests.waiting import eventually

pytestmark = pytest.mark.redis


@pytest.fixture
def server() -> Iterator[RedisServer]:
    s = RedisServer()
    yield s
    s.stop()


def _cache(url: str, **kw: Any) -> TieredCache:
    """A cache tuned to notice and recover quickly (the defaults are 3 / 5 s / 1 s)."""
    breaker = CircuitBreaker(
        "redis",
        consecutive_failures=3,
        failure_rate_threshold=None,
        reset_timeout=0.3,
        record_exceptions=_record_exceptions(),
    )
    return TieredCache(
        redis=url,
        namespace="f",
        breaker=breaker,
        heartbeat_interval=0.2,
        disconnected_ttl=0.5,
        **kw,
    )


class Load:
    """Threads hammering a cache with every kind of call; they collect any exception."""

    def __init__(self, cache: TieredCache, threads: int = 4) -> None:
        self.cache = cache
        self.errors: list[BaseException] = []
        self.ops = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]
        for t in self._threads:
            t.start()

    def _run(self, n: int) -> None:
        cache = self.cache
        i = 0
        while not self._stop.is_set():
            key = f"k{(i * 7 + n) % 40}"
            try:
                assert cache.get_or_set(key, lambda k=key: f"value of {k}") == f"value of {key}"
                cache.get(key)
                cache.set(f"w{i % 20}", i, tags=("writes",))
                cache.get_many([key, f"w{i % 20}", "absent"])
                if i % 25 == 0:
                    cache.invalidate_tags("writes")
                if i % 40 == 0:
                    cache.invalidate_pattern("w1*")
                cache.delete(f"w{(i + 10) % 20}")
            except BaseException as exc:
                self.errors.append(exc)
            self.ops += 1
            i += 1

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)


def _hits(cache: TieredCache) -> int:
    return cache.stats().backend_hits


def test_a_killed_redis_costs_callers_nothing_and_is_used_again_after_restart(
    server: RedisServer,
) -> None:
    cache = _cache(server.url)
    load = Load(cache)
    try:
        assert eventually(lambda: _hits(cache) > 20)
        server.kill()
        assert eventually(lambda: cache.degraded)
        skipped = cache.stats().backend_skipped
        assert eventually(lambda: cache.stats().backend_skipped > skipped + 100)
        server.start()
        assert eventually(lambda: not cache.degraded)
        hits = _hits(cache)
        assert eventually(lambda: _hits(cache) > hits + 20)  # the L2 serves again
    finally:
        load.stop()
        cache.close()
    assert load.errors == []
    assert load.ops > 0


def test_a_hung_redis_costs_callers_one_timeout_then_nothing(server: RedisServer) -> None:
    cache = _cache(server.url)
    load = Load(cache)
    try:
        assert eventually(lambda: _hits(cache) > 20)
        server.pause()  # SIGSTOP: sockets stay open, nothing answers
        assert eventually(lambda: cache.degraded)
        s = cache.stats()
        assert s.redis is not None
        assert s.redis.breaker in ("open", "half_open")
        assert eventually(lambda: not cache.stats().redis.channel_up)  # type: ignore[union-attr]
        server.resume()
        assert eventually(lambda: not cache.degraded)
        hits = _hits(cache)
        assert eventually(lambda: _hits(cache) > hits + 20)
    finally:
        server.resume()
        load.stop()
        cache.close()
    assert load.errors == []


def test_an_acknowledged_invalidation_is_never_undone_by_an_outage(server: RedisServer) -> None:
    a = _cache(server.url)
    b = _cache(server.url)
    raw = server.client()
    try:
        b.set("price", "old")
        assert a.get("price") == "old"
        b.delete("price")  # acknowledged
        assert eventually(lambda: a.get("price") is None)
        b.set("price", "v2")
        assert eventually(lambda: a.get("price") == "v2")
        server.pause()
        b.delete("price")  # not acknowledged: Redis still holds v2 -> journaled
        assert b.get("price") is None
        assert eventually(lambda: a.degraded)  # a noticed: its L1 was cleared, entries capped
        assert a.get("price") is None  # Redis unreachable: a miss, not an exception
        server.resume()
        # b replays its journal (deleting v2 and announcing it) when Redis is back
        assert eventually(lambda: b.stats().redis.pending == 0)  # type: ignore[union-attr]
        assert raw.get(b"f:v:{price}") is None
        assert eventually(lambda: not a.degraded)
        assert a.get("price") is None  # never v2 again
        assert b.get("price") is None
    finally:
        server.resume()
        raw.close()
        a.close()
        b.close()


def test_a_full_redis_refuses_writes_without_leaving_stale_values(server_full: Any) -> None:
    server, raw = server_full
    a = _cache(server.url)
    b = _cache(server.url)
    try:
        b.set("k", "v1", tags=("t",))
        assert a.get("k") == "v1"
        _fill(raw)
        b.set("k", "v2", tags=("t",))  # OOM: refused, and v1 removed from Redis
        assert raw.get(b"f:v:{k}") is None
        assert b.get("k") == "v2"  # b's L1 has the value its caller wrote
        assert eventually(lambda: a.get("k") is None)  # a stops serving v1
        assert b.get_or_set("loaded", lambda: "from the loader") == "from the loader"
        assert a.get("k") is None
        assert b.delete("k") is True  # deletes are answered at maxmemory (b's L1 held v2)
        assert b.get("k") is None
        assert b.invalidate_tags("t") == 0  # ...and so are tag drains
        s = b.stats()
        assert s.backend_errors >= 2
        assert s.degraded is False  # Redis answered: an error reply is not an outage
        raw.config_set("maxmemory", "64mb")  # memory is back
        b.set("k", "v3")
        assert a.get("k") == "v3"  # through Redis again
    finally:
        a.close()
        b.close()


@pytest.fixture
def server_full() -> Iterator[tuple[RedisServer, Any]]:
    s = RedisServer("--maxmemory", "64mb", "--maxmemory-policy", "noeviction")
    raw = s.client()
    yield s, raw
    raw.close()
    s.stop()


def _fill(raw: Any) -> None:
    """Over maxmemory (noeviction): every write is refused with OOM from now on."""
    blob = b"x" * 64 * 1024
    for i in range(40):
        raw.set(f"ballast:{i}", blob)
    raw.config_set("maxmemory", "1mb")
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        raw.set("one more", b"x")
