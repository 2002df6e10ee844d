"""The Redis L2, specified against fakeredis and a real redis-server.

Layout (namespace, TTLs, hash tags), the read path (one ``GET``, the L1 filled
for the remaining TTL), the write path (one pipeline with the tag
bookkeeping), tag and pattern invalidation in batches, hostile data, and
configuration. Cross-process behaviour is in test_cross_process.py, faults in
test_redis_faults.py.
"""

from __future__ import annotations

import json
import math
import pickle
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis.crc import key_slot

from sentia_core.breaker import CircuitBreaker
from sentia_core.cache import (
    AsyncTieredCache,
    CacheInvalidation,
    Codec,
    TieredCache,
    escape_glob,
)
from sentia_core.cache._codec import FORMAT_PICKLE
from sentia_core.cache._envelope import encode, encode_tags
from sentia_core.cache._l2 import Plan
from sentia_core.errors import ConfigError
from sentia_core.testing import ManualClock
from tests.waiting import eventually

from .redis_helpers import CountingRedis

NS = "ns"
SECRET = "l2-suite-secret-0123456789abcdef"


@pytest.fixture(params=["fakeredis", pytest.param("real", marks=pytest.mark.redis)])
def raw(request: pytest.FixtureRequest) -> Any:
    """A plain client on an empty server (fakeredis, or the real one)."""
    if request.param == "fakeredis":
        return request.getfixturevalue("fake_redis")
    return request.getfixturevalue("real_redis")


@pytest.fixture
def make(raw: Any, clock: ManualClock) -> Iterator[Callable[..., TieredCache]]:
    """Build caches on ``raw`` (namespace "ns"); ``counting=True`` wraps the client."""
    built: list[TieredCache] = []

    def build(*, client: Any = None, **kw: Any) -> TieredCache:
        kw.setdefault("namespace", NS)
        kw.setdefault("clock", clock)
        cache = TieredCache(redis=client if client is not None else raw, **kw)
        built.append(cache)
        return cache

    yield build
    for cache in built:
        cache.close()


def _vkey(key: str) -> bytes:
    return f"{NS}:v:{{{key}}}".encode()


def _scaled(raw: Any, n: int) -> int:
    """``n`` on a real server, a fifth of it (at least 1,500) on fakeredis."""
    return n if type(raw).__module__.startswith("redis") else max(1500, n // 5)


def _applied(cache: TieredCache) -> int:
    """Other caches' announcements this cache has applied so far."""
    redis = cache.stats().redis
    return redis.messages_applied if redis is not None else 0


def _tkey(tag: str) -> bytes:
    return f"{NS}:t:{{{tag}}}".encode()


class TestLayout:
    def test_every_key_lives_under_the_namespace_and_has_a_ttl(
        self, make: Callable[..., TieredCache], raw: Any
    ) -> None:
        cache = make(redis_ttl=600)
        cache.set("a", 1, tags=("t1", "t2"))
        cache.set_many({"b": 2, "c": 3}, ttl=5, tags=("t2",))
        cache.set("forever", 4, ttl=math.inf)
        cache.get_or_set("loaded", lambda: 5)
        assert cache._redis.try_lock(f"{NS}:locked", b"token", 30)
        keys = set(raw.scan_iter(match="*"))
        assert len(keys) == 8  # 5 values, 2 tag sets, 1 lock
        for key in keys:
            assert key.startswith(b"ns:"), key
            assert raw.pttl(key) > 0, key
        assert raw.pttl(_vkey("forever")) <= 600_000  # math.inf lives redis_ttl in Redis

    def test_a_value_and_its_lock_share_a_cluster_slot_and_values_spread(self) -> None:
        plan = Plan(NS, cluster=True, clock=ManualClock(), redis_ttl=60, bus=None)
        for key in ("a", "user:42", "{odd}", "日本"):
            assert key_slot(plan.value_key(f"{NS}:{key}")) == key_slot(plan.lock_key(f"{NS}:{key}"))
        slots = {key_slot(plan.value_key(f"{NS}:product:{i}")) for i in range(100)}
        assert len(slots) > 90

    def test_namespaces_share_no_key(self, make: Callable[..., TieredCache], raw: Any) -> None:
        a = make(namespace="a")
        ab = make(namespace="a-b")
        a.set("k", "from a", tags=("t",))
        ab.set("k", "from a-b", tags=("t",))
        a.clear()
        assert ab.get("k") == "from a-b"
        assert ab.invalidate_tags("t") == 1
        assert not list(raw.scan_iter(match="a:*"))


class TestReadPath:
    def test_an_l2_hit_is_one_get_and_fills_the_l1_for_the_remaining_ttl(
        self, make: Callable[..., TieredCache], raw: Any, clock: ManualClock
    ) -> None:
        writer = make(ttl=100, redis_ttl=100)
        counting = CountingRedis(raw)
        reader = make(client=counting, ttl=100, redis_ttl=100)
        writer.set("k", {"v": 1}, ttl=10)
        assert eventually(lambda: _applied(reader) == 1)  # its announcement is no news later
        clock.advance(6)
        counting.reset()
        assert reader.get("k") == {"v": 1}
        assert (counting.round_trips, dict(counting.commands)) == (1, {"GET": 1})
        clock.advance(3.999)
        assert reader.get("k") == {"v": 1}
        assert counting.round_trips == 1  # from the L1
        clock.advance(0.001)
        assert reader.get("k") is None  # the L1 copy expired with the original
        s = reader.stats()
        assert (s.hits, s.l1_hits, s.backend_hits, s.misses, s.backend_misses) == (2, 1, 1, 1, 1)

    def test_the_l1_and_the_l2_keep_their_own_default_ttls(
        self, make: Callable[..., TieredCache], clock: ManualClock
    ) -> None:
        cache = make(ttl=5, redis_ttl=60)
        cache.set("k", 1)
        clock.advance(5)
        assert cache.get("k") == 1  # the L1 entry expired; Redis still had it
        assert cache.stats().backend_hits == 1
        clock.advance(55)
        assert cache.get("k") is None

    def test_an_expired_envelope_is_a_miss_even_while_redis_holds_the_key(
        self, make: Callable[..., TieredCache], raw: Any, clock: ManualClock
    ) -> None:
        cache = make(max_items=0)
        cache.set("k", 1, ttl=10)
        clock.advance(10)  # the cache's clock, not Redis's
        assert raw.exists(_vkey("k"))
        assert cache.get("k") is None

    def test_get_many_asks_redis_once_for_the_l1_misses(
        self, make: Callable[..., TieredCache], raw: Any
    ) -> None:
        counting = CountingRedis(raw)
        reader = make(client=counting)
        make().set_many({f"k{i}": i for i in range(5)})
        assert eventually(lambda: _applied(reader) == 1)
        assert reader.get("k0") == 0
        counting.reset()
        found = reader.get_many([f"k{i}" for i in range(6)])
        assert found == {f"k{i}": i for i in range(5)}
        assert (counting.round_trips, dict(counting.commands)) == (1, {"MGET": 1})
        counting.reset()
        assert reader.get_many(["k1", "k2"]) == {"k1": 1, "k2": 2}
        assert counting.round_trips == 0  # filled into the L1 by the MGET

    def test_get_many_fills_the_l1_for_each_remaining_ttl(
        self, make: Callable[..., TieredCache], clock: ManualClock
    ) -> None:
        writer = make(ttl=100, redis_ttl=100)
        writer.set("short", 1, ttl=5)
        writer.set("long", 2, ttl=50)
        reader = make(ttl=100, redis_ttl=100)  # subscribed after the writes: no news
        clock.advance(1)
        assert reader.get_many(["short", "long"]) == {"short": 1, "long": 2}
        data = reader._core.layer.data
        now = clock.monotonic()
        assert data["short"].expires == pytest.approx(now + 4, abs=0.01)
        assert data["long"].expires == pytest.approx(now + 49, abs=0.01)


class TestWritePath:
    def test_a_set_with_tags_is_one_pipeline_including_the_announcement(
        self, make: Callable[..., TieredCache], raw: Any
    ) -> None:
        counting = CountingRedis(raw)
        cache = make(client=counting)
        counting.reset()
        cache.set("k", 1, tags=("a", "b"))
        assert counting.round_trips == 1
        assert counting.batches[0] == ["EVAL", "EVAL", "EVAL", "PUBLISH"]
        counting.reset()
        cache.set_many({f"k{i}": i for i in range(50)}, tags=("a", "c"))
        assert counting.round_trips == 1

    def test_a_tag_set_lives_as_long_as_its_longest_lived_member(
        self, make: Callable[..., TieredCache], raw: Any
    ) -> None:
        cache = make()
        cache.set("long", 1, ttl=1000, tags=("t",))
        cache.set("short", 2, ttl=10, tags=("t",))  # cashews would shorten the set to 10 s
        assert raw.pttl(_tkey("t")) > 999_000

    def test_members_whose_values_expired_are_trimmed_on_the_next_add(
        self, make: Callable[..., TieredCache], raw: Any
    ) -> None:
        raw.zadd(_tkey("t"), {_vkey("gone"): 1})  # expired in 1970
        make().set("k", 1, tags=("t",))
        assert raw.zrange(_tkey("t"), 0, -1) == [_vkey("k")]

    def test_an_overwrite_leaves_the_tags_it_no_longer_carries(
        self, make: Callable[..., TieredCache], raw: Any
    ) -> None:
        a = make()
        b = make()
        a.set("k", 1, tags=("old", "both"))
        b.set("k", 2, tags=("both", "new"))  # another process: it never saw the old tags
        assert raw.zscore(_tkey("old"), _vkey("k")) is None
        assert raw.zscore(_tkey("both"), _vkey("k")) is not None
        assert raw.zscore(_tkey("new"), _vkey("k")) is not None
        assert eventually(lambda: a.get("k") == 2)  # b's announcement reached a's L1
        assert a.invalidate_tags("old") == 0

    def test_a_delete_leaves_the_key_s_tags(
        self, make: Callable[..., TieredCache], raw: Any
    ) -> None:
        cache = make()
        cache.set("k", 1, tags=("t",))
        assert cache.delete("k") is True
        assert raw.zcard(_tkey("t")) == 0
        cache.set("k", 2)
        assert cache.invalidate_tags("t") == 0
        assert cache.get("k") == 2


class TestInvalidation:
    def test_invalidate_tags_drops_ten_thousand_keys_in_batches_of_500(
        self, make: Callable[..., TieredCache], raw: Any
    ) -> None:
        n = _scaled(raw, 10_000)  # fakeredis's Lua is slow: a fifth of it there
        counting = CountingRedis(raw)
        cache = make(client=counting, max_items=0)
        cache.set_many({f"k{i}": i for i in range(n)}, tags=("big",))
        cache.set("other", 1, tags=("small",))
        counting.reset()
        assert cache.invalidate_tags("big") == n
        # drains of 500 keys, one per round trip, so Redis is never busy for
        # long; plus the move before them and the announcement after
        assert counting.round_trips == n // 500 + 2, counting.batches
        assert counting.batches[1:-1] == [["EVAL"]] * (n // 500)
        assert "KEYS" not in counting.commands
        # (SCAN may return a key twice: compare sets)
        assert set(raw.scan_iter(match=f"{NS}:*")) == {_vkey("other"), _tkey("small")}

    def test_an_invalidation_that_died_half_way_is_finished_by_the_next(
        self, make: Callable[..., TieredCache], raw: Any
    ) -> None:
        cache = make(max_items=0)
        cache.set_many({f"k{i}": i for i in range(100)}, tags=("t",))
        raw.rename(_tkey("t"), _tkey("t") + b":drain")  # a process died while draining
        cache.set("late", 1, tags=("t",))
        assert cache.invalidate_tags("t") == 101
        assert not list(raw.scan_iter(match=f"{NS}:*"))

    def test_invalidate_pattern_scans_to_the_end_and_never_uses_keys(
        self, make: Callable[..., TieredCache], raw: Any
    ) -> None:
        n = _scaled(raw, 3000)
        counting = CountingRedis(raw)
        cache = make(client=counting, max_items=0)
        cache.set_many({f"user:{i}": i for i in range(n)})
        cache.set_many({f"order:{i}": i for i in range(10)})
        counting.reset()
        assert cache.invalidate_pattern("user:*") == n
        assert counting.commands["SCAN"] >= 2  # COUNT 1000: the cursor was followed
        assert "KEYS" not in counting.commands
        assert len(set(raw.scan_iter(match=f"{NS}:v:*"))) == 10

    def test_metacharacters_in_keys_match_literally_in_redis(
        self, make: Callable[..., TieredCache], raw: Any
    ) -> None:
        cache = make(max_items=0)
        cache.set_many({"a*b": 1, "axb": 2, "a[1]": 3, "a}b": 4, "a{b": 5})
        assert cache.invalidate_pattern(escape_glob("a*b")) == 1
        assert cache.invalidate_pattern(escape_glob("a[1]")) == 1
        assert cache.invalidate_pattern("a}*") == 1
        assert cache.get_many(["a*b", "axb", "a[1]", "a}b", "a{b"]) == {"axb": 2, "a{b": 5}

    def test_every_invalidation_is_reported_with_its_origin(
        self, make: Callable[..., TieredCache]
    ) -> None:
        cache = make()
        events: list[CacheInvalidation] = []
        cache.add_listener(lambda e: events.append(e) if isinstance(e, CacheInvalidation) else None)
        cache.set("k", 1, tags=("t",))
        cache.invalidate_tags("t")
        assert [(e.kind, e.targets, e.count, e.remote) for e in events] == [
            ("tags", ("t",), 1, False)
        ]


class TestHostileData:
    @pytest.mark.parametrize(
        "stored",
        [
            b"",
            b"garbage",
            b"\xe5" + b"\x00" * 9,
            encode(b"payload", 2**62)[:9] + b"\x00\x09" + b"ab",  # tags past the end
            encode(b"\x01not json at all", 2**62),
            encode(b"\x01{}", 2**62, b"\x00\x05ab"),  # tags region damaged
        ],
        ids=["empty", "garbage", "short", "tags-past-end", "bad-payload", "bad-tags"],
    )
    def test_whatever_sits_under_a_key_a_read_never_raises(
        self, make: Callable[..., TieredCache], raw: Any, stored: bytes
    ) -> None:
        cache = make()
        raw.set(_vkey("k"), stored)
        assert cache.get("k", "default") == "default"
        assert cache.get_many(["k"]) == {}
        assert cache.get_or_set("k", lambda: "loaded") == "loaded"
        s = cache.stats()
        assert s.corrupt >= 1
        assert s.backend_errors == 0

    def test_a_key_of_another_type_is_a_counted_corrupt_value_not_an_exception(
        self, make: Callable[..., TieredCache], raw: Any
    ) -> None:
        # issue 12, item 2: WRONGTYPE is corrupt data about one key, not an outage
        cache = make()
        raw.rpush(_vkey("k"), b"x")
        assert cache.get("k") is None
        assert cache.get_or_set("k", lambda: 1) == 1
        s = cache.stats()
        assert s.corrupt >= 1 and s.backend_errors == 0 and not s.degraded
        assert s.redis is not None and s.redis.corrupt_keys >= 1
        assert raw.type(_vkey("k")) == b"string"  # the write replaced it
        assert make(max_items=0).get("k") == 1

    def test_an_unsigned_pickle_is_never_unpickled(
        self, make: Callable[..., TieredCache], raw: Any
    ) -> None:
        cache = make(serializer="pickle", secret=SECRET)
        unsigned = Codec("json").frame(FORMAT_PICKLE, pickle.dumps({"x": 1}))  # no signature
        raw.set(_vkey("k"), encode(unsigned, 2**62))
        assert cache.get("k") is None
        assert cache.stats().rejected == 1

    def test_garbage_in_tag_sets_does_not_break_invalidation(
        self, make: Callable[..., TieredCache], raw: Any
    ) -> None:
        cache = make()
        cache.set("k", 1, tags=("t",))
        raw.zadd(_tkey("t"), {b"not-one-of-ours": 9e15})
        raw.rpush(_tkey("u"), b"a list where a set belongs")
        assert cache.invalidate_tags("t", "u") >= 0
        assert cache.get("k") is None

    def test_forged_or_malformed_messages_can_only_drop_l1_entries(
        self, make: Callable[..., TieredCache], raw: Any
    ) -> None:
        cache = make()
        cache.set("k", 1)
        raw.publish(f"{NS}:invalidate", b"\x00garbage")
        raw.publish(f"{NS}:invalidate", b'{"v":1,"p":"evil","s":1,"k":"clear","d":[],"t":0}')
        assert eventually(lambda: cache.stats().redis.messages_received >= 2)  # type: ignore[union-attr]
        assert cache.stats().redis.malformed == 1  # type: ignore[union-attr]
        assert cache.get("k") == 1  # dropped from the L1, still in Redis


class TestConfiguration:
    @pytest.mark.parametrize(
        ("kwargs", "parameter"),
        [
            ({"redis_ttl": 0}, "redis_ttl"),
            ({"redis_ttl": math.inf}, "redis_ttl"),
            ({"socket_timeout": -1}, "socket_timeout"),
            ({"connect_timeout": 0}, "connect_timeout"),
            ({"heartbeat_interval": 0}, "heartbeat_interval"),
            ({"disconnected_ttl": -1}, "disconnected_ttl"),
            ({"breaker": object()}, "breaker"),
            ({"invalidation": "yes"}, "invalidation"),
            ({"distributed_lock": True, "lock_ttl": 0}, "lock_ttl"),
            ({"distributed_lock": True, "lock_wait": -1}, "lock_wait"),
            ({"redis_cluster": "no"}, "redis_cluster"),
            ({"backend": object()}, "backend"),
        ],
    )
    def test_bad_arguments_raise_at_construction_naming_the_parameter(
        self, fake_redis: Any, kwargs: dict[str, Any], parameter: str
    ) -> None:
        with pytest.raises(ConfigError) as err:
            TieredCache(redis=fake_redis, **kwargs)
        assert err.value.parameter == parameter

    @pytest.mark.parametrize(
        ("kwargs", "parameter"),
        [
            ({"redis": "http://localhost"}, "redis"),
            ({"redis": 42}, "redis"),
            ({"breaker": CircuitBreaker("x")}, "breaker"),
            ({"distributed_lock": True}, "distributed_lock"),
        ],
    )
    def test_what_needs_redis_refuses_to_run_without_it(
        self, kwargs: dict[str, Any], parameter: str
    ) -> None:
        with pytest.raises(ConfigError) as err:
            TieredCache(**kwargs)
        assert err.value.parameter == parameter

    def test_a_client_that_decodes_responses_is_refused(self) -> None:
        import fakeredis

        with pytest.raises(ConfigError, match="decode_responses"):
            TieredCache(redis=fakeredis.FakeRedis(decode_responses=True))

    def test_each_cache_refuses_the_other_kind_of_client(self, fake_redis: Any) -> None:
        import fakeredis

        with pytest.raises(ConfigError, match="AsyncTieredCache"):
            TieredCache(redis=fakeredis.FakeAsyncRedis())
        with pytest.raises(ConfigError, match="TieredCache"):
            AsyncTieredCache(redis=fake_redis)

    @pytest.mark.redis
    def test_a_url_gets_a_client_with_short_timeouts_that_the_cache_closes(
        self, redis_url: str
    ) -> None:
        cache = TieredCache(redis=redis_url, socket_timeout=0.5, connect_timeout=0.3)
        kwargs = cache._redis.client.connection_pool.connection_kwargs
        assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (0.5, 0.3)
        assert cache._redis.owns_client
        cache.set("k", 1)
        cache.close()
        assert cache.get("k") == 1  # still usable: the L1, or Redis reconnected on demand


class TestDegradedAndStats:
    def test_a_healthy_cache_reports_its_redis_side(self, make: Callable[..., TieredCache]) -> None:
        cache = make()
        assert cache.degraded is False
        cache.set("k", 1)
        r = cache.stats().redis
        assert r is not None
        assert (r.breaker, r.channel_up, r.messages_sent, r.pending) == ("closed", True, 1, 0)
        assert TieredCache().stats().redis is None

    def test_an_open_breaker_bypasses_redis_and_its_journal_is_replayed_after(
        self, make: Callable[..., TieredCache], raw: Any, clock: ManualClock
    ) -> None:
        breaker = CircuitBreaker("redis", clock=clock)
        writer = make(breaker=breaker)
        writer.set("k", "old")
        breaker.force_open()
        writer.set("k", "new")  # Redis still holds "old": journaled as a delete
        writer.delete("gone")
        assert writer.get("k") == "new"
        assert writer.get_or_set("x", lambda: "loaded") == "loaded"
        s = writer.stats()
        assert s.degraded
        assert s.backend_skipped >= 3
        assert s.backend_errors == 0
        assert s.redis is not None
        assert s.redis.pending == 3  # k, gone and x: Redis may hold older values of them
        breaker.reset()
        assert writer.get("unrelated") is None  # the next Redis call replays first
        assert raw.get(_vkey("k")) is None
        assert writer.stats().redis.pending == 0  # type: ignore[union-attr]
        assert writer.degraded is False


class TestDistributedSingleFlight:
    def test_a_held_lock_makes_a_process_poll_then_load_itself_after_lock_wait(
        self, make: Callable[..., TieredCache], raw: Any, clock: ManualClock
    ) -> None:
        cache = make(distributed_lock=True, lock_wait=1.0, rng=random.Random(7))
        raw.set(f"{NS}:l:{{k}}".encode(), b"someone-else", px=60_000)
        assert cache.get_or_set("k", lambda: "mine") == "mine"
        sleeps = clock.sleeps
        assert sum(sleeps) >= 1.0
        assert max(sleeps) <= 0.15  # backoff capped at 100 ms (plus jitter)
        assert sleeps[3] > sleeps[0]  # ...and growing from 5 ms
        assert raw.get(f"{NS}:l:{{k}}".encode()) == b"someone-else"  # never stolen

    def test_a_poller_returns_what_the_lock_holder_stored(
        self, make: Callable[..., TieredCache], raw: Any
    ) -> None:
        holder = make()

        class Clock(ManualClock):
            def sleep(self, seconds: float) -> None:
                super().sleep(seconds)
                if len(self.sleeps) == 3:  # meanwhile, the other process finishes
                    holder.set("k", "theirs")
                    raw.delete(f"{NS}:l:{{k}}".encode())

        cache = make(distributed_lock=True, clock=Clock())
        raw.set(f"{NS}:l:{{k}}".encode(), b"holder", px=60_000)
        calls: list[int] = []
        assert cache.get_or_set("k", lambda: calls.append(1)) == "theirs"
        assert calls == []
        s = cache.stats()
        assert (s.remote_coalesced, s.loader_calls) == (1, 0)

    def test_the_lock_is_released_after_the_value_is_stored_or_the_loader_fails(
        self, make: Callable[..., TieredCache], raw: Any
    ) -> None:
        cache = make(distributed_lock=True)
        assert cache.get_or_set("k", lambda: 1) == 1
        assert raw.exists(_vkey("k"))
        assert not raw.exists(f"{NS}:l:{{k}}".encode())

        def boom() -> None:
            raise LookupError("db down")

        with pytest.raises(LookupError):
            cache.get_or_set("j", boom)
        assert not raw.exists(f"{NS}:l:{{j}}".encode())


def test_envelope_tags_reach_the_reader_l1(make: Callable[..., TieredCache]) -> None:
    writer = make()
    reader = make()
    writer.set("k", 1, tags=("products", "p:1"))
    assert eventually(lambda: _applied(reader) == 1)
    assert reader.get("k") == 1  # filled from Redis, with its tags
    assert reader._core.invalidate_tags(("p:1",)) == 1  # a local-only tag drop finds it
    assert encode_tags(("p:1",))


class TestLostMessages:
    def test_a_gap_in_another_publisher_s_numbers_clears_the_l1(
        self, make: Callable[..., TieredCache], raw: Any
    ) -> None:
        cache = make()
        cache.set("k", 1)
        assert "k" in cache._core.layer.data

        def message(seq: int) -> bytes:
            body = {"v": 1, "p": "other", "s": seq, "k": "keys", "d": ["unrelated"], "t": 0}
            return json.dumps(body).encode()

        raw.publish(f"{NS}:invalidate", message(1))
        raw.publish(f"{NS}:invalidate", message(1000))  # 998 announcements never arrived
        assert eventually(lambda: cache.stats().redis.gaps == 1)  # type: ignore[union-attr]
        assert "k" not in cache._core.layer.data  # it may have missed an invalidation of k
        assert cache.stats().redis.l1_flushes == 1  # type: ignore[union-attr]
        assert cache.get("k") == 1  # from Redis, fresh

    def test_while_the_channel_is_down_l1_entries_live_at_most_disconnected_ttl(
        self, make: Callable[..., TieredCache], clock: ManualClock
    ) -> None:
        cache = make(ttl=100, disconnected_ttl=2)
        cache.set("before", 1)
        backend = cache._redis
        backend._lost()  # what the listener does when its subscription goes silent
        assert cache.degraded
        assert "before" not in cache._core.layer.data  # cleared when the loss is noticed
        cache.set("during", 1)
        assert cache._core.layer.data["during"].expires == clock.monotonic() + 2
        backend._subscribed(time.monotonic())  # the subscription is back
        assert not cache.degraded
        assert "during" not in cache._core.layer.data  # cleared again on reconnection
        cache.set("after", 1)
        assert cache._core.layer.data["after"].expires == clock.monotonic() + 100


class _Hooked(CountingRedis):
    """Runs ``hook()`` once, just before the first pipeline writing ``key`` executes."""

    def __init__(self, inner: Any, key: bytes, hook: Callable[[], object]) -> None:
        super().__init__(inner)
        self.key = key
        self.hook: Callable[[], object] | None = hook

    def pipeline(self, transaction: bool = True) -> Any:
        pipe = super().pipeline(transaction)
        execute = pipe.execute
        owner = self

        class Pipe:
            def execute_command(self, *args: Any, **kw: Any) -> Any:
                pipe.execute_command(*args, **kw)
                if owner.key in args and owner.hook is not None:
                    self.fire = True
                return self

            def execute(self, raise_on_error: bool = True) -> Any:
                if getattr(self, "fire", False) and owner.hook is not None:
                    hook, owner.hook = owner.hook, None
                    hook()  # the invalidation reaches Redis first
                return execute(raise_on_error=raise_on_error)

        return Pipe()


class TestFillsRacingInvalidations:
    """A loaded value written to Redis *after* an invalidation that followed the
    database change would be stale: it is taken back (aiocache#95, across the L2)."""

    def test_an_invalidation_from_this_process_landing_first_is_not_undone(
        self, make: Callable[..., TieredCache], raw: Any
    ) -> None:
        holder: list[TieredCache] = []
        client = _Hooked(raw, _vkey("k"), lambda: holder[0].delete("k"))
        cache = make(client=client)
        holder.append(cache)
        assert cache.get_or_set("k", lambda: "loaded before the change") == (
            "loaded before the change"
        )
        assert raw.get(_vkey("k")) is None  # taken back at once
        assert cache.get("k") is None

    def test_an_invalidation_from_another_process_landing_first_is_not_undone(
        self, make: Callable[..., TieredCache], raw: Any
    ) -> None:
        other = make()
        client = _Hooked(raw, _vkey("k"), lambda: other.invalidate_tags("t"))
        cache = make(client=client)
        assert cache.get_or_set("k", lambda: "stale", tags=("t",)) == "stale"
        # taken back when the other process's announcement arrives (or at once)
        assert eventually(lambda: raw.get(_vkey("k")) is None)
        assert eventually(lambda: "k" not in cache._core.layer.data)

    def test_a_newer_write_by_another_process_is_never_taken_back(
        self, make: Callable[..., TieredCache], raw: Any
    ) -> None:
        loader = make()
        writer = make()
        assert loader.get_or_set("k", lambda: "loaded") == "loaded"
        writer.set("k", "newer")  # announced: loader's recent fill matches the key
        assert eventually(lambda: "k" not in loader._core.layer.data)
        assert eventually(lambda: not loader._core.repairs)
        assert loader.get("k") == "newer"
