"""A retry budget: retries limited to a fraction of calls (Finagle/Envoy/gRPC style).

Theory of operation: a token bucket shared by every :class:`Retry` that uses
it. Each *call* (first attempts only) deposits ``ratio`` tokens; the bucket
also refills at ``min_per_second`` so that a quiet client can still retry;
each *retry* withdraws one whole token, and the bucket holds at most
``max_tokens``. Over any interval of length ``T`` with ``C`` calls, at most
``max_tokens + ratio * C + min_per_second * T`` retries are granted, so a
fleet of clients cannot multiply an outage by their retry count: once the
bucket is empty the original error surfaces at once.

Deposits sit on the success path of every call, so they are lock-free (one
``next()`` on an ``itertools.count``, see ``_counter.py``). The withdrawing
thread takes the lock, reads how many deposits arrived since its last visit
and settles them into the bucket. The clock is read only on withdrawals.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sentia_core._clock import SYSTEM_CLOCK, Clock
from sentia_core._validate import check_fraction, check_non_negative, check_positive

from ._counter import Counter

__all__ = ["BudgetStats", "RetryBudget", "RetryBudgetLike"]


@runtime_checkable
class RetryBudgetLike(Protocol):
    """What :class:`Retry` needs from a budget (plug in your own, e.g. a shared one)."""

    def deposit(self) -> object:
        """Record one call (first attempt). Called on every call: keep it cheap."""
        ...

    def try_withdraw(self) -> bool:
        """Take permission for one retry; False means the budget is exhausted."""
        ...


@dataclass(frozen=True, slots=True)
class BudgetStats:
    """A snapshot of a :class:`RetryBudget`.

    Attributes:
        deposits: calls recorded since creation.
        granted: retries allowed.
        denied: retries refused because the budget was empty.
        tokens: tokens left at the last withdrawal (each retry costs one).
    """

    deposits: int
    granted: int
    denied: int
    tokens: float


class RetryBudget:
    """Limits retries to ``ratio`` of calls plus ``min_per_second``, shared by many retries.

    Args:
        ratio: tokens each call deposits, i.e. the fraction of calls that may
            be retried in steady state (0..1; default 0.2 = 20 %).
        min_per_second: tokens added per second regardless of traffic, so a
            low-traffic client can still retry (>= 0; default 1.0).
        max_tokens: the bucket's capacity and initial fill, i.e. the largest
            burst of retries (> 0; default 10).
        clock: the clock for the per-second refill.

    Raises:
        ConfigError: naming the offending parameter.
    """

    __slots__ = (
        "_denied",
        "_deposits",
        "_granted",
        "_last",
        "_lock",
        "_monotonic",
        "_seen",
        "_tokens",
        "deposit",
        "max_tokens",
        "min_per_second",
        "ratio",
    )

    def __init__(
        self,
        ratio: float = 0.2,
        *,
        min_per_second: float = 1.0,
        max_tokens: float = 10.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.ratio = check_fraction("ratio", ratio)
        self.min_per_second = check_non_negative("min_per_second", min_per_second)
        self.max_tokens = check_positive("max_tokens", max_tokens)
        self._monotonic = clock.monotonic
        self._lock = threading.Lock()
        self._deposits = Counter()
        #: record one call; a bound C method, so a deposit costs one call.
        self.deposit = self._deposits.incr
        self._seen = 0  # deposits already settled into the bucket
        self._tokens = self.max_tokens
        self._last = self._monotonic()
        self._granted = 0
        self._denied = 0

    def _settle(self, now: float) -> None:
        # Caller holds the lock.
        deposits = self._deposits.value()
        fresh = deposits - self._seen
        self._seen = deposits
        elapsed = now - self._last if now > self._last else 0.0
        self._last = now
        tokens = self._tokens + fresh * self.ratio + elapsed * self.min_per_second
        self._tokens = tokens if tokens < self.max_tokens else self.max_tokens

    def try_withdraw(self) -> bool:
        """Take one token for a retry; returns False (and counts it) when empty."""
        now = self._monotonic()
        with self._lock:
            self._settle(now)
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                self._granted += 1
                return True
            self._denied += 1
            return False

    def stats(self) -> BudgetStats:
        """A frozen snapshot (settles pending deposits first)."""
        now = self._monotonic()
        with self._lock:
            self._settle(now)
            return BudgetStats(
                deposits=self._seen,
                granted=self._granted,
                denied=self._denied,
                tokens=self._tokens,
            )

    def __repr__(self) -> str:
        return (
            f"RetryBudget(ratio={self.ratio!r}, min_per_second={self.min_per_second!r}, "
            f"max_tokens={self.max_tokens!r})"
        )
