"""The Redis L2: thin sync and async shells around :mod:`._l2` and :mod:`._bus`.

Theory of operation
-------------------

A shell owns I/O only: a client, a :class:`~sentia_core.breaker.CircuitBreaker`
and the invalidation listener (a thread for :class:`RedisBackend`, a task for
:class:`AsyncRedisBackend`). Every decision -- keys, scripts, batching,
cleanup after a failed write, the journal of invalidations that could not
reach Redis, message numbering, gap and liveness detection -- is made by the
shared plan and bus objects, so the two shells differ only in ``await``.

*Every Redis round trip goes through the breaker.* Connection errors and
timeouts count as failures (an ``OOM`` or other error reply does not: Redis
answered); after ``consecutive_failures`` of them the breaker opens and each
call is refused in microseconds with :class:`CircuitOpenError`, which the
cache treats as "skip the L2" -- it serves L1 or calls the loader. After
``reset_timeout`` one trial call probes Redis; when it succeeds the L2 is used
again. The shell itself never swallows an error: the cache counts it.

*Invalidations that did not reach Redis* (an error, an open breaker) are kept
by the plan and replayed -- and announced -- before the next Redis call of
this process, from a caller's thread or from the listener when its
subscription comes back. While some are waiting and cannot be replayed, the
backend reads nothing from Redis (a value it invalidated could still be
there).

*The listener* subscribes to the namespace's channel, applies other
processes' invalidations to the L1 through an :class:`InvalidationSink` (the
cache core), pings the subscription every ``heartbeat`` seconds and declares
the channel down after ``heartbeat + timeout`` seconds of silence; while it is
down the sink keeps L1 entries at most ``disconnected_ttl`` seconds, and the
L1 is cleared when the loss is noticed and when the subscription returns
(see ``_bus.py`` for the resulting bound). Liveness is measured on the real
monotonic clock: it is a property of a socket, not of the cache's (possibly
manual) clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Generator, Sequence
from typing import Any, Protocol, TypeVar

from sentia_core._clock import Clock
from sentia_core.breaker import BreakerLike, BreakerState, CircuitBreaker

from ._backend import BackendWrite, StoredValue
from ._bus import Bus, NoticeKind
from ._l2 import Batch, Plan, Step, _Primaries
from ._types import RedisStats

__all__ = [
    "AsyncRedisBackend",
    "InvalidationSink",
    "RedisBackend",
    "default_breaker",
]

_log = logging.getLogger("sentia_core.cache")

T = TypeVar("T")

#: How long one wait for a message lasts (seconds): the listener's granularity
#: for pings, liveness and stopping.
TICK = 0.05


class InvalidationSink(Protocol):
    """What the listener tells the cache (implemented by the cache core)."""

    def apply_remote(self, kind: NoticeKind, targets: tuple[str, ...]) -> None:
        """Drop L1 entries invalidated elsewhere (``keys``, ``tags``, ``pattern``, ``clear``)."""
        ...

    def flush_l1(self) -> None:
        """Clear the L1 (messages may have been lost)."""
        ...

    def cap_l1(self, ttl: float | None) -> None:
        """Keep new L1 entries at most ``ttl`` seconds (None: no cap)."""
        ...

    def take_repairs(self) -> list[tuple[str, str]]:
        """``(key, payload digest)`` of recent fills an invalidation raced: take them back."""
        ...


def _record_exceptions() -> tuple[type[BaseException], ...]:
    import redis.exceptions as rexc

    return (
        rexc.ConnectionError,
        rexc.TimeoutError,
        rexc.ClusterDownError,
        rexc.RedisClusterException,
        OSError,
        TimeoutError,
    )


def default_breaker(namespace: str, clock: Clock) -> CircuitBreaker:
    """The breaker a cache builds for its Redis calls when none is injected.

    Opens after 3 consecutive connection errors or timeouts (or half of at
    least 20 calls failing), stays open 5 seconds, then lets one trial call
    through. Error replies (``OOM``...) are not failures: Redis answered.
    """
    return CircuitBreaker(
        f"cache:{namespace}:redis",
        consecutive_failures=3,
        failure_rate_threshold=0.5,
        minimum_calls=20,
        window_size=50,
        reset_timeout=5.0,
        record_exceptions=_record_exceptions(),
        clock=clock,
    )


class _ChannelSilent(Exception):
    pass


def _check_client(client: Any) -> None:
    from sentia_core.errors import ConfigError

    kwargs: dict[str, Any] = {}
    pool = getattr(client, "connection_pool", None)
    if pool is not None:
        kwargs = getattr(pool, "connection_kwargs", {}) or {}
    else:
        node = getattr(client, "get_default_node", None)
        with contextlib.suppress(Exception):
            kwargs = node().redis_connection.connection_pool.connection_kwargs if node else {}
    if kwargs.get("decode_responses"):
        raise ConfigError(
            "redis", client, "the cache stores bytes: build the client with decode_responses=False"
        )


class _RedisBase:
    """State and decisions shared by the sync and async shells."""

    def __init__(
        self,
        namespace: str,
        client: Any,
        *,
        cluster: bool,
        clock: Clock,
        redis_ttl: float,
        breaker: BreakerLike,
        invalidation: bool,
        heartbeat: float,
        timeout: float,
        disconnected_ttl: float,
        owns_client: bool,
    ) -> None:
        _check_client(client)
        self.client = client
        self.cluster = cluster
        self.owns_client = owns_client
        self.breaker = breaker
        self.disconnected_ttl = disconnected_ttl
        # identity, not chance: never from a (possibly seeded) rng
        publisher = os.urandom(8).hex()
        self.bus: Bus | None = (
            Bus(publisher, heartbeat=heartbeat, timeout=timeout, grace=max(1.0, heartbeat))
            if invalidation
            else None
        )
        self.plan = plan = Plan(
            namespace, cluster=cluster, clock=clock, redis_ttl=redis_ttl, bus=self.bus
        )
        # bound once: the hot path of an L2 hit
        self._pending = plan.pending
        self._value_key = plan.value_key
        self._stored = plan.stored
        self.sink: InvalidationSink | None = None
        self.listening = False
        self.l1_flushes = 0
        self.closed = False

    # -- wiring ------------------------------------------------------------------

    def attach(self, sink: InvalidationSink, *, listen: bool) -> None:
        """Connect the cache core; ``listen``: apply other processes' invalidations."""
        self.sink = sink
        self.listening = listen and self.bus is not None
        if self.listening:
            sink.cap_l1(self.disconnected_ttl)  # until the subscription is confirmed

    # -- listener decisions ----------------------------------------------------

    def _subscribed(self, now: float) -> None:
        assert self.bus is not None
        assert self.sink is not None
        again = self.bus.subscribed(now)
        # uncap first, then clear: the clear bumps the core's epoch, so a read
        # made before it cannot be installed afterwards with a full TTL
        self.sink.cap_l1(None)
        self.sink.flush_l1()
        if again:
            self.l1_flushes += 1

    def _lost(self) -> None:
        assert self.bus is not None
        assert self.sink is not None
        if self.bus.down():
            self.sink.cap_l1(self.disconnected_ttl)
            self.sink.flush_l1()
            self.l1_flushes += 1

    def _message(self, data: object, now: float) -> None:
        assert self.bus is not None
        assert self.sink is not None
        notice, gap = self.bus.receive(data, now, time.time())
        if gap:
            self.sink.flush_l1()
            self.l1_flushes += 1
        elif notice is not None:
            try:
                self.sink.apply_remote(notice.kind, notice.targets)
            except Exception as exc:  # one message must never cost the subscription
                self.bus.malformed += 1
                _log.warning("cache %s: invalidation not applied: %r", self.plan.namespace, exc)

    def _tick(self, now: float) -> bool:
        """Per-tick checks; returns whether to ping. Raises when the channel went silent."""
        assert self.bus is not None
        assert self.sink is not None
        if self.bus.overdue(now):
            self.sink.flush_l1()
            self.l1_flushes += 1
        if self.bus.silent(now):
            raise _ChannelSilent("no message or pong within heartbeat + timeout")
        return self.bus.ping_due(now)

    def sink_repairs(self) -> bool:
        """Whether the cache core has fills to delete again (a cheap unlocked peek)."""
        return self.sink is not None and bool(getattr(self.sink, "repairs", None))

    def _replayed(self, done: list[tuple[NoticeKind, tuple[str, ...]]]) -> None:
        # another thread may have read a replayed key from Redis before the
        # replay deleted it: drop it from the L1 again (and bump the epoch)
        sink = self.sink
        if sink is not None:
            for kind, targets in done:
                sink.apply_remote(kind, targets)

    # -- observability -----------------------------------------------------------

    @property
    def degraded(self) -> bool:
        """True while Redis is bypassed (breaker not closed, invalidations waiting)
        or, when listening, while the invalidation channel is down."""
        if self.breaker.state not in (BreakerState.CLOSED, BreakerState.DISABLED):
            return True
        if self.plan.pending.waiting:
            return True
        return self.listening and self.bus is not None and not self.bus.up

    def redis_stats(self) -> RedisStats:
        """A snapshot of the Redis side."""
        bus = self.bus
        return RedisStats(
            breaker=self.breaker.state.value,
            channel_up=bool(bus and bus.up),
            messages_sent=bus.sent if bus else 0,
            messages_received=bus.received if bus else 0,
            messages_applied=bus.applied if bus else 0,
            malformed=bus.malformed if bus else 0,
            gaps=bus.gaps if bus else 0,
            channel_downs=bus.downs if bus else 0,
            l1_flushes=self.l1_flushes,
            pending=self.plan.pending.size(),
            last_delay=bus.last_delay if bus else None,
            corrupt_keys=self.plan.corrupt_keys,
            journal_dropped=self.plan.pending.dropped,
        )

    def new_token(self) -> bytes:
        """A unique lock token."""
        return os.urandom(16).hex().encode("ascii")


def _shutdown(pubsub: Any) -> None:
    """Wake a listener blocked reading ``pubsub`` (its socket returns EOF)."""
    conn = getattr(pubsub, "connection", None)
    sock = getattr(conn, "_sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class RedisBackend(_RedisBase):
    """The synchronous Redis L2 (a :class:`CacheBackend` plus locks and a listener).

    Built by :class:`TieredCache` from ``redis=``; see docs/cache.md.
    """

    def __init__(self, namespace: str, client: Any, **kw: Any) -> None:
        super().__init__(namespace, client, **kw)
        self._execute_command = client.execute_command
        self._call = self.breaker.call
        self._stop = threading.Event()
        self._first = threading.Event()
        self._thread: threading.Thread | None = None
        self._pubsub: Any = None

    # -- running plans -----------------------------------------------------------

    def _execute(self, batch: Batch) -> list[Any]:
        client = self.client
        cmds = batch.commands
        if batch.node is not None:
            return [client.execute_command(*c, target_nodes=batch.node) for c in cmds]
        if len(cmds) == 1:
            import redis.exceptions as rexc

            try:
                return [client.execute_command(*cmds[0])]
            except rexc.ResponseError as exc:
                return [exc]
        pipe = client.pipeline(transaction=False)
        for c in cmds:
            pipe.execute_command(*c)
        return list(pipe.execute(raise_on_error=False))

    def _primaries(self) -> list[Any]:
        return list(self.client.get_primaries()) if self.cluster else [None]

    def _run(self, plan: Generator[Step, Any, T]) -> T:
        call = self._call
        execute = self._execute
        reply: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = plan.throw(error) if error is not None else plan.send(reply)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            error = None
            try:
                reply = self._primaries() if isinstance(step, _Primaries) else call(execute, step)
            except BaseException as exc:
                error = exc

    def _ready(self, kind: NoticeKind | None = None, items: Sequence[str] = ()) -> None:
        """Replay waiting invalidations first; on failure remember this call's too."""
        if not self.plan.pending.waiting:
            return
        try:
            done = self._run(self.plan.replay())
        except BaseException:
            if kind is not None:
                self.plan.pending.add(kind, items)
            raise
        self._replayed(done)

    def _unq(self, qkeys: Sequence[str]) -> list[str]:
        n = len(self.plan.namespace) + 1
        return [k[n:] for k in qkeys]

    # -- CacheBackend ------------------------------------------------------------

    def get(self, key: str) -> StoredValue | None:
        """The stored value of a qualified key (None: absent or expired)."""
        if self._pending.waiting:
            self._ready()
        try:
            raw = self._call(self._execute_command, "GET", self._value_key(key))
        except Exception as exc:
            stored = self.plan.wrong_type(exc)
            if stored is None:
                raise
            return stored
        return self._stored(raw)

    def get_many(self, keys: Sequence[str]) -> Sequence[StoredValue | None]:
        """One result per qualified key: one MGET (per slot on a cluster)."""
        self._ready()
        return self._run(self.plan.get_many(keys))

    def set_many(self, writes: Sequence[BackendWrite]) -> None:
        """Write values with tags and announce them (one pipeline)."""
        self._ready("keys", self._unq([w.key for w in writes]))
        self._run(self.plan.set_many(writes))

    def delete_many(self, keys: Sequence[str]) -> int:
        """Delete qualified keys; returns how many existed."""
        self._ready("keys", self._unq(keys))
        return self._run(self.plan.delete_many(keys))

    def invalidate_tags(self, tags: Sequence[str]) -> int:
        """Delete every value carrying a qualified tag, in batches; returns how many."""
        self._ready("tags", self._unq(tags))
        return self._run(self.plan.invalidate_tags(tags))

    def invalidate_pattern(self, pattern: str) -> int:
        """SCAN + UNLINK the values matching a qualified glob; returns how many."""
        self._ready("pattern", (pattern[self.plan._qlen_pattern(pattern) :],))
        return self._run(self.plan.invalidate_pattern(pattern))

    def clear(self, namespace: str) -> int:
        """Delete every key of the namespace."""
        self._ready("clear")
        return self._run(self.plan.clear())

    # -- distributed single-flight -------------------------------------------------

    def try_lock(self, key: str, token: bytes, ttl: float) -> bool:
        """Take the load lock of a qualified key for ``ttl`` seconds."""
        reply = self._call(self._execute_command, *self.plan.lock_command(key, token, ttl))
        return self.plan.lock_taken(reply)

    def unlock(self, key: str, token: bytes) -> None:
        """Release the load lock if it still holds ``token``."""
        self._call(self._execute_command, *self.plan.unlock_command(key, token))

    def unfill(self, fills: Sequence[tuple[str, str]]) -> int:
        """Delete qualified keys still holding the payloads with these digests."""
        self._ready("keys", self._unq([k for k, _ in fills]))
        return self._run(self.plan.unfill(fills))

    # -- the listener ------------------------------------------------------------

    def start(self, wait: float) -> None:
        """Start the listener (if attached to listen); wait up to ``wait`` s for it."""
        if not self.listening or self._thread is not None:
            return
        thread = threading.Thread(
            target=self._listen, name=f"sentia-cache-invalidation:{self.plan.namespace}"
        )
        thread.daemon = True
        self._thread = thread
        thread.start()
        self._first.wait(wait)

    def _listen(self) -> None:
        bus = self.bus
        assert bus is not None
        backoff = TICK
        stop = self._stop
        while not stop.is_set():
            pubsub: Any = None
            try:
                pubsub = self.client.pubsub()
                self._pubsub = pubsub
                if stop.is_set():
                    break
                pubsub.subscribe(self.plan.channel)
                started = time.monotonic()
                confirmed = False
                while not stop.is_set():
                    msg = pubsub.get_message(timeout=TICK)
                    now = time.monotonic()
                    if msg is not None:
                        bus.alive(now)
                        kind = msg.get("type")
                        if kind == "message":
                            self._message(msg.get("data"), now)
                        elif kind == "subscribe" and not confirmed:
                            confirmed = True
                            backoff = TICK
                            self._subscribed(now)
                            self._first.set()
                            self._replay_quietly()
                    if not confirmed:
                        if now - started > bus.heartbeat + bus.timeout:
                            raise _ChannelSilent("subscription not confirmed")
                        continue
                    if self._tick(now):
                        pubsub.ping()
                    if self.sink_repairs():
                        self._repair_quietly()
            except Exception as exc:
                if not stop.is_set():
                    _log.debug("cache %s: invalidation channel lost: %r", self.plan.namespace, exc)
            finally:
                self._lost()
                self._first.set()
                self._pubsub = None
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        pubsub.close()
            stop.wait(backoff)
            backoff = min(backoff * 2, bus.heartbeat)

    def _replay_quietly(self) -> None:
        if self.plan.pending.waiting:
            with contextlib.suppress(Exception):
                self._ready()

    def _repair_quietly(self) -> None:
        assert self.sink is not None
        fills = self.sink.take_repairs()
        if fills:
            prefix = self.plan.namespace + ":"
            with contextlib.suppress(Exception):  # a failure is journaled by the plan
                self._run(self.plan.unfill([(prefix + k, d) for k, d in fills]))

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop the listener and, if the cache built the client, close it."""
        if self.closed:
            return
        self.closed = True
        self._stop.set()
        pubsub = self._pubsub
        if pubsub is not None:
            _shutdown(pubsub)
        if self._thread is not None:
            self._thread.join(timeout)
        if self.owns_client:
            with contextlib.suppress(Exception):
                self.client.close()


class AsyncRedisBackend(_RedisBase):
    """The asyncio Redis L2: the same plans as :class:`RedisBackend`, awaited."""

    def __init__(self, namespace: str, client: Any, **kw: Any) -> None:
        super().__init__(namespace, client, **kw)
        self._execute_command = client.execute_command
        self._call = self.breaker.call_async
        self._task: asyncio.Task[None] | None = None
        self._first: asyncio.Event | None = None

    async def _execute(self, batch: Batch) -> list[Any]:
        client = self.client
        cmds = batch.commands
        if batch.node is not None:
            return [await client.execute_command(*c, target_nodes=batch.node) for c in cmds]
        if len(cmds) == 1:
            import redis.exceptions as rexc

            try:
                return [await client.execute_command(*cmds[0])]
            except rexc.ResponseError as exc:
                return [exc]
        pipe = client.pipeline(transaction=False)
        for c in cmds:
            pipe.execute_command(*c)
        return list(await pipe.execute(raise_on_error=False))

    def _primaries(self) -> list[Any]:
        return list(self.client.get_primaries()) if self.cluster else [None]

    async def _run(self, plan: Generator[Step, Any, T]) -> T:
        call = self._call
        execute = self._execute
        reply: Any = None
        error: BaseException | None = None
        while True:
            try:
                step = plan.throw(error) if error is not None else plan.send(reply)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            error = None
            try:
                reply = (
                    self._primaries() if isinstance(step, _Primaries) else await call(execute, step)
                )
            except BaseException as exc:
                error = exc

    async def _ready(self, kind: NoticeKind | None = None, items: Sequence[str] = ()) -> None:
        if not self.plan.pending.waiting:
            return
        try:
            done = await self._run(self.plan.replay())
        except BaseException:
            if kind is not None:
                self.plan.pending.add(kind, items)
            raise
        self._replayed(done)

    def _unq(self, qkeys: Sequence[str]) -> list[str]:
        n = len(self.plan.namespace) + 1
        return [k[n:] for k in qkeys]

    async def get(self, key: str) -> StoredValue | None:
        """The stored value of a qualified key (None: absent or expired)."""
        if self._pending.waiting:
            await self._ready()
        try:
            raw = await self._call(self._execute_command, "GET", self._value_key(key))
        except Exception as exc:
            stored = self.plan.wrong_type(exc)
            if stored is None:
                raise
            return stored
        return self._stored(raw)

    async def get_many(self, keys: Sequence[str]) -> Sequence[StoredValue | None]:
        """One result per qualified key: one MGET (per slot on a cluster)."""
        await self._ready()
        return await self._run(self.plan.get_many(keys))

    async def set_many(self, writes: Sequence[BackendWrite]) -> None:
        """Write values with tags and announce them (one pipeline)."""
        await self._ready("keys", self._unq([w.key for w in writes]))
        await self._run(self.plan.set_many(writes))

    async def delete_many(self, keys: Sequence[str]) -> int:
        """Delete qualified keys; returns how many existed."""
        await self._ready("keys", self._unq(keys))
        return await self._run(self.plan.delete_many(keys))

    async def invalidate_tags(self, tags: Sequence[str]) -> int:
        """Delete every value carrying a qualified tag, in batches; returns how many."""
        await self._ready("tags", self._unq(tags))
        return await self._run(self.plan.invalidate_tags(tags))

    async def invalidate_pattern(self, pattern: str) -> int:
        """SCAN + UNLINK the values matching a qualified glob; returns how many."""
        await self._ready("pattern", (pattern[self.plan._qlen_pattern(pattern) :],))
        return await self._run(self.plan.invalidate_pattern(pattern))

    async def clear(self, namespace: str) -> int:
        """Delete every key of the namespace."""
        await self._ready("clear")
        return await self._run(self.plan.clear())

    async def try_lock(self, key: str, token: bytes, ttl: float) -> bool:
        """Take the load lock of a qualified key for ``ttl`` seconds."""
        cmd = self.plan.lock_command(key, token, ttl)
        return self.plan.lock_taken(await self._call(self._execute_command, *cmd))

    async def unlock(self, key: str, token: bytes) -> None:
        """Release the load lock if it still holds ``token``."""
        await self._call(self._execute_command, *self.plan.unlock_command(key, token))

    async def unfill(self, fills: Sequence[tuple[str, str]]) -> int:
        """Delete qualified keys still holding the payloads with these digests."""
        await self._ready("keys", self._unq([k for k, _ in fills]))
        return await self._run(self.plan.unfill(fills))

    # -- the listener ------------------------------------------------------------

    async def start(self, wait: float) -> None:
        """Start the listener task on the running loop; wait up to ``wait`` s for it."""
        if not self.listening or self.closed:
            return
        task = self._task
        loop = asyncio.get_running_loop()
        if task is not None and not task.done() and task.get_loop() is loop:
            return
        first = self._first = asyncio.Event()
        self._task = loop.create_task(
            self._listen(first), name=f"sentia-cache-invalidation:{self.plan.namespace}"
        )
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(first.wait(), wait)

    def started(self) -> bool:
        """Whether the listener runs on the current loop (or is not wanted)."""
        if not self.listening or self.closed:
            return True
        task = self._task
        if task is None or task.done():
            return False
        try:
            return task.get_loop() is asyncio.get_running_loop()
        except RuntimeError:
            return False

    async def _listen(self, first: asyncio.Event) -> None:
        bus = self.bus
        assert bus is not None
        backoff = TICK
        # ``closed`` is checked as well as cancellation: a client library may
        # swallow a CancelledError delivered in the middle of its read
        while not self.closed:
            pubsub: Any = None
            try:
                if self.cluster:  # its pubsub needs the slot map first
                    await self.client.initialize()
                pubsub = self.client.pubsub()
                await pubsub.subscribe(self.plan.channel)
                started = time.monotonic()
                confirmed = False
                while not self.closed:
                    msg = await pubsub.get_message(timeout=TICK)
                    now = time.monotonic()
                    if msg is not None:
                        bus.alive(now)
                        kind = msg.get("type")
                        if kind == "message":
                            self._message(msg.get("data"), now)
                        elif kind == "subscribe" and not confirmed:
                            confirmed = True
                            backoff = TICK
                            self._subscribed(now)
                            first.set()
                            if self.plan.pending.waiting:
                                with contextlib.suppress(Exception):
                                    await self._ready()
                    if not confirmed:
                        if now - started > bus.heartbeat + bus.timeout:
                            raise _ChannelSilent("subscription not confirmed")
                        continue
                    if self._tick(now):
                        await pubsub.ping()
                    if self.sink_repairs():
                        assert self.sink is not None
                        fills = self.sink.take_repairs()
                        prefix = self.plan.namespace + ":"
                        with contextlib.suppress(Exception):  # journaled by the plan
                            await self._run(self.plan.unfill([(prefix + k, d) for k, d in fills]))
            except Exception as exc:
                _log.debug("cache %s: invalidation channel lost: %r", self.plan.namespace, exc)
            finally:
                self._lost()
                first.set()
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(pubsub.aclose())
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, bus.heartbeat)

    async def aclose(self) -> None:
        """Stop the listener task and, if the cache built the client, close it."""
        if self.closed:
            return
        self.closed = True
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            if task.get_loop() is asyncio.get_running_loop():
                await asyncio.wait({task}, timeout=5.0)
        if self.owns_client:
            with contextlib.suppress(Exception):
                await self.client.aclose()
