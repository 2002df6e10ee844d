"""Call policies: retry, timeout, bulkhead, rate limiting, and the pipeline composing them.

See ``docs/policies.md``. Everything public is re-exported here; the modules
themselves are private.
"""

from sentia_core.breaker import BreakerLike

from ._backoff import Backoff, ExponentialBackoff, FixedBackoff, LinearBackoff
from ._budget import BudgetStats, RetryBudget, RetryBudgetLike
from ._bulkhead import Bulkhead, BulkheadEvent, BulkheadStats
from ._deadline import Deadline, check_deadline, current_deadline, deadline, remaining_time
from ._outcomes import OutcomeRules, http_status, is_transient
from ._policy import (
    Policy,
    PolicyEvent,
    PolicyStats,
    RateDecisionLike,
    RateLimiterLike,
)
from ._ratelimit import (
    Algorithm,
    Rate,
    RateDecision,
    RateLimitBackendFailed,
    RateLimitDenied,
    RateLimiter,
    RateLimiterStats,
    TierStats,
    parse_rate,
)
from ._retry import Attempt, Retry, RetryDecision, RetryEvent, RetryStats, retry
from ._retry_after import parse_retry_after
from ._timeout import Timeout, TimeoutEvent, TimeoutStats

__all__ = [
    "Algorithm",
    "Attempt",
    "Backoff",
    "BreakerLike",
    "BudgetStats",
    "Bulkhead",
    "BulkheadEvent",
    "BulkheadStats",
    "Deadline",
    "ExponentialBackoff",
    "FixedBackoff",
    "LinearBackoff",
    "OutcomeRules",
    "Policy",
    "PolicyEvent",
    "PolicyStats",
    "Rate",
    "RateDecision",
    "RateDecisionLike",
    "RateLimitBackendFailed",
    "RateLimitDenied",
    "RateLimiter",
    "RateLimiterLike",
    "RateLimiterStats",
    "Retry",
    "RetryBudget",
    "RetryBudgetLike",
    "RetryDecision",
    "RetryEvent",
    "RetryStats",
    "TierStats",
    "Timeout",
    "TimeoutEvent",
    "TimeoutStats",
    "check_deadline",
    "current_deadline",
    "deadline",
    "http_status",
    "is_transient",
    "parse_rate",
    "parse_retry_after",
    "remaining_time",
    "retry",
]
