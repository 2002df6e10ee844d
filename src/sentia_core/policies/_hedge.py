"""Hedge: when an attempt is slow, start another; the first acceptable result wins.

Theory of operation. One call is a small race run by :class:`_HedgeRun`, the
pure decision core; the sync and async adapters only launch attempts, wait
and report what finished:

* the adapter launches attempt 1 and waits at most :meth:`_HedgeRun.wait_for`
  seconds (the hedge delay) for an outcome;
* nothing finished in time: :meth:`_HedgeRun.on_timer` says whether to launch
  another attempt now (attempts left and a token from the retry budget) or to
  stop hedging and just wait;
* an attempt finished: :meth:`_HedgeRun.on_outcome` classifies it. An
  acceptable result (no error, ``on_result`` does not reject it) **wins**; an
  error ``on`` does not handle is **final** (it propagates, as it would
  without hedging); a handled failure launches the next attempt at once when
  one is left (Polly v8's "fallback mode"), else the call waits for the
  attempts still running, and the last failure is final when none is.

When the race ends the attempts still running lose: asyncio tasks are
cancelled; threads cannot be, so their attempts are *abandoned* (their
results discarded) and counted while they run. Attempt 1's duration feeds the
latency window that a quantile delay (``delay="p95"``) reads; when another
attempt won, attempt 1 is recorded as lasting at least until then (a lower
bound, which keeps the delay from drifting up with a dependency's outliers).

An attempt learns which one it is through :func:`current_hedge_attempt`: its
number and a set shared by the attempts of one call (``avoid``), which
``ServiceRegistry.call(..., avoid=...)`` fills with the instances already
chosen so that a hedge goes to another instance.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import queue
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, ParamSpec, Protocol, TypeVar, overload, runtime_checkable

from sentia_core._clock import SYSTEM_CLOCK, Clock
from sentia_core._events import Event, Listeners
from sentia_core._validate import check_callable, check_int, check_name, check_non_negative
from sentia_core.errors import ConfigError

from ._budget import RetryBudgetLike
from ._counter import Counter
from ._retry import RetryOn, _classify_on
from ._wrap import decorate

__all__ = [
    "Hedge",
    "HedgeAttempt",
    "HedgeEvent",
    "HedgeStats",
    "LatencySource",
    "LatencyWindow",
    "current_hedge_attempt",
]

P = ParamSpec("P")
T = TypeVar("T")


# ------------------------------------------------------------------ latency


@runtime_checkable
class LatencySource(Protocol):
    """Where a quantile delay comes from (:class:`LatencyWindow` is the default)."""

    def observe(self, seconds: float) -> object:
        """Record one attempt's duration."""
        ...

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile (0 < q < 1) in seconds, or None while too few samples."""
        ...


class LatencyWindow:
    """The last ``size`` durations in a ring; quantiles recomputed every ``refresh`` samples.

    A tiny streaming estimator: reading a quantile costs a dict lookup; every
    ``refresh`` observations the window is sorted once (``size`` log ``size``).

    Args:
        size: durations kept (>= 1; default 512).
        refresh: observations between two recomputations (>= 1; default 32).
        min_samples: fewer observations than this answer None (>= 1; default 32).

    Raises:
        ConfigError: naming the offending parameter.
    """

    __slots__ = ("_cache", "_lock", "_ring", "_seen", "min_samples", "refresh", "size")

    def __init__(self, size: int = 512, *, refresh: int = 32, min_samples: int = 32) -> None:
        self.size = check_int("size", size, minimum=1)
        self.refresh = check_int("refresh", refresh, minimum=1)
        self.min_samples = check_int("min_samples", min_samples, minimum=1)
        self._ring: list[float] = []
        self._seen = 0
        self._cache: dict[float, float] = {}
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        """Record one duration (negative or non-finite values are ignored)."""
        if not 0.0 <= seconds < math.inf:
            return
        with self._lock:
            if len(self._ring) < self.size:
                self._ring.append(seconds)
            else:
                self._ring[self._seen % self.size] = seconds
            self._seen += 1
            if self._seen % self.refresh == 0:
                self._cache.clear()

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile of the window (nearest rank), or None below ``min_samples``."""
        cached = self._cache.get(q)
        if cached is not None:
            return cached
        with self._lock:
            if self._seen < self.min_samples:
                return None
            ordered = sorted(self._ring)
            value = ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]
            self._cache[q] = value
            return value


def _parse_delay(value: object) -> tuple[float | None, float | None]:
    """``delay=`` as (seconds, None) or (None, quantile); ConfigError otherwise."""
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            if not text.startswith("p"):
                raise ValueError(text)
            q = float(text[1:]) / 100.0
        except ValueError:
            raise ConfigError("delay", value, 'expected seconds or a quantile like "p95"') from None
        if not 0.0 < q < 1.0:
            raise ConfigError("delay", value, "the quantile must be between p0 and p100")
        return None, q
    return check_non_negative("delay", value), None


# ----------------------------------------------------------- values & events


@dataclass(frozen=True, slots=True)
class HedgeAttempt:
    """What an attempt knows about itself (see :func:`current_hedge_attempt`).

    Attributes:
        number: 1 for the first attempt, 2 for the first hedge, ...
        avoid: a set shared by every attempt of one call. Pass it to
            ``ServiceRegistry.call(..., avoid=attempt.avoid)`` so each attempt
            goes to an instance the others did not use.
    """

    number: int
    avoid: set[str] = field(compare=False)


_ATTEMPT: contextvars.ContextVar[HedgeAttempt | None] = contextvars.ContextVar(
    "sentia_hedge_attempt", default=None
)


def current_hedge_attempt() -> HedgeAttempt | None:
    """The :class:`HedgeAttempt` running in this context, or None outside a hedge."""
    return _ATTEMPT.get()


@dataclass(frozen=True, slots=True)
class HedgeEvent(Event):
    """Something a :class:`Hedge` did.

    Attributes:
        hedge: the Hedge's name.
        kind: ``"hedged"`` (attempt ``attempt`` started because the others were
            slower than ``delay``), ``"hedged_on_failure"`` (started because an
            attempt failed), ``"budget_denied"`` (a hedge was due but the retry
            budget was empty), ``"won"`` (attempt ``attempt`` produced the
            result), ``"cancelled"`` / ``"abandoned"`` (``attempt`` lost the
            race: its task was cancelled / its thread keeps running, its
            result discarded).
        attempt: the attempt concerned (1-based).
        delay: the hedge delay in force, in seconds.
    """

    hedge: str
    kind: str
    attempt: int
    delay: float


@dataclass(frozen=True, slots=True)
class HedgeStats:
    """A snapshot of a :class:`Hedge`.

    Attributes:
        calls: calls made through it.
        hedges: extra attempts started (after the delay or after a failure).
        hedges_on_failure: of which, started because an attempt failed.
        budget_denied: hedges that were due but refused by the retry budget.
        hedge_wins: calls whose result came from an attempt other than the first.
        cancelled: losing asyncio attempts cancelled.
        abandoned: losing thread attempts left to finish on their own (total).
        abandoned_running: of which, still running now.
        delay: the hedge delay now, in seconds (the quantile's current value).
    """

    calls: int
    hedges: int
    hedges_on_failure: int
    budget_denied: int
    hedge_wins: int
    cancelled: int
    abandoned: int
    abandoned_running: int
    delay: float


# ---------------------------------------------------------------- the core

WIN, FINAL, LAUNCH, WAIT = "win", "final", "launch", "wait"


class _HedgeRun:
    """One hedged call's race: decisions only, no I/O (see the module docs)."""

    __slots__ = ("delay", "hedge", "hedging", "last_error", "last_result", "running", "started")

    def __init__(self, hedge: Hedge, delay: float) -> None:
        self.hedge = hedge
        self.delay = delay
        self.started = 0  # attempts launched
        self.running = 0  # attempts launched and not finished
        self.hedging = hedge.max_attempts > 1  # more attempts may still be launched
        self.last_error: BaseException | None = None
        self.last_result: Any = None

    def launch(self) -> int:
        """Count an attempt as launched; returns its number."""
        self.started += 1
        self.running += 1
        if self.started >= self.hedge.max_attempts:
            self.hedging = False
        return self.started

    def wait_for(self) -> float | None:
        """Seconds to wait for an outcome before :meth:`on_timer` (None: no timer)."""
        return self.delay if self.hedging else None

    def _may_hedge(self, kind: str) -> bool:
        if not self.hedging:
            return False
        if self.hedge._budget is not None and not self.hedge._budget.try_withdraw():
            self.hedging = False
            self.hedge._count("budget_denied", self.started + 1, self.delay)
            return False
        self.hedge._count(kind, self.started + 1, self.delay)
        return True

    def on_timer(self) -> bool:
        """The delay passed with no outcome: True to launch a hedge now."""
        return self._may_hedge("hedged")

    def on_outcome(self, attempt: int, error: BaseException | None, result: Any) -> str:
        """An attempt finished: ``WIN``, ``FINAL``, ``LAUNCH`` (another now) or ``WAIT``."""
        self.running -= 1
        self.last_error, self.last_result = error, result
        hedge = self.hedge
        if error is None:
            on_result = hedge._on_result
            if on_result is None or not on_result(result):
                if attempt > 1:
                    hedge._count("won", attempt, self.delay)
                return WIN
        elif not hedge.handles(error):
            return FINAL
        if self._may_hedge("hedged_on_failure"):
            return LAUNCH
        return WAIT if self.running > 0 else FINAL


# ------------------------------------------------------------- the strategy


class _Workers:
    """Daemon threads that run hedged sync attempts, started on demand (at most ``limit``)."""

    __slots__ = ("_idle", "_limit", "_lock", "_name", "_queue", "_started")

    def __init__(self, name: str, limit: int) -> None:
        self._name = name
        self._limit = limit
        self._queue: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._started = 0

    def submit(self, job: Callable[[], object]) -> None:
        self._queue.put(job)
        if self._idle.acquire(blocking=False):
            return
        with self._lock:
            if self._started >= self._limit:
                return  # every worker is busy: the job waits in the queue for one
            self._started += 1
            number = self._started
        threading.Thread(
            target=self._work, name=f"sentia-hedge-{self._name}-{number}", daemon=True
        ).start()

    def _work(self) -> None:
        get = self._queue.get
        while True:
            job = get()
            job()
            del job
            self._idle.release()


def _drain(outcomes: queue.SimpleQueue[Any]) -> int:
    """Empty ``outcomes``; returns how many items it held."""
    n = 0
    while True:
        try:
            outcomes.get_nowait()
        except queue.Empty:
            return n
        n += 1


def _consume(task: asyncio.Task[Any]) -> None:
    """Retrieve a losing task's outcome so asyncio never warns about it."""
    if not task.cancelled():
        task.exception()


class Hedge:
    """Starts another attempt when one is slow; the first acceptable result wins.

    Use it in a :class:`Policy` (``Policy(hedge=Hedge(...))``), as a decorator
    on ``def`` or ``async def``, or through :meth:`call` / :meth:`call_async`.
    Sync attempts run in daemon worker threads owned by the Hedge (the caller
    waits for the race); async attempts run as tasks.

    Args:
        delay: seconds to wait for an attempt before starting the next, or a
            quantile of the durations observed by this Hedge such as ``"p95"``
            or ``"p99.9"``. Default ``"p95"``.
        max_attempts: attempts per call, the first included (>= 1; default 2).
        on: the failures after which a hedge starts at once instead of after
            the delay: an exception class, a tuple of them, or a predicate.
            Other errors are final and propagate as they would without hedging.
            Default ``Exception``.
        on_result: a predicate ``(result) -> bool``; True means "not acceptable,
            keep racing". If every attempt's result is rejected the last is returned.
        budget: a :class:`RetryBudget` (or anything with ``deposit()`` and
            ``try_withdraw()``): each call deposits, each hedge withdraws a
            token, so a slow dependency is not sent many times its load.
        initial_delay: the delay while a quantile has too few samples (seconds,
            >= 0; default 0.1).
        latency: the :class:`LatencySource` a quantile delay reads (default: a
            :class:`LatencyWindow` of this Hedge's own attempts).
        max_workers: threads that run sync attempts (>= 1; default 64), started
            on demand. Abandoned attempts hold theirs until they return; when
            all are busy, new attempts wait for one (bound hung calls with a
            :class:`Timeout` inside the hedge).
        name: shown in events, worker thread names and ``repr``.
        clock: measures attempt durations and stamps events.

    Raises:
        ConfigError: naming the offending parameter.
    """

    __slots__ = (
        "_abandoned_running",
        "_budget",
        "_calls",
        "_clock",
        "_counts",
        "_fixed",
        "_listeners",
        "_lock",
        "_on_pred",
        "_on_result",
        "_on_types",
        "_quantile",
        "_workers",
        "initial_delay",
        "latency",
        "max_attempts",
        "name",
    )

    def __init__(
        self,
        delay: float | str = "p95",
        *,
        max_attempts: int = 2,
        on: RetryOn = Exception,
        on_result: Callable[[Any], bool] | None = None,
        budget: RetryBudgetLike | None = None,
        initial_delay: float = 0.1,
        latency: LatencySource | None = None,
        max_workers: int = 64,
        name: str = "hedge",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._fixed, self._quantile = _parse_delay(delay)
        self.max_attempts = check_int("max_attempts", max_attempts, minimum=1)
        self._on_types, self._on_pred = _classify_on(on)
        self._on_result = None if on_result is None else check_callable("on_result", on_result)
        if budget is not None and not isinstance(budget, RetryBudgetLike):
            raise ConfigError("budget", budget, "needs deposit() and try_withdraw()")
        self._budget = budget
        self.initial_delay = check_non_negative("initial_delay", initial_delay)
        if latency is None:
            latency = LatencyWindow()
        elif not isinstance(latency, LatencySource):
            raise ConfigError("latency", latency, "needs observe() and quantile()")
        self.latency = latency
        self.name = check_name("name", name)
        if not isinstance(clock, Clock):
            raise ConfigError("clock", clock, "expected a Clock (monotonic, time, sleep)")
        self._clock = clock
        self._calls = Counter()
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(
            ("hedged", "hedged_on_failure", "budget_denied", "won", "cancelled", "abandoned"), 0
        )
        self._abandoned_running = 0
        self._listeners: Listeners[HedgeEvent] = Listeners()
        self._workers = _Workers(self.name, check_int("max_workers", max_workers, minimum=1))

    def add_listener(self, listener: Callable[[HedgeEvent], object]) -> Callable[[], None]:
        """Subscribe to :class:`HedgeEvent` s; returns an unsubscribe function."""
        return self._listeners.add(listener)

    # ------------------------------------------------------------------ core

    def handles(self, error: BaseException) -> bool:
        """Whether ``on=`` matches ``error`` (only ``Exception`` s ever do)."""
        if not isinstance(error, Exception):
            return False
        if self._on_types is not None:
            return isinstance(error, self._on_types)
        try:
            return bool(self._on_pred(error))
        except Exception:  # a broken predicate must not hide the caller's error
            return False

    def current_delay(self) -> float:
        """The delay a call starting now would use, in seconds."""
        if self._fixed is not None:
            return self._fixed
        assert self._quantile is not None
        value = self.latency.quantile(self._quantile)
        return self.initial_delay if value is None else value

    def _count(self, kind: str, attempt: int, delay: float) -> None:
        with self._lock:
            self._counts[kind] += 1
        if self._listeners:
            self._emit(kind, attempt, delay)

    def _emit(self, kind: str, attempt: int, delay: float) -> None:
        self._listeners.emit(
            HedgeEvent(
                source=f"hedge:{self.name}",
                at=self._clock.time(),
                hedge=self.name,
                kind=kind,
                attempt=attempt,
                delay=delay,
            )
        )

    def _begin(self) -> _HedgeRun:
        self._calls.incr()
        if self._budget is not None:
            self._budget.deposit()
        return _HedgeRun(self, self.current_delay())

    def _observe_first(self, started: float) -> None:
        """Record attempt 1's duration (a lower bound when it had not finished)."""
        if self._quantile is not None:
            self.latency.observe(self._clock.monotonic() - started)

    @staticmethod
    def _result(run: _HedgeRun) -> Any:
        error = run.last_error
        if error is None:
            return run.last_result
        try:
            raise error
        finally:
            error = None
            run.last_error = None

    # --------------------------------------------------------------- threads

    def _run_sync(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        run = self._begin()
        if run.hedging is False:
            return fn(*args, **kwargs)
        outcomes: queue.SimpleQueue[tuple[int, BaseException | None, Any]] = queue.SimpleQueue()
        avoid: set[str] = set()
        lock = threading.Lock()
        over = [False]  # the race is decided: later finishers are abandoned attempts
        monotonic = self._clock.monotonic
        t0 = monotonic()

        def attempt(number: int) -> None:
            if not over[0]:  # a loser still queued for a worker is never started
                _ATTEMPT.set(HedgeAttempt(number, avoid))
                error: BaseException | None = None
                result: Any = None
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:  # handed to the caller's thread
                    error = exc
                with lock:  # decided under the lock the caller takes to end the race
                    if not over[0]:
                        outcomes.put((number, error, result))
                        return
            with self._lock:
                self._abandoned_running -= 1

        def launch() -> None:
            number = run.launch()
            ctx = contextvars.copy_context()
            self._workers.submit(lambda: ctx.run(attempt, number))

        launch()
        first_done = False
        try:
            while True:
                try:
                    number, error, result = outcomes.get(timeout=run.wait_for())
                except queue.Empty:
                    if run.on_timer():
                        launch()
                    continue
                if number == 1:
                    first_done = True
                    self._observe_first(t0)
                action = run.on_outcome(number, error, result)
                if action == LAUNCH:
                    launch()
                elif action != WAIT:
                    return self._result(run)
        finally:
            with lock:
                over[0] = True
                losers = run.running - _drain(outcomes)
                if losers:
                    with self._lock:
                        self._counts["abandoned"] += losers
                        self._abandoned_running += losers
            if not first_done:
                self._observe_first(t0)
            if self._listeners:
                for _ in range(losers):
                    self._emit("abandoned", 0, run.delay)

    # --------------------------------------------------------------- asyncio

    async def _run_async(
        self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        run = self._begin()
        if run.hedging is False:
            return await fn(*args, **kwargs)
        avoid: set[str] = set()
        tasks: dict[asyncio.Task[Any], int] = {}
        t0 = self._clock.monotonic()

        async def attempt(number: int) -> Any:
            _ATTEMPT.set(HedgeAttempt(number, avoid))  # the task's own context copy
            return await fn(*args, **kwargs)

        def launch() -> None:
            number = run.launch()
            tasks[asyncio.ensure_future(attempt(number))] = number

        launch()
        first_done = False
        try:
            while True:
                done, _ = await asyncio.wait(
                    tasks, timeout=run.wait_for(), return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    if run.on_timer():
                        launch()
                    continue
                for task in done:
                    number = tasks.pop(task)
                    error = task.exception()
                    result = None if error is not None else task.result()
                    if number == 1:
                        first_done = True
                        self._observe_first(t0)
                    action = run.on_outcome(number, error, result)
                    if action == LAUNCH:
                        launch()
                    elif action != WAIT:
                        return self._result(run)
        finally:
            if not first_done:
                self._observe_first(t0)
            for task, number in tasks.items():
                if not task.done():
                    task.cancel()
                    self._count("cancelled", number, run.delay)
                task.add_done_callback(_consume)

    # -------------------------------------------------------------- wrappers

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate ``fn`` (sync or async) so that slow calls are hedged."""
        return decorate("Hedge", fn, self.call, self.call_async)

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` hedged (sync; attempts run in worker threads)."""
        return self._run_sync(fn, args, kwargs)  # type: ignore[no-any-return]

    async def call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await ``fn(*args, **kwargs)`` hedged (attempts run as tasks)."""
        return await self._run_async(fn, args, kwargs)  # type: ignore[no-any-return]

    # ------------------------------------------------------------- reporting

    def stats(self) -> HedgeStats:
        """A frozen snapshot."""
        calls = self._calls.value()
        delay = self.current_delay()
        with self._lock:
            c = dict(self._counts)
            running = self._abandoned_running
        return HedgeStats(
            calls=calls,
            hedges=c["hedged"] + c["hedged_on_failure"],
            hedges_on_failure=c["hedged_on_failure"],
            budget_denied=c["budget_denied"],
            hedge_wins=c["won"],
            cancelled=c["cancelled"],
            abandoned=c["abandoned"],
            abandoned_running=running,
            delay=delay,
        )

    def __repr__(self) -> str:
        delay = repr(self._fixed) if self._fixed is not None else f"'p{self._quantile * 100:g}'"  # type: ignore[operator]
        return f"Hedge(name={self.name!r}, delay={delay}, max_attempts={self.max_attempts})"
