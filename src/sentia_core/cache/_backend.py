"""The seam where a second layer (the Redis L2) plugs in under the L1.

Theory of operation. :class:`~sentia_core.cache.TieredCache` asks its layers
in order: the L1 (in-process, decided by the core), then the backend, then
the loader. The backend is byte-oriented: it stores *payloads* built by the
cache's :class:`~sentia_core.cache.Codec` and never sees Python values, so
everything it returns is decoded defensively (a corrupt or untrusted payload
is a miss plus a counted fault).

Keys and tags reach the backend *qualified* by the cache's namespace
(``"app:product:42"``, tag ``"app:products"``) and patterns arrive as
``escape_glob(namespace) + ":" + pattern``, so one backend may serve several
caches without collisions; ``clear(namespace)`` drops one namespace. TTLs are
seconds (``math.inf`` for no expiry). Any exception a backend raises is
caught by the cache, counted in ``backend_errors``, reported as a
:class:`~sentia_core.cache.CacheFault` and the call carries on with L1 and
the loader (DESIGN.md rule 5: fail open); a backend never needs to swallow
its own errors.

:class:`CacheBackend` is synchronous; :class:`AsyncCacheBackend`, used by
:class:`~sentia_core.cache.AsyncTieredCache`, mirrors it with coroutines. The
Redis L2 (``redis=``) implements both.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, overload, runtime_checkable

from ._errors import PayloadError

__all__ = ["AsyncCacheBackend", "BackendWrite", "CacheBackend", "StoredBatch", "StoredValue"]


class StoredValue(NamedTuple):
    """A payload read from a backend.

    A NamedTuple rather than a frozen dataclass: a batch read builds one per
    key, and a frozen dataclass's ``__init__`` costs several times more.

    Attributes:
        payload: the bytes :meth:`Codec.dumps` produced.
        ttl: seconds it still has to live (``math.inf``: no expiry).
        tags: the qualified tags it was written with.
        error: set when the backend found something it could not parse
            (a damaged envelope): the cache counts it as corrupt and serves
            a miss; ``payload`` is then empty.
    """

    payload: bytes
    ttl: float
    tags: tuple[str, ...] = ()
    error: PayloadError | None = None


class StoredBatch(Sequence[StoredValue]):
    """A batch read in which every key was found, unexpired and untagged.

    What a backend may return from ``get_many`` in that (common) case: the
    cache decodes the payloads in one pass (:meth:`Codec.loads_many`), and the
    :class:`StoredValue` items are only built if someone indexes the batch
    (filling an L1 does).

    Args:
        raws: one stored item per key, in order; its payload starts at ``offset``.
        deadlines: when each expires, in the units of ``now``.
        now: the reading's time; ``scale`` converts the difference to seconds.
        offset: where each payload starts in its raw item.
    """

    __slots__ = ("_deadlines", "_items", "_now", "_scale", "offset", "raws")

    def __init__(
        self,
        raws: list[bytes],
        deadlines: list[float],
        now: float,
        scale: float = 1.0,
        offset: int = 0,
    ) -> None:
        self.raws = raws
        self.offset = offset
        self._deadlines = deadlines
        self._now = now
        self._scale = scale
        self._items: list[StoredValue] | None = None

    @property
    def payloads(self) -> list[bytes]:
        """The payloads, in order."""
        start = self.offset
        return [r[start:] for r in self.raws] if start else list(self.raws)

    def _built(self) -> list[StoredValue]:
        items = self._items
        if items is None:
            now, scale = self._now, self._scale
            items = self._items = [
                StoredValue(p, (d - now) * scale)
                for p, d in zip(self.payloads, self._deadlines, strict=True)
            ]
        return items

    def __len__(self) -> int:
        return len(self.raws)

    @overload
    def __getitem__(self, index: int) -> StoredValue: ...

    @overload
    def __getitem__(self, index: slice) -> list[StoredValue]: ...

    def __getitem__(self, index: int | slice) -> StoredValue | list[StoredValue]:
        return self._built()[index]

    def __iter__(self) -> Iterator[StoredValue]:
        return iter(self._built())


@dataclass(frozen=True, slots=True)
class BackendWrite:
    """One payload to write.

    Attributes:
        key: the qualified key.
        payload: the encoded value.
        ttl: seconds to live (``math.inf``: no expiry).
        tags: the qualified tags.
    """

    key: str
    payload: bytes
    ttl: float
    tags: tuple[str, ...] = ()


@runtime_checkable
class CacheBackend(Protocol):
    """A byte-oriented second layer (see the module docstring for the contract)."""

    def get(self, key: str) -> StoredValue | None:
        """The payload under ``key``, or ``None``."""
        ...

    def get_many(self, keys: Sequence[str]) -> Sequence[StoredValue | None]:
        """One result per key, in order."""
        ...

    def set_many(self, writes: Sequence[BackendWrite]) -> None:
        """Store every write (replacing what was there)."""
        ...

    def delete_many(self, keys: Sequence[str]) -> int:
        """Remove keys; returns how many existed."""
        ...

    def invalidate_tags(self, tags: Sequence[str]) -> int:
        """Remove every key carrying one of the qualified ``tags``; returns how many."""
        ...

    def invalidate_pattern(self, pattern: str) -> int:
        """Remove every key matching the (qualified) glob; returns how many."""
        ...

    def clear(self, namespace: str) -> int:
        """Remove every key of ``namespace``; returns how many."""
        ...


@runtime_checkable
class AsyncCacheBackend(Protocol):
    """:class:`CacheBackend` with coroutine methods, for :class:`AsyncTieredCache`."""

    async def get(self, key: str) -> StoredValue | None:
        """The payload under ``key``, or ``None``."""
        ...

    async def get_many(self, keys: Sequence[str]) -> Sequence[StoredValue | None]:
        """One result per key, in order."""
        ...

    async def set_many(self, writes: Sequence[BackendWrite]) -> None:
        """Store every write (replacing what was there)."""
        ...

    async def delete_many(self, keys: Sequence[str]) -> int:
        """Remove keys; returns how many existed."""
        ...

    async def invalidate_tags(self, tags: Sequence[str]) -> int:
        """Remove every key carrying one of the qualified ``tags``; returns how many."""
        ...

    async def invalidate_pattern(self, pattern: str) -> int:
        """Remove every key matching the (qualified) glob; returns how many."""
        ...

    async def clear(self, namespace: str) -> int:
        """Remove every key of ``namespace``; returns how many."""
        ...
