"""Single-flight: one loader run per missing key, for threads and asyncio tasks.

Loaders block on Events so that every caller is provably inside the cache
before the loader finishes; nothing here sleeps or asserts a timing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from sentia_core.cache import TieredCache
from tests.waiting import async_wait_until, wait_until

WAIT = 10.0  # seconds: only a safety net against a hang, never reached when correct


class BlockingLoader:
    """Counts calls; each call blocks until ``release`` is set, then returns or raises."""

    def __init__(self, value: Any = "loaded", error: Exception | None = None) -> None:
        self.calls = 0
        self.lock = threading.Lock()
        self.started = threading.Event()
        self.release = threading.Event()
        self.value = value
        self.error = error

    def __call__(self) -> Any:
        with self.lock:
            self.calls += 1
        self.started.set()
        assert self.release.wait(WAIT)
        if self.error is not None:
            raise self.error
        return self.value


def _stampede(
    cache: TieredCache, loader: Callable[[], Any], n: int, key: str = "k"
) -> tuple[list[threading.Thread], list[Any]]:
    results: list[Any] = []
    barrier = threading.Barrier(n)

    def worker() -> None:
        barrier.wait(WAIT)
        try:
            results.append(cache.get_or_set(key, loader))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    return threads, results


def _join(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.join(WAIT)
        assert not t.is_alive()


class TestThreads:
    def test_a_stampede_runs_the_loader_once_and_everyone_gets_its_value(self) -> None:
        cache = TieredCache()
        loader = BlockingLoader()
        threads, results = _stampede(cache, loader, 16)
        wait_until(lambda: cache.stats().coalesced == 15)
        loader.release.set()
        _join(threads)
        assert loader.calls == 1
        assert results == ["loaded"] * 16
        s = cache.stats()
        assert (s.loader_calls, s.coalesced, s.misses) == (1, 15, 16)
        assert cache.get("k") == "loaded"

    def test_a_failing_loader_reaches_every_waiter_and_caches_nothing(self) -> None:
        cache = TieredCache()
        loader = BlockingLoader(error=LookupError("db down"))
        threads, results = _stampede(cache, loader, 8)
        wait_until(lambda: cache.stats().coalesced == 7)
        loader.release.set()
        _join(threads)
        assert loader.calls == 1
        assert len(results) == 8
        assert all(isinstance(r, LookupError) for r in results)
        assert cache.get("k") is None
        assert cache.stats().loader_errors == 1

    def test_different_keys_load_in_parallel(self) -> None:
        cache = TieredCache()
        a, b = BlockingLoader("A"), BlockingLoader("B")
        ta, ra = _stampede(cache, a, 3, key="a")
        tb, rb = _stampede(cache, b, 3, key="b")
        assert a.started.wait(WAIT)
        assert b.started.wait(WAIT)  # b started while a is still blocked
        a.release.set()
        b.release.set()
        _join(ta + tb)
        assert (ra, rb, a.calls, b.calls) == (["A"] * 3, ["B"] * 3, 1, 1)

    def test_a_loader_asking_for_its_own_key_does_not_deadlock(self) -> None:
        cache = TieredCache()
        depth: list[int] = []

        def loader() -> str:
            depth.append(1)
            if len(depth) == 1:
                inner = cache.get_or_set("k", loader)
                return "outer+" + inner
            return "inner"

        assert cache.get_or_set("k", loader) == "outer+inner"
        assert cache.get("k") == "outer+inner"


class TestNoStaleWriteAfterInvalidation:
    """aiocache#95: a value loaded before an invalidation must not be stored after it."""

    @pytest.mark.parametrize(
        "invalidate",
        [
            lambda c: c.delete("k"),
            lambda c: c.invalidate_tags("t"),
            lambda c: c.invalidate_pattern("k*"),
            lambda c: c.clear(),
        ],
        ids=["delete", "tags", "pattern", "clear"],
    )
    def test_an_invalidation_during_the_load_prevents_the_store(
        self, invalidate: Callable[[TieredCache], object]
    ) -> None:
        cache = TieredCache()
        loader = BlockingLoader("old data")
        result: list[Any] = []
        t = threading.Thread(
            target=lambda: result.append(cache.get_or_set("k", loader, tags=("t",)))
        )
        t.start()
        assert loader.started.wait(WAIT)
        invalidate(cache)
        loader.release.set()
        _join([t])
        assert result == ["old data"]  # the caller still gets its answer
        assert cache.get("k") is None  # but it is not cached
        assert cache.stats().discarded_loads == 1

    def test_an_explicit_set_during_the_load_wins(self) -> None:
        cache = TieredCache()
        loader = BlockingLoader("loaded")
        t = threading.Thread(target=lambda: cache.get_or_set("k", loader))
        t.start()
        assert loader.started.wait(WAIT)
        cache.set("k", "written")
        loader.release.set()
        _join([t])
        assert cache.get("k") == "written"

    def test_callers_after_the_invalidation_do_not_join_the_old_load(self) -> None:
        cache = TieredCache()
        old = BlockingLoader("old")
        new = BlockingLoader("new")
        results: list[Any] = []
        t1 = threading.Thread(target=lambda: results.append(cache.get_or_set("k", old)))
        t1.start()
        assert old.started.wait(WAIT)
        cache.delete("k")
        t2 = threading.Thread(target=lambda: results.append(cache.get_or_set("k", new)))
        t2.start()
        assert new.started.wait(WAIT)  # a fresh load, not a wait on the old one
        new.release.set()
        _join([t2])
        old.release.set()
        _join([t1])
        assert sorted(results) == ["new", "old"]
        assert cache.get("k") == "new"

    def test_an_unrelated_invalidation_does_not_discard(self) -> None:
        cache = TieredCache()
        loader = BlockingLoader("v")
        t = threading.Thread(target=lambda: cache.get_or_set("k", loader, tags=("t",)))
        t.start()
        assert loader.started.wait(WAIT)
        cache.invalidate_tags("other")
        cache.delete("other-key")
        cache.invalidate_pattern("x*")
        loader.release.set()
        _join([t])
        assert cache.get("k") == "v"


class TestAsyncio:
    async def test_a_stampede_of_tasks_runs_the_loader_once(self) -> None:
        cache = TieredCache()
        calls = 0
        gate = asyncio.Event()

        @cache.cached
        async def fetch(x: int) -> int:
            nonlocal calls
            calls += 1
            await gate.wait()
            return x * 10

        tasks = [asyncio.create_task(fetch(7)) for _ in range(20)]
        await async_wait_until(lambda: cache.stats().coalesced >= 19)
        gate.set()
        assert await asyncio.gather(*tasks) == [70] * 20
        assert calls == 1

    async def test_a_failing_coroutine_reaches_every_waiting_task(self) -> None:
        cache = TieredCache()
        gate = asyncio.Event()
        calls = 0

        @cache.cached
        async def fetch() -> int:
            nonlocal calls
            calls += 1
            await gate.wait()
            raise TimeoutError("upstream")

        tasks = [asyncio.create_task(fetch()) for _ in range(5)]
        await async_wait_until(lambda: cache.stats().coalesced >= 4)
        gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, TimeoutError) for r in results)
        assert calls == 1
        assert cache.stats().loader_errors == 1

    async def test_a_cancelled_leader_hands_over_to_a_waiter(self) -> None:
        cache = TieredCache()
        gates = [asyncio.Event(), asyncio.Event()]
        calls = 0

        @cache.cached
        async def fetch() -> str:
            nonlocal calls
            calls += 1
            await gates[calls - 1].wait()
            return f"run {calls}"

        leader = asyncio.create_task(fetch())
        await async_wait_until(lambda: calls > 0)
        waiters = [asyncio.create_task(fetch()) for _ in range(3)]
        await async_wait_until(lambda: cache.stats().coalesced >= 3)
        leader.cancel()
        await async_wait_until(lambda: calls >= 2)
        gates[1].set()
        assert await asyncio.gather(*waiters) == ["run 2"] * 3
        with pytest.raises(asyncio.CancelledError):
            await leader
        assert calls == 2

    async def test_an_invalidation_during_an_async_load_prevents_the_store(self) -> None:
        cache = TieredCache()
        gate = asyncio.Event()
        started = asyncio.Event()

        @cache.cached(tags=("t",))
        async def fetch() -> str:
            started.set()
            await gate.wait()
            return "old"

        task = asyncio.create_task(fetch())
        await started.wait()
        cache.invalidate_tags("t")
        gate.set()
        assert await task == "old"
        assert cache.get(fetch.key_for()) is None

    async def test_a_task_waits_for_a_thread_that_leads(self) -> None:
        cache = TieredCache()
        loader = BlockingLoader("from thread")
        thread = threading.Thread(target=lambda: cache.get_or_set("k", loader))
        thread.start()
        assert await asyncio.to_thread(loader.started.wait, WAIT)

        async def from_task() -> Any:
            return await cache._aload("k", _never, None, ())

        task = asyncio.create_task(from_task())
        await async_wait_until(lambda: cache.stats().coalesced >= 1)
        loader.release.set()
        assert await task == "from thread"
        await asyncio.to_thread(thread.join, WAIT)

    def test_a_thread_waits_for_a_task_that_leads_on_another_loop(self) -> None:
        cache = TieredCache()
        started = threading.Event()
        release = threading.Event()

        async def loader() -> str:
            started.set()
            await asyncio.to_thread(release.wait, WAIT)
            return "from task"

        results: list[Any] = []
        loop_thread = threading.Thread(
            target=lambda: results.append(asyncio.run(cache._aload("k", loader, None, ())))
        )
        loop_thread.start()
        assert started.wait(WAIT)
        waiter = threading.Thread(target=lambda: results.append(cache.get_or_set("k", _boom)))
        waiter.start()
        wait_until(lambda: cache.stats().coalesced == 1)
        release.set()
        _join([loop_thread, waiter])
        assert results == ["from task", "from task"]

    async def test_a_sync_call_inside_the_leading_task_does_not_deadlock(self) -> None:
        cache = TieredCache()
        gate = asyncio.Event()

        async def loader() -> str:
            # blocking call from the loop thread while this task leads: bypasses
            assert cache.get_or_set("k", lambda: "sync") == "sync"
            await gate.wait()
            return "async"

        task = asyncio.create_task(cache._aload("k", loader, None, ()))
        await asyncio.sleep(0)
        gate.set()
        assert await task == "async"


async def _never() -> Any:
    raise AssertionError("a waiter must not run its own loader")


def _boom() -> Any:
    raise AssertionError("a waiter must not run its own loader")
