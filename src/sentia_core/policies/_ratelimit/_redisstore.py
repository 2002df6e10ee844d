"""Redis backend: one script call per decision, sync and async sharing everything but the await.

Theory of operation: a :class:`RedisTier` turns ``(key, cost, consume)`` into
one script call (:meth:`RedisTier.request`), the store sends it (``EVALSHA``;
``EVAL`` once after a ``NOSCRIPT``), and the tier's core decodes the reply
(:meth:`RedisTier.finish`). ``decide`` and ``adecide`` are the same three
steps; only the send differs (``execute`` vs ``aexecute``).

Failures never reach the caller. Any exception from the client (connection
refused, timeout, cluster trouble) or a reply that does not decode counts as
a Redis error and the decision follows the limiter's rule: fail open
(allowed, ``remaining=0``) or fail closed (denied with ``retry_after =
fail_closed_retry_after``). After a failure the store does not touch Redis
for ``backoff`` seconds of the limiter's clock, so a dead server costs one
timeout per ``backoff``, not one per request.

Two replies are not outages and start no back-off. An error reply about the
data (``WRONGTYPE``, ``ERR``: one caller's key) decides that one call by the
rule, deletes the key and counts it in ``corrupt_keys``; the scripts repair
foreign keys themselves, so this is a last line. An ``OOM`` reply (Redis is
full: it answers but refuses writes) is decided from Redis's state read-only:
the same script as a peek, which writes nothing; an allowed peek is allowed
(that hit is not recorded), a denied one denied, counted in
``oom_decisions``. Callers over their budget stay limited and the others keep
working, whichever of fail-open or fail-closed is configured.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable
from typing import Any

from redis.exceptions import NoScriptError, OutOfMemoryError, ResponseError

from sentia_core import _redis
from sentia_core._events import Listeners

from . import _lua
from ._core import GcraCore, RateDecision, WindowCore
from ._stats import RateLimitBackendFailed

__all__ = ["RedisStore", "RedisTier"]

_HIT_ONE = "1"
_REPAIRED = (b"R", "R")


def _reply_kind(exc: BaseException) -> str:
    """``"oom"``, ``"data"`` (about one key) or ``"outage"`` for a failed call."""
    # redis-py strips the reply's code: OOM arrives as OutOfMemoryError, and a
    # plain ResponseError (exactly that class) is an ERR / WRONGTYPE reply
    if isinstance(exc, OutOfMemoryError) or str(exc).startswith("OOM"):
        return "oom"
    if type(exc) is ResponseError:
        return "data"
    return "outage"


_ASYNC_ONLY = (
    "this RateLimiter was given an asyncio Redis client; use ahit()/apeek() "
    "(or pass a URL, which serves both)"
)


class RedisStore:
    """The clients, failure policy and error counters shared by a limiter's tiers.

    Args:
        redis: a URL, a sync client (``redis.Redis``/``RedisCluster``/fakeredis)
            or an asyncio client.
        cluster: build a ``RedisCluster`` client when ``redis`` is a URL.
        fail_open: allow (True) or deny (False) while Redis cannot be asked.
        fail_closed_retry_after: ``retry_after`` of a fail-closed denial, seconds.
        backoff: seconds to leave Redis alone after a failure (0: retry at once).
        now: the limiter clock's bound ``monotonic``.
        listeners: where backend-failure events go.
        source: the ``source`` of those events.
    """

    def __init__(
        self,
        redis: object,
        *,
        cluster: bool,
        fail_open: bool,
        fail_closed_retry_after: float,
        backoff: float,
        now: Callable[[], float],
        listeners: Listeners[Any],
        source: str,
        wall: Callable[[], float],
    ) -> None:
        self.url: str | None = redis if isinstance(redis, str) else None
        self.cluster = cluster
        self.sync_client: Any = None
        self.async_client: Any = None
        self._owned: list[Any] = []
        if self.url is not None:
            self.sync_client = _redis.make_client(self.url, cluster=cluster)
            self._owned.append(self.sync_client)
        elif inspect.iscoroutinefunction(getattr(redis, "execute_command", None)):
            self.async_client = _redis.make_async_client(redis)
        else:
            self.sync_client = _redis.make_client(redis)
        self.fail_open = fail_open
        self.fail_closed_retry_after = fail_closed_retry_after
        self.backoff = backoff
        self.now = now
        self.wall = wall
        self.listeners = listeners
        self.source = source
        self.lock = threading.Lock()
        #: monotonic time before which Redis is not asked (0.0: healthy).
        self.down_until = 0.0
        self.errors = 0
        self.fail_open_decisions = 0
        self.fail_closed_decisions = 0
        #: caller keys found holding foreign data (repaired)
        self.corrupt_keys = 0
        #: hits decided read-only because Redis answered OOM
        self.oom_decisions = 0
        self.last_error: str | None = None
        #: tests only: a callable whose value replaces the server time (see _lua).
        self.time_override: Callable[[], float] | None = None

    @property
    def is_async_only(self) -> bool:
        return self.sync_client is None and self.url is None

    def execute(self, sha: str, script: str, key: str, args: tuple[str, ...]) -> Any:
        """Run a script once on the sync client."""
        client = self.sync_client
        try:
            return client.execute_command("EVALSHA", sha, 1, key, *args)
        except NoScriptError:
            return client.execute_command("EVAL", script, 1, key, *args)

    async def aexecute(self, sha: str, script: str, key: str, args: tuple[str, ...]) -> Any:
        """Run a script once on the asyncio client (made from the URL on first use)."""
        client = self.async_client or self.make_async_client()
        try:
            return await client.execute_command("EVALSHA", sha, 1, key, *args)
        except NoScriptError:
            return await client.execute_command("EVAL", script, 1, key, *args)

    def make_async_client(self) -> Any:
        """The asyncio client, built from the URL on first use."""
        if self.async_client is None:
            self.async_client = _redis.make_async_client(self.url, cluster=self.cluster)
            self._owned.append(self.async_client)
        return self.async_client

    def healthy(self) -> bool:
        """False while backing off after a failure (reads the clock only then)."""
        if self.now() < self.down_until:
            return False
        self.down_until = 0.0
        return True

    def failed(self, tier: str, exc: BaseException) -> None:
        """Record a failure and start the back-off."""
        error = f"{type(exc).__name__}: {exc}"
        with self.lock:
            self.errors += 1
            self.last_error = error
            if self.backoff > 0.0:
                self.down_until = self.now() + self.backoff
        if self.listeners:
            self.listeners.emit(
                RateLimitBackendFailed(self.source, self.wall(), tier, error, self.fail_open)
            )

    def close(self) -> None:
        """Close the sync client this store created from a URL."""
        for client in self._owned:
            if not inspect.iscoroutinefunction(getattr(client, "close", None)):
                client.close()

    async def aclose(self) -> None:
        """Close every client this store created from a URL."""
        for client in self._owned:
            closer = getattr(client, "aclose", None) or client.close
            result = closer()
            if inspect.isawaitable(result):
                await result


class RedisTier:
    """One tier on Redis: builds the script call and describes the reply.

    Args:
        core: the tier's arithmetic.
        store: the shared clients and failure policy.
        namespace: the key prefix; keys are ``{namespace}:{rl:{tier}:{key}}:{g|w}``.
    """

    __slots__ = (
        "core",
        "lock",
        "prefix",
        "script",
        "sha",
        "store",
        "suffix",
    )

    def __init__(self, core: GcraCore | WindowCore, store: RedisStore, namespace: str) -> None:
        self.core = core
        self.store = store
        if isinstance(core, GcraCore):
            self.script, letter = _lua.gcra_script(core.interval, core.tol_eps), "g"
        else:
            self.script, letter = _lua.sliding_window_script(core.period, core.limit_eps), "w"
        self.sha = _lua.script_sha(self.script)
        # The key through sentia_core._redis.key, split around the caller's key.
        marker = "\x00"
        self.prefix, self.suffix = _redis.key(namespace, f"rl:{core.tier}:{marker}", letter).split(
            marker
        )
        self.lock = threading.Lock()

    def redis_key(self, key: str) -> str:
        """The Redis key holding ``key``'s state in this tier."""
        return self.prefix + key + self.suffix

    def request(
        self, key: str, cost: int, consume: bool
    ) -> RateDecision | tuple[str, tuple[str, ...]]:
        """The script call for one decision, or the decision itself while Redis is down."""
        store = self.store
        if store.down_until and not store.healthy():
            return self.fallback(key, consume)
        # One argument: the cost of a hit, or -(cost + 1) for a peek.
        args: tuple[str, ...] = (
            (_HIT_ONE if cost == 1 else str(cost),) if consume else (str(-cost - 1),)
        )
        if store.time_override is not None:
            args = (*args, repr(store.time_override()))
        return self.prefix + key + self.suffix, args

    def finish(self, reply: Any, key: str, cost: int, consume: bool) -> RateDecision:
        """Describe the script's reply (a reply that does not decode is a failure)."""
        if isinstance(reply, (bytes, str)) and reply[:1] in _REPAIRED:
            reply = reply[1:]
            with self.store.lock:
                self.store.corrupt_keys += 1
        try:
            decision = self.core.decode(reply, cost, consume, key)
        except ValueError as exc:
            return self.failed(key, consume, exc)
        if consume:
            core = self.core
            with self.lock:
                if decision.allowed:
                    core.allowed += 1
                else:
                    core.denied += 1
        return decision

    def failed(self, key: str, consume: bool, exc: BaseException) -> RateDecision:
        """Count the failure and decide by the fail-open/closed rule."""
        self.store.failed(self.core.tier, exc)
        return self.fallback(key, consume)

    def answered(self, exc: BaseException) -> str:
        """Classify a failed call: ``"oom"``, ``"data"`` or ``"outage"``.

        A data error is counted here (no back-off: it concerns one key).
        """
        kind = _reply_kind(exc)
        if kind == "data":
            with self.store.lock:
                self.store.corrupt_keys += 1
        return kind

    def read_only(self, reply: Any, key: str, cost: int) -> RateDecision:
        """A hit decided by a peek because Redis is full (counted as a hit)."""
        decision = self.finish(reply, key, cost, False)
        store = self.store
        with self.lock:
            if decision.allowed:
                self.core.allowed += 1
            else:
                self.core.denied += 1
            store.oom_decisions += 1
        return decision

    def _peek_args(self, cost: int) -> tuple[str, ...]:
        args: tuple[str, ...] = (str(-cost - 1),)
        if self.store.time_override is not None:
            args = (*args, repr(self.store.time_override()))
        return args

    def fallback(self, key: str, consume: bool) -> RateDecision:
        """The decision made without Redis."""
        store = self.store
        tier = self.core.tier
        if store.fail_open:
            if consume:
                with self.lock:
                    self.core.allowed += 1
                    store.fail_open_decisions += 1
            return RateDecision((True, 0, 0.0, 0.0, tier, key))
        if consume:
            with self.lock:
                self.core.denied += 1
                store.fail_closed_decisions += 1
        return RateDecision((False, 0, store.fail_closed_retry_after, 0.0, tier, key))

    def decide(self, key: str, cost: int, consume: bool) -> RateDecision:
        """One decision on the sync client: one round trip."""
        store = self.store
        if store.sync_client is None:
            raise TypeError(_ASYNC_ONLY)
        plan = self.request(key, cost, consume)
        if isinstance(plan, RateDecision):
            return plan
        rkey, args = plan
        try:
            reply = store.execute(self.sha, self.script, rkey, args)
        except Exception as exc:
            kind = self.answered(exc)
            if kind == "outage":
                return self.failed(key, consume, exc)
            try:
                if kind == "oom" and consume:
                    peek = store.execute(self.sha, self.script, rkey, self._peek_args(cost))
                    return self.read_only(peek, key, cost)
                if kind == "data":
                    store.sync_client.delete(rkey)
            except Exception as again:
                return self.failed(key, consume, again)
            return self.fallback(key, consume)
        return self.finish(reply, key, cost, consume)

    async def adecide(self, key: str, cost: int, consume: bool) -> RateDecision:
        """One decision on the asyncio client (a sync-only client runs in a worker thread)."""
        store = self.store
        if store.async_client is None and store.url is None:
            return await asyncio.to_thread(self.decide, key, cost, consume)
        plan = self.request(key, cost, consume)
        if isinstance(plan, RateDecision):
            return plan
        rkey, args = plan
        try:
            reply = await store.aexecute(self.sha, self.script, rkey, args)
        except Exception as exc:
            kind = self.answered(exc)
            if kind == "outage":
                return self.failed(key, consume, exc)
            try:
                if kind == "oom" and consume:
                    peek = await store.aexecute(self.sha, self.script, rkey, self._peek_args(cost))
                    return self.read_only(peek, key, cost)
                if kind == "data":
                    await (store.async_client or store.make_async_client()).delete(rkey)
            except Exception as again:
                return self.failed(key, consume, again)
            return self.fallback(key, consume)
        return self.finish(reply, key, cost, consume)

    def reset(self, key: str) -> bool:
        """Delete ``key``'s state; False when Redis could not be asked or had none."""
        store = self.store
        if store.sync_client is None:
            raise TypeError(_ASYNC_ONLY)
        try:
            return bool(store.sync_client.delete(self.redis_key(key)))
        except Exception as exc:
            store.failed(self.core.tier, exc)
            return False

    async def areset(self, key: str) -> bool:
        """:meth:`reset` on the asyncio client."""
        store = self.store
        if store.async_client is None and store.url is None:
            return await asyncio.to_thread(self.reset, key)
        client = store.async_client or store.make_async_client()
        try:
            return bool(await client.delete(self.redis_key(key)))
        except Exception as exc:
            store.failed(self.core.tier, exc)
            return False
