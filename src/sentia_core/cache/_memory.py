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
first pops the deadline heap (``(stale_until, key)``; O(1) when nothing is
due) so expired entries free their bytes without a sweeper thread. The heap
is lazy: a key has at most one pending item, ``_scheduled[key]``, pushed only
when a write moves its deadline *earlier*; an item that pops before its
key's current deadline (the key was rewritten later) is pushed again for that
deadline, and one whose key is gone is dropped. So rewriting a hot key costs
no heap operation, and the heap is rebuilt from the live entries if deleted
keys ever make it twice the size of the cache.

Inserting: the old entry under the key (if any) is unlinked first (a
replacement, not an eviction); dead entries are purged; a value larger than
``max_bytes`` is refused and counted (``oversize``) -- after the old entry is
gone, so a refused write never leaves the previous value readable; then the
entry is stored and told to the policy, and the policy's victims are evicted
while the item count (reason ``"size"``) or the byte total (reason
``"bytes"``) is over its bound. The policy sees the new key before choosing
(W-TinyLFU's admission contest starts from the write), and never chooses it.
"""

from __future__ import annotations

import heapq
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
    """Bounded map of entries with W-TinyLFU, LRU or another policy, TTL and tags.

    Args:
        max_items: most entries held; 0 holds nothing.
        max_bytes: most accounted bytes held (keys plus values).
        policy: the eviction order (fresh instance, not shared).
    """

    __slots__ = (
        "_heap",
        "_scheduled",
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
        self._heap: list[tuple[float, str]] = []
        #: key -> the earliest deadline it has in the heap
        self._scheduled: dict[str, float] = {}
        self._tags: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self.data)

    # -- internal --------------------------------------------------------------

    def _unlink(self, key: str, entry: Entry) -> None:
        del self.data[key]
        self.bytes -= entry.size
        self.policy.on_remove(key)
        if entry.tags:
            self._untag(key, entry.tags)

    def _untag(self, key: str, tags: tuple[str, ...]) -> None:
        index = self._tags
        for tag in tags:
            keys = index.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[tag]

    def _evict(self, key: str, entry: Entry, reason: EvictionReason) -> None:
        # _unlink, inlined: every write into a full cache evicts
        del self.data[key]
        self.bytes -= entry.size
        self.policy.on_remove(key)
        if entry.tags:
            self._untag(key, entry.tags)
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
        data = self.data
        size = entry.size
        old = data.get(key)
        if old is not None:
            if size <= self.max_bytes and not old.tags and not entry.tags:
                return self._rewrite(key, old, entry, now)
            self._unlink(key, old)
        heap = self._heap
        if heap and heap[0][0] <= now:
            self.purge(now)
        if self.max_items == 0:
            return False
        if size > self.max_bytes:
            self.oversize += 1
            return False
        data[key] = entry
        self.bytes += size
        self.policy.on_insert(key, size)
        if entry.tags:
            index = self._tags
            for tag in entry.tags:
                keys = index.get(tag)
                if keys is None:
                    index[tag] = {key}
                else:
                    keys.add(key)
        deadline = entry.stale_until
        if deadline != _INF:
            scheduled = self._scheduled
            pending = scheduled.get(key)
            if pending is None or deadline < pending:
                # _schedule, inlined (the commonest write: a new key with a TTL)
                heapq.heappush(heap, (deadline, key))
                scheduled[key] = deadline
                if len(heap) > 2 * len(data) + 1024:
                    self._rebuild_heap()
        if len(data) > self.max_items or self.bytes > self.max_bytes:
            victim = self.policy.victim
            while len(data) > self.max_items:
                k = victim()
                self._evict(k, data[k], "size")
            while self.bytes > self.max_bytes:
                k = victim()
                self._evict(k, data[k], "bytes")
            # a custom policy may choose the key just written: then it is not kept
            return data.get(key) is entry
        return True

    def _rewrite(self, key: str, old: Entry, entry: Entry, now: float) -> bool:
        """Replace an untagged entry in place: one dict store, one policy update.

        Same outcome as unlink + insert (the key becomes most recently used and
        victims are taken while the bytes would overflow) for the commonest
        write, rewriting a hot key; the key itself is never a victim since it
        was just made most recent and fits on its own.
        """
        self.data[key] = entry
        self.policy.on_update(key, entry.size)
        self.bytes += entry.size - old.size
        heap = self._heap
        if heap and heap[0][0] <= now:
            self.purge(now)
        if self.bytes > self.max_bytes:
            data = self.data
            victim = self.policy.victim
            while self.bytes > self.max_bytes:
                k = victim()
                self._evict(k, data[k], "bytes")
        deadline = entry.stale_until
        if deadline != _INF:
            pending = self._scheduled.get(key)
            if pending is None or deadline < pending:
                self._schedule(key, deadline)
        return True

    def _schedule(self, key: str, deadline: float) -> None:
        heap = self._heap
        heapq.heappush(heap, (deadline, key))
        self._scheduled[key] = deadline
        if len(heap) > 2 * len(self.data) + 1024:
            self._rebuild_heap()

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
        scheduled = self._scheduled
        while heap and heap[0][0] <= now:
            deadline, key = heapq.heappop(heap)
            if scheduled.get(key) == deadline:
                del scheduled[key]
            entry = data.get(key)
            if entry is None:
                continue
            if entry.stale_until <= now:
                self._evict(key, entry, "ttl")
            elif entry.stale_until != _INF:
                pending = scheduled.get(key)
                if pending is None or entry.stale_until < pending:
                    # the entry was rewritten with a later deadline: follow it
                    heapq.heappush(heap, (entry.stale_until, key))
                    scheduled[key] = entry.stale_until

    def _rebuild_heap(self) -> None:
        data = self.data
        scheduled = {k: e.stale_until for k, e in data.items() if e.stale_until != _INF}
        heap = [(d, k) for k, d in scheduled.items()]
        heapq.heapify(heap)
        self._heap = heap
        self._scheduled = scheduled

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
        self._scheduled.clear()
        self.bytes = 0
        return n
