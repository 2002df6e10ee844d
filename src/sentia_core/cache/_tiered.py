"""``TieredCache``: the synchronous adapter around :class:`CacheCore`.

Everything this module does is I/O around decisions the core makes: call the
backend (failing open), call the loader, wait for another caller's load. Calls
from coroutine functions decorated with :meth:`TieredCache.cached` run the
same decisions through ``_aload`` / ``_alead``, which differ from their sync
twins only in ``await``. See ``_core.py`` for the theory of operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, ParamSpec, Protocol, TypeVar, cast, overload

from sentia_core._clock import SYSTEM_CLOCK, Clock
from sentia_core._events import Event
from sentia_core.errors import ConfigError

from ._backend import CacheBackend, StoredValue
from ._codec import DEFAULT_MAX_DECOMPRESSED_SIZE, Codec, Serializer
from ._core import (
    MISS,
    CacheCore,
    Hit,
    Join,
    L1Store,
    Lead,
    Prepared,
    ServeStale,
    as_mapping,
)
from ._flight import Flight
from ._glob import compile_glob, escape_glob
from ._keys import check_key, check_tags, function_key, function_tags, is_method
from ._policy import EvictionPolicy
from ._types import CacheStats

__all__ = ["CachedFunction", "TieredCache"]

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

DEFAULT_MAX_BYTES = 100 * 1024 * 1024


def _probe_miss(key: Any, default: Any, now: float | None) -> Any:
    return MISS


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


class TieredCache:
    """An in-process cache with TTLs, tags, single-flight loading and safe serialization.

    The L1 keeps values in memory, bounded by both item count and bytes (keys
    and values counted), with LRU eviction. ``backend=`` adds a second,
    byte-oriented layer under it (part 2 builds a Redis one from ``redis=``).

    Args:
        max_items: most entries held in L1 (0: L1 off).
        max_bytes: most accounted bytes held in L1: UTF-8 key length plus the
            value's serialized length (its payload length with
            ``l1_store="payload"``). Default 100 MiB.
        ttl: default time to live in seconds (per-call ``ttl=`` overrides it;
            ``math.inf``: no expiry). Default 300.
        stale_ttl: seconds an expired entry is still kept to be served when
            its loader fails (fail-safe) or, with ``stale_while_revalidate``,
            while it is refreshed. Default 0 (off).
        stale_while_revalidate: on an expired entry within ``stale_ttl``,
            ``get_or_set`` / ``@cached`` return it at once and refresh it in
            the background (one refresh per key). Needs ``stale_ttl > 0``.
        namespace: names this cache in events and qualifies every key, tag and
            pattern it sends to a backend (``"app:key"``), so caches sharing a
            backend never collide. Letters, digits, ``_ . -``; default ``"cache"``.
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
        policy: the L1 eviction policy (default :class:`LRUPolicy`).
        backend: a :class:`CacheBackend` under the L1 (default none).
        clock: time source (default the system clock); tests pass a ManualClock.

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
        policy: EvictionPolicy | None = None,
        backend: CacheBackend | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        codec = Codec(
            serializer,
            secret=secret,
            old_secrets=old_secrets,
            compress_threshold=compress_threshold,
            compress_level=compress_level,
            max_decompressed_size=max_decompressed_size,
        )
        self._core = core = CacheCore(
            max_items=max_items,
            max_bytes=max_bytes,
            ttl=ttl,
            stale_ttl=stale_ttl,
            stale_while_revalidate=stale_while_revalidate,
            namespace=namespace,
            codec=codec,
            l1_store=l1_store,
            policy=policy,
            backend=backend,
            backend_ttl=None,
            clock=clock,
        )
        self._backend = backend
        self._probe = core.make_reader(_probe_miss)
        # The hit path of get() is a closure bound on the instance: it saves a
        # Python call per hit over the method below (same code, see _core.py).
        self._read = read = core.make_reader(self._get_miss)
        read.__name__ = "get"
        read.__qualname__ = "TieredCache.get"
        read.__doc__ = TieredCache.get.__doc__
        self.get = read  # type: ignore[method-assign]
        self._refreshers: set[threading.Thread] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    def __repr__(self) -> str:
        c = self._core
        return (
            f"TieredCache(namespace={c.namespace!r}, items={len(c.layer.data)}, "
            f"max_items={c.max_items}, max_bytes={c.max_bytes}, ttl={c.ttl})"
        )

    # -- properties ----------------------------------------------------------

    @property
    def namespace(self) -> str:
        """The cache's namespace."""
        return self._core.namespace

    @property
    def codec(self) -> Codec:
        """The codec (serializer, compression, signing) this cache uses."""
        return self._core.codec

    # -- reads ---------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """The value cached under ``key``, or ``default``.

        A hit takes one clock read and no lock. An expired entry is a miss
        (stale values are only served by ``get_or_set`` / ``@cached``).

        Raises:
            InvalidKeyError: ``key`` is not a ``str``.
        """
        return self._read(key, default)

    def _get_miss(self, key: Any, default: Any, now: float | None) -> Any:
        core = self._core
        value = core.recheck(key, now)
        if value is not MISS:
            return value
        if self._backend is None:
            core.count_misses()
            return default
        value = self._backend_get(key, counted_miss=False)
        return default if value is MISS else value

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The cached values of ``keys`` that are present: ``{key: value}``.

        With a backend, every L1 miss is fetched in one ``get_many`` call.

        Raises:
            InvalidKeyError: a key is not a ``str`` (before anything is read).
        """
        keys = [check_key(k) for k in keys]
        core = self._core
        probe = self._probe
        found: dict[str, Any] = {}
        missing: list[str] = []
        for key in keys:
            value = probe(key)
            if value is MISS:
                value = core.recheck(key, None)
            if value is MISS:
                missing.append(key)
            else:
                found[key] = value
        if not missing:
            return found
        backend = self._backend
        if backend is None:
            core.count_misses(len(missing))
            return found
        epoch = core.epoch
        try:
            stored = list(backend.get_many([core.qualify(k) for k in missing]))
            if len(stored) != len(missing):
                raise ValueError(f"backend returned {len(stored)} results for {len(missing)}")
        except Exception as exc:
            core.count_backend_error(None, exc)
            core.count_misses(len(missing))
            return found
        for key, item in zip(missing, stored, strict=True):
            value = core.adopt(key, item, epoch)
            if value is not MISS:
                found[key] = value
        return found

    def _backend_get(self, key: str, *, counted_miss: bool) -> Any:
        """Ask the backend for ``key`` (failing open); MISS if it has nothing usable."""
        core = self._core
        backend = self._backend
        assert backend is not None
        epoch = core.epoch
        try:
            stored: StoredValue | None = backend.get(core.qualify(key))
        except Exception as exc:
            core.count_backend_error(key, exc)
            if not counted_miss:
                core.count_misses()
            return MISS
        return core.adopt(key, stored, epoch, counted_miss=counted_miss)

    # -- writes --------------------------------------------------------------

    def set(self, key: str, value: Any, ttl: float | None = None, tags: Iterable[str] = ()) -> None:
        """Cache ``value`` under ``key`` for ``ttl`` seconds (default: the cache's ``ttl``).

        The value is encoded (validated) now, so an unsupported type fails
        here, not when it is read. A value whose accounted size exceeds
        ``max_bytes`` is not kept in L1 (counted in ``oversize``); any previous
        entry for the key is removed all the same.

        Raises:
            InvalidKeyError: ``key`` is not a ``str``.
            ConfigError: ``ttl`` is not a number > 0, or ``tags`` is not a
                sequence of non-empty strings.
            SerializationError: the serializer cannot encode ``value``.
        """
        prepared = self._core.write(key, value, ttl, tags)
        if prepared is not None and self._backend is not None:
            self._backend_write((prepared,))

    def set_many(
        self, mapping: Mapping[str, Any], ttl: float | None = None, tags: Iterable[str] = ()
    ) -> None:
        """:meth:`set` every item of ``mapping``; all are validated before any is stored.

        Raises:
            The errors of :meth:`set`, before anything is stored.
        """
        core = self._core
        tag_tuple = check_tags(tags)
        items = as_mapping(mapping)
        prepared = [
            core.prepare(check_key(k), v, ttl, tag_tuple, checked=True) for k, v in items.items()
        ]
        core.store(prepared)
        if self._backend is not None and prepared:
            self._backend_write(prepared)

    def _backend_write(self, prepared: Sequence[Prepared]) -> None:
        assert self._backend is not None
        try:
            self._backend.set_many(self._core.backend_writes(prepared))
        except Exception as exc:
            self._core.count_backend_error(prepared[0].key if prepared else None, exc)

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
        keys = [check_key(k) for k in keys]
        core = self._core
        n = core.delete(keys)
        backend = self._backend
        if backend is not None and keys:
            try:
                n = max(n, backend.delete_many([core.qualify(k) for k in keys]))
            except Exception as exc:
                core.count_backend_error(keys[0], exc)
        return n

    # -- invalidation --------------------------------------------------------

    def invalidate_tags(self, *tags: str) -> int:
        """Remove every entry carrying any of ``tags``; returns how many.

        Loads in flight whose tags intersect are returned to their callers but
        not stored.

        Raises:
            ConfigError: a tag is not a non-empty string.
        """
        tag_tuple = check_tags(tags)
        core = self._core
        n = core.invalidate_tags(tag_tuple)
        backend = self._backend
        if backend is not None and tag_tuple:
            try:
                n = max(n, backend.invalidate_tags(core.qualify_tags(tag_tuple)))
            except Exception as exc:
                core.count_backend_error(None, exc)
        return n

    def invalidate_pattern(self, pattern: str) -> int:
        """Remove every entry whose key matches the glob ``pattern``; returns how many.

        Redis glob syntax: ``*``, ``?``, ``[abc]``, ``[^a-z]``, and ``\\`` to
        escape; :func:`escape_glob` escapes a literal part. Matching is on the
        key's UTF-8 bytes, exactly like Redis ``SCAN MATCH``.

        Raises:
            InvalidPatternError: an unterminated ``[`` class.
        """
        match = compile_glob(pattern)
        core = self._core
        n = core.invalidate_matching(pattern, match)
        backend = self._backend
        if backend is not None:
            try:
                n = max(n, backend.invalidate_pattern(escape_glob(core.namespace) + ":" + pattern))
            except Exception as exc:
                core.count_backend_error(None, exc)
        return n

    def clear(self) -> None:
        """Remove every entry of this cache (its namespace only, in a backend)."""
        core = self._core
        core.clear()
        if self._backend is not None:
            try:
                self._backend.clear(core.namespace)
            except Exception as exc:
                core.count_backend_error(None, exc)

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
        once; the others wait and get its result, or its exception (nothing is
        cached then). If ``key`` or one of ``tags`` is invalidated while the
        loader runs, its value is returned but not stored. With ``stale_ttl``,
        a loader error is answered with the expired value if one is held.

        Raises:
            InvalidKeyError, ConfigError: bad key, ttl or tags.
            SerializationError: the loaded value cannot be encoded.
            Exception: whatever ``loader`` raised (when no stale value is held).
        """
        if ttl is not None:
            self._core.resolve_ttl(ttl)
        tag_tuple = check_tags(tags) if tags else ()
        value = self._probe(key)
        if value is not MISS:
            return value
        return self._load(check_key(key), loader, ttl, tag_tuple)

    def _load(
        self, key: str, loader: Callable[[], Any], ttl: float | None, tags: tuple[str, ...]
    ) -> Any:
        core = self._core
        while True:
            decision = core.begin(key, tags)
            kind = decision.__class__
            if kind is Hit:
                return cast(Hit, decision).value
            if kind is Lead:
                return self._lead(cast(Lead, decision).flight, loader, ttl)
            if kind is Join:
                flight = cast(Join, decision).flight
                assert flight.event is not None  # made by begin() for this thread
                flight.event.wait()
                value = core.outcome(flight)
                if value is MISS:  # the leader was interrupted: try again
                    continue
                return value
            if kind is ServeStale:
                stale = cast(ServeStale, decision)
                if stale.refresh is not None:
                    self._spawn_refresh(stale.refresh, loader, ttl)
                return stale.value
            return loader()  # Bypass

    def _lead(self, flight: Flight, loader: Callable[[], Any], ttl: float | None) -> Any:
        core = self._core
        try:
            if self._backend is not None:
                value = self._backend_get(flight.key, counted_miss=True)
                if value is not MISS:
                    core.settle(flight, value)
                    flight.wake()
                    return value
                core.loading()
            value = loader()
        except Exception as exc:
            stale = core.fail(flight, exc)
            flight.wake()
            if stale is MISS:
                raise
            return stale
        except BaseException:
            core.abandon(flight)
            flight.wake()
            raise
        return self._finish(flight, value, ttl)

    def _finish(self, flight: Flight, value: Any, ttl: float | None) -> Any:
        core = self._core
        try:
            prepared = core.prepare(flight.key, value, ttl, flight.tags, checked=True)
        except Exception as exc:
            core.fail(flight, exc, loader=False)
            flight.wake()
            raise
        stored = core.complete(flight, prepared, value)
        flight.wake()
        if stored and self._backend is not None:
            self._backend_write((prepared,))
        return value

    def _spawn_refresh(self, flight: Flight, loader: Callable[[], Any], ttl: float | None) -> None:
        def run() -> None:
            try:  # errors are counted and reported by the core; nobody to raise to
                with contextlib.suppress(Exception):
                    self._lead(flight, loader, ttl)
            finally:
                self._refreshers.discard(thread)

        thread = threading.Thread(target=run, name=f"sentia-cache-refresh:{flight.key}")
        thread.daemon = True
        self._refreshers.add(thread)
        thread.start()

    # -- the same, for coroutine functions -------------------------------------

    async def _aload(
        self,
        key: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: float | None,
        tags: tuple[str, ...],
    ) -> Any:
        core = self._core
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        while True:
            decision = core.begin(key, tags, loop=loop, task=task)
            kind = decision.__class__
            if kind is Hit:
                return cast(Hit, decision).value
            if kind is Lead:
                return await self._alead(cast(Lead, decision).flight, loader, ttl)
            if kind is Join:
                join = cast(Join, decision)
                assert join.future is not None
                await join.future
                value = core.outcome(join.flight)
                if value is MISS:
                    continue
                return value
            if kind is ServeStale:
                stale = cast(ServeStale, decision)
                if stale.refresh is not None:
                    self._spawn_task(stale.refresh, loader, ttl)
                return stale.value
            return await loader()

    async def _alead(
        self, flight: Flight, loader: Callable[[], Awaitable[Any]], ttl: float | None
    ) -> Any:
        core = self._core
        try:
            if self._backend is not None:
                value = self._backend_get(flight.key, counted_miss=True)
                if value is not MISS:
                    core.settle(flight, value)
                    flight.wake()
                    return value
                core.loading()
            value = await loader()
        except Exception as exc:
            stale = core.fail(flight, exc)
            flight.wake()
            if stale is MISS:
                raise
            return stale
        except BaseException:
            core.abandon(flight)
            flight.wake()
            raise
        return self._finish(flight, value, ttl)

    def _spawn_task(
        self, flight: Flight, loader: Callable[[], Awaitable[Any]], ttl: float | None
    ) -> None:
        async def run() -> None:
            # errors are counted and reported by the core; nobody to raise to
            with contextlib.suppress(Exception):
                await self._alead(flight, loader, ttl)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
        fail-safe within ``stale_ttl``.

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
        if ttl is not None:
            self._core.resolve_ttl(ttl)
        if not callable(tags):
            check_tags(tags)

        def decorate(fn: Callable[P, R]) -> CachedFunction[P, R]:
            rewrap: Any = None
            target: Any = fn
            if isinstance(target, (classmethod, staticmethod)):
                rewrap = type(target)
                target = target.__func__
            if not callable(target):
                raise ConfigError("function", target, "@cached decorates a function")
            skip = is_method(target)
            build_key = function_key(target, key, skip)
            build_tags = function_tags(tags, skip)
            if inspect.iscoroutinefunction(target):
                wrapper = self._wrap_async(target, build_key, build_tags, ttl)
            else:
                wrapper = self._wrap_sync(target, build_key, build_tags, ttl)
            functools.update_wrapper(wrapper, target)

            def key_for(*args: Any, **kwargs: Any) -> str:
                return build_key((None, *args) if skip else args, kwargs)

            def invalidate(*args: Any, **kwargs: Any) -> bool:
                return self.delete(key_for(*args, **kwargs))

            w = cast(Any, wrapper)
            w.key_for = key_for
            w.invalidate = invalidate
            w.cache = self
            if rewrap is not None:
                return cast(CachedFunction[P, R], rewrap(wrapper))
            return cast(CachedFunction[P, R], wrapper)

        return decorate

    def _wrap_sync(
        self,
        fn: Callable[..., Any],
        build_key: Callable[[tuple[Any, ...], dict[str, Any]], str],
        build_tags: Callable[[tuple[Any, ...], dict[str, Any]], tuple[str, ...]],
        ttl: float | None,
    ) -> Callable[..., Any]:
        probe = self._probe
        load = self._load

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            k = build_key(args, kwargs)
            value = probe(k)
            if value is not MISS:
                return value
            return load(k, functools.partial(fn, *args, **kwargs), ttl, build_tags(args, kwargs))

        return wrapper

    def _wrap_async(
        self,
        fn: Callable[..., Any],
        build_key: Callable[[tuple[Any, ...], dict[str, Any]], str],
        build_tags: Callable[[tuple[Any, ...], dict[str, Any]], tuple[str, ...]],
        ttl: float | None,
    ) -> Callable[..., Any]:
        probe = self._probe
        aload = self._aload

        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            k = build_key(args, kwargs)
            value = probe(k)
            if value is not MISS:
                return value
            return await aload(
                k, functools.partial(fn, *args, **kwargs), ttl, build_tags(args, kwargs)
            )

        return wrapper

    # -- observability -----------------------------------------------------------

    def stats(self) -> CacheStats:
        """A frozen snapshot of counters, sizes and evictions (see :class:`CacheStats`)."""
        return self._core.stats()

    def reset_stats(self) -> None:
        """Zero every counter; contents are kept."""
        self._core.reset_stats()

    def add_listener(self, listener: Callable[[Event], object]) -> Callable[[], None]:
        """Subscribe to :class:`CacheEviction`, :class:`CacheInvalidation`, :class:`CacheFault`.

        Listeners run in the thread that caused the event, after the cache's
        lock is released; one that raises is logged and counted, never
        propagated. Returns a function that unsubscribes.
        """
        return self._core.add_listener(listener)

    # -- lifecycle ---------------------------------------------------------------

    def close(self, timeout: float | None = 5.0) -> None:
        """Wait (up to ``timeout`` seconds each) for background refreshes to finish.

        The cache stays usable; ``close`` exists so that shutdown is orderly
        (part 2 also closes its Redis connections here).
        """
        for thread in list(self._refreshers):
            thread.join(timeout)

    def __enter__(self) -> TieredCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
