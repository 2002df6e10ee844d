"""The L1 against a reference model: a dict with expiry times and an LRU list.

The model is written from the documented rules, not from the code:

* an entry of size ``len(key) + len(value)`` (UTF-8 bytes) lives until
  ``set time + ttl`` and is kept, stale, for ``stale_ttl`` more, then is dead;
* a read of a dead entry evicts it (reason ``ttl``); every write,
  invalidation and ``stats()`` first evicts every dead entry;
* a write replaces the key's old entry (not an eviction), refuses a value
  larger than ``max_bytes`` (``oversize``), then evicts least-recently-used
  entries while the item count (``size``) or the byte total (``bytes``)
  would overflow; a hit makes an entry most recently used.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sentia_core.cache import TieredCache
from sentia_core.testing import ManualClock

KEYS = st.sampled_from(["a", "b", "c", "d", "e", "ü"])
VALUES = st.text(max_size=12)
TTLS = st.sampled_from([None, 1.0, 2.5, 5.0, math.inf])
TAGS = st.lists(st.sampled_from(["x", "y", "z"]), max_size=2, unique=True)
PATTERNS = st.sampled_from(["a*", "*", "[ab]", "[^a]*", "ü"])


@dataclass
class ModelEntry:
    value: str
    expires: float
    stale_until: float
    size: int
    tags: tuple[str, ...]


class L1Machine(RuleBasedStateMachine):
    EVICTION = "lru"  # the model's order; test_tinylfu.py reuses the rest
    STALE_TTL = 0.0
    MAX_ITEMS = 4
    MAX_BYTES = 40
    DEFAULT_TTL = 3.0

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.cache = TieredCache(
            max_items=self.MAX_ITEMS,
            max_bytes=self.MAX_BYTES,
            ttl=self.DEFAULT_TTL,
            stale_ttl=self.STALE_TTL,
            eviction=self.EVICTION,
            clock=self.clock,
        )
        self.entries: dict[str, ModelEntry] = {}  # insertion order == LRU order
        self.hits = self.misses = self.sets = self.invalidated = 0
        self.evicted = {"size": 0, "bytes": 0, "ttl": 0}
        self.oversize = 0
        self.loader_calls = 0

    # -- model helpers -----------------------------------------------------------

    @property
    def now(self) -> float:
        return self.clock.monotonic()

    def _purge(self) -> None:
        for key in [k for k, e in self.entries.items() if e.stale_until <= self.now]:
            del self.entries[key]
            self.evicted["ttl"] += 1

    def _store(self, key: str, value: str, ttl: float | None, tags: tuple[str, ...]) -> None:
        self.sets += 1
        self.entries.pop(key, None)
        self._purge()
        size = len(key.encode()) + len(value.encode())
        if size > self.MAX_BYTES:
            self.oversize += 1
            return
        while len(self.entries) >= self.MAX_ITEMS:
            del self.entries[next(iter(self.entries))]
            self.evicted["size"] += 1
        while sum(e.size for e in self.entries.values()) + size > self.MAX_BYTES:
            del self.entries[next(iter(self.entries))]
            self.evicted["bytes"] += 1
        t = self.DEFAULT_TTL if ttl is None else ttl
        expires = self.now + t
        self.entries[key] = ModelEntry(value, expires, expires + self.STALE_TTL, size, tags)

    def _live(self, key: str) -> ModelEntry | None:
        entry = self.entries.get(key)
        if entry is not None and entry.expires > self.now:
            self.entries[key] = self.entries.pop(key)  # most recently used
            self.hits += 1
            return entry
        self.misses += 1
        if entry is not None and entry.stale_until <= self.now:
            del self.entries[key]
            self.evicted["ttl"] += 1
        return None

    def _remove(self, keys: list[str]) -> int:
        for key in keys:
            del self.entries[key]
        self.invalidated += len(keys)
        return len(keys)

    # -- rules ------------------------------------------------------------------

    @rule(key=KEYS, value=VALUES, ttl=TTLS, tags=TAGS)
    def set(self, key: str, value: str, ttl: float | None, tags: list[str]) -> None:
        self.cache.set(key, value, ttl=ttl, tags=tags)
        self._store(key, value, ttl, tuple(tags))

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        entry = self._live(key)
        assert self.cache.get(key, "MISSING") == ("MISSING" if entry is None else entry.value)

    @rule(key=KEYS, value=VALUES)
    def get_or_set(self, key: str, value: str) -> None:
        entry = self._live(key)
        got = self.cache.get_or_set(key, lambda: value)
        if entry is None:
            self.loader_calls += 1
            self._store(key, value, None, ())
            assert got == value
        else:
            assert got == entry.value

    @rule(keys=st.lists(KEYS, max_size=3))
    def get_many(self, keys: list[str]) -> None:
        expected: dict[str, str] = {}
        for key in keys:
            entry = self._live(key)
            if entry is not None:
                expected[key] = entry.value
        assert self.cache.get_many(keys) == expected

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        self._purge()
        existed = key in self.entries
        if existed:
            self._remove([key])
        assert self.cache.delete(key) is existed

    @rule(tags=TAGS)
    def invalidate_tags(self, tags: list[str]) -> None:
        self._purge()
        doomed = [k for k, e in self.entries.items() if set(e.tags) & set(tags)]
        expected = self._remove(doomed)
        assert self.cache.invalidate_tags(*tags) == expected

    @rule(pattern=PATTERNS)
    def invalidate_pattern(self, pattern: str) -> None:
        self._purge()
        doomed = [k for k in self.entries if fnmatch.fnmatchcase(k, pattern.replace("[^", "[!"))]
        expected = self._remove(doomed)
        assert self.cache.invalidate_pattern(pattern) == expected

    @precondition(lambda self: len(self.entries) > 0)
    @rule()
    def clear(self) -> None:
        self._purge()
        self._remove(list(self.entries))
        self.cache.clear()

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.0, 3.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def stats_match_the_model(self) -> None:
        s = self.cache.stats()
        self._purge()
        assert s.items == len(self.entries)
        assert s.bytes == sum(e.size for e in self.entries.values())
        assert (s.hits, s.misses) == (self.hits, self.misses)
        assert (s.evictions.size, s.evictions.bytes, s.evictions.ttl) == (
            self.evicted["size"],
            self.evicted["bytes"],
            self.evicted["ttl"],
        )
        assert s.oversize == self.oversize
        assert s.sets == self.sets
        assert s.invalidated == self.invalidated
        assert s.loader_calls == self.loader_calls

    # -- invariants (read-only: they must not purge) --------------------------------

    @invariant()
    def same_keys_in_the_same_lru_order(self) -> None:
        layer = self.cache._core.layer
        assert list(layer.policy._order) == list(self.entries)  # type: ignore[attr-defined]
        assert set(layer.data) == set(self.entries)
        assert layer.bytes == sum(e.size for e in self.entries.values())
        assert layer.bytes <= self.MAX_BYTES
        assert len(layer.data) <= self.MAX_ITEMS


class L1WithStaleMachine(L1Machine):
    STALE_TTL = 2.0


TestL1AgainstModel = L1Machine.TestCase
TestL1AgainstModel.settings = settings(stateful_step_count=40, deadline=None)
TestL1WithStaleAgainstModel = L1WithStaleMachine.TestCase
TestL1WithStaleAgainstModel.settings = settings(stateful_step_count=40, deadline=None)
