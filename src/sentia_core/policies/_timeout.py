"""Timeout: a deadline around a call, enforced where Python can enforce it.

Theory of operation.

* **async**: the awaited call runs under ``asyncio.timeout`` (``wait_for`` on
  Python 3.10). On expiry the task is cancelled at its current ``await`` and
  :class:`~sentia_core.errors.CallTimeoutError` (a builtin ``TimeoutError``)
  is raised. This is real enforcement.
* **sync, ``sync_mode="thread"``** (default): Python cannot kill or interrupt
  a thread. The call runs in a small pool of daemon worker threads owned by
  this Timeout; the caller waits at most the timeout and then *abandons* the
  call: it raises ``CallTimeoutError`` while the call keeps running to its end
  in the worker, its result discarded. ``stats().abandoned_running`` shows how
  many are still running; when every worker is busy with abandoned calls, new
  calls wait in the queue and time out without ever starting
  (``never_started``), which bounds the damage a hung dependency can do.
  Daemon workers never block interpreter exit.
* **sync, ``sync_mode="cooperative"``**: the call runs inline, in the caller's
  thread, under a deadline stored in a contextvar. Code that reads
  :func:`remaining_time` (to set a socket or statement timeout) or calls
  :func:`check_deadline` honours it; a call that ignores it finishes late and
  is counted as an ``overrun`` (its result is still returned).

In every mode the deadline is visible to the call through
:func:`remaining_time`, nested timeouts only ever shrink it, and
:class:`Retry` and :class:`Bulkhead` inside the call respect it.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import update_wrapper
from typing import Any, Literal, ParamSpec, TypeVar, overload

from sentia_core._clock import SYSTEM_CLOCK, Clock
from sentia_core._events import Event, Listeners
from sentia_core._validate import (
    check_callable,
    check_choice,
    check_int,
    check_name,
    check_positive,
)
from sentia_core.errors import CallTimeoutError, ConfigError

from ._counter import Counter
from ._deadline import _DEADLINE, _enter
from ._retry import is_coroutine_callable

__all__ = ["Timeout", "TimeoutEvent", "TimeoutStats"]

P = ParamSpec("P")
T = TypeVar("T")

SyncMode = Literal["thread", "cooperative"]

_PENDING, _RUNNING, _DONE, _CANCELLED = range(4)


@dataclass(frozen=True, slots=True)
class TimeoutStats:
    """A snapshot of a :class:`Timeout`.

    Attributes:
        calls: calls made through it.
        timeouts: calls that raised ``CallTimeoutError`` (all modes).
        abandoned: sync calls left running in a worker after their deadline (total).
        abandoned_running: abandoned calls still running now.
        never_started: sync calls that timed out while queued for a worker.
        overruns: cooperative calls that returned after their deadline.
        workers: worker threads alive now (thread mode).
    """

    calls: int
    timeouts: int
    abandoned: int
    abandoned_running: int
    never_started: int
    overruns: int
    workers: int


@dataclass(frozen=True, slots=True)
class TimeoutEvent(Event):
    """A call missed its deadline.

    Attributes:
        timeout: the Timeout's name.
        seconds: the effective time limit of that call.
        kind: ``"timed_out"`` (raised, nothing left running), ``"abandoned"``
            (raised; the sync call still runs in a worker) or ``"overrun"``
            (cooperative call returned late).
    """

    timeout: str
    seconds: float
    kind: str


class _Job:
    """A call handed to a worker thread; its state changes under the Timeout's lock."""

    __slots__ = ("abandoned", "args", "ctx", "done", "error", "fn", "kwargs", "result", "state")

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        ctx: contextvars.Context,
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.ctx = ctx
        self.state = _PENDING
        self.abandoned = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Lock()
        self.done.acquire()


class _WorkerPool:
    """Daemon threads, started on demand up to ``max_workers``, fed from one queue."""

    def __init__(self, owner: Timeout, max_workers: int) -> None:
        self._owner = owner
        self._max = max_workers
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def alive(self) -> int:
        return sum(1 for t in self._threads if t.is_alive())

    def submit(self, job: _Job) -> None:
        self._queue.put(job)
        if self._idle.acquire(blocking=False):
            return
        with self._lock:
            if len(self._threads) < self._max:
                t = threading.Thread(
                    target=self._work,
                    name=f"sentia-timeout-{self._owner.name}-{len(self._threads)}",
                    daemon=True,
                )
                self._threads.append(t)
                t.start()

    def _work(self) -> None:
        get, owner = self._queue.get, self._owner
        while True:
            job = get()
            if job is None:
                return
            owner._run_job(job)
            job = None
            self._idle.release()

    def close(self) -> None:
        with self._lock:
            for _ in self._threads:
                self._queue.put(None)


class Timeout:
    """Bounds how long a call may take (see the module docs for what "bound" means).

    Use it as a decorator (``@Timeout(2.0)`` on ``def`` or ``async def``) or
    through :meth:`call` / :meth:`call_async`.

    Args:
        seconds: the time limit of one call (> 0).
        sync_mode: how sync calls are bounded: ``"thread"`` (default; run in a
            worker, abandon on expiry) or ``"cooperative"`` (run inline under a
            deadline that the call reads with :func:`remaining_time`).
        max_workers: worker threads for ``"thread"`` mode (>= 1; default 8).
            Started on demand; they are daemon threads.
        name: shown in errors, events, worker thread names and ``repr``.
        clock: measures the deadline that :func:`remaining_time` reports.

    Raises:
        ConfigError: naming the offending parameter.
    """

    __slots__ = (
        "_abandoned",
        "_abandoned_running",
        "_calls",
        "_clock",
        "_closed",
        "_listeners",
        "_lock",
        "_monotonic",
        "_never_started",
        "_overruns",
        "_pool",
        "_timeouts",
        "max_workers",
        "name",
        "seconds",
        "sync_mode",
    )

    def __init__(
        self,
        seconds: float,
        *,
        sync_mode: SyncMode = "thread",
        max_workers: int = 8,
        name: str = "timeout",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.seconds = check_positive("seconds", seconds)
        self.sync_mode: SyncMode = check_choice("sync_mode", sync_mode, ("thread", "cooperative"))
        self.max_workers = check_int("max_workers", max_workers, minimum=1)
        self.name = check_name("name", name)
        if not callable(getattr(clock, "monotonic", None)):
            raise ConfigError("clock", clock, "expected a Clock")
        self._clock = clock
        self._monotonic = clock.monotonic
        self._lock = threading.Lock()
        self._calls = Counter()
        self._timeouts = 0
        self._abandoned = 0
        self._abandoned_running = 0
        self._never_started = 0
        self._overruns = 0
        self._pool: _WorkerPool | None = None
        self._closed = False
        self._listeners: Listeners[TimeoutEvent] = Listeners()

    def add_listener(self, listener: Callable[[TimeoutEvent], object]) -> Callable[[], None]:
        """Subscribe to :class:`TimeoutEvent` s; returns an unsubscribe function."""
        return self._listeners.add(listener)

    # ------------------------------------------------------------ bookkeeping

    def _missed(self, seconds: float, kind: str) -> CallTimeoutError:
        """Count and report a missed deadline; returns the error to raise (if any)."""
        with self._lock:
            if kind == "overrun":
                self._overruns += 1
            else:
                self._timeouts += 1
        if self._listeners:
            self._listeners.emit(
                TimeoutEvent(
                    source=f"timeout:{self.name}",
                    at=self._clock.time(),
                    timeout=self.name,
                    seconds=seconds,
                    kind=kind,
                )
            )
        return CallTimeoutError(seconds, f"call timed out after {seconds:.3f}s ({self.name})")

    # ------------------------------------------------------------------ async

    async def call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await ``fn(*args, **kwargs)``, cancelling it when the deadline passes.

        Raises:
            CallTimeoutError: the deadline passed (the call was cancelled).
        """
        self._calls.incr()
        _, token, seconds = _enter(self.seconds, self._monotonic)
        try:
            if seconds <= 0.0:
                raise self._missed(seconds, "timed_out")
            if sys.version_info >= (3, 11):
                scope = asyncio.timeout(seconds)
                try:
                    async with scope:
                        return await fn(*args, **kwargs)
                except TimeoutError as exc:
                    if scope.expired():  # ours, not one the call raised itself
                        raise self._missed(seconds, "timed_out") from exc
                    raise
            else:  # pragma: no cover - Python 3.10 cannot tell the two TimeoutErrors apart
                try:
                    return await asyncio.wait_for(fn(*args, **kwargs), seconds)
                except asyncio.TimeoutError as exc:
                    raise self._missed(seconds, "timed_out") from exc
        finally:
            _DEADLINE.reset(token)

    # ------------------------------------------------------------------- sync

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` within the time limit (sync; see ``sync_mode``).

        Raises:
            CallTimeoutError: the deadline passed ("thread" mode: the call is
                abandoned, not stopped).
            RuntimeError: the Timeout was closed ("thread" mode).
        """
        self._calls.incr()
        if self.sync_mode == "cooperative":
            return self._call_cooperative(fn, args, kwargs)
        _, token, seconds = _enter(self.seconds, self._monotonic)
        try:
            if seconds <= 0.0:
                raise self._missed(seconds, "timed_out")
            ctx = contextvars.copy_context()  # the worker sees the deadline too
        finally:
            _DEADLINE.reset(token)
        return self._call_in_worker(_Job(fn, args, kwargs, ctx), seconds)  # type: ignore[no-any-return]

    def _call_cooperative(
        self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> T:
        d, token, seconds = _enter(self.seconds, self._monotonic)
        try:
            if seconds <= 0.0:
                raise self._missed(seconds, "timed_out")
            try:
                result = fn(*args, **kwargs)
            except CallTimeoutError:
                if d.expired():  # raised by check_deadline() inside the call
                    self._missed(seconds, "timed_out")
                raise
        finally:
            _DEADLINE.reset(token)
        if d.expired():
            self._missed(seconds, "overrun")
        return result

    def _worker_pool(self) -> _WorkerPool:
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._closed:
                    raise RuntimeError(f"Timeout {self.name!r} is closed")
                if self._pool is None:
                    self._pool = _WorkerPool(self, self.max_workers)
                pool = self._pool
        return pool

    def _call_in_worker(self, job: _Job, seconds: float) -> Any:
        if self._closed:
            raise RuntimeError(f"Timeout {self.name!r} is closed")
        self._worker_pool().submit(job)
        if not job.done.acquire(timeout=seconds):
            with self._lock:
                if job.state == _PENDING:
                    job.state = _CANCELLED
                    self._never_started += 1
                    kind = "timed_out"
                elif job.state == _RUNNING:
                    job.abandoned = True
                    self._abandoned += 1
                    self._abandoned_running += 1
                    kind = "abandoned"
                else:  # finished between the wait and the lock: use its outcome
                    kind = ""
            if kind:
                job.fn = job.args = job.kwargs = None  # type: ignore[assignment]
                raise self._missed(seconds, kind)
        error = job.error
        if error is not None:
            job.error = None
            try:
                raise error
            finally:
                error = None
        return job.result

    def _run_job(self, job: _Job) -> None:
        """Runs in a worker thread."""
        with self._lock:
            if job.state == _CANCELLED:
                return
            job.state = _RUNNING
        try:
            job.result = job.ctx.run(job.fn, *job.args, **job.kwargs)
        except BaseException as exc:  # delivered to the caller, who re-raises it
            job.error = exc
        with self._lock:
            job.state = _DONE
            if job.abandoned:
                self._abandoned_running -= 1
                job.result = job.error = None  # nobody will read them
        job.done.release()

    # -------------------------------------------------------------- decorator

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate ``fn`` (sync or async) so that every call is time-limited."""
        check_callable("fn", fn)
        wrapper: Callable[P, Any]
        if is_coroutine_callable(fn):
            call_async = self.call_async

            async def timed_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await call_async(fn, *args, **kwargs)

            wrapper = timed_async
        else:
            call = self.call

            def timed(*args: P.args, **kwargs: P.kwargs) -> Any:
                return call(fn, *args, **kwargs)

            wrapper = timed
        return update_wrapper(wrapper, fn)

    # ------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Stop the idle worker threads; abandoned calls finish on their own.

        Later sync calls in ``"thread"`` mode raise ``RuntimeError``. Async and
        cooperative calls are unaffected.
        """
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    def stats(self) -> TimeoutStats:
        """A frozen snapshot."""
        calls = self._calls.value()
        with self._lock:
            return TimeoutStats(
                calls=calls,
                timeouts=self._timeouts,
                abandoned=self._abandoned,
                abandoned_running=self._abandoned_running,
                never_started=self._never_started,
                overruns=self._overruns,
                workers=0 if self._pool is None else self._pool.alive,
            )

    def __repr__(self) -> str:
        return (
            f"Timeout(name={self.name!r}, seconds={self.seconds!r}, sync_mode={self.sync_mode!r})"
        )
