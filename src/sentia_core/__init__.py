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
    RateLimitExceeded,
    RegistryError,
    SentiaError,
    SerializationError,
    SqlError,
    UnsafeStatementError,
)

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "BreakerCallOutcome",
    "BreakerMetrics",
    "BreakerState",
    "BreakerStateChanged",
    "BulkheadFullError",
    "CacheError",
    "CallRejectedError",
    "CallTimeoutError",
    "CircuitBreaker",
    "CircuitOpenError",
    "ConfigError",
    "MetricError",
    "MonitorError",
    "NoHealthyInstanceError",
    "RateLimitExceeded",
    "RedisStateStore",
    "RegistryError",
    "Sentia",
    "SentiaError",
    "SerializationError",
    "SqlError",
    "UnsafeStatementError",
    "__version__",
]
