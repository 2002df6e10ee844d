"""Sliding windows of call outcomes: the last N calls, or the last N seconds.

Theory of operation: an outcome is a small bit set, :data:`FAILURE` and/or
:data:`SLOW` (0 is a plain success). Both windows keep running totals
(``calls``, ``failures``, ``slow``) so a rate is two divisions, never a scan.

* :class:`CountWindow` is a ring of ``size`` bytes; recording overwrites the
  oldest outcome and adjusts the totals by the difference.
* :class:`TimeWindow` has one bucket per second (``size`` buckets, reused
  modulo ``size``); moving to a new second expires the buckets that fell out
  of the window, at most ``size`` of them per step, so memory is bounded by
  ``size`` whatever the call rate.

``clean`` is True when recording a plain success cannot change anything
(a full count window holding only successes): the breaker's hot path checks
it without a lock and skips the update. Windows are not thread-safe; the
breaker core calls them under its lock.
"""

from __future__ import annotations

__all__ = ["FAILURE", "SLOW", "CountWindow", "TimeWindow", "Window"]

#: Outcome bits.
FAILURE = 1
SLOW = 2


class CountWindow:
    """The outcomes of the last ``size`` calls."""

    __slots__ = ("_pos", "_ring", "calls", "clean", "failures", "size", "slow")

    def __init__(self, size: int) -> None:
        self.size = size
        self._ring = bytearray(size)
        self._pos = 0
        self.calls = 0
        self.failures = 0
        self.slow = 0
        self.clean = False

    def record(self, outcome: int, now: float) -> None:
        """Add one outcome (bits of FAILURE/SLOW), evicting the oldest when full."""
        del now  # a count window ignores time
        pos = self._pos
        ring = self._ring
        if self.calls == self.size:
            old = ring[pos]
            if old:
                self.failures -= old & FAILURE
                self.slow -= (old & SLOW) >> 1
        else:
            self.calls += 1
        ring[pos] = outcome
        if outcome:
            self.failures += outcome & FAILURE
            self.slow += (outcome & SLOW) >> 1
        pos += 1
        self._pos = 0 if pos == self.size else pos
        self.clean = self.calls == self.size and not self.failures and not self.slow

    def totals(self, now: float) -> tuple[int, int, int]:
        """``(calls, failures, slow)`` currently in the window."""
        del now
        return self.calls, self.failures, self.slow

    def clear(self) -> None:
        """Forget every outcome."""
        self._ring = bytearray(self.size)
        self._pos = self.calls = self.failures = self.slow = 0
        self.clean = False


class TimeWindow:
    """The outcomes of the calls that completed in the last ``size`` seconds.

    Seconds are whole seconds of the breaker clock's monotonic reading; the
    window covers the current second and the ``size - 1`` before it.
    """

    __slots__ = (
        "_b_calls",
        "_b_fail",
        "_b_sec",
        "_b_slow",
        "_head",
        "calls",
        "failures",
        "size",
        "slow",
    )

    clean = False  # every success is counted (minimum_calls needs it)

    def __init__(self, size: int) -> None:
        self.size = size
        self._b_sec = [-1] * size
        self._b_calls = [0] * size
        self._b_fail = [0] * size
        self._b_slow = [0] * size
        self._head = -1  # the newest second that may hold data
        self.calls = 0
        self.failures = 0
        self.slow = 0

    def _advance(self, sec: int) -> None:
        """Make ``sec`` the newest second, expiring the buckets that fall out."""
        head = self._head
        if sec <= head:
            return
        if head >= 0:
            # The buckets that seconds head+1 .. sec reuse hold seconds that
            # are out of the window now; at most ``size`` of them.
            b_sec = self._b_sec
            for s in range(max(head + 1, sec - self.size + 1), sec + 1):
                i = s % self.size
                if b_sec[i] != -1:
                    self.calls -= self._b_calls[i]
                    self.failures -= self._b_fail[i]
                    self.slow -= self._b_slow[i]
                    self._b_calls[i] = self._b_fail[i] = self._b_slow[i] = 0
                    b_sec[i] = -1
        self._head = sec

    def record(self, outcome: int, now: float) -> None:
        """Add one outcome that completed at monotonic time ``now``."""
        sec = int(now)
        if sec != self._head:
            if sec > self._head:
                self._advance(sec)
            elif sec <= self._head - self.size:
                return  # older than the window (a completion that raced a newer one)
        i = sec % self.size
        self._b_sec[i] = sec
        self._b_calls[i] += 1
        self.calls += 1
        if outcome:
            f = outcome & FAILURE
            s = (outcome & SLOW) >> 1
            self._b_fail[i] += f
            self._b_slow[i] += s
            self.failures += f
            self.slow += s

    def totals(self, now: float) -> tuple[int, int, int]:
        """``(calls, failures, slow)`` in the window ending at ``now``."""
        self._advance(int(now))
        return self.calls, self.failures, self.slow

    def clear(self) -> None:
        """Forget every outcome."""
        size = self.size
        self._b_sec = [-1] * size
        self._b_calls = [0] * size
        self._b_fail = [0] * size
        self._b_slow = [0] * size
        self._head = -1
        self.calls = self.failures = self.slow = 0


Window = CountWindow | TimeWindow
