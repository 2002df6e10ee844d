"""The hit path's promises, checked as behaviour: one clock read, no lock, no event."""

from __future__ import annotations

import threading
from typing import Any

from sentia_core.cache import TieredCache
from sentia_core.testing import ManualClock


class CountingClock(ManualClock):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def monotonic(self) -> float:
        self.reads += 1
        return super().monotonic()


class CountingLock:
    """Stands in for the cache's lock and counts acquisitions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.acquired = 0

    def __enter__(self) -> bool:
        self.acquired += 1
        return self._lock.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._lock.__exit__(*exc)


def _instrumented(**kw: Any) -> tuple[TieredCache, CountingClock, CountingLock]:
    clock = CountingClock()
    cache = TieredCache(clock=clock, **kw)
    lock = CountingLock()
    cache._core.lock = lock  # type: ignore[assignment]
    return cache, clock, lock


def test_a_get_hit_reads_the_clock_once_and_takes_no_lock() -> None:
    cache, clock, lock = _instrumented()
    cache.set("k", "v")
    clock.reads = lock.acquired = 0
    for _ in range(10):
        assert cache.get("k") == "v"
    assert (clock.reads, lock.acquired) == (10, 0)
    assert cache.stats().hits == 10


def test_a_cached_function_hit_reads_the_clock_once_and_takes_no_lock() -> None:
    cache, clock, lock = _instrumented()

    @cache.cached
    def f(x: int) -> int:
        return x

    f(1)
    clock.reads = lock.acquired = 0
    for _ in range(5):
        assert f(1) == 1
    assert (clock.reads, lock.acquired) == (5, 0)


def test_a_get_or_set_hit_reads_the_clock_once_and_takes_no_lock() -> None:
    cache, clock, lock = _instrumented()
    cache.set("k", 1)
    clock.reads = lock.acquired = 0
    assert cache.get_or_set("k", lambda: 2) == 1
    assert (clock.reads, lock.acquired) == (1, 0)


def test_a_write_takes_the_lock_once() -> None:
    cache, clock, lock = _instrumented()
    cache.set("a", 1)
    cache.set("b", 2, ttl=5, tags=("t",))
    cache.set_many({"c": 3, "d": 4})
    assert lock.acquired == 3


def test_hits_build_no_event_objects_even_with_a_listener() -> None:
    cache, _, _ = _instrumented()
    seen: list[object] = []
    cache.add_listener(seen.append)
    cache.set("k", 1)
    for _ in range(5):
        cache.get("k")
    assert seen == []
