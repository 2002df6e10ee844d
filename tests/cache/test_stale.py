"""Fail-safe and stale-while-revalidate within ``stale_ttl``."""

from __future__ import annotations

import asyncio
import threading

import pytest

from sentia_core.cache import TieredCache
from sentia_core.errors import ConfigError
from sentia_core.testing import ManualClock

WAIT = 10.0


def _down() -> str:
    raise ConnectionError("database down")


class TestFailSafe:
    def test_an_expired_value_is_served_when_the_loader_fails(self, clock: ManualClock) -> None:
        cache = TieredCache(ttl=10, stale_ttl=60, clock=clock)
        cache.set("k", "last good")
        clock.advance(15)
        assert cache.get("k") is None  # plain reads never see stale values
        assert cache.get_or_set("k", _down) == "last good"
        s = cache.stats()
        assert (s.stale_served, s.loader_errors) == (1, 1)

    def test_a_working_loader_replaces_the_stale_value(self, clock: ManualClock) -> None:
        cache = TieredCache(ttl=10, stale_ttl=60, clock=clock)
        cache.set("k", "old")
        clock.advance(15)
        assert cache.get_or_set("k", lambda: "fresh") == "fresh"
        assert cache.get("k") == "fresh"
        assert cache.stats().stale_served == 0

    def test_past_stale_ttl_the_error_propagates(self, clock: ManualClock) -> None:
        cache = TieredCache(ttl=10, stale_ttl=60, clock=clock)
        cache.set("k", "old")
        clock.advance(70)
        with pytest.raises(ConnectionError):
            cache.get_or_set("k", _down)

    def test_without_stale_ttl_the_error_propagates(self, clock: ManualClock) -> None:
        cache = TieredCache(ttl=10, clock=clock)
        cache.set("k", "old")
        clock.advance(11)
        with pytest.raises(ConnectionError):
            cache.get_or_set("k", _down)

    def test_waiters_of_a_failing_load_get_the_stale_value_too(self, clock: ManualClock) -> None:
        cache = TieredCache(ttl=10, stale_ttl=60, clock=clock)
        cache.set("k", "stale")
        clock.advance(11)
        started, release = threading.Event(), threading.Event()

        def failing() -> str:
            started.set()
            assert release.wait(WAIT)
            raise ConnectionError("down")

        results: list[str] = []
        leader = threading.Thread(target=lambda: results.append(cache.get_or_set("k", failing)))
        leader.start()
        assert started.wait(WAIT)
        waiter = threading.Thread(target=lambda: results.append(cache.get_or_set("k", failing)))
        waiter.start()
        for _ in range(100_000):
            if cache.stats().coalesced == 1:
                break
            release.wait(0.0005)
        release.set()
        leader.join(WAIT)
        waiter.join(WAIT)
        assert results == ["stale", "stale"]
        assert cache.stats().stale_served == 2

    def test_decorated_functions_are_fail_safe_too(self, clock: ManualClock) -> None:
        cache = TieredCache(ttl=10, stale_ttl=60, clock=clock)
        up = [True]

        @cache.cached
        def price(sku: str) -> float:
            if not up[0]:
                raise ConnectionError("pricing down")
            return 9.99

        assert price("a") == 9.99
        up[0] = False
        clock.advance(30)
        assert price("a") == 9.99


class TestStaleWhileRevalidate:
    def test_needs_a_stale_window(self) -> None:
        with pytest.raises(ConfigError) as err:
            TieredCache(stale_while_revalidate=True)
        assert err.value.parameter == "stale_while_revalidate"

    def test_the_stale_value_is_served_at_once_and_refreshed_in_the_background(
        self, clock: ManualClock
    ) -> None:
        cache = TieredCache(ttl=10, stale_ttl=60, stale_while_revalidate=True, clock=clock)
        cache.set("k", "v1")
        clock.advance(11)
        started, release = threading.Event(), threading.Event()
        calls: list[int] = []

        def refresh() -> str:
            calls.append(1)
            started.set()
            assert release.wait(WAIT)
            return "v2"

        assert cache.get_or_set("k", refresh) == "v1"  # immediately, no waiting
        assert started.wait(WAIT)
        assert cache.get_or_set("k", refresh) == "v1"  # still refreshing: no second run
        release.set()
        cache.close()  # waits for background refreshes
        assert calls == [1]
        assert cache.get("k") == "v2"
        assert cache.stats().stale_served == 2

    def test_a_failing_background_refresh_keeps_the_stale_value(self, clock: ManualClock) -> None:
        cache = TieredCache(ttl=10, stale_ttl=60, stale_while_revalidate=True, clock=clock)
        cache.set("k", "v1")
        clock.advance(11)
        assert cache.get_or_set("k", _down) == "v1"
        cache.close()
        assert cache.get_or_set("k", _down) == "v1"
        cache.close()
        assert cache.stats().loader_errors == 2

    async def test_async_functions_refresh_in_a_task(self, clock: ManualClock) -> None:
        cache = TieredCache(ttl=10, stale_ttl=60, stale_while_revalidate=True, clock=clock)
        version = [1]
        gate = asyncio.Event()

        @cache.cached
        async def config() -> int:
            if version[0] > 1:
                await gate.wait()
            return version[0]

        assert await config() == 1
        clock.advance(11)
        version[0] = 2
        assert await config() == 1
        gate.set()
        for _ in range(10_000):
            if not cache._tasks:
                break
            await asyncio.sleep(0)
        assert not cache._tasks
        assert await config() == 2


def test_background_refreshes_are_bounded(clock: ManualClock) -> None:
    from sentia_core.cache._core import MAX_REFRESHES

    cache = TieredCache(ttl=10, stale_ttl=60, stale_while_revalidate=True, clock=clock)
    keys = [f"k{i}" for i in range(MAX_REFRESHES + 3)]
    cache.set_many(dict.fromkeys(keys, "old"))
    clock.advance(11)
    release = threading.Event()
    started: list[str] = []
    lock = threading.Lock()

    def loader_for(key: str):  # type: ignore[no-untyped-def]
        def load() -> str:
            with lock:
                started.append(key)
            assert release.wait(WAIT)
            return "new"

        return load

    served = [cache.get_or_set(k, loader_for(k)) for k in keys]
    assert served == ["old"] * len(keys)
    release.set()
    cache.close()
    assert len(started) == MAX_REFRESHES  # the rest were served stale, not refreshed
    assert cache._core.refreshing == 0
    assert [cache.get_or_set(k, loader_for(k)) for k in keys[-3:]] == ["old"] * 3
    cache.close()
    assert cache.get_many(keys) == dict.fromkeys(keys, "new")
