"""Frozen snapshots and events of a :class:`RateLimiter`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sentia_core._events import Event

__all__ = ["RateLimitBackendFailed", "RateLimitDenied", "RateLimiterStats", "TierStats"]


@dataclass(frozen=True, slots=True)
class TierStats:
    """Counts of one tier's ``hit`` decisions (peeks are not counted).

    Attributes:
        decisions: every hit decided (``allowed + denied``).
        allowed: hits allowed, including fail-open ones.
        denied: hits denied, including fail-closed ones.
    """

    decisions: int
    allowed: int
    denied: int


@dataclass(frozen=True, slots=True)
class RateLimiterStats:
    """A snapshot of a limiter's counters.

    Attributes:
        backend: ``"memory"`` or ``"redis"``.
        algorithm: ``"gcra"`` or ``"sliding_window"``.
        tiers: per-tier counts, by tier name.
        decisions: hits decided over all tiers.
        allowed: hits allowed over all tiers.
        denied: hits denied over all tiers.
        redis_errors: Redis calls that failed (unreachable, timed out, script
            error, or a reply that did not decode); 0 for the memory backend.
        fail_open_decisions: hits allowed because Redis could not be asked.
        fail_closed_decisions: hits denied because Redis could not be asked.
        keys: keys holding state in process memory (memory backend; 0 for Redis,
            whose keys expire on their own TTL).
        evictions: keys dropped from memory while still holding state, because
            a tier reached ``max_keys``.
        expired: idle keys dropped from memory (no effect on decisions).
        corrupt_keys: caller keys found holding foreign data in Redis (another
            type, a string without a TTL, an error reply about the key): each
            was deleted, and no other caller was affected.
        oom_decisions: hits decided read-only because Redis answered ``OOM``
            (allowed or denied from the stored state, the hit not recorded).
    """

    backend: str
    algorithm: str
    tiers: Mapping[str, TierStats]
    decisions: int
    allowed: int
    denied: int
    redis_errors: int
    fail_open_decisions: int
    fail_closed_decisions: int
    keys: int
    evictions: int
    expired: int
    corrupt_keys: int = 0
    oom_decisions: int = 0


@dataclass(frozen=True, slots=True)
class RateLimitDenied(Event):
    """A hit was denied (emitted only when someone listens).

    Attributes:
        tier: the tier name.
        key: the caller key.
        retry_after: seconds until the same hit would be allowed.
    """

    tier: str
    key: str
    retry_after: float


@dataclass(frozen=True, slots=True)
class RateLimitBackendFailed(Event):
    """Redis could not be asked; the decision followed the fail-open/closed rule.

    Attributes:
        tier: the tier name.
        error: the error, as ``"Type: message"``.
        fail_open: whether the limiter allows (True) or denies while Redis fails.
    """

    tier: str
    error: str
    fail_open: bool
