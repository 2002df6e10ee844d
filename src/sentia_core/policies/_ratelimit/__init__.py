"""Multi-tier rate limiting: GCRA or sliding-window counter, in memory or on Redis.

See docs/ratelimit.md. The public names are re-exported by ``sentia_core.policies``.
"""

from ._core import RateDecision
from ._limiter import Algorithm, RateLimiter
from ._rate import Rate, parse_rate
from ._stats import RateLimitBackendFailed, RateLimitDenied, RateLimiterStats, TierStats

__all__ = [
    "Algorithm",
    "Rate",
    "RateDecision",
    "RateLimitBackendFailed",
    "RateLimitDenied",
    "RateLimiter",
    "RateLimiterStats",
    "TierStats",
    "parse_rate",
]
