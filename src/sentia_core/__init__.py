"""sentia_core: resilience and performance for Python services, embedded.

The public surface is re-exported here; everything else lives in private
modules. See DESIGN.md for the architecture and ``docs/`` for each component.
"""

from ._facade import Sentia
from ._version import __version__
from .breaker import (
    BreakerCallOutcome,
    BreakerMetrics,
    BreakerState,
    BreakerStateChanged,
    CircuitBreaker,
    RedisStateStore,
)
from .cache import AsyncTieredCache, TieredCache
from .errors import (
    BackendError,
    BackendUnavailableError,
    BulkheadFullError,
    CacheError,
    CallRejectedError,
    CallTimeoutError,
    CircuitOpenError,
    ConfigError,
    MetricError,
    MonitorError,
    NoHealthyInstanceError,
    NotCallableError,
    RateLimitExceeded,
    RegistryError,
    SentiaError,
    SerializationError,
    SqlError,
    UnsafeStatementError,
)
from .monitor import AlertRule, PerformanceMonitor
from .policies import (
    AdaptiveBulkhead,
    Bulkhead,
    Chaos,
    ExponentialBackoff,
    FixedBackoff,
    Hedge,
    LinearBackoff,
    Policy,
    RateDecision,
    RateLimiter,
    Retry,
    RetryBudget,
    Timeout,
    retry,
)
from .registry import Instance, ServiceRegistry
from .sql import QueryOptimizer

__all__ = [
    "AdaptiveBulkhead",
    "AlertRule",
    "AsyncTieredCache",
    "BackendError",
    "BackendUnavailableError",
    "BreakerCallOutcome",
    "BreakerMetrics",
    "BreakerState",
    "BreakerStateChanged",
    "Bulkhead",
    "BulkheadFullError",
    "CacheError",
    "CallRejectedError",
    "CallTimeoutError",
    "Chaos",
    "CircuitBreaker",
    "CircuitOpenError",
    "ConfigError",
    "ExponentialBackoff",
    "FixedBackoff",
    "Hedge",
    "Instance",
    "LinearBackoff",
    "MetricError",
    "MonitorError",
    "NoHealthyInstanceError",
    "NotCallableError",
    "PerformanceMonitor",
    "Policy",
    "QueryOptimizer",
    "RateDecision",
    "RateLimitExceeded",
    "RateLimiter",
    "RedisStateStore",
    "RegistryError",
    "Retry",
    "RetryBudget",
    "Sentia",
    "SentiaError",
    "SerializationError",
    "ServiceRegistry",
    "SqlError",
    "TieredCache",
    "Timeout",
    "UnsafeStatementError",
    "__version__",
    "retry",
]
