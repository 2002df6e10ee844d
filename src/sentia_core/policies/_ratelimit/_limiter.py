"""``RateLimiter``: named tiers, ``hit``/``peek`` (sync and async) and the ``@limit`` decorator.

Theory of operation: the constructor validates everything and builds one
*tier object* per tier: :class:`~._memory.MemoryTier`,
:class:`~._redisstore.RedisTier`, or :class:`_DenyAllTier` for a limit of 0.
Each has ``decide(key, cost, consume)`` and ``adecide(...)``, kept as bound
methods in dicts. ``hit`` on an in-memory tier is the hot path: it runs
``MemoryTier.decide``'s few lines inline (lock, dict get, the core's ``take``,
release), which saves a Python frame, a fifth of the decision's cost; every
other call goes through ``decide``. The decorator goes through ``hit``/``ahit``;
its sync and async wrappers share :class:`_Gate`, which decides whether a
denied call raises or waits, and for how long.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any, Literal, ParamSpec, TypeVar, cast

from sentia_core._clock import SYSTEM_CLOCK, Clock
from sentia_core._events import Listeners
from sentia_core._validate import (
    check_choice,
    check_int,
    check_name,
    check_non_negative,
    check_positive,
)
from sentia_core.errors import ConfigError, RateLimitExceeded

from ._core import DenyAllCore, GcraCore, RateDecision, WindowCore
from ._memory import MemoryTier
from ._rate import Rate, parse_rate
from ._stats import RateLimitDenied, RateLimiterStats, TierStats

__all__ = ["Algorithm", "RateLimiter"]

Algorithm = Literal["gcra", "sliding_window"]
P = ParamSpec("P")
R = TypeVar("R")
_ALGORITHMS: tuple[Algorithm, ...] = ("gcra", "sliding_window")
_Decide = Callable[[str, int, bool], RateDecision]
_ADecide = Callable[[str, int, bool], Awaitable[RateDecision]]


#: ``cost is _ONE`` is a one-instruction test for the usual cost (CPython caches
#: small ints; elsewhere it is merely False and the full check runs).
_ONE = 1


def _bad_cost(cost: object) -> ConfigError:
    return ConfigError("cost", cost, "must be an int >= 0")


class _DenyAllTier:
    """A tier whose limit is 0: denies every request, touches nothing."""

    __slots__ = ("core", "lock")

    def __init__(self, tier: str) -> None:
        self.core = DenyAllCore(tier)
        self.lock = threading.Lock()

    def decide(self, key: str, cost: int, consume: bool) -> RateDecision:
        if consume:
            with self.lock:
                self.core.denied += 1
        return self.core.decide(key)

    async def adecide(self, key: str, cost: int, consume: bool) -> RateDecision:
        return self.decide(key, cost, consume)

    def reset(self, key: str) -> bool:
        return False

    async def areset(self, key: str) -> bool:
        return False


class RateLimiter:
    """Named rate-limit tiers keyed by caller, in memory or on Redis.

    ::

        limiter = RateLimiter({"api": "1000/15min", "auth": "50/15min"})
        decision = limiter.hit("auth", key=client_ip)
        if not decision.allowed:
            return 429, {"Retry-After": str(math.ceil(decision.retry_after))}

    Args:
        tiers: tier name -> rate, as a string (``"1000/15min"``, see
            :func:`parse_rate`) or a :class:`Rate`. A limit of 0 denies
            everything.
        redis: ``None`` (in-process state), a Redis URL (``redis://``,
            ``rediss://``, ``unix://``), or a client: ``redis.Redis``,
            ``redis.RedisCluster``, their asyncio twins, or fakeredis. A URL
            serves both ``hit`` and ``ahit``; a sync client serves ``ahit`` from
            a worker thread; an asyncio client serves only ``ahit``/``apeek``.
        algorithm: ``"gcra"`` (default: a token bucket of ``burst`` refilled at
            the rate) or ``"sliding_window"`` (two fixed windows, weighted).
        namespace: prefix of every Redis key.
        fail_open: while Redis cannot be asked, allow (True, the default) or
            deny (False). Either way the caller never sees a Redis error.
        clock: time source (monotonic for the in-memory state, back-off and
            blocking waits; Redis decisions use the Redis server's clock).
        max_keys: per tier, the most caller keys held in memory (memory
            backend only; at least 2). Every key touched within the last
            ``max_keys // 2`` new keys keeps its state; see docs/ratelimit.md.
        burst: GCRA bucket size in cost units: one int for every tier, or a
            mapping tier -> int; default: each tier's limit. Not valid with
            ``"sliding_window"``.
        cluster: with a URL, build a ``RedisCluster`` client.
        fail_closed_retry_after: ``retry_after`` of a fail-closed denial, seconds.
        redis_backoff: after a Redis failure, seconds to decide without asking
            Redis (by the fail-open/closed rule) before trying again; 0 retries
            on the next call.
        name: the limiter's name, used as event source ``ratelimiter:<name>``.

    Raises:
        ConfigError: naming the parameter (``tiers['auth']`` for a bad rate
            string) when any argument is invalid.
    """

    def __init__(
        self,
        tiers: Mapping[str, str | Rate],
        *,
        redis: object = None,
        algorithm: Algorithm = "gcra",
        namespace: str = "sentia",
        fail_open: bool = True,
        clock: Clock = SYSTEM_CLOCK,
        max_keys: int = 100_000,
        burst: int | Mapping[str, int] | None = None,
        cluster: bool = False,
        fail_closed_retry_after: float = 1.0,
        redis_backoff: float = 1.0,
        name: str = "ratelimit",
    ) -> None:
        if not isinstance(tiers, Mapping) or not tiers:
            raise ConfigError("tiers", tiers, "must be a non-empty mapping of name -> rate")
        rates: dict[str, Rate] = {}
        for tier, text in tiers.items():
            check_name("tiers", tier)
            rates[tier] = parse_rate(text, parameter=f"tiers[{tier!r}]")
        self._algorithm: Algorithm = check_choice("algorithm", algorithm, _ALGORITHMS)
        check_name("namespace", namespace)
        if "{" in namespace or "}" in namespace:
            raise ConfigError("namespace", namespace, "must not contain braces (hash tags)")
        if not isinstance(fail_open, bool):
            raise ConfigError("fail_open", fail_open, "must be True or False")
        if not isinstance(clock, Clock):
            raise ConfigError("clock", clock, "must provide monotonic(), time() and sleeps")
        check_int("max_keys", max_keys, minimum=2)
        check_name("name", name)
        fail_closed_retry_after = check_positive("fail_closed_retry_after", fail_closed_retry_after)
        redis_backoff = check_non_negative("redis_backoff", redis_backoff)
        if not isinstance(cluster, bool):
            raise ConfigError("cluster", cluster, "must be True or False")
        if burst is not None and algorithm == "sliding_window":
            raise ConfigError("burst", burst, "only the 'gcra' algorithm has a burst")
        bursts = self._bursts(burst, rates)

        self.name = name
        self._clock = clock
        self._now = clock.monotonic
        self._rates: Mapping[str, Rate] = MappingProxyType(rates)
        self.listeners: Listeners[Any] = Listeners()
        self._source = f"ratelimiter:{name}"
        self._store: Any = None
        if redis is not None:
            from ._redisstore import RedisStore, RedisTier

            self._store = RedisStore(
                redis,
                cluster=cluster,
                fail_open=fail_open,
                fail_closed_retry_after=float(fail_closed_retry_after),
                backoff=float(redis_backoff),
                now=self._now,
                listeners=self.listeners,
                source=self._source,
                wall=clock.time,
            )
        self._tiers: dict[str, Any] = {}
        for tier, rate in rates.items():
            core: GcraCore | WindowCore
            if rate.limit == 0:
                self._tiers[tier] = _DenyAllTier(tier)
                continue
            if algorithm == "gcra":
                core = GcraCore(tier, rate, bursts.get(tier))
            else:
                core = WindowCore(tier, rate)
            if self._store is None:
                self._tiers[tier] = MemoryTier(core, max_keys, self._now)
            else:
                self._tiers[tier] = RedisTier(core, self._store, namespace)
        self._decide: dict[str, _Decide] = {t: o.decide for t, o in self._tiers.items()}
        # Every tier, mapped to its MemoryTier or None: hit() inlines the memory path.
        self._local: dict[str, MemoryTier | None] = {
            t: o if isinstance(o, MemoryTier) else None for t, o in self._tiers.items()
        }
        self._adecide: dict[str, _ADecide] = {t: o.adecide for t, o in self._tiers.items()}

    @staticmethod
    def _bursts(burst: object, rates: Mapping[str, Rate]) -> dict[str, int]:
        if burst is None:
            return {}
        if isinstance(burst, Mapping):
            out: dict[str, int] = {}
            for tier, value in burst.items():
                if tier not in rates:
                    raise ConfigError("burst", burst, f"names unknown tier {tier!r}")
                out[tier] = check_int(f"burst[{tier!r}]", value, minimum=1)
            return out
        value = check_int("burst", burst, minimum=1)
        return dict.fromkeys(rates, value)

    # -- decisions ---------------------------------------------------------

    def _unknown(self, tier: object) -> ConfigError:
        known = ", ".join(repr(t) for t in self._tiers)
        return ConfigError("tier", tier, f"unknown tier; this limiter has {known}")

    def hit(self, tier: str, key: str = "", cost: int = 1) -> RateDecision:
        """Count a request of ``cost`` against ``key`` in ``tier`` and decide it.

        Args:
            tier: a tier name given at construction.
            key: the caller (IP, user id, tenant, partner...); ``""`` is one
                shared key for the whole tier.
            cost: units this request uses (an ``int >= 0``; 0 only checks).

        Returns:
            The :class:`RateDecision`. A denied hit consumes nothing.

        Raises:
            ConfigError: unknown ``tier``, or ``cost`` not an int >= 0.
            TypeError: the limiter only has an asyncio Redis client.
        """
        if cost is not _ONE and (cost.__class__ is not int or cost < 0):
            raise _bad_cost(cost)
        try:
            local = self._local[tier]
        except (KeyError, TypeError):
            raise self._unknown(tier) from None
        if local is None:
            return self._hit(tier, key, cost)
        # MemoryTier.decide, inlined: one Python frame fewer is a fifth of the
        # in-memory decision's cost (benchmarks/ratelimit.py).
        now = local.now()
        local.acquire()
        try:
            young = local.young
            state = young.get(key)
            if state is None:
                state, _dropped = local.miss(key, now)
                young = local.young
            decision = local.take(young, key, state, now, cost)
        finally:
            local.release()
        if not decision.allowed and self.listeners:
            self._denied(decision)
        return decision

    def _hit(self, tier: str, key: str, cost: int) -> RateDecision:
        try:
            decide = self._decide[tier]
        except (KeyError, TypeError):
            raise self._unknown(tier) from None
        decision = decide(key, cost, True)
        if not decision.allowed and self.listeners:
            self._denied(decision)
        return decision

    def peek(self, tier: str, key: str = "", cost: int = 1) -> RateDecision:
        """Whether ``hit(tier, key, cost)`` would be allowed now, consuming nothing.

        ``remaining`` is the current allowance (not reduced by this peek) and
        ``retry_after`` the wait until such a hit would be allowed.

        Raises:
            ConfigError: unknown ``tier``, or ``cost`` not an int >= 0.
        """
        try:
            decide = self._decide[tier]
        except (KeyError, TypeError):
            raise self._unknown(tier) from None
        if cost.__class__ is not int or cost < 0:
            raise _bad_cost(cost)
        return decide(key, cost, False)

    async def ahit(self, tier: str, key: str = "", cost: int = 1) -> RateDecision:
        """:meth:`hit` for asyncio code (non-blocking on every backend)."""
        if self._local.get(tier) is not None:  # process memory never blocks: hit() inline
            return self.hit(tier, key, cost)
        try:
            adecide = self._adecide[tier]
        except (KeyError, TypeError):
            raise self._unknown(tier) from None
        if cost.__class__ is not int or cost < 0:
            raise _bad_cost(cost)
        decision = await adecide(key, cost, True)
        if not decision.allowed and self.listeners:
            self._denied(decision)
        return decision

    async def apeek(self, tier: str, key: str = "", cost: int = 1) -> RateDecision:
        """:meth:`peek` for asyncio code."""
        try:
            adecide = self._adecide[tier]
        except (KeyError, TypeError):
            raise self._unknown(tier) from None
        if cost.__class__ is not int or cost < 0:
            raise _bad_cost(cost)
        return await adecide(key, cost, False)

    def reset(self, tier: str, key: str = "") -> bool:
        """Forget ``key``'s usage in ``tier`` (an operator's unblock).

        Returns:
            Whether there was state to forget (False also when Redis failed).
        """
        if tier not in self._tiers:
            raise self._unknown(tier)
        return bool(self._tiers[tier].reset(key))

    async def areset(self, tier: str, key: str = "") -> bool:
        """:meth:`reset` for asyncio code."""
        if tier not in self._tiers:
            raise self._unknown(tier)
        return bool(await self._tiers[tier].areset(key))

    def _denied(self, decision: RateDecision) -> None:
        self.listeners.emit(
            RateLimitDenied(
                self._source, self._clock.time(), decision.tier, decision.key, decision.retry_after
            )
        )

    # -- decorator ---------------------------------------------------------

    def limit(
        self,
        tier: str,
        key: str | Callable[..., str] = "",
        *,
        cost: int = 1,
        block: bool = False,
        max_wait: float = 30.0,
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorate a function (``def`` or ``async def``) so each call is a hit.

        Args:
            tier: the tier to count against.
            key: a fixed key, or a callable receiving the call's arguments
                (``key=lambda request: request.client.host``) and returning it.
            cost: units each call uses.
            block: on denial, wait (the clock's ``sleep``/``async_sleep``) and
                try again instead of raising — for outbound calls that must
                respect a partner's limit.
            max_wait: with ``block``, the most seconds one call waits in total;
                a denial whose ``retry_after`` would exceed what is left raises
                at once rather than sleeping in vain.

        Returns:
            The decorator.

        Raises:
            ConfigError: at decoration, for an unknown tier or a bad argument.
            RateLimitExceeded: at call time, when the call is denied (and, with
                ``block``, cannot be allowed within ``max_wait``).
        """
        if tier not in self._tiers:
            raise self._unknown(tier)
        if not (isinstance(key, str) or callable(key)):
            raise ConfigError("key", key, "must be a string or a callable returning one")
        if cost.__class__ is not int or cost < 0:
            raise _bad_cost(cost)
        if not isinstance(block, bool):
            raise ConfigError("block", block, "must be True or False")
        max_wait = check_non_negative("max_wait", max_wait)
        gate = _Gate(self, tier=tier, key=key, cost=cost, block=block, max_wait=float(max_wait))

        def decorate(fn: Callable[P, R]) -> Callable[P, R]:
            if inspect.iscoroutinefunction(fn):
                return cast("Callable[P, R]", gate.wrap_async(fn))
            if self._store is not None and self._store.is_async_only:
                raise ConfigError("fn", fn, "a sync function needs a sync Redis client (or a URL)")
            return gate.wrap_sync(fn)

        return decorate

    # -- observability -----------------------------------------------------

    @property
    def tiers(self) -> Mapping[str, Rate]:
        """The tiers, by name (read-only)."""
        return self._rates

    @property
    def algorithm(self) -> Algorithm:
        """``"gcra"`` or ``"sliding_window"``."""
        return self._algorithm

    def add_listener(self, listener: Callable[[Any], object]) -> Callable[[], None]:
        """Subscribe ``listener`` to denial and backend-failure events; returns the unsubscriber.

        The same as ``limiter.listeners.add(listener)``; every component offers
        ``add_listener`` so the facade and the monitor subscribe alike.
        """
        return self.listeners.add(listener)

    def stats(self) -> RateLimiterStats:
        """A frozen snapshot of the counters (see :class:`RateLimiterStats`)."""
        per_tier: dict[str, TierStats] = {}
        keys = evictions = expired = 0
        for tier, obj in self._tiers.items():
            allowed, denied = obj.core.allowed, obj.core.denied
            per_tier[tier] = TierStats(allowed + denied, allowed, denied)
            if isinstance(obj, MemoryTier):
                keys += len(obj)
                evictions += obj.evictions
                expired += obj.expired
        allowed = sum(t.allowed for t in per_tier.values())
        denied = sum(t.denied for t in per_tier.values())
        store = self._store
        return RateLimiterStats(
            backend="memory" if store is None else "redis",
            algorithm=self._algorithm,
            tiers=MappingProxyType(per_tier),
            decisions=allowed + denied,
            allowed=allowed,
            denied=denied,
            redis_errors=0 if store is None else store.errors,
            fail_open_decisions=0 if store is None else store.fail_open_decisions,
            fail_closed_decisions=0 if store is None else store.fail_closed_decisions,
            keys=keys,
            evictions=evictions,
            expired=expired,
            corrupt_keys=0 if store is None else store.corrupt_keys,
            oom_decisions=0 if store is None else store.oom_decisions,
        )

    # -- lifecycle ---------------------------------------------------------

    def close(self) -> None:
        """Close the sync Redis client the limiter built from a URL (no-op otherwise)."""
        if self._store is not None:
            self._store.close()

    async def aclose(self) -> None:
        """Close every Redis client the limiter built from a URL."""
        if self._store is not None:
            await self._store.aclose()

    def __enter__(self) -> RateLimiter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> RateLimiter:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        tiers = ", ".join(f"{t!r}: {str(r)!r}" for t, r in self._rates.items())
        backend = "memory" if self._store is None else "redis"
        return f"RateLimiter({{{tiers}}}, algorithm={self._algorithm!r}, backend={backend!r})"


class _Gate:
    """What ``@limit`` does around a call; shared by the sync and async wrappers."""

    __slots__ = ("block", "clock", "cost", "key", "key_fn", "limiter", "max_wait", "tier")

    def __init__(
        self,
        limiter: RateLimiter,
        *,
        tier: str,
        key: str | Callable[..., str],
        cost: int,
        block: bool,
        max_wait: float,
    ) -> None:
        self.limiter = limiter
        self.tier = tier
        self.key = key if isinstance(key, str) else ""
        self.key_fn = None if isinstance(key, str) else key
        self.cost = cost
        self.block = block
        self.max_wait = max_wait
        self.clock = limiter._clock

    def denied(self, decision: RateDecision, deadline: float | None) -> tuple[float, float]:
        """After a denial: ``(seconds to sleep, deadline)``, or raise ``RateLimitExceeded``."""
        retry = decision.retry_after
        if self.block:
            now = self.clock.monotonic()
            if deadline is None:
                deadline = now + self.max_wait
            if now + retry <= deadline:
                return retry, deadline
        raise RateLimitExceeded(self.tier, decision.key, retry)

    def wait(self, decision: RateDecision) -> None:
        """After a denied hit: sleep and retry until allowed, or raise (sync)."""
        hit, tier, cost, sleep = self.limiter.hit, self.tier, self.cost, self.clock.sleep
        deadline = None
        while not decision.allowed:
            delay, deadline = self.denied(decision, deadline)
            sleep(delay)
            decision = hit(tier, decision.key, cost)

    async def await_allowed(self, decision: RateDecision) -> None:
        """After a denied hit: sleep and retry until allowed, or raise (asyncio)."""
        ahit, tier, cost = self.limiter.ahit, self.tier, self.cost
        async_sleep = self.clock.async_sleep
        deadline = None
        while not decision.allowed:
            delay, deadline = self.denied(decision, deadline)
            await async_sleep(delay)
            decision = await ahit(tier, decision.key, cost)

    def wrap_sync(self, fn: Callable[P, R]) -> Callable[P, R]:
        # Through hit(): the in-memory path is inlined there, and it emits the events.
        hit, tier, cost, wait = self.limiter.hit, self.tier, self.cost, self.wait
        key_fn, fixed_key = self.key_fn, self.key

        @functools.wraps(fn)
        def limited(*args: P.args, **kwargs: P.kwargs) -> R:
            decision = hit(tier, fixed_key if key_fn is None else key_fn(*args, **kwargs), cost)
            if not decision.allowed:
                wait(decision)
            return fn(*args, **kwargs)

        return limited

    def wrap_async(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        ahit, tier, cost, await_allowed = (
            self.limiter.ahit,
            self.tier,
            self.cost,
            self.await_allowed,
        )
        key_fn, fixed_key = self.key_fn, self.key

        @functools.wraps(fn)
        async def limited(*args: P.args, **kwargs: P.kwargs) -> R:
            key = fixed_key if key_fn is None else key_fn(*args, **kwargs)
            decision = await ahit(tier, key, cost)
            if not decision.allowed:
                await await_allowed(decision)
            return await fn(*args, **kwargs)

        return limited
