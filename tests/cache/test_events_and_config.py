"""Events to listeners, construction-time validation, and the public surface."""

from __future__ import annotations

import math
from typing import Any

import pytest

import sentia_core.cache as cache_pkg
from sentia_core._events import Event
from sentia_core.cache import (
    CacheEviction,
    CacheFault,
    CacheInvalidation,
    EvictionPolicy,
    LRUPolicy,
    TieredCache,
    TinyLFUPolicy,
)
from sentia_core.errors import ConfigError
from sentia_core.testing import ManualClock


class TestEvents:
    def test_evictions_carry_their_reason(self, clock: ManualClock) -> None:
        cache = TieredCache(max_items=1, max_bytes=30, ttl=5, clock=clock)
        events: list[Event] = []
        cache.add_listener(events.append)
        cache.set("a", 1)
        cache.set("b", 2)  # evicts a: size
        cache.set("c", "x" * 40)  # oversize: refused, not an eviction
        clock.advance(5)
        cache.stats()  # purges b: ttl
        evictions = [e for e in events if isinstance(e, CacheEviction)]
        assert [(e.key, e.reason) for e in evictions] == [("a", "size"), ("b", "ttl")]
        assert all(e.source == "cache:cache" and e.at == clock.time() for e in evictions[1:])

    def test_bytes_evictions(self) -> None:
        cache = TieredCache(max_bytes=9)
        events: list[Event] = []
        cache.add_listener(events.append)
        cache.set("a", "xxxx")
        cache.set("b", "yyyy")
        assert [(e.key, e.reason, e.size) for e in events if isinstance(e, CacheEviction)] == [
            ("a", "bytes", 5)
        ]

    def test_invalidations_say_what_and_how_many(self) -> None:
        cache = TieredCache(namespace="shop")
        events: list[Event] = []
        cache.add_listener(events.append)
        cache.set_many({"p:1": 1, "p:2": 2, "u:1": 3}, tags=("products",))
        cache.delete("u:1")
        cache.invalidate_tags("products")
        cache.invalidate_pattern("p:*")
        cache.clear()
        inv = [(e.kind, e.targets, e.count) for e in events if isinstance(e, CacheInvalidation)]
        assert inv == [
            ("delete", ("u:1",), 1),
            ("tags", ("products",), 2),
            ("pattern", ("p:*",), 0),
            ("clear", (), 0),
        ]
        assert all(e.namespace == "shop" for e in events)

    def test_loader_errors_are_reported(self) -> None:
        cache = TieredCache()
        events: list[Event] = []
        cache.add_listener(events.append)
        with pytest.raises(KeyError):
            cache.get_or_set("k", lambda: {}["missing"])
        (fault,) = [e for e in events if isinstance(e, CacheFault)]
        assert (fault.kind, fault.key) == ("loader", "k")
        assert "KeyError" in fault.error

    def test_unsubscribing_stops_delivery_and_a_failing_listener_is_contained(self) -> None:
        cache = TieredCache(max_items=1)
        seen: list[Event] = []

        def broken(event: Event) -> None:
            raise RuntimeError("listener bug")

        cache.add_listener(broken)
        stop = cache.add_listener(seen.append)
        cache.set("a", 1)
        cache.set("b", 2)
        assert len(seen) == 1
        stop()
        cache.set("c", 3)
        assert len(seen) == 1
        assert cache.get("c") == 3

    def test_events_are_frozen(self) -> None:
        e = CacheEviction("cache:x", 0.0, "x", "k", "size", 1)
        with pytest.raises(AttributeError):
            e.key = "other"  # type: ignore[misc]


class TestConfiguration:
    @pytest.mark.parametrize(
        ("kwargs", "parameter"),
        [
            ({"max_items": -1}, "max_items"),
            ({"max_items": 1.5}, "max_items"),
            ({"max_bytes": 0}, "max_bytes"),
            ({"ttl": 0}, "ttl"),
            ({"ttl": -5}, "ttl"),
            ({"ttl": math.nan}, "ttl"),
            ({"stale_ttl": -1}, "stale_ttl"),
            ({"stale_while_revalidate": "yes"}, "stale_while_revalidate"),
            ({"namespace": ""}, "namespace"),
            ({"namespace": "a:b"}, "namespace"),
            ({"namespace": "{tag}"}, "namespace"),
            ({"namespace": "x" * 65}, "namespace"),
            ({"l1_store": "bytes"}, "l1_store"),
            ({"policy": object()}, "policy"),
            ({"backend": object()}, "backend"),
            ({"clock": object()}, "clock"),
            ({"serializer": "pickle"}, "secret"),
            ({"compress_threshold": -1}, "compress_threshold"),
        ],
    )
    def test_bad_arguments_raise_at_construction_naming_the_parameter(
        self, kwargs: dict[str, Any], parameter: str
    ) -> None:
        with pytest.raises(ConfigError) as err:
            TieredCache(**kwargs)
        assert err.value.parameter == parameter
        assert isinstance(err.value, ValueError)

    def test_defaults_follow_the_original_spec(self) -> None:
        s = TieredCache().stats()
        assert (s.max_items, s.max_bytes) == (10_000, 100 * 1024 * 1024)
        cache = TieredCache()
        assert cache._core.ttl == 300.0
        assert cache.codec.compress_threshold == 1024
        assert cache.namespace == "cache"

    def test_max_items_zero_keeps_nothing_in_memory(self) -> None:
        cache = TieredCache(max_items=0)
        cache.set("k", 1)
        assert cache.get("k") is None
        assert cache.get_or_set("k", lambda: 2) == 2
        assert cache.stats().items == 0


class TestPolicySeam:
    def test_a_custom_policy_decides_the_victim(self) -> None:
        class LargestFirst:
            on_hit = None

            def __init__(self) -> None:
                self.sizes: dict[str, int] = {}

            def on_insert(self, key: str, size: int) -> None:
                self.sizes[key] = size

            def on_update(self, key: str, size: int) -> None:
                self.sizes[key] = size

            def on_remove(self, key: str) -> None:
                self.sizes.pop(key, None)

            def victim(self) -> str:
                return max(self.sizes, key=self.sizes.__getitem__)

            def clear(self) -> None:
                self.sizes.clear()

        policy = LargestFirst()
        assert isinstance(policy, EvictionPolicy)
        cache = TieredCache(max_items=3, policy=policy)
        cache.set("small", "x")
        cache.set("big", "x" * 100)
        cache.set("mid", "x" * 10)
        cache.get("big")
        cache.set("new", "y")
        assert sorted(cache.get_many(["small", "big", "mid", "new"])) == ["mid", "new", "small"]

    def test_tinylfu_is_the_default_and_lru_is_one_word_away(self) -> None:
        assert isinstance(TieredCache()._core.layer.policy, TinyLFUPolicy)
        assert isinstance(TieredCache(eviction="lru")._core.layer.policy, LRUPolicy)

    def test_an_unknown_eviction_is_refused_naming_it(self) -> None:
        with pytest.raises(ConfigError) as info:
            TieredCache(eviction="fifo")  # type: ignore[arg-type]
        assert info.value.parameter == "eviction"

    def test_a_policy_instance_wins_over_eviction(self) -> None:
        policy = LRUPolicy()
        assert TieredCache(eviction="tinylfu", policy=policy)._core.layer.policy is policy


def test_the_public_surface_is_explicit_and_sorted() -> None:
    assert cache_pkg.__all__ == sorted(cache_pkg.__all__)
    for name in cache_pkg.__all__:
        assert getattr(cache_pkg, name) is not None
    public = {n for n in dir(cache_pkg) if not n.startswith("_")}
    assert public - set(cache_pkg.__all__) <= set()
