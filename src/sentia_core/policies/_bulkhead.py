"""Bulkhead: at most N calls at once, at most M callers waiting, for threads and asyncio.

Theory of operation: free slots are tokens in a list. Taking a slot is
``list.pop()`` and giving one back is ``list.append()``: single C calls,
atomic under the GIL, so the uncontended path takes no Python lock (a
``threading.Lock`` costs more than the whole bulkhead otherwise).

Callers that find no token queue up as *waiters* in a FIFO deque under
``_lock``. A waiter is either a thread waiter (a pre-acquired lock the
thread blocks on) or a task waiter (an asyncio future plus its loop), so one
bulkhead serves threads and tasks together. ``_drain`` pairs free tokens with
waiters in FIFO order and marks each one ``granted`` under the lock before
waking it; a waiter that gives up (timeout, cancellation) re-checks
``granted`` under the same lock, so a slot is never lost: if it was granted
at the last moment, the waiter either keeps it (timeout) or hands it on
(cancellation).

No lost wake-up: a releaser appends its token *then* looks for waiters; a
newcomer enqueues *then* drains (under the lock). Whichever runs second sees
the other's write. A newcomer may take a slot freed at the very instant a
waiter is being woken (barging); waiters among themselves are served FIFO.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from functools import update_wrapper
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from sentia_core._clock import SYSTEM_CLOCK, Clock
from sentia_core._events import Event, Listeners
from sentia_core._validate import check_callable, check_int, check_name, check_non_negative
from sentia_core.errors import BulkheadFullError, ConfigError

from ._counter import Counter
from ._deadline import _DEADLINE
from ._retry import is_coroutine_callable

__all__ = ["Bulkhead", "BulkheadEvent", "BulkheadStats"]

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BulkheadStats:
    """A snapshot of a :class:`Bulkhead`.

    Attributes:
        max_concurrent: the configured number of slots.
        max_waiting: the configured queue length.
        active: calls holding a slot now.
        waiting: callers queued for a slot now.
        accepted: calls that got a slot (at once or after waiting).
        rejected: callers turned away because every slot and queue place was taken.
        timed_out: callers that waited and gave up (``max_wait`` or their deadline).
    """

    max_concurrent: int
    max_waiting: int
    active: int
    waiting: int
    accepted: int
    rejected: int
    timed_out: int


@dataclass(frozen=True, slots=True)
class BulkheadEvent(Event):
    """A caller was turned away.

    Attributes:
        bulkhead: the bulkhead's name.
        kind: ``"rejected"`` (full, no room to wait) or ``"timed_out"`` (waited too long).
        active: slots in use at that moment.
        waiting: callers queued at that moment.
    """

    bulkhead: str
    kind: str
    active: int
    waiting: int


class _ThreadWaiter:
    __slots__ = ("_lock", "granted")

    def __init__(self) -> None:
        self.granted = False
        self._lock = threading.Lock()
        self._lock.acquire()

    def wake(self) -> bool:
        self._lock.release()
        return True

    def wait(self, timeout: float | None) -> bool:
        return self._lock.acquire(timeout=-1 if timeout is None else timeout)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _TaskWaiter:
    __slots__ = ("future", "granted", "loop", "thread")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.granted = False
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        self.thread = threading.get_ident()

    def wake(self) -> bool:
        if threading.get_ident() == self.thread:
            _resolve(self.future)
            return True
        try:
            self.loop.call_soon_threadsafe(_resolve, self.future)
        except RuntimeError:  # its loop is closed: nobody is waiting any more
            return False
        return True


GiveUp = Callable[..., bool]


def wait_limit(max_wait: float | None) -> float | None:
    """Seconds a queued caller may wait: ``max_wait`` or the context deadline, the smaller."""
    d = _DEADLINE.get()
    if d is not None:
        left = d.remaining()
        if max_wait is None or left < max_wait:
            return left
    return max_wait


def wait_thread(waiter: _ThreadWaiter, limit: float | None, give_up: GiveUp) -> bool:
    """Block until ``waiter`` is granted (True) or gives up (``give_up`` decides or raises)."""
    try:
        woken = waiter.wait(limit)
    except BaseException:
        give_up(waiter, cancelled=True)
        raise
    if not woken:
        give_up(waiter, cancelled=False)
    return woken


async def wait_task(waiter: _TaskWaiter, limit: float | None, give_up: GiveUp) -> bool:
    """The asyncio twin of :func:`wait_thread`."""
    try:
        if limit is None:
            await waiter.future
        else:
            await asyncio.wait_for(waiter.future, limit)
    except asyncio.TimeoutError:
        give_up(waiter, cancelled=False)
        return False
    except BaseException:
        give_up(waiter, cancelled=True)
        raise
    return True


class Bulkhead:
    """Caps concurrent calls; extra callers wait in a bounded queue or are rejected.

    Use it as ``with bulkhead:`` / ``async with bulkhead:``, as a decorator
    (``@bulkhead`` on ``def`` or ``async def``), or through :meth:`call` /
    :meth:`call_async`. Threads and asyncio tasks may share one bulkhead.

    Args:
        max_concurrent: slots, i.e. calls allowed to run at once (>= 1).
        max_waiting: callers allowed to queue for a slot when all are taken
            (>= 0; default 0: reject at once).
        max_wait: seconds a queued caller waits before giving up with
            :class:`~sentia_core.errors.BulkheadFullError` (>= 0; default None:
            no limit other than the caller's deadline, see :func:`remaining_time`).
        name: shown in errors, events and ``repr``.
        clock: time source for event timestamps.

    Raises:
        ConfigError: naming the offending parameter.
    """

    __slots__ = (
        "_accepted",
        "_clock",
        "_listeners",
        "_lock",
        "_max_wait",
        "_pop",
        "_push",
        "_rejected",
        "_timed_out",
        "_tokens",
        "_waiters",
        "max_concurrent",
        "max_waiting",
        "name",
    )

    def __init__(
        self,
        max_concurrent: int,
        *,
        max_waiting: int = 0,
        max_wait: float | None = None,
        name: str = "bulkhead",
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.max_concurrent = check_int("max_concurrent", max_concurrent, minimum=1)
        self.max_waiting = check_int("max_waiting", max_waiting, minimum=0)
        wait = (
            None if max_wait is None else check_non_negative("max_wait", max_wait, allow_inf=True)
        )
        self._max_wait = None if wait == math.inf else wait
        self.name = check_name("name", name)
        if not callable(getattr(clock, "time", None)):
            raise ConfigError("clock", clock, "expected a Clock")
        self._clock = clock
        self._tokens: list[None] = [None] * self.max_concurrent
        self._pop = self._tokens.pop
        self._push = self._tokens.append
        self._waiters: deque[_ThreadWaiter | _TaskWaiter] = deque()
        self._lock = threading.Lock()
        self._accepted = Counter()
        self._rejected = 0
        self._timed_out = 0
        self._listeners: Listeners[BulkheadEvent] = Listeners()

    @property
    def max_wait(self) -> float | None:
        """Seconds a queued caller waits at most (None: unlimited)."""
        return self._max_wait

    def add_listener(self, listener: Callable[[BulkheadEvent], object]) -> Callable[[], None]:
        """Subscribe to :class:`BulkheadEvent` s; returns an unsubscribe function."""
        return self._listeners.add(listener)

    # ------------------------------------------------------------------ core

    def _drain(self) -> None:
        """Hand free tokens to waiters, oldest first. Caller holds ``_lock``."""
        waiters = self._waiters
        while waiters:
            try:
                self._pop()
            except IndexError:
                return
            waiter = waiters.popleft()
            waiter.granted = True
            if not waiter.wake():
                waiter.granted = False
                self._push(None)

    def _release(self) -> None:
        self._push(None)
        if self._waiters:
            self._release_slow()

    def _release_slow(self) -> None:
        """A token was just returned and someone is queued: hand it over."""
        with self._lock:
            self._drain()

    def _wait_limit(self) -> float | None:
        return wait_limit(self._max_wait)

    def _turn_away(self, kind: str) -> BulkheadFullError:
        """Count and report a refusal; caller holds ``_lock``. Returns the error to raise."""
        if kind == "rejected":
            self._rejected += 1
            message = f"bulkhead {self.name!r} is full ({self.max_concurrent} running"
            message += f", {len(self._waiters)} waiting)"
        else:
            self._timed_out += 1
            message = f"bulkhead {self.name!r}: no slot freed in time"
        if self._listeners:
            self._listeners.emit(
                BulkheadEvent(
                    source=f"bulkhead:{self.name}",
                    at=self._clock.time(),
                    bulkhead=self.name,
                    kind=kind,
                    active=self.max_concurrent - len(self._tokens),
                    waiting=len(self._waiters),
                )
            )
        return BulkheadFullError(self.name, message)

    def _enqueue(self, waiter: _ThreadWaiter | _TaskWaiter, limit: float | None) -> bool:
        """Queue ``waiter`` or raise; True if it already holds a slot. Holds the lock."""
        with self._lock:
            try:
                self._pop()
                return True
            except IndexError:
                pass
            if len(self._waiters) >= self.max_waiting or limit == 0.0:
                raise self._turn_away("rejected")
            self._waiters.append(waiter)
            self._drain()
            return waiter.granted

    def _give_up(self, waiter: _ThreadWaiter | _TaskWaiter, *, cancelled: bool) -> bool:
        """A waiter stops waiting; True if it holds a slot after all (timeout case)."""
        with self._lock:
            if waiter.granted:
                if not cancelled:
                    return True
                self._push(None)
                self._drain()
                return False
            with contextlib.suppress(ValueError):  # granted waiters already left the queue
                self._waiters.remove(waiter)
            if not cancelled:
                raise self._turn_away("timed_out")
            return False

    # --------------------------------------------------------------- threads

    def _acquire(self) -> None:
        try:
            self._pop()
        except IndexError:
            self._acquire_slow()
        self._accepted.incr()

    def _acquire_slow(self) -> None:
        limit = self._wait_limit()
        waiter = _ThreadWaiter()
        if self._enqueue(waiter, limit):
            return
        wait_thread(waiter, limit, self._give_up)

    def __enter__(self) -> Bulkhead:
        self._acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` in a slot.

        Raises:
            BulkheadFullError: no slot, and no room or time left to wait.
        """
        self._acquire()
        try:
            return fn(*args, **kwargs)
        finally:
            self._release()

    # --------------------------------------------------------------- asyncio

    async def _acquire_async(self) -> None:
        try:
            self._pop()
        except IndexError:
            await self._acquire_async_slow()
        self._accepted.incr()

    async def _acquire_async_slow(self) -> None:
        limit = self._wait_limit()
        waiter = _TaskWaiter(asyncio.get_running_loop())
        if self._enqueue(waiter, limit):
            return
        await wait_task(waiter, limit, self._give_up)

    async def __aenter__(self) -> Bulkhead:
        await self._acquire_async()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release()

    async def call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await ``fn(*args, **kwargs)`` in a slot; see :meth:`call`."""
        await self._acquire_async()
        try:
            return await fn(*args, **kwargs)
        finally:
            self._release()

    # -------------------------------------------------------------- decorator

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, T]]
    ) -> Callable[P, Coroutine[Any, Any, T]]: ...

    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]: ...

    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate ``fn`` (sync or async) so that every call runs in a slot."""
        check_callable("fn", fn)
        # The fast path (take a token, run, give it back) is inlined: no method calls.
        pop, push, waiters, count = self._pop, self._push, self._waiters, self._accepted.incr
        release_slow = self._release_slow
        wrapper: Callable[P, Any]
        if is_coroutine_callable(fn):
            acquire_async_slow = self._acquire_async_slow

            async def bulkheaded_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                try:
                    pop()
                except IndexError:
                    await acquire_async_slow()
                count()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    push(None)
                    if waiters:
                        release_slow()

            wrapper = bulkheaded_async
        else:
            acquire_slow = self._acquire_slow

            def bulkheaded(*args: P.args, **kwargs: P.kwargs) -> Any:
                try:
                    pop()
                except IndexError:
                    acquire_slow()
                count()
                try:
                    return fn(*args, **kwargs)
                finally:
                    push(None)
                    if waiters:
                        release_slow()

            wrapper = bulkheaded
        return update_wrapper(wrapper, fn)

    # ------------------------------------------------------------- reporting

    def stats(self) -> BulkheadStats:
        """A frozen snapshot."""
        accepted = self._accepted.value()
        with self._lock:
            return BulkheadStats(
                max_concurrent=self.max_concurrent,
                max_waiting=self.max_waiting,
                active=self.max_concurrent - len(self._tokens),
                waiting=len(self._waiters),
                accepted=accepted,
                rejected=self._rejected,
                timed_out=self._timed_out,
            )

    def __repr__(self) -> str:
        return (
            f"Bulkhead(name={self.name!r}, max_concurrent={self.max_concurrent}, "
            f"max_waiting={self.max_waiting}, max_wait={self._max_wait!r})"
        )
