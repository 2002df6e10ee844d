"""Every error sentia_core raises, in one tree.

Catch :class:`SentiaError` to catch anything the library raises on purpose.
Where a builtin exception already carries the meaning, the error subclasses it
too, so code written against the builtin keeps working (``except ValueError``
catches a :class:`ConfigError`, ``except TimeoutError`` catches a
:class:`CallTimeoutError`).

::

    SentiaError
    ├── ConfigError (ValueError)            invalid configuration, names .parameter
    │   └── NotCallableError (TypeError)    a function was required (decorators, hooks)
    ├── CallRejectedError                   a policy refused to run the call
    │   ├── CircuitOpenError                .breaker, .retry_after
    │   ├── RateLimitExceeded               .tier, .key, .retry_after
    │   └── BulkheadFullError               .bulkhead
    ├── CallTimeoutError (TimeoutError)     .timeout
    ├── IllegalTransitionError (RuntimeError)  breaker: a transition the table forbids
    ├── CacheError
    │   ├── SerializationError (TypeError)  a value the codec cannot encode
    │   ├── InvalidKeyError (TypeError)     cache: a key that cannot be normalized
    │   ├── InvalidPatternError (ValueError)   cache: a malformed glob
    │   └── PayloadError (ValueError)       cache: a stored payload was refused
    │       ├── CorruptPayloadError         (counted as a miss, never raised to get())
    │       └── UntrustedPayloadError       unsigned or tampered pickle
    ├── RegistryError
    │   └── NoHealthyInstanceError          .service
    ├── SqlError
    │   ├── UnsafeStatementError            refused to EXPLAIN/run a statement
    │   ├── StatementTypeError (TypeError)  sql: record() given a non-SQL object
    │   └── WorkloadFormatError (ValueError)   sql: an unreadable workload file
    ├── MonitorError
    │   ├── MetricError (ValueError)        bad metric name, labels or kind
    │   ├── ExpressionError                 monitor: a bad alert expression
    │   └── NotificationError               monitor: a notifier failed (counted)
    └── BackendError                        a backend (Redis, a database) failed;
        ├── BackendUnavailableError         .__cause__ is the driver's error
        └── L2WriteError                    cache: Redis refused part of a write

The errors marked with a subsystem live in that subsystem's package (for
example ``sentia_core.cache.InvalidKeyError``); the rest are defined here.

Redis and database errors are translated into :class:`BackendError` at the
boundary where they must reach the caller at all; most components fail open
and never raise them (see DESIGN.md, rule 5).
"""

from __future__ import annotations

from ._secrets import mask_text

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "BulkheadFullError",
    "CacheError",
    "CallRejectedError",
    "CallTimeoutError",
    "CircuitOpenError",
    "ConfigError",
    "MetricError",
    "MonitorError",
    "NoHealthyInstanceError",
    "NotCallableError",
    "RateLimitExceeded",
    "RegistryError",
    "SentiaError",
    "SerializationError",
    "SqlError",
    "UnsafeStatementError",
]


class SentiaError(Exception):
    """Root of every error sentia_core raises on purpose."""


class ConfigError(SentiaError, ValueError):
    """Invalid configuration, raised at construction time.

    The message never carries a secret: credentials inside any URL in it are
    masked (``redis://:***@host/0``), and a value longer than 200 characters is
    cut, so a hostile setting cannot flood a log.

    Attributes:
        parameter: the name of the offending parameter or configuration key.
        value: the value that was rejected (a string with a credential-bearing
            URL is kept masked).
        reason: why it was rejected.
    """

    def __init__(self, parameter: str, value: object, reason: str) -> None:
        if isinstance(value, str) and "://" in value:
            value = mask_text(value)
        self.parameter = parameter
        self.value = value
        self.reason = reason
        try:
            shown = repr(value)
        except Exception:  # a value whose repr raises must not hide the real error
            shown = f"<{type(value).__name__}>"
        if len(shown) > 200:
            shown = shown[:180] + f"...<{len(shown)} chars>"
        what = parameter if value is None else f"{parameter}={shown}"
        super().__init__(mask_text(f"invalid {what}: {reason}"))


class NotCallableError(ConfigError, TypeError):
    """A non-callable where a function is required: decorating one, or a hook.

    Both ``except ConfigError`` (it names ``.parameter``) and ``except
    TypeError`` (what Python raises for a non-callable) catch it.
    """


class CallRejectedError(SentiaError):
    """A policy refused to run the call at all (nothing was attempted)."""


class CircuitOpenError(CallRejectedError):
    """The circuit breaker is open (or half-open and full) and rejected the call.

    Attributes:
        breaker: the breaker's name.
        retry_after: seconds until the breaker will admit a trial call, or 0.0
            when unknown (forced open, half-open at capacity).
    """

    def __init__(self, breaker: str, retry_after: float = 0.0, state: str = "open") -> None:
        # Raised on the hot path of an outage: keep construction cheap and format
        # the message only when someone reads it.
        super().__init__(breaker, retry_after, state)
        self.breaker = breaker
        self.retry_after = retry_after
        self.state = state

    def __str__(self) -> str:
        return f"circuit {self.breaker!r} is {self.state}; retry after {self.retry_after:.3f}s"


class RateLimitExceeded(CallRejectedError):
    """A rate limit denied the call.

    Attributes:
        tier: the rate-limit tier's name.
        key: the caller key the limit applied to.
        retry_after: seconds until the same call would be allowed.
    """

    def __init__(self, tier: str, key: str, retry_after: float) -> None:
        self.tier = tier
        self.key = key
        self.retry_after = retry_after
        super().__init__(
            f"rate limit {tier!r} exceeded for key {key!r}; retry after {retry_after:.3f}s"
        )


class BulkheadFullError(CallRejectedError):
    """The bulkhead has no free slot and no room (or time) left to wait."""

    def __init__(self, bulkhead: str, message: str = "") -> None:
        self.bulkhead = bulkhead
        super().__init__(message or f"bulkhead {bulkhead!r} is full")


class CallTimeoutError(SentiaError, TimeoutError):
    """A call did not finish within its deadline.

    Attributes:
        timeout: the deadline in seconds.
    """

    def __init__(self, timeout: float, message: str = "") -> None:
        self.timeout = timeout
        super().__init__(message or f"call timed out after {timeout:.3f}s")


class CacheError(SentiaError):
    """Base of cache errors (most cache faults are counted, not raised)."""


class SerializationError(CacheError, TypeError):
    """A value the configured serializer cannot encode (raised at ``set`` time)."""


class RegistryError(SentiaError):
    """Base of service-registry errors."""


class NoHealthyInstanceError(RegistryError):
    """No instance of the service is available to take the call.

    Attributes:
        service: the service name.
    """

    def __init__(self, service: str, message: str = "") -> None:
        self.service = service
        super().__init__(message or f"no healthy instance of service {service!r}")


class SqlError(SentiaError):
    """Base of query-optimizer errors."""


class UnsafeStatementError(SqlError):
    """The optimizer refused to EXPLAIN or execute a statement (it changes data)."""


class MonitorError(SentiaError):
    """Base of performance-monitor errors."""


class MetricError(MonitorError, ValueError):
    """A bad metric name, label set, or a name reused with another kind."""


class BackendError(SentiaError):
    """A backend (Redis, a database) failed; the driver's error is ``__cause__``."""


class BackendUnavailableError(BackendError):
    """The backend could not be reached at all."""
