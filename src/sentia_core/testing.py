"""Helpers for testing code that uses sentia_core, without sleeping.

:class:`ManualClock` is accepted by every time-aware class as ``clock=``::

    clock = ManualClock()
    breaker = CircuitBreaker("db", reset_timeout=60, clock=clock)
    ...
    clock.advance(60)   # the breaker now lets a trial call through

Its :meth:`~ManualClock.sleep` and :meth:`~ManualClock.async_sleep` advance
the clock instead of waiting, so retry back-off and rate-limit waits run
instantly and deterministically.
"""

from __future__ import annotations

import asyncio
import threading

from .errors import ConfigError

__all__ = ["ManualClock"]


class ManualClock:
    """A clock that moves only when told to.

    Args:
        start: the initial monotonic reading, in seconds.
        wall_start: the initial wall-clock reading (seconds since the epoch).

    Thread-safe: several threads may read and advance it.
    """

    __slots__ = ("_lock", "_offset", "_start", "_wall_start", "sleeps")

    def __init__(self, start: float = 1000.0, wall_start: float = 1_750_000_000.0) -> None:
        self._start = float(start)
        self._wall_start = float(wall_start)
        self._offset = 0.0
        self._lock = threading.Lock()
        #: every duration passed to :meth:`sleep` / :meth:`async_sleep`, in order.
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """The current monotonic reading."""
        return self._start + self._offset

    def time(self) -> float:
        """The current wall-clock reading; moves in step with :meth:`monotonic`."""
        return self._wall_start + self._offset

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (must not be negative)."""
        if seconds < 0:
            raise ConfigError("seconds", seconds, "a clock cannot go backwards")
        with self._lock:
            self._offset += seconds

    def sleep(self, seconds: float) -> None:
        """Record the sleep and advance the clock by ``seconds`` at once."""
        with self._lock:
            self.sleeps.append(seconds)
            self._offset += max(0.0, seconds)

    async def async_sleep(self, seconds: float) -> None:
        """Like :meth:`sleep`, then yield once to the event loop."""
        self.sleep(seconds)
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"ManualClock(monotonic={self.monotonic()!r})"
