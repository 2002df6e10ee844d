"""``TieredCache``: the synchronous shell around :class:`CacheOps`.

Every operation is a generator in ``_ops.py``; this module runs them with
plain calls (:meth:`TieredCache._run`): backend methods called directly, the
loader called, a thread waiting on a flight's ``Event``, ``clock.sleep``,
background refreshes on threads. The two read paths (``get`` after an L1
miss, ``get_many``) call the same shared steps one after the other instead:
on a Redis hit, driving a generator would cost more than the rest of the
cache's work. Coroutine functions decorated with
:meth:`TieredCache.cached` run the same operations through the shared async
runner (the backend is still called synchronously). See ``_core.py`` and
``_ops.py`` for the theory of operation.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, ParamSpec, Protocol, TypeVar, cast, overload

from sentia_core._clock import SYSTEM_CLOCK, Clock
from sentia_core._redis import DEFAULT_CONNECT_TIMEOUT, DEFAULT_SOCKET_TIMEOUT
from sentia_core.breaker import BreakerLike

from ._backend import CacheBackend
from ._codec import DEFAULT_MAX_DECOMPRESSED_SIZE, Serializer
from ._core import MISS, Eviction, L1Store
from ._keys import check_key
from ._ops import (
    DEFAULT_MAX_BYTES,
    CacheOps,
    Call,
    KeyBuilder,
    Load,
    Op,
    Sleep,
    Spawn,
    TagBuilder,
    Wait,
)
from ._policy import EvictionPolicy

__all__ = ["CachedFunction", "TieredCache"]

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)
T = TypeVar("T")


class CachedFunction(Protocol[P, R_co]):
    """A function wrapped by :meth:`TieredCache.cached`.

    Call it like the original. ``invalidate(*args, **kwargs)`` drops the
    entry those arguments would use (for a method, leave out ``self``) and
    returns whether one was held; ``key_for(*args, **kwargs)`` returns that key.
    """

    cache: TieredCache

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R_co: ...

    def invalidate(self, *args: Any, **kwargs: Any) -> bool: ...

    def key_for(self, *args: Any, **kwargs: Any) -> str: ...


class TieredCache(CacheOps):
    """A two-level cache: an in-process L1 over an optional Redis L2.

    The L1 keeps values in memory, bounded by both item count and bytes (keys
    and values counted), with W-TinyLFU (or LRU) eviction, TTLs, tags, single-flight loading
    and a safe codec. ``redis=`` adds a shared L2 in Redis (or Valkey, or a
    Redis Cluster) and cross-process invalidation of every process's L1; a
    Redis that is down, slow or full never raises into the caller (see
    docs/cache.md, "Redis").

    Args:
        max_items: most entries held in L1 (0: L1 off; with Redis, L2 only).
        max_bytes: most accounted bytes held in L1: UTF-8 key length plus the
            value's serialized length (its payload length with
            ``l1_store="payload"``). Default 100 MiB.
        ttl: default time to live in seconds of an L1 entry (per-call ``ttl=``
            sets both layers; ``math.inf``: no expiry). Default 300.
        stale_ttl: seconds an expired entry is still kept to be served when
            its loader fails (fail-safe) or, with ``stale_while_revalidate``,
            while it is refreshed. Default 0 (off).
        stale_while_revalidate: on an expired entry within ``stale_ttl``,
            ``get_or_set`` / ``@cached`` return it at once and refresh it in
            the background (one refresh per key). Needs ``stale_ttl > 0``.
        namespace: names this cache in events and qualifies every key, tag,
            pattern and channel it sends to a backend or Redis, so caches
            sharing one never collide. Letters, digits, ``_ . -``; default
            ``"cache"``.
        serializer: ``"json"`` (safe tagged JSON, the default), ``"pickle"``
            (needs ``secret``) or a :class:`Serializer`.
        secret: HMAC-SHA256 key signing every payload; required for pickle.
        old_secrets: previous secrets still accepted when verifying (rotation).
        compress_threshold: payloads whose body exceeds this many bytes are zstd
            compressed; ``None`` never compresses. Default 1024.
        compress_level: zstd level 1..22 (default 3).
        max_decompressed_size: largest size in bytes a compressed payload may
            inflate to (default 64 MiB).
        l1_store: ``"object"`` (default) keeps your objects in L1: hits return
            the very object (do not mutate it), no decode cost. ``"payload"``
            keeps encoded, compressed bytes: every hit decodes a fresh copy.
        eviction: the L1's eviction policy: ``"tinylfu"`` (the default,
            :class:`TinyLFUPolicy`: W-TinyLFU, keeps what is used often as
            well as what was used recently) or ``"lru"`` (:class:`LRUPolicy`).
            See docs/cache.md, "Eviction".
        policy: an :class:`EvictionPolicy` instance instead (overrides
            ``eviction``; not shared between caches).
        backend: a :class:`CacheBackend` under the L1 (not with ``redis``).
        redis: a Redis URL (``redis://``, ``rediss://`` for TLS, AUTH in the
            URL, ``unix://``), a ``redis.Redis`` or a ``redis.RedisCluster``:
            the L2. Clients must keep ``decode_responses=False``.
        redis_ttl: default TTL in seconds of an L2 entry (and the Redis TTL of
            an entry written with ``ttl=math.inf``). Default 3600.
        redis_cluster: with a URL, connect to a Redis Cluster.
        socket_timeout: seconds a Redis command may take, with a URL (default 0.25).
        connect_timeout: seconds to connect to Redis, with a URL (default 0.25).
        breaker: the :class:`~sentia_core.breaker.CircuitBreaker` (any
            :class:`~sentia_core.breaker.BreakerLike`) guarding Redis
            calls (default: one opening after 3 consecutive connection errors
            or timeouts, for 5 seconds).
        invalidation: announce writes and invalidations on the namespace's
            Redis channel and apply other processes' to this L1 (default True).
        heartbeat_interval: seconds between pings of the invalidation channel
            (default 1.0).
        disconnected_ttl: while the invalidation channel is down, L1 entries
            live at most this many seconds (default 1.0).
        distributed_lock: processes missing the same key run the loader once
            (a Redis lock); default False (single-flight within the process).
        lock_ttl: seconds the distributed lock is held at most (default 10).
        lock_wait: seconds a process waits for another's load before loading
            itself (default 5).
        clock: time source (default the system clock); tests pass a ManualClock.
        rng: randomness for polling jitter (default a fresh ``random.Random``).

    Raises:
        ConfigError: any invalid argument, naming it.
    """

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
        backend: CacheBackend | None = None,
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
        # The hit path of get() is a closure bound on the instance: it saves a
        # Python call per hit over the method below (same code, see _core.py).
        self._read = read = self._core.make_reader(self._get_miss)
        read.__name__ = "get"
        read.__qualname__ = "TieredCache.get"
        read.__doc__ = TieredCache.get.__doc__
        self.get = read  # type: ignore[method-assign]
        if self._redis is not None:
            # wait (briefly) for the invalidation subscription, so that the L1
            # starts with full TTLs when Redis is up
            self._redis.start(wait=2 * (connect_timeout + socket_timeout))

    def _build_redis(self, redis: object, **kw: Any) -> Any:
        from sentia_core._redis import is_cluster, make_client

        from ._redis_backend import RedisBackend

        client = make_client(
            redis,
            socket_timeout=kw["socket_timeout"],
            connect_timeout=kw["connect_timeout"],
            cluster=bool(kw["redis_cluster"]),
        )
        if inspect.iscoroutinefunction(getattr(client, "execute_command", None)):
            from sentia_core.errors import ConfigError

            raise ConfigError("redis", redis, "an asyncio client: use AsyncTieredCache")
        opts = self._redis_kwargs(kw, is_cluster(client), isinstance(redis, str))
        return RedisBackend(kw["namespace"], client, **opts)

    # -- the runner ----------------------------------------------------------

    def _run(self, op: Op[T]) -> T:
        """Run an operation synchronously (see ``_ops.py``)."""
        backend = self._backend
        reply: Any = None
        error: BaseException | None = None
        while True:
            try:
                effect = op.send(reply) if error is None else op.throw(error)
            except StopIteration as stop:
                return cast(T, stop.value)
            reply = error = None
            try:
                kind = effect.__class__
                if kind is Call:
                    call = cast(Call, effect)
                    reply = getattr(backend, call.method)(*call.args)
                elif kind is Load:
                    reply = cast(Load, effect).loader()
                elif kind is Wait:
                    event = cast(Wait, effect).flight.event
                    assert event is not None  # made by begin() for this thread
                    event.wait()
                elif kind is Sleep:
                    self._clock.sleep(cast(Sleep, effect).seconds)
                else:
                    self._spawn_thread(cast(Spawn, effect))
            except BaseException as exc:
                error = exc

    def _spawn_thread(self, spawn: Spawn) -> None:
        def run() -> None:
            try:  # errors are counted and reported by the core; nobody to raise to
                with contextlib.suppress(Exception):
                    self._run(spawn.op)
            finally:
                self._refreshers.discard(thread)

        thread = threading.Thread(target=run, name=f"sentia-cache-refresh:{spawn.name}")
        thread.daemon = True
        self._refreshers.add(thread)
        thread.start()

    # -- reads ---------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """The value cached under ``key``, or ``default``.

        A hit takes one clock read and no lock. An expired entry is a miss
        (stale values are only served by ``get_or_set`` / ``@cached``). With
        Redis, an L1 miss costs one ``GET``; a Redis hit fills the L1 for the
        entry's remaining TTL (at most ``ttl``).

        Raises:
            InvalidKeyError: ``key`` is not a ``str``.
        """
        return self._read(key, default)

    def _get_miss(self, key: Any, default: Any, now: float | None) -> Any:
        # _ops._get_op, step by step (see the note on the read paths there)
        core = self._core
        if core.max_items:
            value = core.recheck(key, now)
            if value is not MISS:
                return value
        elif key.__class__ is not str:
            check_key(key)  # no L1 to recheck: only validate
        backend = self._backend
        if backend is None:
            core.count_misses()
            return default
        epoch = core.epoch
        try:
            stored = backend.get(core.qualify(key))
        except Exception as exc:
            self._read_failed(key, exc, 1)
            return default
        value = core.adopt(key, stored, epoch)
        return default if value is MISS else value

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The cached values of ``keys`` that are present: ``{key: value}``.

        With a backend, every L1 miss is fetched in one ``get_many`` call (with
        Redis: one ``MGET``, one per slot on a cluster).

        Raises:
            InvalidKeyError: a key is not a ``str`` (before anything is read).
        """
        # _ops._get_many_op, step by step
        found, missing = self._local_many(keys)
        if not missing:
            return found
        core = self._core
        backend = self._backend
        if backend is None:
            core.count_misses(len(missing))
            return found
        epoch = core.epoch
        try:
            stored = backend.get_many(self._qualified(missing))
        except Exception as exc:
            self._read_failed(None, exc, len(missing))
            return found
        found.update(self._adopt_many(missing, stored, epoch))
        return found

    # -- writes --------------------------------------------------------------

    def set(self, key: str, value: Any, ttl: float | None = None, tags: Iterable[str] = ()) -> None:
        """Cache ``value`` under ``key`` for ``ttl`` seconds (default: the cache's ``ttl``).

        The value is encoded (validated) now, so an unsupported type fails
        here, not when it is read. A value whose accounted size exceeds
        ``max_bytes`` is not kept in L1 (counted in ``oversize``); any previous
        entry for the key is removed all the same. With Redis, the value, its
        tags and the announcement to other processes go in one pipeline.

        Raises:
            InvalidKeyError: ``key`` is not a ``str``.
            ConfigError: ``ttl`` is not a number > 0, or ``tags`` is not a
                sequence of non-empty strings.
            SerializationError: the serializer cannot encode ``value``.
        """
        prepared = self._core.write(key, value, ttl, tags)
        if prepared is not None and self._backend is not None:
            self._run(self._write_op((prepared,)))

    def set_many(
        self, mapping: Mapping[str, Any], ttl: float | None = None, tags: Iterable[str] = ()
    ) -> None:
        """:meth:`set` every item of ``mapping``; all are validated before any is stored.

        Raises:
            The errors of :meth:`set`, before anything is stored.
        """
        self._run(self._set_many_op(mapping, ttl, tags))

    def delete(self, key: str) -> bool:
        """Remove ``key``; returns whether an entry was held (in L1 or the backend).

        A load of ``key`` in flight is not stored when it finishes.

        Raises:
            InvalidKeyError: ``key`` is not a ``str``.
        """
        return self.delete_many((key,)) > 0

    def delete_many(self, keys: Iterable[str]) -> int:
        """Remove ``keys``; returns how many were held (by the backend if there is one).

        Raises:
            InvalidKeyError: a key is not a ``str`` (before anything is removed).
        """
        return self._run(self._delete_many_op(keys))

    # -- invalidation --------------------------------------------------------

    def invalidate_tags(self, *tags: str) -> int:
        """Remove every entry carrying any of ``tags``; returns how many.

        Loads in flight whose tags intersect are returned to their callers but
        not stored. With Redis, every process's L1 drops them too.

        Raises:
            ConfigError: a tag is not a non-empty string.
        """
        return self._run(self._invalidate_tags_op(tags))

    def invalidate_pattern(self, pattern: str) -> int:
        """Remove every entry whose key matches the glob ``pattern``; returns how many.

        Redis glob syntax: ``*``, ``?``, ``[abc]``, ``[^a-z]``, and ``\\`` to
        escape; :func:`escape_glob` escapes a literal part. Matching is on the
        key's UTF-8 bytes, exactly like Redis ``SCAN MATCH`` (which the Redis
        L2 uses, on every primary of a cluster; never ``KEYS``).

        Raises:
            InvalidPatternError: an unterminated ``[`` class.
        """
        return self._run(self._invalidate_pattern_op(pattern))

    def clear(self) -> None:
        """Remove every entry of this cache (its namespace only, in a backend)."""
        self._run(self._clear_op())

    # -- cache-aside -----------------------------------------------------------

    def get_or_set(
        self,
        key: str,
        loader: Callable[[], Any],
        ttl: float | None = None,
        tags: Iterable[str] = (),
    ) -> Any:
        """The cached value of ``key``, or ``loader()``'s result, cached.

        Single-flight: concurrent callers missing the same key run ``loader``
        once (once across processes with ``distributed_lock=True``); the
        others wait and get its result, or its exception (nothing is cached
        then). If ``key`` or one of ``tags`` is invalidated while the loader
        runs, its value is returned but not stored. With ``stale_ttl``, a
        loader error is answered with the expired value if one is held.

        Raises:
            InvalidKeyError, ConfigError: bad key, ttl or tags.
            SerializationError: the loaded value cannot be encoded.
            Exception: whatever ``loader`` raised (when no stale value is held).
        """
        tag_tuple = self._check_load_args(ttl, tags)
        value = self._probe(key)
        if value is not MISS:
            return value
        return self._run(self._load_op(check_key(key), loader, ttl, tag_tuple))

    # -- the decorator ---------------------------------------------------------

    @overload
    def cached(self, ttl: Callable[P, R]) -> CachedFunction[P, R]: ...

    @overload
    def cached(
        self,
        ttl: float | None = None,
        *,
        tags: Iterable[str] | Callable[..., Iterable[str]] = (),
        key: str | Callable[..., str] | None = None,
    ) -> Callable[[Callable[P, R]], CachedFunction[P, R]]: ...

    def cached(
        self,
        ttl: Any = None,
        *,
        tags: Iterable[str] | Callable[..., Iterable[str]] = (),
        key: str | Callable[..., str] | None = None,
    ) -> Any:
        """Cache a function's results (sync or ``async def``; functions and methods).

        ``@cache.cached`` or ``@cache.cached(ttl=60, tags=("products",),
        key="product:{product_id}")``. Calls go through :meth:`get_or_set`
        semantics: single-flight, no stale write after invalidation,
        fail-safe within ``stale_ttl``. (Coroutine functions work too; with
        Redis prefer :class:`AsyncTieredCache`, whose Redis calls do not
        block the event loop.)

        Args:
            ttl: seconds to live (default: the cache's ``ttl``).
            tags: tags for every entry, or a callable computing them from the
                call's arguments (without ``self``).
            key: ``None`` for the stable default key
                ``module.qualname(args)`` (see docs/cache.md), a ``str.format``
                template over parameter names, or a callable returning the key
                from the call's arguments (without ``self``).

        Returns:
            The wrapped function, with ``.invalidate(*args, **kwargs)``,
            ``.key_for(*args, **kwargs)`` and ``.cache``.

        Raises:
            ConfigError: bad ``ttl``, ``tags`` or ``key`` (at decoration).
        """
        if callable(ttl) and not isinstance(ttl, (int, float)):
            return self.cached()(ttl)
        return self._decorate(ttl, tags, key, self._wrap, self.delete)

    def _wrap(
        self, fn: Callable[..., Any], build_key: KeyBuilder, build_tags: TagBuilder, ttl: Any
    ) -> Any:
        probe = self._probe
        if inspect.iscoroutinefunction(fn):
            aload = self._aload

            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                k = build_key(args, kwargs)
                value = probe(k)
                if value is not MISS:
                    return value
                loader = functools.partial(fn, *args, **kwargs)
                return await aload(k, loader, ttl, build_tags(args, kwargs))

            return functools.update_wrapper(async_wrapper, fn)
        load = self._load_op
        run = self._run

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            k = build_key(args, kwargs)
            value = probe(k)
            if value is not MISS:
                return value
            loader = functools.partial(fn, *args, **kwargs)
            return run(load(k, loader, ttl, build_tags(args, kwargs)))

        return functools.update_wrapper(wrapper, fn)

    # -- lifecycle ---------------------------------------------------------------

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop the Redis invalidation listener, close a Redis client the cache
        built, and wait (up to ``timeout`` seconds each) for background refreshes.

        The cache stays usable (Redis reconnects on demand); without its
        listener, L1 entries then live at most ``disconnected_ttl``.
        """
        if self._redis is not None:
            self._redis.close(timeout)
        for thread in list(self._refreshers):
            thread.join(timeout)

    def __enter__(self) -> TieredCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
