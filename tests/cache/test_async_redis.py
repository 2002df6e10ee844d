"""AsyncTieredCache with Redis: what only the async twin has (the contract suite
covers the shared API on fakeredis, a real server and the cluster)."""

from __future__ import annotations

import asyncio
from typing import Any

import fakeredis
import pytest

from sentia_core.cache import AsyncTieredCache, TieredCache
from sentia_core.errors import ConfigError
from sentia_core.testing import ManualClock
from tests.waiting import async_eventually as eventually


def _fake() -> Any:
    return fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())


class TestLifecycle:
    async def test_the_listener_task_starts_on_first_use_and_stops_on_aclose(self) -> None:
        cache = AsyncTieredCache(redis=_fake(), namespace="life")
        assert cache._redis._task is None
        await cache.set("k", 1)
        task = cache._redis._task
        assert task is not None
        assert not task.done()
        assert cache.stats().redis.channel_up  # type: ignore[union-attr]
        await cache.aclose()
        assert task.done()
        assert cache.degraded  # no listener: L1 entries now live at most disconnected_ttl
        assert await cache.get("k") == 1

    async def test_async_with_starts_and_stops_it(self) -> None:
        async with AsyncTieredCache(redis=_fake(), namespace="ctx") as cache:
            assert cache.stats().redis.channel_up  # type: ignore[union-attr]
            task = cache._redis._task
        assert task is not None
        assert task.done()


class TestLoaders:
    async def test_get_or_set_takes_async_and_plain_loaders(self) -> None:
        async with AsyncTieredCache(redis=_fake()) as cache:

            async def fetch() -> str:
                return "async"

            assert await cache.get_or_set("a", fetch) == "async"
            assert await cache.get_or_set("b", lambda: "plain") == "plain"
            assert await cache.get_many(["a", "b"]) == {"a": "async", "b": "plain"}

    async def test_fifty_tasks_missing_one_key_run_the_loader_once(self) -> None:
        async with AsyncTieredCache(redis=_fake()) as cache:
            calls: list[int] = []
            gate = asyncio.Event()

            async def slow() -> int:
                calls.append(1)
                await gate.wait()
                return 42

            tasks = [asyncio.create_task(cache.get_or_set("k", slow)) for _ in range(50)]
            assert await eventually(lambda: cache.stats().coalesced == 49)
            gate.set()
            assert await asyncio.gather(*tasks) == [42] * 50
            assert calls == [1]

    async def test_cached_decorates_coroutine_functions_only(self) -> None:
        cache = AsyncTieredCache(redis=_fake())

        def sync_fn(x: int) -> int:
            return x

        with pytest.raises(ConfigError) as err:
            cache.cached(ttl=5)(sync_fn)
        assert err.value.parameter == "function"

        @cache.cached(ttl=5, tags=("sq",))
        async def square(x: int) -> int:
            return x * x

        assert await square(4) == 16
        assert await square.invalidate(4) is True
        assert await cache.invalidate_tags("sq") == 0
        await cache.aclose()

    async def test_a_held_distributed_lock_makes_a_task_poll_then_load(self) -> None:
        raw = _fake()
        clock = ManualClock()
        cache = AsyncTieredCache(
            redis=raw, namespace="lk", distributed_lock=True, lock_wait=0.5, clock=clock
        )
        await raw.set(b"lk:l:{k}", b"another-process", px=60_000)
        assert await cache.get_or_set("k", lambda: "mine") == "mine"
        assert sum(clock.sleeps) >= 0.5  # polled on the cache's clock, never a real wait
        assert await raw.get(b"lk:l:{k}") == b"another-process"
        await cache.aclose()


class TestDegradation:
    async def test_an_unreachable_redis_never_raises_and_opens_the_breaker(self) -> None:
        cache = AsyncTieredCache(redis="redis://127.0.0.1:1/0", namespace="down")
        for i in range(5):
            await cache.set(f"k{i}", i)
            assert await cache.get(f"k{i}") == i  # from the L1
            assert await cache.get_or_set(f"x{i}", lambda: "loaded") == "loaded"
            assert await cache.get_many([f"k{i}", "nope"]) == {f"k{i}": i}
            assert await cache.invalidate_tags("t") == 0
        s = cache.stats()
        assert s.degraded
        assert s.backend_errors >= 3
        assert s.backend_skipped > 0  # the breaker opened: later calls skipped Redis at once
        await cache.aclose()


@pytest.mark.redis
async def test_sync_and_async_caches_share_redis_and_invalidations(redis_url: str) -> None:
    sync_cache = await asyncio.to_thread(TieredCache, redis=redis_url, namespace="both")
    async with AsyncTieredCache(redis=redis_url, namespace="both") as async_cache:
        await async_cache.set("p", {"name": "widget"}, tags=("products",))
        assert await asyncio.to_thread(sync_cache.get, "p") == {"name": "widget"}
        assert await async_cache.get("p") == {"name": "widget"}  # L1
        await asyncio.to_thread(sync_cache.invalidate_tags, "products")
        assert await eventually(lambda: "p" not in async_cache._core.layer.data)
        assert await async_cache.get("p") is None
    await asyncio.to_thread(sync_cache.close)
