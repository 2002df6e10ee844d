"""``AsyncTieredCache``: the asyncio shell around :class:`CacheOps`.

The same operations as :class:`~sentia_core.cache.TieredCache` (``_ops.py``),
run by the shared async runner: the backend (``redis.asyncio`` through
:class:`AsyncRedisBackend`, or any :class:`AsyncCacheBackend`) and the loader
are awaited, waiters await a future, sleeps are ``clock.async_sleep``, and
background refreshes are tasks. The L1 hit path is the same lock-free read as
the sync cache's, with no await in it.

A cache belongs to one event loop once it has talked to Redis (redis.asyncio
connections and the invalidation listener task are bound to a loop).
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, ParamSpec, Protocol, TypeVar, overload

from sentia_core._clock import SYSTEM_CLOCK, Clock
from sentia_core._redis import DEFAULT_CONNECT_TIMEOUT, DEFAULT_SOCKET_TIMEOUT
from sentia_core.breaker import BreakerLike
from sentia_core.errors import ConfigError

from ._backend import AsyncCacheBackend
from ._codec import DEFAULT_MAX_DECOMPRESSED_SIZE, Serializer
from ._core import MISS, Eviction, L1Store
from ._keys import check_key
from ._ops import DEFAULT_MAX_BYTES, CacheOps, KeyBuilder, TagBuilder
from ._policy import EvictionPolicy

__all__ = ["AsyncCachedFunction", "AsyncTieredCache"]

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class AsyncCachedFunction(Protocol[P, R_co]):
    """A coroutine function wrapped by :meth:`AsyncTieredCache.cached`.

    Await it like the original. ``await invalidate(*args, **kwargs)`` drops
    the entry those arguments would use (for a method, leave out ``self``)
    and returns whether one was held; ``key_for(*args, **kwargs)`` returns
    that key.
    """

    cache: AsyncTieredCache

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R_co]: ...

    def invalidate(self, *args: Any, **kwargs: Any) -> Awaitable[bool]: ...

    def key_for(self, *args: Any, **kwargs: Any) -> str: ...


class AsyncTieredCache(CacheOps):
    """The asyncio twin of :class:`TieredCache`: the same arguments, semantics and
    statistics, with coroutine methods (``await cache.get(key)``).

    ``redis=`` takes a URL, a ``redis.asyncio.Redis`` or a
    ``redis.asyncio.RedisCluster``; ``backend=`` an :class:`AsyncCacheBackend`.
    The invalidation listener is a task started on first use (or by ``async
    with`` / :meth:`start`) and stopped by :meth:`aclose`. See
    :class:`TieredCache` for every argument.

    Raises:
        ConfigError: any invalid argument, naming it.
    """

    _async_backend = True
    _backend_needs = "must implement AsyncCacheBackend (coroutine methods)"

    def __init__(
        self,
        *,
        max_items: int = 10_000,
        max_bytes: int = DEFAULT_MAX_BYTES,
        ttl: float = 300.0,
        stale_ttl: float = 0.0,
        stale_while_revalidate: bool = False,
        namespace: str = "cache",
        serializer: Literal["json", "pickle"] | Serializer = "json",
        secret: bytes | str | None = None,
        old_secrets: Sequence[bytes | str] = (),
        compress_threshold: int | None = 1024,
        compress_level: int = 3,
        max_decompressed_size: int = DEFAULT_MAX_DECOMPRESSED_SIZE,
        l1_store: L1Store = "object",
        eviction: Eviction = "tinylfu",
        policy: EvictionPolicy | None = None,
        backend: AsyncCacheBackend | None = None,
        redis: object = None,
        redis_ttl: float = 3600.0,
        redis_cluster: bool = False,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        breaker: BreakerLike | None = None,
        invalidation: bool = True,
        heartbeat_interval: float = 1.0,
        disconnected_ttl: float = 1.0,
        distributed_lock: bool = False,
        lock_ttl: float = 10.0,
        lock_wait: float = 5.0,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(
            max_items=max_items,
            max_bytes=max_bytes,
            ttl=ttl,
            stale_ttl=stale_ttl,
            stale_while_revalidate=stale_while_revalidate,
            namespace=namespace,
            serializer=serializer,
            secret=secret,
            old_secrets=old_secrets,
            compress_threshold=compress_threshold,
            compress_level=compress_level,
            max_decompressed_size=max_decompressed_size,
            l1_store=l1_store,
            eviction=eviction,
            policy=policy,
            backend=backend,
            redis=redis,
            redis_ttl=redis_ttl,
            redis_cluster=redis_cluster,
            socket_timeout=socket_timeout,
            connect_timeout=connect_timeout,
            breaker=breaker,
            invalidation=invalidation,
            heartbeat_interval=heartbeat_interval,
            disconnected_ttl=disconnected_ttl,
            distributed_lock=distributed_lock,
            lock_ttl=lock_ttl,
            lock_wait=lock_wait,
            clock=clock,
            rng=rng,
        )
        self._start_wait = 2 * (connect_timeout + socket_timeout)

    def _backend_ok(self, backend: object) -> bool:
        return inspect.iscoroutinefunction(getattr(backend, "get", None)) and isinstance(
            backend, AsyncCacheBackend
        )

    def _build_redis(self, redis: object, **kw: Any) -> Any:
        from sentia_core._redis import is_cluster, make_async_client

        from ._redis_backend import AsyncRedisBackend

        client = make_async_client(
            redis,
            socket_timeout=kw["socket_timeout"],
            connect_timeout=kw["connect_timeout"],
            cluster=bool(kw["redis_cluster"]),
        )
        if not inspect.iscoroutinefunction(getattr(client, "execute_command", None)):
            raise ConfigError("redis", redis, "a synchronous client: use TieredCache")
        opts = self._redis_kwargs(kw, is_cluster(client), isinstance(redis, str))
        return AsyncRedisBackend(kw["namespace"], client, **opts)

    async def start(self) -> None:
        """Start the invalidation listener on the running loop (done on first use
        anyway) and wait briefly for its subscription."""
        redis = self._redis
        if redis is not None and not redis.started():
            await redis.start(wait=self._start_wait)

    async def _ready(self) -> None:
        redis = self._redis
        if redis is not None and not redis.started():
            await redis.start(wait=self._start_wait)

    # -- reads ---------------------------------------------------------------

    async def get(self, key: str, default: Any = None) -> Any:
        """The value cached under ``key``, or ``default`` (see :meth:`TieredCache.get`).

        Raises:
            InvalidKeyError: ``key`` is not a ``str``.
        """
        value = self._probe(key)
        if value is not MISS:
            return value
        await self._ready()
        return await self._arun(self._get_op(key, default, None))

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The cached values of ``keys`` that are present (one ``MGET`` for the L1 misses).

        Raises:
            InvalidKeyError: a key is not a ``str`` (before anything is read).
        """
        await self._ready()
        return await self._arun(self._get_many_op(keys))

    # -- writes --------------------------------------------------------------

    async def set(
        self, key: str, value: Any, ttl: float | None = None, tags: Iterable[str] = ()
    ) -> None:
        """Cache ``value`` under ``key`` (see :meth:`TieredCache.set`).

        Raises:
            InvalidKeyError, ConfigError, SerializationError: as :meth:`TieredCache.set`.
        """
        if self._backend is None:
            self._core.write(key, value, ttl, tags)
            return
        await self._ready()
        prepared = self._core.write(key, value, ttl, tags)
        if prepared is not None:
            await self._arun(self._write_op((prepared,)))

    async def set_many(
        self, mapping: Mapping[str, Any], ttl: float | None = None, tags: Iterable[str] = ()
    ) -> None:
        """:meth:`set` every item; all are validated before any is stored."""
        await self._ready()
        await self._arun(self._set_many_op(mapping, ttl, tags))

    async def delete(self, key: str) -> bool:
        """Remove ``key``; returns whether an entry was held (in L1 or the backend)."""
        return await self.delete_many((key,)) > 0

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Remove ``keys``; returns how many were held (by the backend if there is one)."""
        await self._ready()
        return await self._arun(self._delete_many_op(keys))

    # -- invalidation --------------------------------------------------------

    async def invalidate_tags(self, *tags: str) -> int:
        """Remove every entry carrying any of ``tags`` (every process's L1 too)."""
        await self._ready()
        return await self._arun(self._invalidate_tags_op(tags))

    async def invalidate_pattern(self, pattern: str) -> int:
        """Remove every entry whose key matches the glob ``pattern`` (SCAN, never KEYS)."""
        await self._ready()
        return await self._arun(self._invalidate_pattern_op(pattern))

    async def clear(self) -> None:
        """Remove every entry of this cache (its namespace only, in Redis)."""
        await self._ready()
        await self._arun(self._clear_op())

    # -- cache-aside -----------------------------------------------------------

    async def get_or_set(
        self,
        key: str,
        loader: Callable[[], Any],
        ttl: float | None = None,
        tags: Iterable[str] = (),
    ) -> Any:
        """The cached value of ``key``, or the loader's result, cached.

        ``loader`` is a coroutine function or a plain callable. Single-flight
        across the tasks (and threads) of this process, and across processes
        with ``distributed_lock=True``; see :meth:`TieredCache.get_or_set`.

        Raises:
            InvalidKeyError, ConfigError: bad key, ttl or tags.
            SerializationError: the loaded value cannot be encoded.
            Exception: whatever ``loader`` raised (when no stale value is held).
        """
        tag_tuple = self._check_load_args(ttl, tags)
        value = self._probe(key)
        if value is not MISS:
            return value
        await self._ready()
        return await self._aload(check_key(key), loader, ttl, tag_tuple)

    # -- the decorator ---------------------------------------------------------

    @overload
    def cached(self, ttl: Callable[P, Awaitable[R]]) -> AsyncCachedFunction[P, R]: ...

    @overload
    def cached(
        self,
        ttl: float | None = None,
        *,
        tags: Iterable[str] | Callable[..., Iterable[str]] = (),
        key: str | Callable[..., str] | None = None,
    ) -> Callable[[Callable[P, Awaitable[R]]], AsyncCachedFunction[P, R]]: ...

    def cached(
        self,
        ttl: Any = None,
        *,
        tags: Iterable[str] | Callable[..., Iterable[str]] = (),
        key: str | Callable[..., str] | None = None,
    ) -> Any:
        """Cache an ``async def`` function's results (functions and methods).

        Same arguments and semantics as :meth:`TieredCache.cached`; the wrapped
        function's ``invalidate`` is a coroutine.

        Raises:
            ConfigError: bad ``ttl``, ``tags`` or ``key``, or a function that is
                not a coroutine function (at decoration).
        """
        if callable(ttl) and not isinstance(ttl, (int, float)):
            return self.cached()(ttl)
        return self._decorate(ttl, tags, key, self._wrap, self.delete)

    def _wrap(
        self, fn: Callable[..., Any], build_key: KeyBuilder, build_tags: TagBuilder, ttl: Any
    ) -> Any:
        if not inspect.iscoroutinefunction(fn):
            raise ConfigError(
                "function", fn, "AsyncTieredCache.cached decorates async def functions"
            )
        import functools

        probe = self._probe
        aload = self._aload
        ready = self._ready

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            k = build_key(args, kwargs)
            value = probe(k)
            if value is not MISS:
                return value
            await ready()
            loader = functools.partial(fn, *args, **kwargs)
            return await aload(k, loader, ttl, build_tags(args, kwargs))

        return functools.update_wrapper(wrapper, fn)

    # -- lifecycle ---------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop the invalidation listener and close a Redis client the cache built.

        The cache stays usable; without its listener, L1 entries then live at
        most ``disconnected_ttl``.
        """
        if self._redis is not None:
            await self._redis.aclose()
        for task in list(self._tasks):
            if not task.done():
                await task

    async def __aenter__(self) -> AsyncTieredCache:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
