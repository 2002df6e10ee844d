"""W-TinyLFU, the L1's default policy: its sketch, its decisions, its read buffer.

The state machine reuses the LRU model of test_memory_state.py for
everything but the choice of victims: values, TTLs, stale entries, tags,
patterns, clears and every counter must match the model exactly as they do
for LRU, while the evictions (observed through the cache's eviction events)
must be of keys the model holds, never the key just written, only while a
bound is exceeded, and each the loser of a contest decided by the sketch's
estimates.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from sentia_core.cache import AsyncTieredCache, CacheEviction, TieredCache, TinyLFUPolicy
from sentia_core.cache._tinylfu import FrequencySketch
from sentia_core.errors import ConfigError
from sentia_core.testing import ManualClock

from .test_memory_state import KEYS, L1Machine, ModelEntry

# -- the sketch ---------------------------------------------------------------------

WORDS = st.lists(st.text(min_size=1, max_size=6), max_size=200)


@given(WORDS)
def test_an_estimate_is_never_below_the_true_count_capped_at_15(words: list[str]) -> None:
    sketch = FrequencySketch(64)
    for w in words:
        sketch.increment(w)
    for w, n in Counter(words).items():
        assert min(n, 15) <= sketch.frequency(w) <= 15


@given(WORDS)
def test_aging_halves_every_estimate(words: list[str]) -> None:
    sketch = FrequencySketch(64)
    for w in words:
        sketch.increment(w)
    before = {w: sketch.frequency(w) for w in words}
    sketch.age()
    for w, f in before.items():
        assert sketch.frequency(w) >= f // 2
        assert sketch.frequency(w) <= max(f, 1) // 2 + (f & 1)


@given(WORDS, st.integers(min_value=65, max_value=5000))
def test_growing_keeps_every_estimate(words: list[str], capacity: int) -> None:
    sketch = FrequencySketch(64)
    for w in words:
        sketch.increment(w)
    before = {w: sketch.frequency(w) for w in words}
    sketch.ensure_capacity(capacity)
    assert sketch.capacity >= capacity
    assert sketch.sample_size == 10 * sketch.capacity
    assert {w: sketch.frequency(w) for w in words} == before


def test_a_sketch_counts_up_to_15_and_clear_forgets() -> None:
    sketch = FrequencySketch(100)
    assert sketch.capacity == 128
    for _ in range(40):
        sketch.increment("hot")
    assert sketch.frequency("hot") == 15
    sketch.clear()
    assert sketch.frequency("hot") == 0


# -- the policy's knobs -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"window": 0.0}, "window"),
        ({"window": 1.0}, "window"),
        ({"window": True}, "window"),
        ({"adaptive": 1}, "adaptive"),
        ({"read_buffer": 0}, "read_buffer"),
        ({"max_items": -1}, "max_items"),
        ({"max_bytes": 0}, "max_bytes"),
    ],
)
def test_bad_knobs_are_refused_naming_them(kwargs: dict[str, Any], parameter: str) -> None:
    args: dict[str, Any] = {"max_items": 10, "max_bytes": 100, **kwargs}
    with pytest.raises(ConfigError) as info:
        TinyLFUPolicy(**args)
    assert info.value.parameter == parameter


def test_the_async_twin_defaults_to_tinylfu_too() -> None:
    async def main() -> None:
        cache = AsyncTieredCache(max_items=3)
        assert isinstance(cache._core.layer.policy, TinyLFUPolicy)
        lru = AsyncTieredCache(max_items=3, eviction="lru")
        assert not isinstance(lru._core.layer.policy, TinyLFUPolicy)
        await cache.aclose()
        await lru.aclose()

    asyncio.run(main())


# -- what W-TinyLFU is for ------------------------------------------------------------


def _run(cache: TieredCache, keys: list[str]) -> int:
    hits = 0
    for key in keys:
        if cache.get(key) is None:
            cache.set(key, "v")
        else:
            hits += 1
    return hits


@pytest.mark.parametrize("bound", ["items", "bytes"])
def test_frequently_used_keys_survive_a_scan_that_flushes_lru(bound: str) -> None:
    hot = [f"hot:{i}" for i in range(50)]
    scan = [f"scan:{i}" for i in range(1000)]
    # 100 entries of 6..9 bytes each: bound by count or by bytes, same room
    kw: dict[str, Any] = {"max_items": 100} if bound == "items" else {"max_bytes": 900}
    results = {}
    for eviction in ("tinylfu", "lru"):
        cache = TieredCache(eviction=eviction, **kw)  # type: ignore[arg-type]
        _run(cache, hot * 10)  # the hot set becomes frequent
        _run(cache, scan)  # one-off keys, ten times the cache
        results[eviction] = _run(cache, hot)
    assert results["tinylfu"] >= 45  # almost every hot key is still there
    assert results["lru"] == 0  # LRU kept only the scan's tail


def test_the_key_just_written_is_always_readable_even_larger_than_the_window() -> None:
    cache = TieredCache(max_items=1000, max_bytes=2000)  # window: 20 bytes
    for i in range(200):
        key = f"k{i}"
        cache.set(key, "x" * 60)
        assert cache.get(key) == "x" * 60
        s = cache.stats()
        assert s.bytes <= 2000


def test_the_window_grows_for_recency_and_stays_small_for_frequency() -> None:
    # recency: every key is read again soon after it is written, never later
    recency = TinyLFUPolicy(1000, 10**9)
    cache = TieredCache(max_items=1000, policy=recency)
    keys: list[str] = []
    for i in range(60_000):
        keys.append(f"r:{i}")
        if i >= 300:
            keys.append(f"r:{i - 300}")
    _run(cache, keys)
    assert recency.window_share > 0.10
    # frequency: a fixed popular set, read over and over among one-off keys
    frequency = TinyLFUPolicy(1000, 10**9)
    cache = TieredCache(max_items=1000, policy=frequency)
    keys = []
    for i in range(60_000):
        keys.append(f"hot:{i % 800}")
        keys.append(f"once:{i}")
    _run(cache, keys)
    assert frequency.window_share <= 0.01


def test_a_fixed_window_stays_put() -> None:
    policy = TinyLFUPolicy(1000, 10**9, window=0.2, adaptive=False)
    cache = TieredCache(max_items=1000, policy=policy)
    _run(cache, [f"r:{i // 2}" for i in range(30_000)])
    assert policy.window_share == 0.2


# -- the model ------------------------------------------------------------------------


class RecordingTinyLFU(TinyLFUPolicy):
    """Records every victim() answer with the contest (if any) that produced it."""

    __slots__ = ("contest", "decisions")

    def __init__(self, max_items: int, max_bytes: int) -> None:
        super().__init__(max_items, max_bytes)
        self.contest: tuple[str, str, int, int, bool] | None = None
        self.decisions: list[tuple[str, tuple[str, str, int, int, bool] | None]] = []

    def victim(self) -> str:
        self.contest = None
        key = super().victim()
        self.decisions.append((key, self.contest))
        return key

    def _admit(self, candidate: str, victim: str) -> bool:
        freq = self.sketch.frequency
        fc, fv = freq(candidate), freq(victim)
        admitted = super()._admit(candidate, victim)
        self.contest = (candidate, victim, fc, fv, admitted)
        return admitted


class TinyLFUMachine(L1Machine):
    EVICTION = "tinylfu"
    MAX_ITEMS = 4
    MAX_BYTES = 40

    def __init__(self) -> None:
        super().__init__()
        self.policy = RecordingTinyLFU(self.MAX_ITEMS, self.MAX_BYTES)
        self.cache = TieredCache(
            max_items=self.MAX_ITEMS,
            max_bytes=self.MAX_BYTES,
            ttl=self.DEFAULT_TTL,
            stale_ttl=self.STALE_TTL,
            policy=self.policy,
            clock=self.clock,
        )
        self.events: list[CacheEviction] = []
        self.cache.add_listener(
            lambda e: self.events.append(e) if isinstance(e, CacheEviction) else None
        )

    def _store(self, key: str, value: str, ttl: float | None, tags: tuple[str, ...]) -> None:
        """The LRU model's write, with the victims the cache chose (checked, not chosen)."""
        self.sets += 1
        self.entries.pop(key, None)
        self._purge()
        evicted = [e for e in self.events if e.reason != "ttl"]
        self.events.clear()
        decisions = self.policy.decisions
        self.policy.decisions = []
        size = len(key.encode()) + len(value.encode())
        if size > self.MAX_BYTES:
            self.oversize += 1
            assert not evicted
            return
        t = self.DEFAULT_TTL if ttl is None else ttl
        expires = self.now + t
        self.entries[key] = ModelEntry(value, expires, expires + self.STALE_TTL, size, tags)
        assert [e.key for e in evicted] == [k for k, _ in decisions]
        for event, (_, contest) in zip(evicted, decisions, strict=True):
            victim = event.key
            held = sum(e.size for e in self.entries.values())
            # only while a bound is exceeded, and by the bound that is
            if len(self.entries) > self.MAX_ITEMS:
                assert event.reason == "size"
            else:
                assert event.reason == "bytes"
                assert held > self.MAX_BYTES
            assert victim != key  # never the key just written
            assert victim in self.entries
            assert event.size == self.entries[victim].size
            if contest is not None:
                candidate, defender, fc, fv, admitted = contest
                assert candidate != defender
                assert {candidate, defender} <= set(self.entries)
                # admitted exactly when strictly more frequent; the loser leaves
                assert admitted == (fc > fv)
                assert victim == (defender if admitted else candidate)
            del self.entries[victim]
            self.evicted[event.reason] += 1
        assert len(self.entries) <= self.MAX_ITEMS
        assert sum(e.size for e in self.entries.values()) <= self.MAX_BYTES

    @rule(key=KEYS, value=st.text(max_size=12))
    def set_then_read(self, key: str, value: str) -> None:
        self.set(key, value, None, [])
        if len(key.encode()) + len(value.encode()) <= self.MAX_BYTES:
            assert self.cache.get(key) == value
            self.hits += 1

    @invariant()
    def same_keys_in_the_same_lru_order(self) -> None:
        """Replaces the LRU order check: every key in exactly one region, sizes agreed."""
        layer = self.cache._core.layer
        window, probation, protected = self.policy.segments()
        regions = window + probation + protected
        assert len(regions) == len(set(regions))
        assert set(regions) == set(layer.data) == set(self.entries)
        assert layer.bytes == sum(e.size for e in self.entries.values())
        assert layer.bytes <= self.MAX_BYTES
        assert len(layer.data) <= self.MAX_ITEMS
        assert self.policy._wbytes == sum(layer.data[k].size for k in window)
        assert self.policy._qbytes == sum(layer.data[k].size for k in protected)


class TinyLFUWithStaleMachine(TinyLFUMachine):
    STALE_TTL = 2.0


class RoomierTinyLFUMachine(TinyLFUMachine):
    """Room for most keys: hits promote to protected, demotions happen."""

    MAX_ITEMS = 5
    MAX_BYTES = 70


TestTinyLFUAgainstModel = TinyLFUMachine.TestCase
TestTinyLFUAgainstModel.settings = settings(stateful_step_count=50, deadline=None)
TestTinyLFUWithStaleAgainstModel = TinyLFUWithStaleMachine.TestCase
TestTinyLFUWithStaleAgainstModel.settings = settings(stateful_step_count=50, deadline=None)
TestRoomierTinyLFUAgainstModel = RoomierTinyLFUMachine.TestCase
TestRoomierTinyLFUAgainstModel.settings = settings(stateful_step_count=50, deadline=None)


# -- the read buffer, with real threads ------------------------------------------------


def test_recorded_hits_count_at_the_next_write_and_the_buffer_drops_the_oldest() -> None:
    policy = TinyLFUPolicy(100, 10**6, read_buffer=4)
    cache = TieredCache(max_items=100, policy=policy)
    cache.set("a", 1)
    cache.set("b", 1)
    base_a, base_b = policy.sketch.frequency("a"), policy.sketch.frequency("b")
    for _ in range(3):
        assert cache.get("a") == 1
    assert policy.sketch.frequency("a") == base_a  # recorded, not applied yet
    cache.set("c", 1)
    assert policy.sketch.frequency("a") == base_a + 3
    for _ in range(3):
        cache.get("a")
    for _ in range(3):
        cache.get("b")  # the buffer keeps the last 4: a, b, b, b
    cache.set("d", 1)
    assert policy.sketch.frequency("a") == base_a + 4
    assert policy.sketch.frequency("b") == base_b + 3


def test_hits_take_no_lock() -> None:
    cache = TieredCache(max_items=10)
    cache.set("k", "v")
    got: list[Any] = []
    with cache._core.lock:  # a writer holding the lock forever
        reader = threading.Thread(target=lambda: got.append(cache.get("k")))
        reader.start()
        reader.join(timeout=30)
        assert not reader.is_alive()
    assert got == ["v"]


def test_readers_and_writers_in_threads_keep_the_policy_consistent() -> None:
    policy = TinyLFUPolicy(200, 10**9, read_buffer=32)
    cache = TieredCache(max_items=200, policy=policy, clock=ManualClock())
    hot = [f"hot:{i}" for i in range(50)]
    for key in hot:
        cache.set(key, key)
    readers, rounds, reads, writes = 4, 300, 8, 10
    # every round, the readers and the writer run at once; a round's hits
    # (4 x 8 = the buffer's 32) are drained by the writes of the next one
    step = threading.Barrier(readers + 1)
    found = [0] * readers
    wrong: list[tuple[str, Any]] = []
    longest = [0]

    def read(n: int) -> None:
        get = cache.get
        for r in range(rounds):
            step.wait()
            for i in range(reads):
                key = hot[(r * reads + i + n * 13) % len(hot)]
                value = get(key)
                if value is not None:
                    found[n] += 1
                    if value != key:
                        wrong.append((key, value))

    def write() -> None:
        for r in range(rounds):
            step.wait()
            for i in range(writes):
                cache.set(f"cold:{r}:{i}", i)  # 3000 one-off keys, 15 times the cache
                longest[0] = max(longest[0], len(policy._buffer))

    threads = [threading.Thread(target=read, args=(n,)) for n in range(readers)]
    threads.append(threading.Thread(target=write))
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: appends race drains
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
            assert not t.is_alive()
    finally:
        sys.setswitchinterval(interval)
    assert wrong == []
    assert longest[0] <= 32
    s = cache.stats()
    assert s.hits == sum(found)  # every hit counted, lock-free
    assert s.items <= 200
    window, probation, protected = policy.segments()
    assert sorted(window + probation + protected) == sorted(cache._core.layer.data)
    # the hits recorded through the buffer made the hot keys frequent enough
    # to outlive the one-off keys
    assert sum(1 for k in hot if k in cache._core.layer.data) >= 45
    assert sum(found) >= 0.9 * readers * rounds * reads
