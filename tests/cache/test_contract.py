"""The cache contract: what every TieredCache configuration guarantees.

Each test runs once per flavor in ``conftest.FLAVORS``: memory, payload L1,
signed pickle, L1 + backend, backend only, and the Redis L2 (fakeredis, a real
redis-server with and without L1, the 3-node cluster), sync and async.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from sentia_core.cache import InvalidKeyError, InvalidPatternError, TieredCache, escape_glob
from sentia_core.errors import ConfigError, SerializationError
from sentia_core.testing import ManualClock

from .conftest import Flavor

MakeCache = Callable[..., TieredCache]

VALUES: list[Any] = [
    None,
    True,
    0,
    -(2**64),
    3.5,
    "",
    "héllo",
    b"\x00\xff",
    [1, "a", None],
    (1, (2, 3)),
    {"a": 1, "b": [1, 2]},
    {1: "int key", (1, 2): "tuple key"},
    datetime(2025, 9, 14, 12, 30, tzinfo=timezone.utc),
    Decimal("19.99"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    {"big": "x" * 5000},
]


class TestGetSet:
    def test_missing_key_returns_default(self, cache: TieredCache) -> None:
        assert cache.get("nope") is None
        assert cache.get("nope", "fallback") == "fallback"

    @pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
    def test_a_set_value_reads_back_equal_and_of_the_same_type(
        self, cache: TieredCache, value: Any
    ) -> None:
        cache.set("k", value)
        got = cache.get("k", "MISSING")
        assert got == value
        assert type(got) is type(value)

    def test_set_overwrites(self, cache: TieredCache) -> None:
        cache.set("k", 1)
        cache.set("k", 2)
        assert cache.get("k") == 2

    def test_a_failed_set_changes_nothing(self, make_cache: MakeCache, flavor: Flavor) -> None:
        cache = make_cache()
        cache.set("k", "old")
        lock = threading.Lock()
        if flavor.holds_objects:
            # Objects in L1 and no L2: any object is held by reference (issue 15),
            # so there is no failed set to speak of.
            cache.set("k", lock)
            assert cache.get("k") is lock
            return
        with pytest.raises(SerializationError, match="lock"):
            cache.set("k", lock)
        assert cache.get("k") == "old"

    def test_delete_reports_whether_something_was_there(self, cache: TieredCache) -> None:
        cache.set("k", 1)
        assert cache.delete("k") is True
        assert cache.delete("k") is False
        assert cache.get("k") is None

    def test_namespaces_never_collide(self, make_cache: MakeCache, flavor: Flavor) -> None:
        kw = flavor.shared(ManualClock())
        a = make_cache(namespace="a", **dict(kw))
        b = make_cache(namespace="b", **dict(kw))
        a.set("k", "from a", tags=("t",))
        b.set("k", "from b", tags=("t",))
        assert a.get("k") == "from a"
        assert b.get("k") == "from b"
        a.invalidate_tags("t")
        b.invalidate_pattern("*")
        a.set("k2", 1)
        b.clear()
        assert a.get("k2") == 1


class TestTTL:
    def test_an_entry_lives_exactly_its_ttl(
        self, make_cache: MakeCache, clock: ManualClock
    ) -> None:
        cache = make_cache(ttl=10)
        cache.set("k", "v")
        clock.advance(9.999)
        assert cache.get("k") == "v"
        clock.advance(0.001)
        assert cache.get("k") is None

    def test_a_per_call_ttl_overrides_the_default(
        self, make_cache: MakeCache, clock: ManualClock
    ) -> None:
        cache = make_cache(ttl=10)
        cache.set("short", 1, ttl=1)
        cache.set("long", 2, ttl=100)
        clock.advance(50)
        assert cache.get("short") is None
        assert cache.get("long") == 2

    def test_infinite_ttl_never_expires(
        self, make_cache: MakeCache, clock: ManualClock, flavor: Flavor
    ) -> None:
        cache = make_cache(ttl=1, **({"redis_ttl": 3600} if flavor.redis else {}))
        cache.set("k", 1, ttl=math.inf)
        if flavor.redis and not flavor.has_l1:
            # Redis never holds a key without a TTL: math.inf lives redis_ttl there
            clock.advance(3599)
            assert cache.get("k") == 1
            clock.advance(1)
            assert cache.get("k") is None
            return
        clock.advance(10**9)
        assert cache.get("k") == 1

    @pytest.mark.parametrize("ttl", [0, -1, math.nan, "10 fortnights", True])
    def test_a_bad_ttl_raises_naming_it(self, cache: TieredCache, ttl: Any) -> None:
        with pytest.raises(ConfigError) as err:
            cache.set("k", 1, ttl=ttl)
        assert err.value.parameter == "ttl"
        with pytest.raises(ConfigError):
            cache.get_or_set("k", lambda: 1, ttl=ttl)


class TestBatch:
    def test_get_many_returns_only_present_keys(self, cache: TieredCache) -> None:
        cache.set_many({"a": 1, "b": None, "c": [3]})
        assert cache.get_many(["a", "b", "c", "zz"]) == {"a": 1, "b": None, "c": [3]}

    def test_set_many_validates_everything_before_storing_anything(
        self, make_cache: MakeCache, flavor: Flavor
    ) -> None:
        cache = make_cache()
        lock = threading.Lock()
        if flavor.holds_objects:  # any object is held by reference
            cache.set_many({"a": 1, "b": lock})
            assert cache.get_many(["a", "b"]) == {"a": 1, "b": lock}
            return
        with pytest.raises(SerializationError):
            cache.set_many({"a": 1, "b": lock})
        assert cache.get_many(["a", "b"]) == {}

    def test_delete_many_counts(self, cache: TieredCache) -> None:
        cache.set_many({"a": 1, "b": 2})
        assert cache.delete_many(["a", "b", "c"]) == 2
        assert cache.get_many(["a", "b"]) == {}

    def test_set_many_applies_ttl_and_tags(self, cache: TieredCache, clock: ManualClock) -> None:
        cache.set_many({"a": 1, "b": 2}, ttl=5, tags=("grp",))
        assert cache.invalidate_tags("grp") == 2
        cache.set_many({"a": 1}, ttl=5)
        clock.advance(5)
        assert cache.get("a") is None


class TestInvalidation:
    def test_invalidate_tags_removes_only_tagged_entries(self, cache: TieredCache) -> None:
        cache.set("p1", 1, tags=("products", "p:1"))
        cache.set("p2", 2, tags=("products",))
        cache.set("u1", 3, tags=("users",))
        assert cache.invalidate_tags("products") == 2
        assert cache.get_many(["p1", "p2", "u1"]) == {"u1": 3}

    def test_invalidate_several_tags_at_once(self, cache: TieredCache) -> None:
        cache.set("a", 1, tags=("x",))
        cache.set("b", 2, tags=("y",))
        cache.set("c", 3, tags=("z",))
        assert cache.invalidate_tags("x", "y") == 2
        assert cache.get_many(["a", "b", "c"]) == {"c": 3}

    def test_an_overwrite_drops_the_old_tags(self, cache: TieredCache) -> None:
        cache.set("a", 1, tags=("old",))
        cache.set("a", 2, tags=("new",))
        assert cache.invalidate_tags("old") == 0
        assert cache.get("a") == 2

    def test_a_lone_string_is_not_taken_for_a_list_of_tags(self, cache: TieredCache) -> None:
        with pytest.raises(ConfigError, match=r"tags=\(name,\)"):
            cache.set("a", 1, tags="products")  # type: ignore[arg-type]
        with pytest.raises(ConfigError):
            cache.invalidate_tags("")

    def test_invalidate_pattern_uses_redis_globs(self, cache: TieredCache) -> None:
        cache.set_many({"user:1": 1, "user:2": 2, "user:10": 10, "order:1": 0})
        assert cache.invalidate_pattern("user:?") == 2
        assert cache.get_many(["user:1", "user:2", "user:10", "order:1"]) == {
            "user:10": 10,
            "order:1": 0,
        }

    def test_escaped_metacharacters_match_literally(self, cache: TieredCache) -> None:
        cache.set_many({"a*b": 1, "axb": 2, "a[1]": 3, "a1": 4})
        assert cache.invalidate_pattern(escape_glob("a*b")) == 1
        assert cache.invalidate_pattern(escape_glob("a[1]")) == 1
        assert cache.get_many(["a*b", "axb", "a[1]", "a1"]) == {"axb": 2, "a1": 4}

    def test_an_unterminated_class_is_refused(self, cache: TieredCache) -> None:
        with pytest.raises(InvalidPatternError):
            cache.invalidate_pattern("user:[12")

    def test_clear_empties_the_cache(self, cache: TieredCache) -> None:
        cache.set_many({"a": 1, "b": 2})
        cache.clear()
        assert cache.get_many(["a", "b"]) == {}


class TestGetOrSet:
    def test_the_loader_runs_on_a_miss_only(self, cache: TieredCache) -> None:
        calls: list[int] = []

        def loader() -> str:
            calls.append(1)
            return "loaded"

        assert cache.get_or_set("k", loader) == "loaded"
        assert cache.get_or_set("k", loader) == "loaded"
        assert len(calls) == 1

    def test_none_is_a_value_like_any_other(self, cache: TieredCache) -> None:
        calls: list[int] = []

        def loader() -> None:
            calls.append(1)

        assert cache.get_or_set("k", loader) is None
        assert cache.get_or_set("k", loader) is None
        assert len(calls) == 1

    def test_a_failing_loader_caches_nothing(self, cache: TieredCache) -> None:
        def boom() -> str:
            raise LookupError("db down")

        with pytest.raises(LookupError, match="db down"):
            cache.get_or_set("k", boom)
        assert cache.get_or_set("k", lambda: "ok") == "ok"

    def test_an_unencodable_loaded_value_raises_and_is_not_cached(
        self, make_cache: MakeCache, flavor: Flavor
    ) -> None:
        cache = make_cache()
        if flavor.holds_objects:  # any object is held by reference
            lock = cache.get_or_set("k", threading.Lock)
            assert cache.get("k") is lock
            return
        with pytest.raises(SerializationError):
            cache.get_or_set("k", threading.Lock)
        assert cache.get("k") is None

    def test_ttl_and_tags_apply_to_the_loaded_value(
        self, cache: TieredCache, clock: ManualClock
    ) -> None:
        cache.get_or_set("k", lambda: 1, ttl=5, tags=("t",))
        assert cache.invalidate_tags("t") == 1
        cache.get_or_set("k", lambda: 2, ttl=5)
        clock.advance(5)
        assert cache.get_or_set("k", lambda: 3) == 3


class TestKeys:
    @pytest.mark.parametrize("bad", [42, b"k", ("a",), None])
    def test_non_string_keys_are_rejected_not_coerced(self, cache: TieredCache, bad: Any) -> None:
        for call in (
            lambda: cache.get(bad),
            lambda: cache.set(bad, 1),
            lambda: cache.delete(bad),
            lambda: cache.get_or_set(bad, lambda: 1),
            lambda: cache.get_many([bad]),
            lambda: cache.set_many({bad: 1}),
        ):
            with pytest.raises(InvalidKeyError):
                call()

    def test_unhashable_keys_are_rejected_with_the_same_error(self, cache: TieredCache) -> None:
        with pytest.raises(InvalidKeyError):
            cache.get(["a"])  # type: ignore[arg-type]

    def test_any_string_is_a_key(self, cache: TieredCache) -> None:
        for key in ("", " ", "日本", "a:b:{c}", "*?[", "\udcff"):
            cache.set(key, key)
            assert cache.get(key) == key


class TestStats:
    def test_hits_misses_and_hit_rate(self, cache: TieredCache) -> None:
        cache.set("a", 1)
        cache.get("a")
        cache.get("a")
        cache.get("b")
        cache.get_or_set("c", lambda: 3)
        cache.get_or_set("c", lambda: 3)
        s = cache.stats()
        assert (s.hits, s.misses) == (3, 2)
        assert s.hit_rate == pytest.approx(0.6)
        assert s.sets == 2
        assert s.loader_calls == 1

    def test_a_fresh_cache_has_a_zero_hit_rate(self, cache: TieredCache) -> None:
        assert cache.stats().hit_rate == 0.0

    def test_the_snapshot_is_frozen(self, cache: TieredCache) -> None:
        s = cache.stats()
        with pytest.raises(AttributeError):
            s.hits = 5  # type: ignore[misc]

    def test_reset_stats_keeps_contents(self, cache: TieredCache) -> None:
        cache.set("a", 1)
        cache.get("a")
        cache.reset_stats()
        s = cache.stats()
        assert (s.hits, s.misses, s.sets) == (0, 0, 0)
        assert cache.get("a") == 1

    def test_invalidations_are_counted(self, cache: TieredCache, flavor: Flavor) -> None:
        cache.set_many({"a": 1, "b": 2, "c": 3}, tags=("t",))
        assert cache.delete("a") is True
        assert cache.invalidate_tags("t") == 2
        # `invalidated` counts entries removed from this process's L1
        assert cache.stats().invalidated == (3 if flavor.has_l1 else 0)


class TestDecorator:
    def test_cached_function_runs_once_per_argument_set(self, cache: TieredCache) -> None:
        calls: list[int] = []

        @cache.cached(ttl=60)
        def square(x: int) -> int:
            calls.append(x)
            return x * x

        assert [square(3), square(3), square(4)] == [9, 9, 16]
        assert calls == [3, 4]
        assert square.invalidate(3) is True
        assert square(3) == 9
        assert calls == [3, 4, 3]

    async def test_cached_coroutine_function(self, cache: TieredCache) -> None:
        calls: list[int] = []

        @cache.cached
        async def double(x: int) -> int:
            calls.append(x)
            return 2 * x

        assert await double(2) == 4
        assert await double(2) == 4
        assert calls == [2]


class TestL1Bounds:
    """Only for flavors with an L1 (the backend-only flavor keeps nothing in memory)."""

    @pytest.fixture(autouse=True)
    def _needs_l1(self, flavor: Flavor) -> None:
        if not flavor.has_l1:
            pytest.skip("no L1 in this flavor")

    def test_max_items_evicts_the_least_recently_used(self, make_cache: MakeCache) -> None:
        cache = make_cache(max_items=2)
        cache.set("a", 1)
        cache.set("b", 2)
        cache.get("a")
        cache.set("c", 3)
        s = cache.stats()
        assert s.items == 2
        assert s.evictions.size == 1
        assert cache.get("a") == 1
        assert cache.get("c") == 3

    def test_bytes_count_keys_and_values(self, make_cache: MakeCache, flavor: Flavor) -> None:
        cache = make_cache()
        cache.set("kk", "vvv")
        cache.set("long-key-" * 10, "")
        size = cache.stats().bytes
        if flavor.name == "memory":
            assert size == (2 + 3) + 90
        else:
            assert size > 90

    def test_max_bytes_evicts_until_the_new_value_fits(self, make_cache: MakeCache) -> None:
        cache = make_cache(max_bytes=300)
        for i in range(10):
            cache.set(f"k{i}", "x" * 50)
        s = cache.stats()
        assert s.bytes <= 300
        assert s.evictions.bytes >= 5
        assert cache.get("k9") == "x" * 50

    def test_a_value_larger_than_max_bytes_is_not_kept_and_counted(
        self, make_cache: MakeCache
    ) -> None:
        cache = make_cache(max_bytes=100)
        cache.set("k", "small")
        cache.set("k", "y" * 500)
        s = cache.stats()
        assert s.oversize == 1
        assert cache.get("k") in (None, "y" * 500)  # never the old value
        assert cache.get("k") != "small"

    def test_expired_entries_free_their_bytes(
        self, make_cache: MakeCache, clock: ManualClock
    ) -> None:
        cache = make_cache(ttl=5)
        cache.set("a", "x" * 100)
        clock.advance(6)
        s = cache.stats()
        assert (s.items, s.bytes, s.evictions.ttl) == (0, 0, 1)
