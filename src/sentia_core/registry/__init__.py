"""Service registry client: registration, discovery, health checks, balancing, failover.

See ``docs/registry.md``. The one class most code needs is
:class:`ServiceRegistry`; the rest are its value objects, strategies and
backends.
"""

from sentia_core.breaker import BreakerLike

from ._backend import MemoryBackend, RegistryBackend, Subscription
from ._balancers import (
    STRATEGIES,
    Balancer,
    LeastOutstanding,
    PowerOfTwoChoices,
    RandomChoice,
    RoundRobin,
    SmoothWeightedRoundRobin,
)
from ._health import CallableCheck, HealthCheck, HealthTracker, HttpCheck, TcpCheck
from ._model import (
    BackendStatusChanged,
    HealthStatus,
    Instance,
    InstanceDeregistered,
    InstanceEjected,
    InstanceHealthChanged,
    InstanceRegistered,
    InstanceStats,
    LeaseLost,
    RegistryEvent,
    RegistryStats,
    ServiceStats,
)
from ._outlier import OutlierPolicy
from ._redis_backend import RedisBackend
from ._registry import ServiceRegistry

__all__ = [
    "STRATEGIES",
    "BackendStatusChanged",
    "Balancer",
    "BreakerLike",
    "CallableCheck",
    "HealthCheck",
    "HealthStatus",
    "HealthTracker",
    "HttpCheck",
    "Instance",
    "InstanceDeregistered",
    "InstanceEjected",
    "InstanceHealthChanged",
    "InstanceRegistered",
    "InstanceStats",
    "LeaseLost",
    "LeastOutstanding",
    "MemoryBackend",
    "OutlierPolicy",
    "PowerOfTwoChoices",
    "RandomChoice",
    "RedisBackend",
    "RegistryBackend",
    "RegistryEvent",
    "RegistryStats",
    "RoundRobin",
    "ServiceRegistry",
    "ServiceStats",
    "SmoothWeightedRoundRobin",
    "Subscription",
    "TcpCheck",
]
