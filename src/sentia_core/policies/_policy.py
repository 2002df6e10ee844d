"""Policy: fallback → retry → hedge → breaker → rate limit → bulkheads → timeout → chaos.

Theory of operation: decorating a function builds the pipeline once, from the
inside out, as a chain of closures, each stage calling the next through the
component's public API (``timeout.call``, ``bulkhead(fn)``, ``limiter.hit``,
``breaker.call``, ``retry(fn)``). A call then runs through plain function
calls: no per-call allocation by the policy itself, no lock, no dispatch on
which stages exist. Sync and async functions get twin chains built by the same
method; the rate-limit and fallback decisions live in shared helpers.

Why this order (outermost first), after Polly v8's recommended pipeline:

1. **Fallback** sees the final outcome, after every retry, and turns a failure
   into a value.
2. **Retry** wraps everything below, so every attempt is recorded by the
   breaker, counted by the rate limiter, bounded by the bulkhead and timed out
   on its own. An open circuit (``CircuitOpenError``) stops retrying at once;
   a rate-limit rejection's ``retry_after`` becomes the next delay.
3. **Circuit breaker** outside the limiter and bulkhead: an open circuit fails
   fast without spending rate-limit quota or waiting for a slot, and a timed-out
   attempt counts as a failure of the dependency.
4. **Rate limit** before the bulkhead: a call waiting for rate permission
   (``rate_block=True``) does not occupy a concurrency slot.
5. **Bulkhead** caps concurrent attempts in flight.
6. **Timeout**, innermost, bounds each attempt. Time spent queueing for a
   slot or for rate permission is not part of it; bound the whole call with
   ``Retry(max_time=...)`` or an outer :func:`deadline`.

The strategies of issue 19 slot in where Polly v8 puts their peers:

* **Hedge** right inside retry (Polly: hedging takes retry's place; with
  both, retry goes outside): every hedged attempt goes through its own
  breaker check, rate-limit hit, bulkhead slot and timeout, and a retry
  repeats the whole race.
* **AdaptiveBulkhead** right inside the fixed bulkhead and outside the
  timeout, so a timed-out attempt is a drop that shrinks its limit and the
  round-trip time it measures is the attempt's own.
* **Chaos** innermost, inside the timeout (Polly: chaos strategies go last,
  just before the callback), so an injected fault or delay looks to every
  other stage exactly like the dependency's.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import partial, update_wrapper
from typing import Any, ParamSpec, Protocol, TypeVar, overload, runtime_checkable

from sentia_core._clock import SYSTEM_CLOCK, Clock
from sentia_core._events import Event, Listeners
from sentia_core._validate import check_callable, check_int, check_name, check_non_negative
from sentia_core.breaker import BreakerLike
from sentia_core.errors import ConfigError, RateLimitExceeded

from ._adaptive import AdaptiveBulkhead, AdaptiveBulkheadStats
from ._bulkhead import Bulkhead, BulkheadStats
from ._chaos import Chaos, ChaosStats
from ._deadline import _DEADLINE
from ._hedge import Hedge, HedgeStats
from ._retry import Retry, RetryStats, is_coroutine_callable
from ._retry_after import hint_seconds
from ._timeout import Timeout, TimeoutStats

__all__ = [
    "Policy",
    "PolicyEvent",
    "PolicyStats",
    "RateDecisionLike",
    "RateLimiterLike",
]

P = ParamSpec("P")
T = TypeVar("T")

# A limiter that keeps denying with retry_after == 0 must not make a blocking
# caller spin: every wait is at least this long (seconds).
_MIN_RATE_WAIT = 0.001


@runtime_checkable
class RateDecisionLike(Protocol):
    """The part of a rate-limit decision :class:`Policy` reads."""

    @property
    def allowed(self) -> bool:
        """True if the hit was allowed."""
        ...

    @property
    def retry_after(self) -> float:
        """Seconds until the same hit would be allowed."""
        ...


@runtime_checkable
class RateLimiterLike(Protocol):
    """What :class:`Policy` needs from a rate limiter (``sentia_core.RateLimiter`` fits)."""

    def hit(self, tier: str, key: str = "", cost: int = 1) -> RateDecisionLike:
        """Count a hit and decide it."""
        ...

    async def ahit(self, tier: str, key: str = "", cost: int = 1) -> RateDecisionLike:
        """Count a hit and decide it (asyncio)."""
        ...


@dataclass(frozen=True, slots=True)
class PolicyEvent(Event):
    """Something the policy itself did (its components report their own events).

    Attributes:
        policy: the policy's name.
        kind: ``"fallback"`` (the fallback produced the result),
            ``"rate_limited"`` (a rate-limit denial was raised) or
            ``"rate_wait"`` (a blocking caller waits ``delay`` seconds for quota).
        delay: seconds waited (``"rate_wait"`` only).
        error: the error the fallback replaced, or the denial.
    """

    policy: str
    kind: str
    delay: float
    error: BaseException | None


@dataclass(frozen=True, slots=True)
class PolicyStats:
    """A snapshot of a :class:`Policy` and of the components it owns.

    Attributes:
        fallbacks: calls answered by the fallback.
        rate_limited: calls refused by the rate limit (``RateLimitExceeded`` raised).
        rate_waits: waits for rate-limit quota (``rate_block=True``).
        retry: the Retry's stats, if any.
        bulkhead: the Bulkhead's stats, if any.
        timeout: the Timeout's stats, if any.
        hedge: the Hedge's stats, if any.
        adaptive: the AdaptiveBulkhead's stats, if any.
        chaos: the Chaos's stats, if any.
    """

    fallbacks: int
    rate_limited: int
    rate_waits: int
    retry: RetryStats | None
    bulkhead: BulkheadStats | None
    timeout: TimeoutStats | None
    hedge: HedgeStats | None = None
    adaptive: AdaptiveBulkheadStats | None = None
    chaos: ChaosStats | None = None


def _exception_types(
    parameter: str, value: object
) -> tuple[type[BaseException], ...] | Callable[[BaseException], bool]:
    if callable(value) and not isinstance(value, type):
        return value
    if isinstance(value, type) and issubclass(value, BaseException):
        return (value,)
    if (
        isinstance(value, tuple)
        and value
        and all(isinstance(t, type) and issubclass(t, BaseException) for t in value)
    ):
        return value
    raise ConfigError(
        parameter, value, "expected an exception class, a tuple of them, or a predicate"
    )


class Policy:
    """Composes retry, circuit breaker, rate limit, bulkhead, timeout and fallback.

    ``@Policy(...)`` decorates ``def`` and ``async def`` functions alike. Each
    stage is optional; the order is fixed (see the module docs and
    ``docs/policies.md``): fallback → retry → hedge → breaker → rate limit →
    bulkhead → adaptive bulkhead → timeout → chaos → your function.

    Args:
        retry: a :class:`Retry`.
        breaker: a circuit breaker (:class:`BreakerLike`, e.g. ``CircuitBreaker``).
            Configure it to ignore :class:`~sentia_core.errors.CallRejectedError`
            if the policy's own rate limit or bulkhead rejections should not
            count as failures of the dependency.
        rate_limit: a rate limiter (:class:`RateLimiterLike`, e.g. ``RateLimiter``).
        rate_tier: the limiter tier to count against (required with ``rate_limit``).
        rate_key: the limiter key: a string, or a callable receiving the call's
            arguments and returning one (``lambda tenant, *a, **k: tenant``).
        rate_cost: units each attempt uses (>= 0; default 1).
        rate_block: on denial, wait ``retry_after`` (with ``sleep`` /
            ``async_sleep``) and ask again instead of raising
            :class:`~sentia_core.errors.RateLimitExceeded` (default False).
        rate_max_wait: with ``rate_block``, the most seconds one attempt waits
            for quota in total (>= 0; default 30). A wait that would exceed it,
            or the caller's deadline, raises at once instead.
        bulkhead: a :class:`Bulkhead`, or an int for ``Bulkhead(n)``.
        timeout: a :class:`Timeout`, or seconds for ``Timeout(seconds)``: the
            limit of each attempt.
        hedge: a :class:`Hedge`: slow attempts are raced by extra ones.
        adaptive: an :class:`AdaptiveBulkhead` (its limit follows latency and drops).
        chaos: a :class:`Chaos` (injected faults for your tests; off unless enabled).
        fallback: ``fallback(error, *args, **kwargs)`` returns the result to use
            when the call finally fails with an error matching ``fallback_on``
            (may be ``async`` for async functions).
        fallback_on: what the fallback handles: exception classes, or a
            predicate ``(exc) -> bool`` (default ``Exception``; the facade's
            ``protect`` narrows it, see ``docs/policies.md``).
        name: shown in events and ``repr``.
        clock: time source for event timestamps and the default sleeps.
        sleep: blocks during rate-limit waits (default ``clock.sleep``).
        async_sleep: awaits during rate-limit waits (default ``clock.async_sleep``).

    Raises:
        ConfigError: naming the offending parameter.
    """

    __slots__ = (
        "_async_sleep",
        "_clock",
        "_counts",
        "_listeners",
        "_lock",
        "_sleep",
        "adaptive",
        "breaker",
        "bulkhead",
        "chaos",
        "fallback",
        "fallback_on",
        "hedge",
        "name",
        "rate_block",
        "rate_cost",
        "rate_key",
        "rate_limit",
        "rate_max_wait",
        "rate_tier",
        "retry",
        "timeout",
    )

    def __init__(
        self,
        *,
        retry: Retry | None = None,
        breaker: BreakerLike | None = None,
        rate_limit: RateLimiterLike | None = None,
        rate_tier: str | None = None,
        rate_key: str | Callable[..., str] = "",
        rate_cost: int = 1,
        rate_block: bool = False,
        rate_max_wait: float = 30.0,
        bulkhead: Bulkhead | int | None = None,
        timeout: Timeout | float | None = None,
        fallback: Callable[..., Any] | None = None,
        fallback_on: type[BaseException]
        | tuple[type[BaseException], ...]
        | Callable[[BaseException], bool] = Exception,
        hedge: Hedge | None = None,
        adaptive: AdaptiveBulkhead | None = None,
        chaos: Chaos | None = None,
        name: str = "policy",
        clock: Clock = SYSTEM_CLOCK,
        sleep: Callable[[float], object] | None = None,
        async_sleep: Callable[[float], Awaitable[object]] | None = None,
    ) -> None:
        if retry is not None and not isinstance(retry, Retry):
            raise ConfigError("retry", retry, "expected a Retry")
        self.retry = retry
        if breaker is not None and not (
            callable(getattr(breaker, "call", None))
            and callable(getattr(breaker, "call_async", None))
        ):
            raise ConfigError("breaker", breaker, "needs call() and call_async()")
        self.breaker = breaker
        if rate_limit is not None:
            if not (
                callable(getattr(rate_limit, "hit", None))
                and callable(getattr(rate_limit, "ahit", None))
            ):
                raise ConfigError("rate_limit", rate_limit, "needs hit() and ahit()")
            check_name("rate_tier", rate_tier)
        elif rate_tier is not None:
            raise ConfigError("rate_tier", rate_tier, "only meaningful with rate_limit=")
        self.rate_limit = rate_limit
        self.rate_tier = rate_tier or ""
        if not (isinstance(rate_key, str) or callable(rate_key)):
            raise ConfigError("rate_key", rate_key, "expected a string or a callable")
        self.rate_key = rate_key
        self.rate_cost = check_int("rate_cost", rate_cost, minimum=0)
        if not isinstance(rate_block, bool):
            raise ConfigError("rate_block", rate_block, "must be True or False")
        self.rate_block = rate_block
        self.rate_max_wait = check_non_negative("rate_max_wait", rate_max_wait)
        if isinstance(bulkhead, int) and not isinstance(bulkhead, bool):
            try:
                bulkhead = Bulkhead(bulkhead, name=f"{name}-bulkhead")
            except ConfigError as exc:
                raise ConfigError("bulkhead", exc.value, exc.reason) from None
        elif bulkhead is not None and not isinstance(bulkhead, Bulkhead):
            raise ConfigError("bulkhead", bulkhead, "expected a Bulkhead or an int")
        self.bulkhead = bulkhead
        if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
            try:
                timeout = Timeout(timeout, name=f"{name}-timeout", clock=clock)
            except ConfigError as exc:
                raise ConfigError("timeout", exc.value, exc.reason) from None
        elif timeout is not None and not isinstance(timeout, Timeout):
            raise ConfigError("timeout", timeout, "expected a Timeout or seconds")
        self.timeout = timeout
        self.fallback = None if fallback is None else check_callable("fallback", fallback)
        for parameter, stage, kind in (
            ("hedge", hedge, Hedge),
            ("adaptive", adaptive, AdaptiveBulkhead),
            ("chaos", chaos, Chaos),
        ):
            if stage is not None and not isinstance(stage, kind):
                raise ConfigError(parameter, stage, f"expected a {kind.__name__}")
        self.hedge = hedge
        self.adaptive = adaptive
        self.chaos = chaos
        self.fallback_on = _exception_types("fallback_on", fallback_on)
        self.name = check_name("name", name)
        if not callable(getattr(clock, "time", None)):
            raise ConfigError("clock", clock, "expected a Clock")
        self._clock = clock
        if sleep is not None:
            check_callable("sleep", sleep)
        if async_sleep is not None:
            check_callable("async_sleep", async_sleep)
        self._sleep: Callable[[float], object] = clock.sleep if sleep is None else sleep
        self._async_sleep: Callable[[float], Awaitable[object]] = (
            clock.async_sleep if async_sleep is None else async_sleep
        )
        self._lock = threading.Lock()
        self._counts = {"fallbacks": 0, "rate_limited": 0, "rate_waits": 0}
        self._listeners: Listeners[PolicyEvent] = Listeners()

    def add_listener(self, listener: Callable[[PolicyEvent], object]) -> Callable[[], None]:
        """Subscribe to :class:`PolicyEvent` s; returns an unsubscribe function."""
        return self._listeners.add(listener)

    # ------------------------------------------------------ shared decisions

    def _report(self, kind: str, delay: float, error: BaseException | None) -> None:
        counter = {"fallback": "fallbacks", "rate_limited": "rate_limited"}.get(kind, "rate_waits")
        with self._lock:
            self._counts[counter] += 1
        if self._listeners:
            self._listeners.emit(
                PolicyEvent(
                    source=f"policy:{self.name}",
                    at=self._clock.time(),
                    policy=self.name,
                    kind=kind,
                    delay=delay,
                    error=error,
                )
            )

    def _rate_key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        key = self.rate_key
        return key if isinstance(key, str) else key(*args, **kwargs)

    def _rate_denied(self, decision: RateDecisionLike, key: str, waited: float) -> float:
        """After a denial: the seconds to wait before asking again, or raise.

        Raises:
            RateLimitExceeded: not blocking, or the wait would pass
                ``rate_max_wait`` or the caller's deadline.
        """
        retry_after = hint_seconds(getattr(decision, "retry_after", None))
        if self.rate_block and retry_after is not None:
            wait = retry_after if retry_after > _MIN_RATE_WAIT else _MIN_RATE_WAIT
            d = _DEADLINE.get()
            if waited + wait <= self.rate_max_wait and (d is None or wait < d.remaining()):
                self._report("rate_wait", wait, None)
                return wait
        error = RateLimitExceeded(self.rate_tier, key, retry_after or 0.0)
        self._report("rate_limited", 0.0, error)
        raise error

    # ---------------------------------------------------------------- chains

    def _build_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        call = fn
        # partial(stage.call, inner) is a C-level callable: no Python frame per stage.
        if self.chaos is not None:
            call = partial(self.chaos.call, call)
        if self.timeout is not None:
            call = partial(self.timeout.call, call)
        if self.adaptive is not None:
            call = partial(self.adaptive.call, call)
        if self.bulkhead is not None:
            call = self.bulkhead(call)
        if self.rate_limit is not None:
            call = self._rate_stage_sync(call)
        if self.breaker is not None:
            call = partial(self.breaker.call, call)
        if self.hedge is not None:
            call = partial(self.hedge.call, call)
        if self.retry is not None:
            call = self.retry(call)
        if self.fallback is not None:
            call = self._fallback_stage_sync(call)
        return call

    def _build_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        call = fn
        if self.chaos is not None:
            call = partial(self.chaos.call_async, call)
        if self.timeout is not None:
            call = partial(self.timeout.call_async, call)
        if self.adaptive is not None:
            call = partial(self.adaptive.call_async, call)
        if self.bulkhead is not None:
            call = self.bulkhead(call)
        if self.rate_limit is not None:
            call = self._rate_stage_async(call)
        if self.breaker is not None:
            call = partial(self.breaker.call_async, call)
        if self.hedge is not None:
            call = partial(self.hedge.call_async, call)
        if self.retry is not None:
            call = self.retry(call)
        if self.fallback is not None:
            call = self._fallback_stage_async(call)
        return call

    def _rate_stage_sync(self, inner: Callable[..., Any]) -> Callable[..., Any]:
        assert self.rate_limit is not None
        hit, tier, cost = self.rate_limit.hit, self.rate_tier, self.rate_cost
        key_for, denied, sleep = self._rate_key, self._rate_denied, self._sleep

        def rate_limited(*args: Any, **kwargs: Any) -> Any:
            key = key_for(args, kwargs)
            waited = 0.0
            while True:
                decision = hit(tier, key, cost)
                if decision.allowed:
                    return inner(*args, **kwargs)
                wait = denied(decision, key, waited)
                sleep(wait)
                waited += wait

        return rate_limited

    def _rate_stage_async(
        self, inner: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        assert self.rate_limit is not None
        ahit, tier, cost = self.rate_limit.ahit, self.rate_tier, self.rate_cost
        key_for, denied, async_sleep = self._rate_key, self._rate_denied, self._async_sleep

        async def rate_limited(*args: Any, **kwargs: Any) -> Any:
            key = key_for(args, kwargs)
            waited = 0.0
            while True:
                decision = await ahit(tier, key, cost)
                if decision.allowed:
                    return await inner(*args, **kwargs)
                wait = denied(decision, key, waited)
                await async_sleep(wait)
                waited += wait

        return rate_limited

    def _fallback_stage_sync(self, inner: Callable[..., Any]) -> Callable[..., Any]:
        fallback, report = self.fallback, self._report
        handled, wanted = self._fallback_rule()
        assert fallback is not None

        def with_fallback(*args: Any, **kwargs: Any) -> Any:
            try:
                return inner(*args, **kwargs)
            except handled as exc:
                if wanted is not None and not wanted(exc):
                    raise
                report("fallback", 0.0, exc)
                return fallback(exc, *args, **kwargs)

        return with_fallback

    def _fallback_stage_async(
        self, inner: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        fallback, report = self.fallback, self._report
        handled, wanted = self._fallback_rule()
        assert fallback is not None

        async def with_fallback(*args: Any, **kwargs: Any) -> Any:
            try:
                return await inner(*args, **kwargs)
            except handled as exc:
                if wanted is not None and not wanted(exc):
                    raise
                report("fallback", 0.0, exc)
                result = fallback(exc, *args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
                return result

        return with_fallback

    def _fallback_rule(
        self,
    ) -> tuple[tuple[type[BaseException], ...], Callable[[BaseException], bool] | None]:
        """``fallback_on`` as (classes to catch, predicate to consult or None)."""
        on = self.fallback_on
        if isinstance(on, tuple):
            return on, None
        return (Exception,), on

    # ------------------------------------------------------------- public API

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate ``fn`` (sync or async) with the whole pipeline."""
        check_callable("fn", fn)
        chain: Callable[..., Any]
        if is_coroutine_callable(fn):
            chain = self._build_async(fn)
            if chain is fn:  # no stage at all: still return a distinct function
                chain = _plain_async(fn)
        else:
            chain = self._build_sync(fn)
            if chain is fn:
                chain = _plain_sync(fn)
        # ``chain`` is a closure built for this decoration only: dress it as ``fn``.
        return update_wrapper(chain, fn)

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` through the pipeline (builds it for this call;
        decorate instead on hot paths)."""
        return self._build_sync(fn)(*args, **kwargs)  # type: ignore[no-any-return]

    async def call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await ``fn(*args, **kwargs)`` through the pipeline; see :meth:`call`."""
        return await self._build_async(fn)(*args, **kwargs)  # type: ignore[no-any-return]

    def stats(self) -> PolicyStats:
        """A frozen snapshot of the policy's counters and its components' stats."""
        with self._lock:
            counts = dict(self._counts)
        return PolicyStats(
            fallbacks=counts["fallbacks"],
            rate_limited=counts["rate_limited"],
            rate_waits=counts["rate_waits"],
            retry=None if self.retry is None else self.retry.stats(),
            bulkhead=None if self.bulkhead is None else self.bulkhead.stats(),
            timeout=None if self.timeout is None else self.timeout.stats(),
            hedge=None if self.hedge is None else self.hedge.stats(),
            adaptive=None if self.adaptive is None else self.adaptive.stats(),
            chaos=None if self.chaos is None else self.chaos.stats(),
        )

    def __repr__(self) -> str:
        stages = [
            name
            for name, present in (
                ("fallback", self.fallback is not None),
                ("retry", self.retry is not None),
                ("hedge", self.hedge is not None),
                ("breaker", self.breaker is not None),
                ("rate_limit", self.rate_limit is not None),
                ("bulkhead", self.bulkhead is not None),
                ("adaptive", self.adaptive is not None),
                ("timeout", self.timeout is not None),
                ("chaos", self.chaos is not None),
            )
            if present
        ]
        return f"Policy(name={self.name!r}, stages={' -> '.join(stages) or 'none'})"


def _plain_sync(fn: Callable[..., Any]) -> Callable[..., Any]:
    def plain(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return plain


def _plain_async(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def plain(*args: Any, **kwargs: Any) -> Any:
        return await fn(*args, **kwargs)

    return plain
