"""The L1: an in-process, size-bounded, TTL-aware map of entries.

Theory of operation. ``data`` maps each key to an :class:`Entry` holding the
value (the object itself, or its payload when the cache stores payloads), the
monotonic deadlines ``expires`` and ``stale_until`` (``expires`` plus the
cache's ``stale_ttl``; ``inf`` for no TTL), its accounted ``size`` in bytes
(key plus value, see docs/cache.md) and its tags.

Reads of ``data`` happen without any lock (the cache's hit path: one
``dict.get``, one clock read, the policy's ``on_hit``); every mutation happens
under the owning cache's lock, so this class does no locking of its own.

An entry is *live* until ``expires``, *stale* until ``stale_until`` (kept
only to be served by fail-safe / stale-while-revalidate), then *dead*. Dead
entries are dropped lazily: a read that finds one removes it, and every write
first pops the deadline heap (``(stale_until, seq, key, entry)``; O(1) when
nothing is due) so expired entries free their bytes without a sweeper thread.
A heap item whose entry was replaced or removed is skipped when popped; the
heap is rebuilt when such items outnumber live ones.

Inserting: the old entry under the key (if any) is unlinked first (a
replacement, not an eviction); dead entries are purged; a value larger than
``max_bytes`` is refused and counted (``oversize``) -- after the old entry is
gone, so a refused write never leaves the previous value readable; then the
policy's victims are evicted while the item count (reason ``"size"``) or the
byte total (reason ``"bytes"``) would overflow.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable
from typing import Any, Literal

from ._policy import EvictionPolicy

__all__ = ["Entry", "EvictionReason", "MemoryLayer"]

#: Why an entry left the L1 without being asked to.
EvictionReason = Literal["size", "bytes", "ttl"]

_INF = math.inf


class Entry:
    """One cached value and its bookkeeping (mutated only under the cache lock)."""

    __slots__ = ("expires", "size", "stale_until", "tags", "value")

    def __init__(
        self, value: Any, expires: float, stale_until: float, size: int, tags: tuple[str, ...]
    ) -> None:
        self.value = value
        self.expires = expires
        self.stale_until = stale_until
        self.size = size
        self.tags = tags

    def __repr__(self) -> str:
        return f"Entry(expires={self.expires}, size={self.size}, tags={self.tags})"


class MemoryLayer:
    """Bounded map of entries with LRU (or another policy), TTL and tags.

    Args:
        max_items: most entries held; 0 holds nothing.
        max_bytes: most accounted bytes held (keys plus values).
        policy: the eviction order (fresh instance, not shared).
    """

    __slots__ = (
        "_heap",
        "_seq",
        "_tags",
        "bytes",
        "data",
        "evicted_bytes",
        "evicted_size",
        "evicted_ttl",
        "log",
        "max_bytes",
        "max_items",
        "oversize",
        "policy",
    )

    def __init__(self, max_items: int, max_bytes: int, policy: EvictionPolicy) -> None:
        self.data: dict[str, Entry] = {}
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.policy = policy
        self.bytes = 0
        self.evicted_size = 0
        self.evicted_bytes = 0
        self.evicted_ttl = 0
        self.oversize = 0
        #: when not None, every eviction is appended as (key, reason, size)
        #: for the cache to turn into events after it releases its lock.
        self.log: list[tuple[str, EvictionReason, int]] | None = None
        self._heap: list[tuple[float, int, str, Entry]] = []
        self._seq = itertools.count()
        self._tags: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self.data)

    # -- internal --------------------------------------------------------------

    def _unlink(self, key: str, entry: Entry) -> None:
        del self.data[key]
        self.bytes -= entry.size
        self.policy.on_remove(key)
        for tag in entry.tags:
            keys = self._tags.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tags[tag]

    def _evict(self, key: str, entry: Entry, reason: EvictionReason) -> None:
        self._unlink(key, entry)
        if reason == "size":
            self.evicted_size += 1
        elif reason == "bytes":
            self.evicted_bytes += 1
        else:
            self.evicted_ttl += 1
        if self.log is not None:
            self.log.append((key, reason, entry.size))

    # -- operations (caller holds the cache lock) ------------------------------

    def put(self, key: str, entry: Entry, now: float) -> bool:
        """Store ``entry`` under ``key``, evicting as needed; False if refused."""
        old = self.data.get(key)
        if old is not None:
            self._unlink(key, old)
        self.purge(now)
        if self.max_items == 0:
            return False
        size = entry.size
        if size > self.max_bytes:
            self.oversize += 1
            return False
        data = self.data
        victim = self.policy.victim
        while len(data) >= self.max_items:
            k = victim()
            self._evict(k, data[k], "size")
        while self.bytes + size > self.max_bytes:
            k = victim()
            self._evict(k, data[k], "bytes")
        data[key] = entry
        self.bytes += size
        self.policy.on_insert(key, size)
        for tag in entry.tags:
            keys = self._tags.get(tag)
            if keys is None:
                self._tags[tag] = {key}
            else:
                keys.add(key)
        if entry.stale_until != _INF:
            heap = self._heap
            heapq.heappush(heap, (entry.stale_until, next(self._seq), key, entry))
            if len(heap) > 2 * len(data) + 64:
                self._rebuild_heap()
        return True

    def pop(self, key: str) -> Entry | None:
        """Remove ``key`` on request (delete / invalidation); not an eviction."""
        entry = self.data.get(key)
        if entry is not None:
            self._unlink(key, entry)
        return entry

    def drop_dead(self, key: str, entry: Entry) -> None:
        """Remove an entry a read found past its ``stale_until`` (an eviction, ``ttl``)."""
        if self.data.get(key) is entry:
            self._evict(key, entry, "ttl")

    def purge(self, now: float) -> None:
        """Evict every entry whose ``stale_until`` has passed."""
        heap = self._heap
        data = self.data
        while heap and heap[0][0] <= now:
            _, _, key, entry = heapq.heappop(heap)
            if data.get(key) is entry:
                self._evict(key, entry, "ttl")

    def _rebuild_heap(self) -> None:
        live = [
            (e.stale_until, s, k, e)
            for (_, s, k, e) in self._heap
            if e.stale_until != _INF and self.data.get(k) is e
        ]
        heapq.heapify(live)
        self._heap = live

    def keys_tagged(self, tags: Iterable[str]) -> set[str]:
        """Every key carrying at least one of ``tags``."""
        found: set[str] = set()
        for tag in tags:
            keys = self._tags.get(tag)
            if keys:
                found |= keys
        return found

    def clear(self) -> int:
        """Remove everything (not evictions); returns how many entries there were."""
        n = len(self.data)
        self.data.clear()
        self.policy.clear()
        self._tags.clear()
        self._heap.clear()
        self.bytes = 0
        return n
