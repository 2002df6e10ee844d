"""Reference models: the two algorithms in exact rational arithmetic, no floats, no cleverness.

The implementations under test use floats and a stored-state trick (GCRA's
single ``tat``); these models say the same thing the long way round, so a
property test can compare decision by decision.
"""

from __future__ import annotations

import math
from fractions import Fraction


class TokenBucketModel:
    """GCRA's meaning: a bucket of ``burst`` tokens refilled at ``limit/period`` per second."""

    def __init__(self, limit: int, period: float, burst: int) -> None:
        self.rate = Fraction(limit) / Fraction(period)
        self.capacity = Fraction(burst)
        self.tokens = Fraction(burst)
        self.last: Fraction | None = None

    def level(self, now: Fraction) -> Fraction:
        """Tokens available at ``now``."""
        if self.last is None:
            return self.capacity
        return min(self.capacity, self.tokens + (now - self.last) * self.rate)

    def allows(self, now: Fraction, cost: int) -> bool:
        return self.level(now) >= cost

    def hit(self, now: Fraction, cost: int) -> bool:
        allowed = self.allows(now, cost)
        if allowed:
            self.tokens = self.level(now) - cost
            self.last = now
        return allowed

    def remaining(self, now: Fraction) -> int:
        return math.floor(self.level(now))

    def retry_after(self, now: Fraction, cost: int) -> Fraction:
        """Seconds until ``cost`` tokens are available (0 if they are)."""
        missing = cost - self.level(now)
        return max(Fraction(0), missing / self.rate)


class SlidingWindowModel:
    """The sliding-window counter's meaning: per-window counts, previous one weighted."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = Fraction(period)
        self.counts: dict[int, int] = {}

    def _parts(self, now: Fraction) -> tuple[int, Fraction]:
        index = math.floor(now / self.period)
        return index, now - index * self.period

    def estimate(self, now: Fraction) -> Fraction:
        index, elapsed = self._parts(now)
        prev = self.counts.get(index - 1, 0)
        curr = self.counts.get(index, 0)
        return prev * (1 - elapsed / self.period) + curr

    def allows(self, now: Fraction, cost: int) -> bool:
        return self.estimate(now) + cost <= self.limit

    def hit(self, now: Fraction, cost: int) -> bool:
        allowed = self.allows(now, cost)
        if allowed:
            index, _ = self._parts(now)
            self.counts[index] = self.counts.get(index, 0) + cost
        return allowed

    def remaining(self, now: Fraction) -> int:
        return max(0, math.floor(self.limit - self.estimate(now)))

    def previous_count(self, now: Fraction) -> int:
        index, _ = self._parts(now)
        return self.counts.get(index - 1, 0)
