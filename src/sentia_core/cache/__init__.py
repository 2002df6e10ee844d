"""TieredCache and AsyncTieredCache: an in-process L1 with TTLs, tags,
single-flight and a safe codec, over an optional Redis L2 with cross-process
invalidation.

See ``docs/cache.md``. Everything public is re-exported here.
"""

from ._async import AsyncCachedFunction, AsyncTieredCache
from ._backend import AsyncCacheBackend, BackendWrite, CacheBackend, StoredBatch, StoredValue
from ._codec import Codec, JsonSerializer, PickleSerializer, Serializer
from ._errors import CorruptPayloadError, InvalidKeyError, PayloadError, UntrustedPayloadError
from ._glob import InvalidPatternError, compile_glob, escape_glob
from ._policy import EvictionPolicy, LRUPolicy
from ._tiered import CachedFunction, TieredCache
from ._types import (
    CacheEviction,
    CacheFault,
    CacheInvalidation,
    CacheStats,
    EvictionCounts,
    FaultKind,
    InvalidationKind,
    RedisStats,
)

__all__ = [
    "AsyncCacheBackend",
    "AsyncCachedFunction",
    "AsyncTieredCache",
    "BackendWrite",
    "CacheBackend",
    "CacheEviction",
    "CacheFault",
    "CacheInvalidation",
    "CacheStats",
    "CachedFunction",
    "Codec",
    "CorruptPayloadError",
    "EvictionCounts",
    "EvictionPolicy",
    "FaultKind",
    "InvalidKeyError",
    "InvalidPatternError",
    "InvalidationKind",
    "JsonSerializer",
    "LRUPolicy",
    "PayloadError",
    "PickleSerializer",
    "RedisStats",
    "Serializer",
    "StoredBatch",
    "StoredValue",
    "TieredCache",
    "UntrustedPayloadError",
    "compile_glob",
    "escape_glob",
]
