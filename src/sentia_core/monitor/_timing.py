"""Timing a block or a function into a histogram: one core for sync and async.

:class:`Timer` is both a sync and an async context manager; :func:`timed`
wraps sync functions and coroutine functions alike. Both read the clock
once at the start and once at the end, and hand the end reading to the
histogram so that it does not read the clock a third time. They know the
histogram only as two callables, its clock and its ``record(value, now)``,
so this module depends on nothing in the monitor.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast, overload

__all__ = ["Timer", "timed"]

P = ParamSpec("P")
R = TypeVar("R")

#: ``record(value, now)``: observe ``value`` with a clock reading taken already.
Record = Callable[[float, float], None]


class Timer:
    """Observes the seconds between enter and exit into a histogram.

    Use ``with`` or ``async with``; after exit, :attr:`elapsed` holds the
    seconds measured. The body's exception, if any, propagates unchanged
    (the time is recorded either way).
    """

    __slots__ = ("_now", "_record", "_start", "elapsed")

    def __init__(self, now: Callable[[], float], record: Record) -> None:
        self._now = now
        self._record = record
        self._start = 0.0
        #: seconds the body took (set on exit).
        self.elapsed: float | None = None

    def _begin(self) -> Timer:
        self._start = self._now()
        return self

    def _end(self) -> None:
        end = self._now()
        self.elapsed = elapsed = end - self._start
        self._record(elapsed, end)

    def __enter__(self) -> Timer:
        return self._begin()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._end()

    async def __aenter__(self) -> Timer:
        return self._begin()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._end()


@overload
def timed(
    now: Callable[[], float], record: Record, fn: Callable[P, Awaitable[R]]
) -> Callable[P, Awaitable[R]]: ...
@overload
def timed(now: Callable[[], float], record: Record, fn: Callable[P, R]) -> Callable[P, R]: ...
def timed(now: Callable[[], float], record: Record, fn: Callable[P, Any]) -> Callable[P, Any]:
    """Wrap ``fn`` (sync or ``async def``) so each call's duration is observed.

    ``now`` and ``record`` are a histogram's clock and its observation with a
    clock reading (:meth:`Histogram.timed` passes its own); a call costs two
    clock reads and one observation.
    """
    if inspect.iscoroutinefunction(fn):
        afn = cast(Callable[P, Awaitable[Any]], fn)

        @functools.wraps(fn)
        async def timed_async(*args: P.args, **kwargs: P.kwargs) -> Any:
            start = now()
            try:
                return await afn(*args, **kwargs)
            finally:
                end = now()
                record(end - start, end)

        return timed_async

    @functools.wraps(fn)
    def timed_sync(*args: P.args, **kwargs: P.kwargs) -> Any:
        start = now()
        try:
            return fn(*args, **kwargs)
        finally:
            end = now()
            record(end - start, end)

    return timed_sync
