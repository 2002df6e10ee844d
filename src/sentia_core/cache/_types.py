"""The cache's value objects: the stats snapshot and the events it emits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sentia_core._events import Event

from ._memory import EvictionReason

__all__ = [
    "CacheEviction",
    "CacheFault",
    "CacheInvalidation",
    "CacheStats",
    "EvictionCounts",
    "FaultKind",
    "InvalidationKind",
    "RedisStats",
]

#: What an invalidation targeted (``flush``: the whole L1, because invalidation
#: messages from other processes may have been lost; not on request).
InvalidationKind = Literal["delete", "tags", "pattern", "clear", "flush"]

#: What went wrong: a payload that failed to decode (``corrupt``) or failed
#: its signature check (``untrusted``), a loader that raised (``loader``), or
#: a backend call that failed (``backend``; the cache carried on without it).
FaultKind = Literal["corrupt", "untrusted", "loader", "backend"]


@dataclass(frozen=True, slots=True)
class EvictionCounts:
    """Entries the L1 dropped on its own, by reason.

    Attributes:
        size: to stay within ``max_items``.
        bytes: to stay within ``max_bytes``.
        ttl: because they expired (past ``ttl`` plus ``stale_ttl``).
    """

    size: int = 0
    bytes: int = 0
    ttl: int = 0

    @property
    def total(self) -> int:
        """All evictions."""
        return self.size + self.bytes + self.ttl


@dataclass(frozen=True, slots=True)
class CacheStats:
    """A consistent snapshot of one cache, from :meth:`TieredCache.stats`.

    Counters count since the cache was built (or :meth:`TieredCache.reset_stats`).

    Attributes:
        namespace: the cache's namespace.
        hits: lookups answered from the cache (L1, or the backend when there is one).
        misses: lookups that found nothing usable (a loader ran or a default was returned).
        hit_rate: ``hits / (hits + misses)``, 0.0 before the first lookup.
        sets: values written (``set``, each key of ``set_many``, stored loader results).
        items: entries held in L1 now (expired ones still held for ``stale_ttl`` included).
        bytes: accounted bytes held in L1 now (keys plus values; docs/cache.md).
        max_items: the L1 item bound.
        max_bytes: the L1 byte bound.
        evictions: entries the L1 dropped on its own, by reason.
        oversize: values refused by L1 because they alone exceed ``max_bytes``.
        invalidated: entries removed on request (delete, invalidate_tags,
            invalidate_pattern, clear).
        loader_calls: loader (or decorated function) runs.
        loader_errors: loader runs that raised.
        coalesced: callers that waited for another caller's loader (single-flight)
            instead of running their own.
        stale_served: callers given an expired value within ``stale_ttl`` (the loader
            failed, or stale-while-revalidate answered while refreshing).
        discarded_loads: loaded values returned but not stored because their key
            (or one of its tags) was invalidated while the loader ran.
        compressed: payloads that were compressed.
        compression_ratio: payload bytes / serialized bytes over every payload
            built (below 1.0 means compression saved space; 1.0 when none).
        corrupt: payloads that failed to decode (each served as a miss).
        rejected: payloads refused for a missing or bad signature (served as misses).
        backend_hits: hits answered by the backend (L2) rather than L1.
        backend_errors: backend calls that failed (the cache carried on without it).
        backend_misses: backend lookups that found nothing usable.
        backend_skipped: backend calls not made because the Redis breaker was
            open (the cache served L1 or ran the loader at once).
        remote_coalesced: callers that got their value from another process's
            load, waiting on the distributed single-flight lock.
        degraded: True while the Redis L2 is bypassed or the cross-process
            invalidation channel is down (see :attr:`TieredCache.degraded`).
        redis: the Redis side (breaker, channel, messages), or None without Redis.
    """

    namespace: str
    hits: int
    misses: int
    hit_rate: float
    sets: int
    items: int
    bytes: int
    max_items: int
    max_bytes: int
    evictions: EvictionCounts
    oversize: int
    invalidated: int
    loader_calls: int
    loader_errors: int
    coalesced: int
    stale_served: int
    discarded_loads: int
    compressed: int
    compression_ratio: float
    corrupt: int
    rejected: int
    backend_hits: int
    backend_errors: int
    backend_misses: int = 0
    backend_skipped: int = 0
    remote_coalesced: int = 0
    degraded: bool = False
    redis: RedisStats | None = None

    @property
    def l1_hits(self) -> int:
        """Hits answered by the in-process L1."""
        return self.hits - self.backend_hits


@dataclass(frozen=True, slots=True)
class RedisStats:
    """The Redis side of :class:`CacheStats`.

    Attributes:
        breaker: the state of the breaker guarding Redis calls (``"closed"``...).
        channel_up: whether the invalidation subscription is confirmed now.
        messages_sent: invalidation messages this cache published.
        messages_received: messages received on the channel (own ones included).
        messages_applied: other caches' messages applied to this L1.
        malformed: messages that did not parse (ignored).
        gaps: lost messages detected by sequence numbers (each cleared the L1).
        channel_downs: times the subscription was lost (each cleared the L1).
        l1_flushes: times the L1 was cleared to stay consistent (gaps, losses,
            reconnections).
        pending: invalidations waiting to be replayed to Redis.
        last_delay: seconds between the sender building and this cache
            receiving the latest applied message (includes clock skew between
            hosts), or None.
        corrupt_keys: keys of this cache found holding a foreign value (another
            Redis type, a lock without a TTL): each was removed, or read as a
            miss, and nothing else was affected.
        journal_dropped: pending invalidations given up after failing
            ``MAX_REPLAY_TRIES`` times for a data reason (never for an outage).
    """

    breaker: str
    channel_up: bool
    messages_sent: int
    messages_received: int
    messages_applied: int
    malformed: int
    gaps: int
    channel_downs: int
    l1_flushes: int
    pending: int
    last_delay: float | None
    corrupt_keys: int = 0
    journal_dropped: int = 0


@dataclass(frozen=True, slots=True)
class CacheEviction(Event):
    """The L1 dropped an entry on its own.

    Attributes:
        namespace: the cache's namespace.
        key: the evicted key.
        reason: ``"size"``, ``"bytes"`` or ``"ttl"``.
        size: the entry's accounted bytes.
    """

    namespace: str
    key: str
    reason: EvictionReason
    size: int


@dataclass(frozen=True, slots=True)
class CacheInvalidation(Event):
    """Entries were removed on request.

    Attributes:
        namespace: the cache's namespace.
        kind: ``"delete"``, ``"tags"``, ``"pattern"``, ``"clear"`` or ``"flush"``.
        targets: the keys, tags or pattern asked for (empty for ``clear``/``flush``).
        count: L1 entries removed.
        remote: True when another process announced it (Redis L2), or for a flush.
    """

    namespace: str
    kind: InvalidationKind
    targets: tuple[str, ...]
    count: int
    remote: bool = False


@dataclass(frozen=True, slots=True)
class CacheFault(Event):
    """Something failed and was absorbed (or, for ``loader``, re-raised to the caller).

    Attributes:
        namespace: the cache's namespace.
        kind: see :data:`FaultKind`.
        key: the key involved, if one.
        error: the error, for people (``"UntrustedPayloadError: bad signature"``).
    """

    namespace: str
    kind: FaultKind
    key: str | None
    error: str
