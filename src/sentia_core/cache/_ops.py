"""Every cache operation, written once, for the sync and the async cache.

Theory of operation
-------------------

:class:`CacheCore` decides (L1, single-flight, counters); this module holds
the *procedures* around those decisions -- ask the L1, then the backend, then
the loader; write through; invalidate here, then in the backend, then once
more here -- as generators that never do I/O themselves. Each yields an
*effect* and is sent its result (or has the effect's exception thrown into it
at the ``yield``, where an ordinary ``try`` handles it):

=============  ===============================================================
``Call``       call a backend method (``get``, ``set_many``, ``try_lock``...)
``Load``       call the loader (``get_or_set``'s, or the decorated function)
``Wait``       wait until another caller's load of the key settles
``Sleep``      sleep on the cache's clock (distributed single-flight polling)
``Spawn``      run an operation in the background (stale-while-revalidate)
=============  ===============================================================

:class:`~sentia_core.cache.TieredCache` runs them with plain calls, a
thread's ``Event`` and ``clock.sleep``; :class:`~sentia_core.cache.AsyncTieredCache`
awaits the backend, the loader, a future and ``clock.async_sleep``. So the
twins share every line of logic (the model is tenacity's
``BaseRetrying.iter()``) and differ only in the few lines of their runners.

*Failing open.* A backend call that raises is counted (``backend_errors``, a
:class:`CacheFault` event) and the operation carries on with the L1 and the
loader; a :class:`~sentia_core.errors.CircuitOpenError` -- the Redis breaker
is open -- is counted as ``backend_skipped`` and costs nothing more. No
backend error ever reaches the caller.

*Invalidating twice.* ``delete``, ``invalidate_tags``, ``invalidate_pattern``
and ``clear`` drop the L1 entries (and poison loads in flight) before the
backend call, and quietly once more after it: a thread of this process that
read the old value from the backend in between cannot leave it in the L1.

*Distributed single-flight* (``distributed_lock=True``, Redis only). A leader
that misses the L1 and Redis takes ``SET NX PX`` on the key's lock before
running its loader; a process that finds the lock taken polls Redis for the
value with exponential backoff (5 ms doubling to 100 ms, jittered) and falls
back to loading itself after ``lock_wait`` seconds. The lock is released by a
token-checked script after the value is written, so pollers find it.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import threading
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from typing import Any, Literal, NamedTuple, TypeVar, cast

from sentia_core._clock import Clock
from sentia_core._events import Event
from sentia_core._validate import check_positive
from sentia_core.breaker import BreakerLike
from sentia_core.errors import CircuitOpenError, ConfigError

from ._backend import CacheBackend
from ._codec import Codec, Serializer
from ._core import (
    MISS,
    CacheCore,
    Eviction,
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
from ._l2 import payload_digest
from ._policy import EvictionPolicy
from ._types import CacheStats

__all__ = ["CacheOps", "Call", "Load", "Op", "Sleep", "Spawn", "Wait"]

T = TypeVar("T")

DEFAULT_MAX_BYTES = 100 * 1024 * 1024

#: distributed single-flight polling: first delay and cap (seconds)
POLL_FIRST = 0.005
POLL_MAX = 0.1


class Call(NamedTuple):
    """Call ``backend.<method>(*args)``."""

    method: str
    args: tuple[Any, ...]


class Load(NamedTuple):
    """Call the loader (await its result if it is awaitable)."""

    loader: Callable[[], Any]


class Wait(NamedTuple):
    """Wait for ``flight`` to settle (a thread on its event, a task on ``future``)."""

    flight: Flight
    future: asyncio.Future[None] | None


class Sleep(NamedTuple):
    """Sleep ``seconds`` on the cache's clock."""

    seconds: float


class Spawn(NamedTuple):
    """Run ``op`` in the background (a thread, or a task on the running loop)."""

    op: Generator[Any, Any, Any]
    name: str


Effect = Call | Load | Wait | Sleep | Spawn
Op = Generator[Effect, Any, T]

KeyBuilder = Callable[[tuple[Any, ...], dict[str, Any]], str]
TagBuilder = Callable[[tuple[Any, ...], dict[str, Any]], tuple[str, ...]]


class CacheOps:
    """Construction and every operation shared by ``TieredCache`` and ``AsyncTieredCache``.

    Not public; see :class:`~sentia_core.cache.TieredCache` for the arguments.
    """

    #: whether backend calls return awaitables (the async cache)
    _async_backend: bool = False

    def __init__(
        self,
        *,
        max_items: int,
        max_bytes: int,
        ttl: float,
        stale_ttl: float,
        stale_while_revalidate: bool,
        namespace: str,
        serializer: Literal["json", "pickle"] | Serializer,
        secret: bytes | str | None,
        old_secrets: Sequence[bytes | str],
        compress_threshold: int | None,
        compress_level: int,
        max_decompressed_size: int,
        l1_store: L1Store,
        eviction: Eviction,
        policy: EvictionPolicy | None,
        backend: Any,
        redis: object,
        redis_ttl: float,
        redis_cluster: bool,
        socket_timeout: float,
        connect_timeout: float,
        breaker: BreakerLike | None,
        invalidation: bool,
        heartbeat_interval: float,
        disconnected_ttl: float,
        distributed_lock: bool,
        lock_ttl: float,
        lock_wait: float,
        clock: Clock,
        rng: random.Random | None,
    ) -> None:
        codec = Codec(
            serializer,
            secret=secret,
            old_secrets=old_secrets,
            compress_threshold=compress_threshold,
            compress_level=compress_level,
            max_decompressed_size=max_decompressed_size,
        )
        redis_ttl = check_positive("redis_ttl", redis_ttl)
        self._core = core = CacheCore(
            max_items=max_items,
            max_bytes=max_bytes,
            ttl=ttl,
            stale_ttl=stale_ttl,
            stale_while_revalidate=stale_while_revalidate,
            namespace=namespace,
            codec=codec,
            l1_store=l1_store,
            eviction=eviction,
            policy=policy,
            backend=None,
            backend_ttl=redis_ttl if redis is not None else None,
            clock=clock,
        )
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        if not isinstance(invalidation, bool):
            raise ConfigError("invalidation", invalidation, "a bool")
        if not isinstance(distributed_lock, bool):
            raise ConfigError("distributed_lock", distributed_lock, "a bool")
        self._redis: Any = None
        if redis is not None:
            if backend is not None:
                raise ConfigError("backend", backend, "give redis= or backend=, not both")
            backend = self._redis = self._build_redis(
                redis,
                namespace=namespace,
                redis_ttl=redis_ttl,
                redis_cluster=redis_cluster,
                socket_timeout=check_positive("socket_timeout", socket_timeout),
                connect_timeout=check_positive("connect_timeout", connect_timeout),
                breaker=breaker,
                invalidation=invalidation,
                heartbeat=check_positive("heartbeat_interval", heartbeat_interval),
                disconnected_ttl=check_positive("disconnected_ttl", disconnected_ttl),
                clock=clock,
            )
        elif breaker is not None:
            raise ConfigError("breaker", breaker, "guards Redis calls: give redis= too")
        if backend is not None and not self._backend_ok(backend):
            raise ConfigError("backend", backend, self._backend_needs)
        core.backend = backend
        self._backend: Any = backend
        self._lock_ttl: float | None = None
        self._lock_wait = 0.0
        if distributed_lock:
            if backend is None or not hasattr(backend, "try_lock"):
                raise ConfigError("distributed_lock", True, "needs redis= (a Redis lock)")
            self._lock_ttl = check_positive("lock_ttl", lock_ttl)
            self._lock_wait = check_positive("lock_wait", lock_wait)
        if self._redis is not None:
            self._redis.attach(core, listen=invalidation and core.max_items > 0)
        self._probe = core.make_reader(_probe_miss)
        self._refreshers: set[threading.Thread] = set()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- hooks for the shells ----------------------------------------------------

    _backend_needs = "must implement CacheBackend"

    def _backend_ok(self, backend: object) -> bool:
        return isinstance(backend, CacheBackend)

    def _build_redis(self, redis: object, **kw: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def _redis_kwargs(kw: dict[str, Any], cluster: bool, owns: bool) -> dict[str, Any]:
        """The keyword arguments of a Redis backend shell (shared by both shells)."""
        from ._redis_backend import default_breaker

        breaker = kw["breaker"]
        if breaker is None:
            breaker = default_breaker(kw["namespace"], kw["clock"])
        elif not isinstance(breaker, BreakerLike):
            raise ConfigError(
                "breaker", breaker, "must be a circuit breaker (sentia_core.breaker.BreakerLike)"
            )
        if not isinstance(kw["redis_cluster"], bool):
            raise ConfigError("redis_cluster", kw["redis_cluster"], "a bool")
        return {
            "cluster": cluster,
            "clock": kw["clock"],
            "redis_ttl": kw["redis_ttl"],
            "breaker": breaker,
            "invalidation": kw["invalidation"],
            "heartbeat": kw["heartbeat"],
            "timeout": kw["socket_timeout"],
            "disconnected_ttl": kw["disconnected_ttl"],
            "owns_client": owns,
        }

    # -- properties ----------------------------------------------------------

    @property
    def namespace(self) -> str:
        """The cache's namespace."""
        return self._core.namespace

    @property
    def codec(self) -> Codec:
        """The codec (serializer, compression, signing) this cache uses."""
        return self._core.codec

    @property
    def degraded(self) -> bool:
        """True while the Redis L2 is bypassed (breaker open, invalidations waiting to
        be replayed) or the cross-process invalidation channel is down (L1 entries
        then live at most ``disconnected_ttl``). Always False without Redis."""
        redis = self._redis
        return redis is not None and bool(redis.degraded)

    def __repr__(self) -> str:
        c = self._core
        return (
            f"{type(self).__name__}(namespace={c.namespace!r}, items={len(c.layer.data)}, "
            f"max_items={c.max_items}, max_bytes={c.max_bytes}, ttl={c.ttl}, "
            f"redis={'yes' if self._redis is not None else 'no'})"
        )

    # -- reads ---------------------------------------------------------------
    #
    # The read paths are also run step by step, without a generator, by the
    # sync cache (_tiered.py): on an L2 hit the generator round trip would cost
    # more than everything else the cache does. The steps below are shared.

    def _get_op(self, key: Any, default: Any, now: float | None) -> Op[Any]:
        """A ``get`` that missed the lock-free L1 read."""
        core = self._core
        value = core.recheck(key, now)
        if value is not MISS:
            return value
        if self._backend is None:
            core.count_misses()
            return default
        value = yield from self._backend_get_op(key, counted_miss=False)
        return default if value is MISS else value

    def _backend_get_op(self, key: str, *, counted_miss: bool) -> Op[Any]:
        """Ask the backend for ``key`` (failing open); MISS if it has nothing usable."""
        core = self._core
        epoch = core.epoch
        try:
            stored = yield Call("get", (core.qualify(key),))
        except Exception as exc:
            return self._read_failed(key, exc, 0 if counted_miss else 1)
        return core.adopt(key, stored, epoch, counted_miss=counted_miss)

    def _read_failed(self, key: str | None, exc: Exception, misses: int) -> Any:
        """A backend read raised: count it (skipped when the breaker is open); MISS."""
        core = self._core
        if isinstance(exc, CircuitOpenError):
            core.count_skipped(misses=misses)
        else:
            core.count_backend_error(key, exc)
            if misses:
                core.count_misses(misses)
        return MISS

    def _local_many(self, keys: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
        """``get_many``'s L1 step: ``(found, missing)``; misses not counted yet."""
        keys = list(keys)
        for k in keys:
            if k.__class__ is not str:
                check_key(k)
        core = self._core
        if not core.max_items:
            return {}, keys  # no L1: straight to the backend
        found: dict[str, Any] = {}
        probe = self._probe
        missing: list[str] = []
        for key in keys:
            value = probe(key)
            if value is MISS:
                missing.append(key)
            else:
                found[key] = value
        if missing:
            again, missing = core.recheck_many(missing)
            found.update(again)
        return found, missing

    def _qualified(self, keys: Sequence[str]) -> list[str]:
        prefix = self._core.namespace + ":"
        return [prefix + k for k in keys]

    def _adopt_many(self, missing: Sequence[str], stored: Any, epoch: int) -> dict[str, Any]:
        """``get_many``'s backend result, counted and filled into the L1."""
        if not isinstance(stored, Sequence):
            stored = list(stored)
        if len(stored) != len(missing):
            error = ValueError(f"backend returned {len(stored)} results for {len(missing)}")
            self._read_failed(None, error, len(missing))
            return {}
        return self._core.adopt_many(missing, stored, epoch)

    def _get_many_op(self, keys: Iterable[str]) -> Op[dict[str, Any]]:
        found, missing = self._local_many(keys)
        if not missing:
            return found
        core = self._core
        if self._backend is None:
            core.count_misses(len(missing))
            return found
        epoch = core.epoch
        try:
            stored = yield Call("get_many", (self._qualified(missing),))
        except Exception as exc:
            self._read_failed(None, exc, len(missing))
            return found
        found.update(self._adopt_many(missing, stored, epoch))
        return found

    # -- writes --------------------------------------------------------------

    def _set_many_op(
        self, mapping: Mapping[str, Any], ttl: float | None, tags: Iterable[str]
    ) -> Op[None]:
        core = self._core
        tag_tuple = check_tags(tags)
        items = as_mapping(mapping)
        prepared = [
            core.prepare(check_key(k), v, ttl, tag_tuple, checked=True) for k, v in items.items()
        ]
        core.store(prepared)
        if self._backend is not None and prepared:
            yield from self._write_op(prepared)

    def _write_op(self, prepared: Sequence[Prepared]) -> Op[None]:
        core = self._core
        try:
            yield Call("set_many", (core.backend_writes(prepared),))
        except CircuitOpenError:
            core.count_skipped()
        except Exception as exc:
            core.count_backend_error(prepared[0].key if prepared else None, exc)

    def _backend_count_op(
        self, method: str, arg: Any, key: str | None, n: int, after: Callable[[], object]
    ) -> Op[int]:
        """``max(n, backend.<method>(arg))`` failing open, then the quiet second L1 pass."""
        core = self._core
        try:
            n = max(n, int((yield Call(method, (arg,)))))
        except CircuitOpenError:
            core.count_skipped()
        except Exception as exc:
            core.count_backend_error(key, exc)
        after()
        return n

    def _delete_many_op(self, keys: Iterable[str]) -> Op[int]:
        keys = [check_key(k) for k in keys]
        core = self._core
        n = core.delete(keys)
        if self._backend is None or not keys:
            return n
        return (
            yield from self._backend_count_op(
                "delete_many",
                [core.qualify(k) for k in keys],
                keys[0],
                n,
                lambda: core.delete(keys, origin="quiet"),
            )
        )

    def _invalidate_tags_op(self, tags: tuple[str, ...]) -> Op[int]:
        tag_tuple = check_tags(tags)
        core = self._core
        n = core.invalidate_tags(tag_tuple)
        if self._backend is None or not tag_tuple:
            return n
        return (
            yield from self._backend_count_op(
                "invalidate_tags",
                core.qualify_tags(tag_tuple),
                None,
                n,
                lambda: core.invalidate_tags(tag_tuple, origin="quiet"),
            )
        )

    def _invalidate_pattern_op(self, pattern: str) -> Op[int]:
        match = compile_glob(pattern)
        core = self._core
        n = core.invalidate_matching(pattern, match)
        if self._backend is None:
            return n
        return (
            yield from self._backend_count_op(
                "invalidate_pattern",
                escape_glob(core.namespace) + ":" + pattern,
                None,
                n,
                lambda: core.invalidate_matching(pattern, match, origin="quiet"),
            )
        )

    def _clear_op(self) -> Op[None]:
        core = self._core
        core.clear()
        if self._backend is not None:
            yield from self._backend_count_op(
                "clear", core.namespace, None, 0, lambda: core.clear(origin="quiet")
            )

    # -- cache-aside -----------------------------------------------------------

    def _check_load_args(self, ttl: float | None, tags: Iterable[str]) -> tuple[str, ...]:
        if ttl is not None:
            self._core.resolve_ttl(ttl)
        return check_tags(tags) if tags else ()

    def _load_op(
        self,
        key: str,
        loader: Callable[[], Any],
        ttl: float | None,
        tags: tuple[str, ...],
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        task: object | None = None,
    ) -> Op[Any]:
        """Single-flight load of a key that missed the L1 (see ``_core.begin``)."""
        core = self._core
        while True:
            decision = core.begin(key, tags, loop=loop, task=task)
            kind = decision.__class__
            if kind is Hit:
                return cast(Hit, decision).value
            if kind is Lead:
                return (yield from self._lead_op(cast(Lead, decision).flight, loader, ttl))
            if kind is Join:
                join = cast(Join, decision)
                yield Wait(join.flight, join.future)
                value = core.outcome(join.flight)
                if value is MISS:  # the leader was interrupted: try again
                    continue
                return value
            if kind is ServeStale:
                stale = cast(ServeStale, decision)
                if stale.refresh is not None:
                    yield Spawn(self._lead_op(stale.refresh, loader, ttl), key)
                return stale.value
            return (yield Load(loader))  # Bypass: would deadlock; load without storing

    def _lead_op(self, flight: Flight, loader: Callable[[], Any], ttl: float | None) -> Op[Any]:
        core = self._core
        token: bytes | None = None
        try:
            if self._backend is not None:
                value = yield from self._backend_get_op(flight.key, counted_miss=True)
                if value is MISS and self._lock_ttl is not None:
                    value, token = yield from self._coordinate_op(flight.key)
                if value is not MISS:
                    core.settle(flight, value)
                    flight.wake()
                    return value
                core.loading()
            value = yield Load(loader)
        except Exception as exc:
            stale = core.fail(flight, exc)
            flight.wake()
            if token is not None:
                yield from self._unlock_op(flight.key, token)
            if stale is MISS:
                raise
            return stale
        except BaseException:
            core.abandon(flight)  # cancelled: the lock (if any) expires after lock_ttl
            flight.wake()
            raise
        return (yield from self._finish_op(flight, value, ttl, token))

    def _finish_op(
        self, flight: Flight, value: Any, ttl: float | None, token: bytes | None
    ) -> Op[Any]:
        core = self._core
        try:
            prepared = core.prepare(flight.key, value, ttl, flight.tags, checked=True)
        except Exception as exc:
            core.fail(flight, exc, loader=False)
            flight.wake()
            if token is not None:
                yield from self._unlock_op(flight.key, token)
            raise
        stored = core.complete(flight, prepared, value)
        flight.wake()
        if stored and self._backend is not None:
            yield from self._write_op((prepared,))
            digest = payload_digest(prepared.payload or b"")
            if core.written(flight, digest):  # an invalidation raced the write
                yield from self._repair_op([(flight.key, digest)])
        if token is not None:
            yield from self._unlock_op(flight.key, token)
        return value

    # -- distributed single-flight ---------------------------------------------------

    def _coordinate_op(self, key: str) -> Op[tuple[Any, bytes | None]]:
        """``(value, None)`` loaded by another process, ``(MISS, token)`` if we hold
        the lock and must load, or ``(MISS, None)``: load without the lock."""
        core = self._core
        backend = self._backend
        qkey = core.qualify(key)
        token: bytes = backend.new_token()
        deadline = core.now() + self._lock_wait
        delay = POLL_FIRST
        while True:
            try:
                got = yield Call("try_lock", (qkey, token, self._lock_ttl))
            except CircuitOpenError:
                core.count_skipped()
                return MISS, None
            except Exception as exc:
                core.count_backend_error(key, exc)
                return MISS, None
            if got:
                # the holder we waited for may have stored the value just before releasing
                value = yield from self._backend_get_op(key, counted_miss=True)
                if value is MISS:
                    return MISS, token
                core.count_remote_coalesced()
                yield from self._unlock_op(key, token)
                return value, None
            if core.now() >= deadline:
                return MISS, None
            yield Sleep(delay * (0.5 + self._rng.random()))
            value = yield from self._backend_get_op(key, counted_miss=True)
            if value is not MISS:
                core.count_remote_coalesced()
                return value, None
            delay = min(delay * 2, POLL_MAX)

    def _repair_op(self, fills: list[tuple[str, str]]) -> Op[None]:
        """Take back loaded values an invalidation raced (see ``_core.written``):
        only where the backend still holds them (``unfill``), or a plain delete
        for a backend without it."""
        core = self._core
        prefix = core.namespace + ":"
        try:
            if hasattr(self._backend, "unfill"):
                yield Call("unfill", ([(prefix + k, d) for k, d in fills],))
            else:
                yield Call("delete_many", ([prefix + k for k, _ in fills],))
        except CircuitOpenError:
            core.count_skipped()
        except Exception as exc:
            core.count_backend_error(fills[0][0], exc)

    def _unlock_op(self, key: str, token: bytes) -> Op[None]:
        try:
            yield Call("unlock", (self._core.qualify(key), token))
        except CircuitOpenError:
            self._core.count_skipped()
        except Exception as exc:  # the lock expires after lock_ttl anyway
            self._core.count_backend_error(key, exc)

    # -- the async runner (the sync one lives in TieredCache) -----------------------

    async def _arun(self, op: Op[T]) -> T:
        """Run an operation from a coroutine: await the loader, futures and sleeps;
        await the backend too when it is asynchronous."""
        is_async = self._async_backend
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
                    if is_async:
                        reply = await reply
                elif kind is Load:
                    reply = cast(Load, effect).loader()
                    if inspect.isawaitable(reply):
                        reply = await reply
                elif kind is Wait:
                    future = cast(Wait, effect).future
                    assert future is not None  # begin() made one for this loop
                    await future
                elif kind is Sleep:
                    await self._clock.async_sleep(cast(Sleep, effect).seconds)
                else:
                    self._spawn_task(cast(Spawn, effect))
            except BaseException as exc:
                error = exc

    def _spawn_task(self, spawn: Spawn) -> None:
        async def run() -> None:
            # errors are counted and reported by the core; nobody to raise to
            try:
                await self._arun(spawn.op)
            except Exception:
                return

        task = asyncio.get_running_loop().create_task(
            run(), name=f"sentia-cache-refresh:{spawn.name}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _aload(
        self,
        key: str,
        loader: Callable[[], Any],
        ttl: float | None,
        tags: tuple[str, ...],
    ) -> Any:
        """Load ``key`` from the task running now (a Join waits on a future)."""
        op = self._load_op(
            key, loader, ttl, tags, loop=asyncio.get_running_loop(), task=asyncio.current_task()
        )
        return await self._arun(op)

    # -- the decorator (shared: key and tag builders, validation) ---------------------

    def _decorate(
        self,
        ttl: Any,
        tags: Iterable[str] | Callable[..., Iterable[str]],
        key: str | Callable[..., str] | None,
        wrap: Callable[[Callable[..., Any], KeyBuilder, TagBuilder, float | None], Any],
        invalidate: Callable[[str], Any],
    ) -> Callable[[Any], Any]:
        if ttl is not None:
            self._core.resolve_ttl(ttl)
        if not callable(tags):
            check_tags(tags)

        def decorate(fn: Any) -> Any:
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
            wrapper = wrap(target, build_key, build_tags, ttl)

            def key_for(*args: Any, **kwargs: Any) -> str:
                return build_key((None, *args) if skip else args, kwargs)

            def invalidate_for(*args: Any, **kwargs: Any) -> Any:
                return invalidate(key_for(*args, **kwargs))

            wrapper.key_for = key_for
            wrapper.invalidate = invalidate_for
            wrapper.cache = self
            return rewrap(wrapper) if rewrap is not None else wrapper

        return decorate

    # -- observability -----------------------------------------------------------

    def stats(self) -> CacheStats:
        """A frozen snapshot of counters, sizes and evictions (see :class:`CacheStats`)."""
        redis = self._redis
        if redis is None:
            return self._core.stats()
        return self._core.stats(degraded=bool(redis.degraded), redis=redis.redis_stats())

    def reset_stats(self) -> None:
        """Zero every counter; contents are kept."""
        self._core.reset_stats()

    def add_listener(self, listener: Callable[[Event], object]) -> Callable[[], None]:
        """Subscribe to :class:`CacheEviction`, :class:`CacheInvalidation`, :class:`CacheFault`.

        Listeners run in the thread that caused the event (the invalidation
        listener's, for other processes' invalidations), after the cache's
        lock is released; one that raises is logged and counted, never
        propagated. Returns a function that unsubscribes.
        """
        return self._core.add_listener(listener)


def _probe_miss(key: Any, default: Any, now: float | None) -> Any:
    return MISS
