"""Retry: one decision core, two thin loops (sync and async).

Theory of operation (after tenacity's ``BaseRetrying.iter()``, without its
per-call state object):

* The **happy path** is inlined in the wrapper the decorator builds: count the
  call, deposit into the budget if there is one, read the clock only if
  ``max_time`` is set, call, return. No allocation, no lock, no event unless
  someone listens.
* On the first failure (an exception, or a result ``on_result`` rejects) the
  wrapper hands over to a loop, ``_run_sync`` or ``_run_async``. The loops only
  do I/O (call, sleep); every decision comes from :meth:`Retry.decide`, which
  returns a :class:`RetryDecision`: *retry after d seconds* or *stop* (with
  the reason). Stopping re-raises the last error, or returns the last result.
* The order of checks in :meth:`Retry.decide` is the contract: an open circuit
  stops at once; a non-retryable error stops; running out of attempts stops;
  then the delay is chosen (the server's ``retry_after`` hint, capped, or the
  back-off strategy); a delay that would end past ``max_time`` or past the
  context's deadline stops without sleeping; finally the shared budget must
  grant a token (it is asked last so that a stop for another reason costs no
  token).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import random
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from functools import update_wrapper
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from sentia_core._clock import SYSTEM_CLOCK, Clock
from sentia_core._events import Event, Listeners
from sentia_core._validate import (
    check_callable,
    check_int,
    check_name,
    check_non_negative,
    check_optional_positive,
)
from sentia_core.errors import CircuitOpenError, ConfigError

from ._backoff import Backoff, ExponentialBackoff, FixedBackoff
from ._budget import RetryBudgetLike
from ._counter import Counter
from ._deadline import _DEADLINE
from ._retry_after import hint_seconds, retry_after_attribute

__all__ = [
    "Attempt",
    "Retry",
    "RetryDecision",
    "RetryEvent",
    "RetryStats",
    "is_coroutine_callable",
    "retry",
]

P = ParamSpec("P")
T = TypeVar("T")

ExceptionTypes = type[BaseException] | tuple[type[BaseException], ...]
RetryOn = ExceptionTypes | Callable[[BaseException], bool]


def is_coroutine_callable(fn: object) -> bool:
    """True for ``async def`` functions (also behind partials and ``__call__``)."""
    if inspect.iscoroutinefunction(fn):
        return True
    method = type(fn).__dict__.get("__call__")  # an object with ``async def __call__``
    return method is not None and inspect.iscoroutinefunction(method)


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """What to do after a failed attempt.

    Attributes:
        retry: True to try again after ``delay``; False to stop.
        delay: seconds to wait before the next attempt (0.0 when stopping).
        reason: why. When retrying: ``"backoff"`` or ``"retry_after"`` (the
            source of the delay). When stopping: ``"not_retryable"``,
            ``"attempts"``, ``"max_time"``, ``"deadline"``, ``"budget"`` or
            ``"circuit_open"``.
    """

    retry: bool
    delay: float
    reason: str


_STOP_CIRCUIT_OPEN = RetryDecision(False, 0.0, "circuit_open")
_STOP_NOT_RETRYABLE = RetryDecision(False, 0.0, "not_retryable")
_STOP_ATTEMPTS = RetryDecision(False, 0.0, "attempts")
_STOP_MAX_TIME = RetryDecision(False, 0.0, "max_time")
_STOP_DEADLINE = RetryDecision(False, 0.0, "deadline")
_STOP_BUDGET = RetryDecision(False, 0.0, "budget")


@dataclass(frozen=True, slots=True)
class RetryEvent(Event):
    """One attempt's outcome, sent to the listeners of :meth:`Retry.add_listener`.

    Attributes:
        retry: the Retry's name.
        attempt: the attempt number (1-based).
        outcome: ``"success"``, ``"retry"`` (it failed and another attempt
            follows after ``delay``) or ``"give_up"`` (it failed and the error
            or result goes to the caller).
        reason: the :class:`RetryDecision` reason ("" for a success).
        delay: seconds until the next attempt (0.0 unless ``outcome == "retry"``).
        error: the attempt's exception, or None (a success, or a result that
            ``on_result`` rejected).
    """

    retry: str
    attempt: int
    outcome: str
    reason: str
    delay: float
    error: BaseException | None


@dataclass(frozen=True, slots=True)
class RetryStats:
    """A snapshot of a :class:`Retry`'s counters (since creation).

    Attributes:
        calls: calls made through this Retry (first attempts).
        retries: retries performed (attempts after the first).
        recovered: calls that failed at first and then succeeded.
        not_retryable: calls that failed with an error ``on`` does not match.
        gave_up_attempts: calls that failed on their last allowed attempt.
        gave_up_max_time: calls stopped because the next delay would pass ``max_time``.
        gave_up_deadline: calls stopped because the next delay would pass the
            context deadline (see :func:`remaining_time`).
        gave_up_budget: calls stopped because the retry budget was empty.
        gave_up_circuit_open: calls stopped by a ``CircuitOpenError``.
    """

    calls: int
    retries: int
    recovered: int
    not_retryable: int
    gave_up_attempts: int
    gave_up_max_time: int
    gave_up_deadline: int
    gave_up_budget: int
    gave_up_circuit_open: int


def _classify_on(on: object) -> tuple[tuple[type[BaseException], ...] | None, Any]:
    """``on=`` as (exception types, None) or (None, predicate); ConfigError otherwise."""
    if isinstance(on, type) and issubclass(on, BaseException):
        return (on,), None
    if isinstance(on, tuple):
        if on and all(isinstance(t, type) and issubclass(t, BaseException) for t in on):
            return on, None
        raise ConfigError("on", on, "a tuple must hold exception classes (and not be empty)")
    if callable(on):
        return None, on
    raise ConfigError("on", on, "expected an exception class, a tuple of them, or a predicate")


class Attempt:
    """One attempt of a retried block; use it as ``with attempt:`` (see :meth:`Retry.attempts`).

    Attributes:
        number: the attempt number (1-based).
    """

    __slots__ = ("_delay", "_ok", "_retry", "_started", "number")

    def __init__(self, retry: Retry, number: int, started: float) -> None:
        self._retry = retry
        self._started = started
        self._delay: float | None = None
        self._ok = False
        self.number = number

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None:
            self._ok = True
            self._retry._succeeded(self.number)
            return False
        if not isinstance(exc, Exception):
            return False  # cancellation, KeyboardInterrupt: never retried
        decision = self._retry._step(self.number, exc, None, self._started)
        if not decision.retry:
            return False  # the error propagates out of the ``with`` block
        self._delay = decision.delay
        return True

    def __repr__(self) -> str:
        return f"Attempt(number={self.number})"


class Retry:
    """Retries a callable on failure, with back-off, a time limit and a shared budget.

    Use it as a decorator (``@Retry(...)`` on ``def`` or ``async def``), call
    through it (:meth:`call`, :meth:`call_async`), or retry a block
    (:meth:`attempts`, :meth:`attempts_async`). One ``Retry`` may serve many
    functions and threads; its stats and events cover them all.

    Args:
        attempts: the total number of attempts, first included (>= 1; default
            3). ``None`` means no limit, which requires ``max_time``.
        on: which errors to retry: an exception class, a tuple of them, or a
            predicate ``(exc) -> bool``. Default ``Exception``; narrow it to
            the errors that are worth retrying. ``CircuitOpenError`` is never
            retried, and neither are ``BaseException``s such as cancellation.
        on_result: a predicate ``(result) -> bool``; True means "this result is
            a failure, retry". When attempts run out the last result is returned.
        max_time: the total time budget in seconds, measured from the start of
            the first attempt (sleeps included). A retry whose delay would end
            past it is not started. Default None (no limit).
        backoff: a :class:`Backoff` strategy, or a number of seconds for a fixed
            delay. Default ``ExponentialBackoff()`` (0.1 s doubling up to 10 s,
            full jitter).
        retry_after: True (default) to honour a ``retry_after`` attribute (in
            seconds, or a ``timedelta``) on the exception or result as the next
            delay; False to ignore it; or a callable ``(exc_or_result) ->
            seconds | None`` to read the hint yourself (e.g. from an HTTP
            header with :func:`parse_retry_after`).
        max_retry_after: the cap on a server's hint, in seconds (default 60).
        budget: a :class:`RetryBudget` (or anything with ``deposit()`` and
            ``try_withdraw()``) shared by many retries; when it is empty the
            error surfaces at once.
        name: shown in events and ``repr``.
        clock: time source for ``max_time`` and event timestamps.
        rng: the random source for jitter (default: a fresh ``random.Random``).
        sleep: blocks for the delay in the sync loop (default ``clock.sleep``).
        async_sleep: awaits the delay in the async loop (default ``clock.async_sleep``).

    Raises:
        ConfigError: naming the offending parameter.
    """

    __slots__ = (
        "_async_sleep",
        "_attempts",
        "_backoff",
        "_budget",
        "_calls",
        "_clock",
        "_counts",
        "_hint",
        "_listeners",
        "_listening",
        "_lock",
        "_max_retry_after",
        "_max_time",
        "_monotonic",
        "_on_pred",
        "_on_result",
        "_on_types",
        "_rng",
        "_sleep",
        "name",
    )

    def __init__(
        self,
        *,
        attempts: int | None = 3,
        on: RetryOn = Exception,
        on_result: Callable[[Any], bool] | None = None,
        max_time: float | None = None,
        backoff: Backoff | float | None = None,
        retry_after: bool | Callable[[object], float | None] = True,
        max_retry_after: float = 60.0,
        budget: RetryBudgetLike | None = None,
        name: str = "retry",
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        sleep: Callable[[float], object] | None = None,
        async_sleep: Callable[[float], Awaitable[object]] | None = None,
    ) -> None:
        self._max_time = check_optional_positive("max_time", max_time)
        if attempts is None:
            if self._max_time is None:
                raise ConfigError("attempts", attempts, "unlimited attempts need max_time")
            self._attempts: int | None = None
        else:
            self._attempts = check_int("attempts", attempts, minimum=1)
        self._on_types, self._on_pred = _classify_on(on)
        self._on_result = None if on_result is None else check_callable("on_result", on_result)
        if backoff is None:
            self._backoff: Backoff = ExponentialBackoff()
        elif isinstance(backoff, (int, float)) and not isinstance(backoff, bool):
            self._backoff = FixedBackoff(check_non_negative("backoff", backoff))
        elif callable(backoff):
            self._backoff = backoff
        else:
            raise ConfigError("backoff", backoff, "expected a Backoff strategy or seconds")
        if retry_after is True:
            self._hint: Callable[[object], float | None] | None = retry_after_attribute
        elif retry_after is False or retry_after is None:
            self._hint = None
        elif callable(retry_after):
            self._hint = retry_after
        else:
            raise ConfigError("retry_after", retry_after, "expected a bool or a callable")
        self._max_retry_after = check_non_negative(
            "max_retry_after", max_retry_after, allow_inf=True
        )
        if budget is not None and not isinstance(budget, RetryBudgetLike):
            raise ConfigError("budget", budget, "needs deposit() and try_withdraw()")
        self._budget = budget
        self.name = check_name("name", name)
        if not isinstance(clock, Clock):
            raise ConfigError("clock", clock, "expected a Clock (monotonic, time, sleep)")
        self._clock = clock
        self._monotonic = clock.monotonic
        if rng is None:
            rng = random.Random()
        elif not callable(getattr(rng, "random", None)):
            raise ConfigError("rng", rng, "expected a random.Random")
        self._rng = rng
        if sleep is not None:
            check_callable("sleep", sleep)
        if async_sleep is not None:
            check_callable("async_sleep", async_sleep)
        self._sleep: Callable[[float], object] = clock.sleep if sleep is None else sleep
        self._async_sleep: Callable[[float], Awaitable[object]] = (
            clock.async_sleep if async_sleep is None else async_sleep
        )
        self._calls = Counter()
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(
            (
                "retries",
                "recovered",
                "not_retryable",
                "attempts",
                "max_time",
                "deadline",
                "budget",
                "circuit_open",
            ),
            0,
        )
        self._listeners: Listeners[RetryEvent] = Listeners()
        # A plain bool mirrors ``bool(self._listeners)`` for the happy path, where
        # calling ``Listeners.__bool__`` would cost more than the rest of the wrapper.
        self._listening = False

    def add_listener(self, listener: Callable[[RetryEvent], object]) -> Callable[[], None]:
        """Subscribe to :class:`RetryEvent` s (one per attempt); returns an unsubscribe function."""
        remove = self._listeners.add(listener)
        self._listening = True

        def unsubscribe() -> None:
            remove()
            self._listening = bool(self._listeners)

        return unsubscribe

    # ------------------------------------------------------------------ core

    def is_retryable(self, error: BaseException) -> bool:
        """Whether ``on=`` matches ``error`` (``CircuitOpenError`` never does)."""
        if isinstance(error, CircuitOpenError) or not isinstance(error, Exception):
            return False
        if self._on_types is not None:
            return isinstance(error, self._on_types)
        try:
            return bool(self._on_pred(error))
        except Exception:  # a broken predicate must not hide the caller's error
            return False

    def decide(
        self,
        attempt: int,
        error: BaseException | None,
        result: object,
        started: float,
        now: float,
    ) -> RetryDecision:
        """The decision after attempt number ``attempt`` failed.

        Pure except for two inputs it draws: jitter from ``rng`` and a token
        from the budget (asked last, only when everything else says retry).

        Args:
            attempt: the number of the attempt that just failed (1-based).
            error: its exception, or None when ``on_result`` rejected ``result``.
            result: the rejected result (ignored when ``error`` is given).
            started: the clock reading when the first attempt started (used
                only with ``max_time``).
            now: the clock reading now.

        Returns:
            A :class:`RetryDecision`.
        """
        if error is not None:
            if isinstance(error, CircuitOpenError):
                return _STOP_CIRCUIT_OPEN
            if not self.is_retryable(error):
                return _STOP_NOT_RETRYABLE
            outcome: object = error
        else:
            outcome = result
        if self._attempts is not None and attempt >= self._attempts:
            return _STOP_ATTEMPTS
        hint = None if self._hint is None else self._read_hint(outcome)
        if hint is not None:
            delay = hint if hint < self._max_retry_after else self._max_retry_after
            reason = "retry_after"
        else:
            delay = self._backoff(attempt, self._rng)
            if not 0.0 <= delay < math.inf:  # a custom strategy broke the contract
                delay = 0.0 if not delay > 0.0 else self._max_retry_after
            reason = "backoff"
        if self._max_time is not None and (now - started) + delay > self._max_time:
            return _STOP_MAX_TIME
        context_deadline = _DEADLINE.get()
        if context_deadline is not None and delay >= context_deadline.remaining():
            return _STOP_DEADLINE
        if self._budget is not None and not self._budget.try_withdraw():
            return _STOP_BUDGET
        return RetryDecision(True, delay, reason)

    def _read_hint(self, outcome: object) -> float | None:
        """The hint reader's answer as sane seconds; a reader that raises means no hint."""
        assert self._hint is not None
        try:
            return hint_seconds(self._hint(outcome))
        except Exception:
            return None

    def _step(
        self, attempt: int, error: BaseException | None, result: object, started: float
    ) -> RetryDecision:
        """Decide, count and report; shared by both loops and by :class:`Attempt`."""
        decision = self.decide(attempt, error, result, started, self._monotonic())
        key = "retries" if decision.retry else decision.reason
        with self._lock:
            self._counts[key] += 1
        if self._listeners:
            self._listeners.emit(
                RetryEvent(
                    source=f"retry:{self.name}",
                    at=self._clock.time(),
                    retry=self.name,
                    attempt=attempt,
                    outcome="retry" if decision.retry else "give_up",
                    reason=decision.reason,
                    delay=decision.delay,
                    error=error,
                )
            )
        return decision

    def _succeeded(self, attempt: int) -> None:
        """Count a success after retries; report any success to listeners."""
        if attempt > 1:
            with self._lock:
                self._counts["recovered"] += 1
        if self._listeners:
            self._listeners.emit(
                RetryEvent(
                    source=f"retry:{self.name}",
                    at=self._clock.time(),
                    retry=self.name,
                    attempt=attempt,
                    outcome="success",
                    reason="",
                    delay=0.0,
                    error=None,
                )
            )

    def _begin(self) -> float:
        """Per-call bookkeeping for the slow entry points; returns the start time."""
        self._calls.incr()
        if self._budget is not None:
            self._budget.deposit()
        return self._monotonic() if self._max_time is not None else 0.0

    # ------------------------------------------------------------------ loops

    def _run_sync(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        error: BaseException | None,
        result: Any,
        started: float,
    ) -> Any:
        """Attempts 2..n of a sync call; attempt 1 already failed."""
        attempt = 1
        on_result = self._on_result
        while True:
            decision = self._step(attempt, error, result, started)
            if not decision.retry:
                if error is None:
                    return result
                try:
                    raise error
                finally:
                    error = None
            if decision.delay > 0.0:
                self._sleep(decision.delay)
            attempt += 1
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                error = exc
                continue
            error = None
            if on_result is None or not on_result(result):
                self._succeeded(attempt)
                return result

    async def _run_async(
        self,
        fn: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        error: BaseException | None,
        result: Any,
        started: float,
    ) -> Any:
        """Attempts 2..n of an async call; attempt 1 already failed."""
        attempt = 1
        on_result = self._on_result
        while True:
            decision = self._step(attempt, error, result, started)
            if not decision.retry:
                if error is None:
                    return result
                try:
                    raise error
                finally:
                    error = None
            if decision.delay > 0.0:
                await self._async_sleep(decision.delay)
            attempt += 1
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:
                error = exc
                continue
            error = None
            if on_result is None or not on_result(result):
                self._succeeded(attempt)
                return result

    # -------------------------------------------------------------- wrappers

    def _wrap_sync(self, fn: Callable[P, T]) -> Callable[P, T]:
        """``fn`` with retries; the happy path is inlined here on purpose."""
        count = self._calls.incr
        deposit = None if self._budget is None else self._budget.deposit
        monotonic = self._monotonic if self._max_time is not None else None
        on_result = self._on_result
        this = self
        succeeded = self._succeeded
        run = self._run_sync

        def retrying(*args: P.args, **kwargs: P.kwargs) -> T:
            count()
            if deposit is not None:
                deposit()
            started = 0.0 if monotonic is None else monotonic()
            error: BaseException | None
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                error = exc
            else:
                if on_result is None or not on_result(result):
                    if this._listening:
                        succeeded(1)
                    return result
                error = None
            try:
                # ``result`` is unbound after an exception: only read it when there was none.
                outcome = None if error is not None else result
                return run(fn, args, kwargs, error=error, result=outcome, started=started)  # type: ignore[no-any-return]
            finally:
                error = None

        return retrying

    def _wrap_async(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        """The async twin of :meth:`_wrap_sync`."""
        count = self._calls.incr
        deposit = None if self._budget is None else self._budget.deposit
        monotonic = self._monotonic if self._max_time is not None else None
        on_result = self._on_result
        this = self
        succeeded = self._succeeded
        run = self._run_async

        async def retrying(*args: P.args, **kwargs: P.kwargs) -> T:
            count()
            if deposit is not None:
                deposit()
            started = 0.0 if monotonic is None else monotonic()
            error: BaseException | None
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:
                error = exc
            else:
                if on_result is None or not on_result(result):
                    if this._listening:
                        succeeded(1)
                    return result
                error = None
            try:
                # ``result`` is unbound after an exception: only read it when there was none.
                outcome = None if error is not None else result
                return await run(fn, args, kwargs, error=error, result=outcome, started=started)  # type: ignore[no-any-return]
            finally:
                error = None

        return retrying

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate ``fn`` (sync or async) so that it is retried by this policy."""
        check_callable("fn", fn)
        wrapper: Callable[P, Any] = (
            self._wrap_async(fn) if is_coroutine_callable(fn) else self._wrap_sync(fn)
        )
        with contextlib.suppress(AttributeError):  # exotic callables without __dict__
            update_wrapper(wrapper, fn)
        return wrapper

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)`` with retries (sync).

        Returns:
            What ``fn`` returns (the last result if ``on_result`` kept rejecting).

        Raises:
            The last attempt's exception when retrying stops.
        """
        return self._wrap_sync(fn)(*args, **kwargs)

    async def call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await ``fn(*args, **kwargs)`` with retries (async); see :meth:`call`."""
        return await self._wrap_async(fn)(*args, **kwargs)

    def attempts(self) -> Iterator[Attempt]:
        """Retry a block of code (sync)::

            for attempt in Retry(attempts=3, on=ConnectionError).attempts():
                with attempt:
                    do_something()

        A retryable error inside ``with attempt:`` is swallowed and the loop
        sleeps and goes round again; when retrying stops the error propagates
        out of the ``with`` block. A block that completes ends the loop.
        """
        started = self._begin()
        number = 1
        while True:
            attempt = Attempt(self, number, started)
            yield attempt
            if attempt._delay is None:  # it succeeded, or the error propagated
                return
            if attempt._delay > 0.0:
                self._sleep(attempt._delay)
            number += 1

    async def attempts_async(self) -> AsyncIterator[Attempt]:
        """The async twin of :meth:`attempts`: ``async for attempt in r.attempts_async():``."""
        started = self._begin()
        number = 1
        while True:
            attempt = Attempt(self, number, started)
            yield attempt
            if attempt._delay is None:  # it succeeded, or the error propagated
                return
            if attempt._delay > 0.0:
                await self._async_sleep(attempt._delay)
            number += 1

    # ------------------------------------------------------------- reporting

    def stats(self) -> RetryStats:
        """A frozen snapshot of the counters."""
        calls = self._calls.value()
        with self._lock:
            c = dict(self._counts)
        return RetryStats(
            calls=calls,
            retries=c["retries"],
            recovered=c["recovered"],
            not_retryable=c["not_retryable"],
            gave_up_attempts=c["attempts"],
            gave_up_max_time=c["max_time"],
            gave_up_deadline=c["deadline"],
            gave_up_budget=c["budget"],
            gave_up_circuit_open=c["circuit_open"],
        )

    def __repr__(self) -> str:
        return (
            f"Retry(name={self.name!r}, attempts={self._attempts!r}, "
            f"max_time={self._max_time!r}, backoff={self._backoff!r})"
        )


@overload
def retry(fn: Callable[P, T], /) -> Callable[P, T]: ...


@overload
def retry(
    fn: None = None,
    /,
    *,
    attempts: int | None = ...,
    on: RetryOn = ...,
    on_result: Callable[[Any], bool] | None = ...,
    max_time: float | None = ...,
    backoff: Backoff | float | None = ...,
    retry_after: bool | Callable[[object], float | None] = ...,
    max_retry_after: float = ...,
    budget: RetryBudgetLike | None = ...,
    name: str = ...,
    clock: Clock = ...,
    rng: random.Random | None = ...,
    sleep: Callable[[float], object] | None = ...,
    async_sleep: Callable[[float], Awaitable[object]] | None = ...,
) -> Retry: ...


def retry(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Decorator form of :class:`Retry`: ``@retry`` or ``@retry(attempts=5, on=...)``.

    Takes the same keyword arguments as :class:`Retry` and returns a
    :class:`Retry` (itself a decorator). Used bare, it retries with the
    defaults.

    Raises:
        ConfigError: naming the offending parameter.
    """
    policy = Retry(**options)
    if fn is None:
        return policy
    return policy(fn)
