"""Circuit breaker: a pure state machine and sliding windows, thin sync/async adapters.

:class:`CircuitBreaker` is the entry point; :class:`RedisStateStore` shares its
state across processes. See ``docs/breaker.md``. Everything public is
re-exported here; the modules are private.
"""

from ._breaker import CircuitBreaker
from ._config import BreakerConfig, ExceptionRule, ResultPredicate
from ._protocol import BreakerLike
from ._state import BreakerState, IllegalTransitionError, Trigger, state_diagram
from ._store import RedisStateStore, StateStore, StoreReply, StoreRequest
from ._types import BreakerCallOutcome, BreakerMetrics, BreakerStateChanged, Outcome, SharedState

__all__ = [
    "BreakerCallOutcome",
    "BreakerConfig",
    "BreakerLike",
    "BreakerMetrics",
    "BreakerState",
    "BreakerStateChanged",
    "CircuitBreaker",
    "ExceptionRule",
    "IllegalTransitionError",
    "Outcome",
    "RedisStateStore",
    "ResultPredicate",
    "SharedState",
    "StateStore",
    "StoreReply",
    "StoreRequest",
    "Trigger",
    "state_diagram",
]
