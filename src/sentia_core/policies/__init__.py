"""Call policies: retry, hedge, timeout, bulkheads, rate limiting, chaos, and their pipeline.

See ``docs/policies.md``. Everything public is re-exported here; the modules
themselves are private.
"""

from sentia_core.breaker import BreakerLike

from ._adaptive import (
    AdaptiveBulkhead,
    AdaptiveBulkheadStats,
    AdaptiveEvent,
    AIMDLimit,
    Gradient2Limit,
    LimitAlgorithm,
    VegasLimit,
)
from ._backoff import Backoff, ExponentialBackoff, FixedBackoff, LinearBackoff
from ._budget import BudgetStats, RetryBudget, RetryBudgetLike
from ._bulkhead import Bulkhead, BulkheadEvent, BulkheadStats
from ._chaos import Chaos, ChaosDecision, ChaosEvent, ChaosStats, is_injected
from ._deadline import Deadline, check_deadline, current_deadline, deadline, remaining_time
from ._hedge import (
    Hedge,
    HedgeAttempt,
    HedgeEvent,
    HedgeStats,
    LatencySource,
    LatencyWindow,
    current_hedge_attempt,
)
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
    "AIMDLimit",
    "AdaptiveBulkhead",
    "AdaptiveBulkheadStats",
    "AdaptiveEvent",
    "Algorithm",
    "Attempt",
    "Backoff",
    "BreakerLike",
    "BudgetStats",
    "Bulkhead",
    "BulkheadEvent",
    "BulkheadStats",
    "Chaos",
    "ChaosDecision",
    "ChaosEvent",
    "ChaosStats",
    "Deadline",
    "ExponentialBackoff",
    "FixedBackoff",
    "Gradient2Limit",
    "Hedge",
    "HedgeAttempt",
    "HedgeEvent",
    "HedgeStats",
    "LatencySource",
    "LatencyWindow",
    "LimitAlgorithm",
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
    "VegasLimit",
    "check_deadline",
    "current_deadline",
    "current_hedge_attempt",
    "deadline",
    "http_status",
    "is_injected",
    "is_transient",
    "parse_rate",
    "parse_retry_after",
    "remaining_time",
    "retry",
]
