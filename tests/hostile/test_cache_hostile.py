"""Foreign data under every key family of the cache's Redis L2 (issue 12).

Whatever sits under ``ns:v:{key}``, ``ns:t:{tag}``, ``ns:t:{tag}:drain`` or
``ns:l:{key}`` concerns that one key: no exception reaches the caller, other
keys are served as before, the record is counted (``corrupt`` /
``redis.corrupt_keys``), and the cache is never left degraded or holding a
journal that no replay can complete.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentia_core.cache import AsyncTieredCache, TieredCache
from sentia_core.cache._envelope import encode
from sentia_core.testing import ManualClock

from .strategies import foreign_values, non_strings, write

NS = "h"
FAMILIES = {
    "value": b"h:v:{victim}",
    "tag": b"h:t:{t}",
    "drain": b"h:t:{t}:drain",
    "lock": b"h:l:{victim}",
}
_hostile = settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _cache(client: Any, **kw: Any) -> TieredCache:
    kw.setdefault("max_items", 0)  # every read goes to Redis
    return TieredCache(redis=client, namespace=NS, invalidation=False, clock=ManualClock(), **kw)


def _exercise(cache: TieredCache) -> None:
    """Every operation touching the poisoned families (none may raise)."""
    cache.get("victim")
    cache.get_many(["victim", "other"])
    cache.get_or_set("victim", lambda: "loaded", tags=("t",))
    cache.set("victim", "new", tags=("t",))
    cache.invalidate_tags("t")
    cache.delete("victim")
    cache.set("victim", "again", tags=("t",))


@_hostile
@given(family=st.sampled_from(sorted(FAMILIES)), value=foreign_values)
def test_foreign_data_under_a_key_family_concerns_that_key_only(
    redis_client: Any, family: str, value: tuple[str, Any]
) -> None:
    redis_client.flushdb()
    cache = _cache(redis_client, distributed_lock=True, lock_wait=0.05)
    try:
        cache.set("other", "kept", tags=("o",))
        write(redis_client, FAMILIES[family], value)
        _exercise(cache)
        s = cache.stats()
        assert s.redis is not None
        assert not s.degraded and s.redis.pending == 0  # recovered, no manual step
        assert s.backend_errors == 0  # data, never an outage
        assert cache.get("other") == "kept"  # other keys unaffected
        assert cache.get("victim") == "again"  # the poisoned key works again
        assert cache.invalidate_tags("t") == 1
        assert cache.get("victim") is None
    finally:
        cache.close()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_foreign_type_is_counted_as_corrupt(redis_client: Any, family: str) -> None:
    cache = _cache(redis_client, distributed_lock=True, lock_wait=0.05)
    try:
        write(redis_client, FAMILIES[family], ("list", [b"x"]))
        _exercise(cache)
        s = cache.stats()
        assert s.redis is not None
        assert s.redis.corrupt_keys >= 1
        if family == "value":
            assert s.corrupt >= 1  # the read of it was a counted miss
    finally:
        cache.close()


def test_a_string_at_a_tag_key_is_repaired_not_journalled_forever(redis_client: Any) -> None:
    # issue 12, item 2: invalidate_tags journalled the item, its replay failed
    # forever and the cache stayed degraded until someone deleted ...:drain
    cache = _cache(redis_client)
    try:
        cache.set("a", 1, tags=("products",))
        redis_client.set(b"h:t:{products}", b"junk")
        cache.invalidate_tags("products")
        s = cache.stats()
        assert s.redis is not None
        assert (s.degraded, s.redis.pending, s.backend_errors) == (False, 0, 0)
        assert s.redis.corrupt_keys == 1
        cache.set("b", 2, tags=("products",))
        assert cache.invalidate_tags("products") == 1  # the tag works again
        assert cache.get("b") is None
        assert redis_client.type(b"h:t:{products}") in (b"zset", b"none")
    finally:
        cache.close()


def test_values_of_a_tag_whose_set_was_foreign_are_still_invalidated(
    redis_client: Any,
) -> None:
    # issue 12: other processes kept serving the old value until redis_ttl
    writer, reader = _cache(redis_client), _cache(redis_client)
    try:
        writer.set("a", 1, tags=("products",))
        writer.set("b", 2, tags=("other", "products"))
        writer.set("c", 3, tags=("other",))
        redis_client.set(b"h:t:{products}", b"junk")  # the members are lost
        assert writer.invalidate_tags("products") == 2  # found by their own tags
        assert reader.get("a") is None and reader.get("b") is None
        assert reader.get("c") == 3
    finally:
        writer.close()
        reader.close()


def test_a_lock_without_ttl_does_not_block_loads_forever(redis_client: Any) -> None:
    cache = _cache(redis_client, distributed_lock=True, lock_wait=0.05)
    try:
        redis_client.set(b"h:l:{k}", b"not ours")  # no TTL: would be held forever
        assert cache.get_or_set("k", lambda: 7) == 7
        s = cache.stats()
        assert s.redis is not None and s.redis.corrupt_keys == 1
        assert redis_client.pttl(b"h:l:{k}") in (-2,) or redis_client.pttl(b"h:l:{k}") > 0
    finally:
        cache.close()


def test_a_journal_item_failing_for_a_data_reason_is_dropped_and_counted(
    redis_client: Any,
) -> None:
    from sentia_core.cache._l2 import MAX_REPLAY_TRIES

    cache = _cache(redis_client)
    try:
        backend: Any = cache._backend
        backend.plan.pending.add("pattern", ("x*",))  # as if a replay were owed
        calls = 0
        real = backend.plan.invalidate_pattern

        def refused(qpattern: str, *, record: bool = True) -> Any:
            nonlocal calls
            calls += 1
            import redis

            raise redis.exceptions.ResponseError("WRONGTYPE Operation against a key")
            yield  # pragma: no cover

        backend.plan.invalidate_pattern = refused
        for _ in range(MAX_REPLAY_TRIES + 2):
            cache.get("k")
        backend.plan.invalidate_pattern = real
        s = cache.stats()
        assert s.redis is not None
        assert calls == MAX_REPLAY_TRIES  # then given up
        assert (s.redis.pending, s.redis.journal_dropped, s.degraded) == (0, 1, False)
    finally:
        cache.close()


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_an_envelope_with_an_empty_payload_is_a_counted_miss_in_a_batch(
    redis_client: Any, twin: str
) -> None:
    # issue 12, item 4: get_many with max_items=0 raised IndexError
    import asyncio

    import redis

    redis_client.set(b"h:v:{empty}", encode(b"", 2**62))
    if twin == "sync":
        cache = _cache(redis_client)
        cache.set("ok", 1)
        assert cache.get_many(["ok", "empty"]) == {"ok": 1}
        assert cache.get("empty") is None
        s = cache.stats()
        cache.close()
    else:
        kwargs = redis_client.connection_pool.connection_kwargs
        if "server" in kwargs:  # fakeredis: share its server
            import fakeredis

            aclient: Any = fakeredis.FakeAsyncRedis(server=kwargs["server"])
        else:
            aclient = redis.asyncio.Redis(host=kwargs["host"], port=kwargs["port"])

        async def run() -> Any:
            cache = AsyncTieredCache(redis=aclient, namespace=NS, invalidation=False, max_items=0)
            await cache.set("ok", 1)
            assert await cache.get_many(["ok", "empty"]) == {"ok": 1}
            assert await cache.get("empty") is None
            stats = cache.stats()
            await cache.aclose()
            await aclient.aclose()
            return stats

        s = asyncio.run(run())
    assert s.corrupt == 2 and s.backend_errors == 0


@_hostile
@given(value=non_strings)
def test_a_batch_read_over_foreign_types_is_a_miss_for_those_keys_only(
    redis_client: Any, value: tuple[str, Any]
) -> None:
    redis_client.flushdb()
    cache = _cache(redis_client)
    try:
        cache.set_many({"a": 1, "b": 2})
        write(redis_client, b"h:v:{victim}", value)
        assert cache.get_many(["a", "victim", "b"]) == {"a": 1, "b": 2}
        assert cache.stats().backend_errors == 0
    finally:
        cache.close()


@pytest.mark.redis
def test_a_foreign_tag_set_on_a_cluster_is_repaired_and_its_values_found(
    cluster_client: Any,
) -> None:
    writer = TieredCache(
        redis=cluster_client, redis_cluster=True, namespace="h", invalidation=False, max_items=0
    )
    try:
        from tests.waiting import eventually

        keys = [f"k{i}" for i in range(20)]  # spread over the slots

        def stored() -> bool:  # a just-created cluster may refuse a write at first
            for i, k in enumerate(keys):
                if writer.get(k) is None:
                    writer.set(k, i, tags=("products",))
            return len(writer.get_many(keys)) == 20

        assert eventually(stored)
        writer.set("kept", 1, tags=("other",))
        cluster_client.set(b"h:t:{products}", b"junk")
        assert writer.invalidate_tags("products") == 20
        assert writer.get_many(keys) == {}
        assert writer.get("kept") == 1
        s = writer.stats()
        assert s.redis is not None and s.redis.corrupt_keys == 1 and not s.degraded
    finally:
        writer.close()


def test_the_async_twin_reads_a_foreign_type_as_a_counted_miss() -> None:
    import asyncio

    import fakeredis

    async def run() -> Any:
        client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
        await client.rpush(b"h:v:{k}", b"x")
        cache = AsyncTieredCache(redis=client, namespace=NS, invalidation=False, max_items=0)
        assert await cache.get("k") is None
        assert await cache.get_or_set("k", lambda: 5) == 5
        assert await cache.get("k") == 5
        stats = cache.stats()
        await cache.aclose()
        await client.aclose()
        return stats

    s = asyncio.run(run())
    assert s.corrupt >= 1 and s.backend_errors == 0 and not s.degraded
