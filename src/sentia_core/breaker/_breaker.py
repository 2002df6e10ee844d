"""The public :class:`CircuitBreaker`: thin sync and async adapters over the core.

Every entry point (``call``, ``call_async``, the decorator, ``with`` and
``async with``) does the same three steps around the user's code: ask the
core for a decision, run the code with no lock held, report the outcome.
The decorated hot path is inlined (it is the one users pay for on every
call); everything it decides is still decided by the core.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast, overload

from sentia_core._clock import SYSTEM_CLOCK, Clock
from sentia_core._events import Event, Listeners
from sentia_core._validate import check_callable
from sentia_core.errors import CallRejectedError, CircuitOpenError, ConfigError

from ._config import BreakerConfig, ExceptionRule, ResultPredicate
from ._core import Admit, BreakerCore, Decision, Reject, StoreCall, Trial
from ._state import BreakerState, Trigger
from ._store import StateStore, StoreReply
from ._types import BreakerCallOutcome, BreakerMetrics

__all__ = ["CircuitBreaker"]

P = ParamSpec("P")
R = TypeVar("R")

_STATE_TEXT = {state: state.value for state in BreakerState}


class _Held:
    """One entered ``with`` block: a cons cell of the per-context stack."""

    __slots__ = ("breaker", "decision", "outer", "started")

    def __init__(
        self, breaker: CircuitBreaker, decision: Admit | Trial, started: float, outer: _Held | None
    ) -> None:
        self.breaker = breaker
        self.decision = decision
        self.started = started
        self.outer = outer


#: The ``with`` blocks entered in this thread / task, innermost first. A
#: ContextVar, so threads and asyncio tasks each see their own stack.
_ACTIVE: ContextVar[_Held | None] = ContextVar("sentia_breaker_active", default=None)


class CircuitBreaker:
    """A circuit breaker for sync and async calls (see ``docs/breaker.md``).

    Args:
        name: shown in errors, events and metrics; the key of shared state.
        failure_rate_threshold: open when ``failures / calls`` in the window
            reaches this (0 < x <= 1), once ``minimum_calls`` are in the window;
            None disables the rule.
        consecutive_failures: open after this many failures in a row; None disables.
        minimum_calls: calls the window must hold before the rate rules apply.
        window_type: ``"count"`` (the last ``window_size`` calls) or ``"time"``
            (calls completed in the last ``window_size`` seconds, one bucket per second).
        window_size: calls (count window) or seconds (time window), >= 1.
        slow_call_duration: seconds from which a call counts as slow; None disables.
        slow_call_rate_threshold: open when ``slow / calls`` reaches this (0 < x <= 1).
        reset_timeout: seconds to stay OPEN before admitting trial calls.
        reset_timeout_multiplier: >= 1; each consecutive trip multiplies the open
            duration by it (1 = constant), up to ``max_reset_timeout``.
        max_reset_timeout: cap of the grown open duration, seconds (default:
            600, or ``reset_timeout`` when that is longer; must be >= ``reset_timeout``).
        half_open_max_calls: concurrent trial calls allowed in HALF_OPEN.
        success_threshold: trial successes needed to close (default: ``half_open_max_calls``).
        half_open_timeout: seconds after which a trial permit whose call never
            reported back is reclaimed (default: ``reset_timeout``).
        record_exceptions: exception types or predicates that count as failures.
        ignore_exceptions: exception types or predicates that do not count at all
            (default: :class:`~sentia_core.errors.CallRejectedError` — a rate-limit
            denial, a full bulkhead or another breaker's rejection says nothing
            about this dependency's health)
            (checked first). Other exceptions count as successes (the dependency
            answered); other BaseExceptions (cancellation) are ignored.
        failure_predicate: ``fn(result) -> bool``; True makes a returned value a failure.
        fallback: called with the call's arguments instead of raising
            :class:`CircuitOpenError` when a decorated or ``call``-ed call is rejected.
        state_store: a :class:`StateStore` (e.g. :class:`RedisStateStore`) to share
            state across processes; None keeps it in-process.
        clock: the time source (``sentia_core.testing.ManualClock`` in tests).
        history_size: how many transitions :meth:`metrics` keeps.

    Raises:
        ConfigError: any invalid argument, naming it.
    """

    __slots__ = (
        "__weakref__",
        "_config",
        "_core",
        "_fallback",
        "_listeners",
        "_monotonic",
        "_store",
    )

    def __init__(
        self,
        name: str = "default",
        *,
        failure_rate_threshold: float | None = 0.5,
        consecutive_failures: int | None = 5,
        minimum_calls: int = 10,
        window_type: str = "count",
        window_size: int = 100,
        slow_call_duration: float | None = None,
        slow_call_rate_threshold: float = 1.0,
        reset_timeout: float = 60.0,
        reset_timeout_multiplier: float = 1.0,
        max_reset_timeout: float | None = None,
        half_open_max_calls: int = 1,
        success_threshold: int | None = None,
        half_open_timeout: float | None = None,
        record_exceptions: tuple[ExceptionRule, ...] | type[BaseException] = (Exception,),
        ignore_exceptions: tuple[ExceptionRule, ...] | type[BaseException] = (CallRejectedError,),
        failure_predicate: ResultPredicate | Callable[[Any], bool] | None = None,
        fallback: Callable[..., Any] | None = None,
        state_store: StateStore | None = None,
        clock: Clock = SYSTEM_CLOCK,
        history_size: int = 50,
    ) -> None:
        self._config = BreakerConfig.build(
            name,
            failure_rate_threshold=failure_rate_threshold,
            consecutive_failures=consecutive_failures,
            minimum_calls=minimum_calls,
            window_type=window_type,
            window_size=window_size,
            slow_call_duration=slow_call_duration,
            slow_call_rate_threshold=slow_call_rate_threshold,
            reset_timeout=reset_timeout,
            reset_timeout_multiplier=reset_timeout_multiplier,
            max_reset_timeout=max_reset_timeout,
            half_open_max_calls=half_open_max_calls,
            success_threshold=success_threshold,
            half_open_timeout=half_open_timeout,
            record_exceptions=record_exceptions,
            ignore_exceptions=ignore_exceptions,
            failure_predicate=failure_predicate,
            history_size=history_size,
        )
        self._fallback = None if fallback is None else check_callable("fallback", fallback)
        if not callable(getattr(clock, "monotonic", None)) or not callable(
            getattr(clock, "time", None)
        ):
            raise ConfigError("clock", clock, "must have monotonic() and time() methods")
        if state_store is not None and not isinstance(state_store, StateStore):
            raise ConfigError(
                "state_store", state_store, "must be a StateStore such as RedisStateStore"
            )
        self._store: StateStore | None = state_store
        self._monotonic = clock.monotonic
        self._listeners: Listeners[Event] = Listeners()
        self._core = BreakerCore(self._config, clock, self._listeners, state_store)

    # -- introspection -------------------------------------------------------

    @property
    def name(self) -> str:
        """The breaker's name."""
        return self._config.name

    @property
    def config(self) -> BreakerConfig:
        """The validated configuration (read-only)."""
        return self._config

    @property
    def state(self) -> BreakerState:
        """The current state; an OPEN breaker whose timeout has passed reports
        (and moves to) HALF_OPEN."""
        return self._core.poll(self._monotonic())

    def metrics(self) -> BreakerMetrics:
        """A frozen snapshot of state, window counts, rates, counters and history.

        With a state store, a mirror not refreshed for the store's
        ``sync_interval`` is read from the store first, so a breaker opened
        (or reset) by another process shows here without a local call.
        """
        now = self._monotonic()
        call = self._core.refresh_due(now)
        if call is not None and getattr(self._store, "synchronous", True):
            self._core.after_store(call, self._run_store(call), now)
        return self._core.metrics(now)

    stats = metrics

    def add_listener(
        self, listener: Callable[[Event], object], *, outcomes: bool = True
    ) -> Callable[[], None]:
        """Subscribe to :class:`BreakerStateChanged` and :class:`BreakerCallOutcome` events.

        Listeners run in the thread that caused the event, after the breaker's
        lock is released; one that raises is logged and counted, never propagated.

        Args:
            listener: receives the events.
            outcomes: False to receive state changes only. A listener for
                per-call outcomes puts every call on the breaker's slower,
                measured path; one without them costs a call nothing (the
                facade subscribes the monitor this way and reads per-call
                counts from :meth:`metrics` instead).

        Returns:
            A function that unsubscribes ``listener``.
        """
        fn = listener
        if not outcomes:

            def fn(event: Event) -> object:
                if event.__class__ is BreakerCallOutcome:
                    return None
                return listener(event)

        remove = self._listeners.add(fn)
        delta = 1 if outcomes else 0
        self._core.listeners_changed(delta)
        removed = False

        def unsubscribe() -> None:
            nonlocal removed
            if removed:
                return
            removed = True
            remove()
            self._core.listeners_changed(-delta)

        return unsubscribe

    # -- manual control ------------------------------------------------------

    def _manual(self, trigger: Trigger) -> None:
        call = self._core.manual(trigger, f"{trigger.value}()")
        if call is not None:
            self._core.after_store(call, self._run_store(call), self._monotonic())

    def force_open(self) -> None:
        """Reject every call until :meth:`reset` (or :meth:`disable`).

        With a state store this applies to every process sharing the breaker
        (a synchronous store operation; best effort if the store is down).
        """
        self._manual(Trigger.FORCE_OPEN)

    def disable(self) -> None:
        """Let every call through and record nothing until :meth:`reset` (or
        :meth:`force_open`); shared like :meth:`force_open`."""
        self._manual(Trigger.DISABLE)

    def reset(self) -> None:
        """Go to CLOSED with an empty window and the reset timeout back at its
        base; shared like :meth:`force_open`."""
        self._manual(Trigger.RESET)

    # -- the state store -------------------------------------------------------

    def _run_store(self, call: StoreCall) -> StoreReply | BaseException:
        """Run a store operation; its error is returned, never raised."""
        assert self._store is not None
        try:
            return self._store.execute(self._config, call.request)
        except Exception as exc:
            return exc

    async def _run_store_async(self, call: StoreCall) -> StoreReply | BaseException:
        assert self._store is not None
        try:
            return await self._store.execute_async(self._config, call.request)
        except Exception as exc:
            return exc

    def _admit(self, now: float) -> Decision:
        decision = self._core.acquire(now)
        if decision.__class__ is StoreCall:
            assert isinstance(decision, StoreCall)
            return self._core.after_store(decision, self._run_store(decision), now)
        return decision  # type: ignore[return-value]

    async def _admit_async(self, now: float) -> Decision:
        decision = self._core.acquire(now)
        if decision.__class__ is StoreCall:
            assert isinstance(decision, StoreCall)
            return self._core.after_store(decision, await self._run_store_async(decision), now)
        return decision  # type: ignore[return-value]

    # -- calls ---------------------------------------------------------------

    def _rejected(self, decision: Reject, now: float) -> CircuitOpenError:
        return CircuitOpenError(
            self._config.name, decision.retry_after(now), _STATE_TEXT[decision.state]
        )

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn(*args, **kwargs)`` through the breaker.

        Returns:
            What ``fn`` returns (or what ``fallback`` returns when rejected).

        Raises:
            CircuitOpenError: the breaker rejected the call and there is no fallback.
            Whatever ``fn`` raises.
        """
        core = self._core
        token = core.fast
        if token is None:
            return self._call_slow(fn, args, kwargs)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            core.fast_exception(token, exc)
            raise
        if not core.window.clean:
            core.fast_result(token, result)
        return result

    def _call_slow(self, fn: Callable[..., R], args: Any, kwargs: Any) -> R:
        core = self._core
        monotonic = self._monotonic
        now = monotonic()
        asked = core.acquire(now)
        if asked.__class__ is StoreCall:
            assert isinstance(asked, StoreCall)
            asked = core.after_store(asked, self._run_store(asked), now)
        decision = cast(Decision, asked)
        if decision.__class__ is Reject:
            assert isinstance(decision, Reject)
            if self._fallback is not None:
                return cast(R, self._fallback(*args, **kwargs))
            raise self._rejected(decision, now)
        assert not isinstance(decision, Reject)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            end = monotonic()
            call = core.completed_with_exception(decision, exc, end - now, end)
            if call is not None:
                core.after_store(call, self._run_store(call), end)
            raise
        end = monotonic()
        call = core.completed_with_result(decision, result, end - now, end)
        if call is not None:
            core.after_store(call, self._run_store(call), end)
        return result

    async def call_async(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Await ``fn(*args, **kwargs)`` through the breaker.

        Cancellation (``asyncio.CancelledError``) releases a half-open trial
        permit and does not count as a failure.

        Returns:
            What ``fn`` returns (or what ``fallback`` returns when rejected; an
            awaitable fallback result is awaited).

        Raises:
            CircuitOpenError: the breaker rejected the call and there is no fallback.
            Whatever ``fn`` raises.
        """
        core = self._core
        token = core.fast
        if token is None:
            return await self._call_async_slow(fn, args, kwargs)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            core.fast_exception(token, exc)
            raise
        if not core.window.clean:
            core.fast_result(token, result)
        return result

    async def _call_async_slow(self, fn: Callable[..., Awaitable[R]], args: Any, kwargs: Any) -> R:
        core = self._core
        monotonic = self._monotonic
        now = monotonic()
        decision = await self._admit_async(now)
        if decision.__class__ is Reject:
            assert isinstance(decision, Reject)
            if self._fallback is not None:
                fallback_result = self._fallback(*args, **kwargs)
                if inspect.isawaitable(fallback_result):
                    fallback_result = await fallback_result
                return cast(R, fallback_result)
            raise self._rejected(decision, now)
        assert not isinstance(decision, Reject)
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            end = monotonic()
            call = core.completed_with_exception(decision, exc, end - now, end)
            if call is not None:
                core.after_store(call, await self._run_store_async(call), end)
            raise
        end = monotonic()
        call = core.completed_with_result(decision, result, end - now, end)
        if call is not None:
            core.after_store(call, await self._run_store_async(call), end)
        return result

    # -- decorator -----------------------------------------------------------

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate a function or a coroutine function (detected once, here)."""
        check_callable("fn", fn)
        core = self._core
        window = core.window
        if inspect.iscoroutinefunction(fn):
            call_async_slow = self._call_async_slow

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                token = core.fast
                if token is None:
                    return await call_async_slow(fn, args, kwargs)
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    core.fast_exception(token, exc)
                    raise
                if not window.clean:
                    core.fast_result(token, result)
                return result

            return async_wrapper

        call_slow = self._call_slow

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            token = core.fast
            if token is None:
                return call_slow(fn, args, kwargs)
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                core.fast_exception(token, exc)
                raise
            if not window.clean:
                core.fast_result(token, result)
            return result

        return wrapper

    # -- context managers ----------------------------------------------------

    def _push(self, decision: Decision, now: float) -> None:
        if decision.__class__ is Reject:
            assert isinstance(decision, Reject)
            raise self._rejected(decision, now)
        assert not isinstance(decision, Reject)
        _ACTIVE.set(_Held(self, decision, now, _ACTIVE.get()))

    def _pop(self, exc: BaseException | None) -> tuple[StoreCall | None, float]:
        top = _ACTIVE.get()
        if top is None:
            return None, 0.0  # __exit__ without __enter__ in this context: nothing to report
        if top.breaker is self:
            held = top
            _ACTIVE.set(top.outer)
        else:  # exits out of order (two breakers' blocks interleaved by hand): unlink ours
            path: list[_Held] = []
            node: _Held | None = top
            while node is not None and node.breaker is not self:
                path.append(node)
                node = node.outer
            if node is None:
                return None, 0.0
            held = node
            rebuilt = node.outer
            for cell in reversed(path):
                rebuilt = _Held(cell.breaker, cell.decision, cell.started, rebuilt)
            _ACTIVE.set(rebuilt)
        end = self._monotonic()
        duration = end - held.started
        if exc is None:
            return self._core.complete(held.decision, 0, duration, end), end
        return self._core.completed_with_exception(held.decision, exc, duration, end), end

    def __enter__(self) -> CircuitBreaker:
        """Guard a block: raises :class:`CircuitOpenError` before the body runs when open."""
        now = self._monotonic()
        self._push(self._admit(now), now)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        call, end = self._pop(exc)
        if call is not None:
            self._core.after_store(call, self._run_store(call), end)

    async def __aenter__(self) -> CircuitBreaker:
        """Guard an async block: raises :class:`CircuitOpenError` before the body runs."""
        now = self._monotonic()
        self._push(await self._admit_async(now), now)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        call, end = self._pop(exc)
        if call is not None:
            self._core.after_store(call, await self._run_store_async(call), end)

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self._config.name!r}, state={self._core.state.value!r})"
