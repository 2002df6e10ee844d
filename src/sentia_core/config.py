"""One typed, validated configuration for every component.

Theory of operation: each section is a frozen dataclass whose fields carry
their documentation, unit and bounds in ``field(metadata=...)``. One generic
loader (:func:`load`) walks a nested mapping — from a dict, a TOML file or
``SENTIA_*`` environment variables — against those classes, coerces strings
(``"5min"``, ``"100MB"``, ``"true"``), rejects unknown keys and names the
offending dotted key and value in every error. :func:`reference_markdown`
renders the same metadata as ``docs/configuration.md`` (a test keeps the two
equal), so the reference cannot drift from the code.

Defaults are the original deployment's settings: breaker 5 failures / 60 s,
rate tiers 1000/50/200 per 15 min, cache 100 MB / 10k items / 5 min L1 and
1 h L2, slow query 1 s, sample rate 0.1, auto-index threshold 100/hour and at
most 10 indexes per table, alert thresholds CPU 70/90 %, memory 80/95 %,
response time 2/5 s, error rate 5/10 %, cache hit rate below 80/60 %.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from ._secrets import mask, mask_url
from ._validate import MAX_SECONDS, parse_duration, parse_size
from .errors import ConfigError

__all__ = [
    "AlertsConfig",
    "BreakerConfig",
    "CacheConfig",
    "MonitorAuthConfig",
    "MonitorConfig",
    "RegistryConfig",
    "SentiaConfig",
    "ServiceConfig",
    "SqlConfig",
    "load",
    "load_env",
    "load_file",
    "parse_duration",
    "parse_size",
    "reference_markdown",
]

T = TypeVar("T")

#: Upper bound of every integer setting without a tighter documented one.
MAX_INTEGER = 2**53
#: Longest string accepted for a free-text setting (URLs, addresses).
MAX_TEXT = 2048
_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,100}\Z")


class _Section:
    """Base of every section: construction coerces and validates each field.

    A section built in Python (``SentiaConfig(cache=CacheConfig(ttl="5min"))``)
    is checked exactly like one loaded from a file, so ``Sentia(config)`` never
    holds an unchecked value.
    """

    __slots__ = ()

    def __post_init__(self) -> None:
        _normalize(self)

    def __repr__(self) -> str:
        return _section_repr(self)


def _opt(
    default: Any,
    doc: str,
    *,
    unit: str = "",
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    choices: tuple[str, ...] = (),
    name: bool = False,
    secret: bool = False,
) -> Any:
    """A documented setting: unit, bounds, allowed ``choices``, ``name`` (a key-safe
    identifier) and ``secret`` (masked in every repr and error message)."""
    meta = {
        "doc": doc,
        "unit": unit,
        "minimum": minimum,
        "maximum": maximum,
        "exclusive_minimum": exclusive_minimum,
        "choices": choices,
        "name": name,
        "secret": secret,
    }
    if isinstance(default, type):  # a section: built when needed (validation runs then)
        return field(default_factory=default, metadata=meta)
    if isinstance(default, (dict, list)) or dataclasses.is_dataclass(default):
        proto = default
        return field(default_factory=lambda: _copy(proto), metadata=meta)
    return field(default=default, metadata=meta)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value


@dataclass(frozen=True, slots=True, repr=False)
class BreakerConfig(_Section):
    """Defaults for every circuit breaker (``[breaker]``); ``[breakers.NAME]`` overrides."""

    consecutive_failures: int | None = _opt(
        5, "Open after this many failures in a row (the original 'failureThreshold').", minimum=1,
        maximum=1_000_000,
    )  # fmt: skip
    failure_rate_threshold: float = _opt(
        0.5, "Open when this fraction of calls in the window failed.", minimum=0, maximum=1
    )
    minimum_calls: int = _opt(10, "Calls in the window before rates count.", minimum=1,
                              maximum=100_000)  # fmt: skip
    window_type: str = _opt("count", "'count' (last N calls) or 'time' (last N seconds).",
                            choices=("count", "time"))  # fmt: skip
    window_size: int = _opt(100, "Calls (count window) or seconds (time window); memory grows "
                            "with it, hence the bound.", minimum=1, maximum=100_000)  # fmt: skip
    slow_call_duration: float | None = _opt(
        None, "A call slower than this counts as slow (off when unset).", unit="seconds",
        minimum=0, exclusive_minimum=True,
    )  # fmt: skip
    slow_call_rate_threshold: float = _opt(
        1.0, "Open when this fraction of calls was slow.", minimum=0, maximum=1
    )
    reset_timeout: float = _opt(
        60.0, "Time OPEN before a trial call.", unit="seconds", minimum=0, exclusive_minimum=True
    )
    reset_timeout_multiplier: float = _opt(
        1.0, "Growth of reset_timeout on repeated trips (1 = fixed).", minimum=1, maximum=100
    )
    max_reset_timeout: float = _opt(
        600.0, "Cap on the grown reset_timeout.", unit="seconds", minimum=0, exclusive_minimum=True
    )
    half_open_max_calls: int = _opt(1, "Concurrent trial calls in HALF_OPEN.", minimum=1,
                                    maximum=10_000)  # fmt: skip
    shared: bool = _opt(False, "Share breaker state through Redis (needs redis_url).")

    def __post_init__(self) -> None:
        _normalize(self)
        # The breaker's own cross-field rules (minimum_calls <= a count window,
        # max_reset_timeout >= reset_timeout), run now instead of at app.breaker().
        from .breaker._config import BreakerConfig as Settings

        Settings.build(
            "config",
            failure_rate_threshold=self.failure_rate_threshold,
            consecutive_failures=self.consecutive_failures,
            minimum_calls=self.minimum_calls,
            window_type=self.window_type,
            window_size=self.window_size,
            slow_call_duration=self.slow_call_duration,
            slow_call_rate_threshold=self.slow_call_rate_threshold,
            reset_timeout=self.reset_timeout,
            reset_timeout_multiplier=self.reset_timeout_multiplier,
            max_reset_timeout=self.max_reset_timeout,
            half_open_max_calls=self.half_open_max_calls,
            success_threshold=None,
            half_open_timeout=None,
            record_exceptions=(Exception,),
            ignore_exceptions=(),
            failure_predicate=None,
            history_size=0,
        )


@dataclass(frozen=True, slots=True, repr=False)
class ServiceConfig(_Section):
    """One outbound dependency (``[services.NAME]``), used by ``@app.protect(NAME)``."""

    url: str | None = _opt(None, "Base URL of the dependency (informational, for reports; "
                           "credentials in it are masked).")  # fmt: skip
    timeout: float | None = _opt(
        None, "Deadline per call.", unit="seconds", minimum=0, exclusive_minimum=True
    )
    retries: int = _opt(0, "Retries after the first attempt.", minimum=0, maximum=100)
    rate_limit: str | None = _opt(None, "Rate-limit tier applied to calls (a key of rate_limits).")
    max_concurrent: int | None = _opt(None, "Bulkhead: concurrent calls allowed.", minimum=1,
                                      maximum=1_000_000)  # fmt: skip
    # -- what protect() handles and how it times out (issue 15; docs/policies.md) --
    timeout_mode: str = _opt(
        "deadline",
        "Sync timeouts: 'deadline' (inline, cooperative) or 'thread' (a worker).",
        choices=("deadline", "thread"),
    )
    retry_on: tuple[str, ...] = _opt(
        ("transient",), "Errors retried: 'transient', 'http:NNN' or exception class names."
    )
    record_exceptions: tuple[str, ...] = _opt(
        ("Exception",), "Errors the breaker counts as failures (same names as retry_on)."
    )
    ignore_exceptions: tuple[str, ...] = _opt(
        ("CallRejectedError", "http:429"), "Errors the breaker does not count at all."
    )
    fallback_on: tuple[str, ...] = _opt(
        ("unavailable",),
        "Errors the fallback replaces ('unavailable': transient, rejections, 5xx).",
    )

    def __post_init__(self) -> None:
        from .policies._outcomes import check_rule_name

        _normalize(self)  # coerce and check every field, as every section does
        if self.timeout_mode not in ("deadline", "thread"):
            raise ConfigError("timeout_mode", self.timeout_mode, "must be 'deadline' or 'thread'")
        for name in ("retry_on", "record_exceptions", "ignore_exceptions", "fallback_on"):
            for i, rule in enumerate(getattr(self, name)):
                check_rule_name(f"{name}[{i}]", rule)


@dataclass(frozen=True, slots=True, repr=False)
class CacheConfig(_Section):
    """The default TieredCache (``[cache]``)."""

    max_items: int = _opt(10_000, "L1 capacity in entries (0 turns L1 off).", minimum=0,
                          maximum=100_000_000)  # fmt: skip
    max_bytes: int = _opt(100 * 1024**2, "L1 capacity in bytes (keys and values).", unit="bytes",
                          minimum=1, maximum=1024**4)  # fmt: skip
    ttl: float = _opt(300.0, "Default L1 time to live.", unit="seconds", minimum=0,
                      exclusive_minimum=True)  # fmt: skip
    redis_ttl: float = _opt(3600.0, "Default L2 (Redis) time to live.", unit="seconds", minimum=0,
                            exclusive_minimum=True)  # fmt: skip
    compress_threshold: int = _opt(1024, "Compress values larger than this.", unit="bytes",
                                   minimum=0, maximum=1024**3)  # fmt: skip
    namespace: str = _opt("cache", "Key prefix; two namespaces never collide.", name=True)
    stale_ttl: float = _opt(0.0, "Serve an expired value this long when the loader fails.",
                            unit="seconds", minimum=0)  # fmt: skip
    serializer: str = _opt("json", "How values are stored in Redis; 'pickle' needs a secret.",
                           choices=("json", "pickle"))  # fmt: skip
    secret: str | None = _opt(None, "HMAC-SHA256 key signing every stored payload (at least "
                              "16 bytes; required for pickle). A secret: always shown as ***.",
                              secret=True)  # fmt: skip

    def __post_init__(self) -> None:
        _normalize(self)
        from .cache._codec import Codec

        Codec(serializer=self.serializer, secret=self.secret)  # type: ignore[arg-type]  # its rules, now


@dataclass(frozen=True, slots=True, repr=False)
class RegistryConfig(_Section):
    """The ServiceRegistry client (``[registry]``)."""

    ttl: float = _opt(30.0, "Lease of a registered instance.", unit="seconds", minimum=0,
                      exclusive_minimum=True)  # fmt: skip
    heartbeat_interval: float = _opt(10.0, "Heartbeat period.", unit="seconds", minimum=0,
                                     exclusive_minimum=True)  # fmt: skip
    health_check_interval: float = _opt(30.0, "Active health-check period.", unit="seconds",
                                        minimum=0, exclusive_minimum=True)  # fmt: skip


@dataclass(frozen=True, slots=True, repr=False)
class SqlConfig(_Section):
    """The QueryOptimizer (``[sql]``)."""

    slow_query_threshold: float = _opt(1.0, "Queries slower than this are reported.",
                                       unit="seconds", minimum=0)  # fmt: skip
    sample_rate: float = _opt(0.1, "Fraction of calls whose call site is sampled.", minimum=0,
                              maximum=1)  # fmt: skip
    nplusone_threshold: int = _opt(5, "Same-shape SELECTs per unit of work before N+1.",
                                   minimum=2, maximum=1_000_000)  # fmt: skip
    auto_index: bool = _opt(False, "Create verified indexes automatically (opt-in).")
    auto_index_threshold: int = _opt(100, "Calls per hour before a suggestion is applied.",
                                     minimum=1)  # fmt: skip
    max_indexes_per_table: int = _opt(10, "Never suggest past this many indexes per table.",
                                      minimum=1, maximum=1000)  # fmt: skip


@dataclass(frozen=True, slots=True, repr=False)
class AlertsConfig(_Section):
    """Default alert thresholds (``[monitor.alerts]``); set a pair to remove its rule."""

    cpu_warning: float = _opt(70.0, "CPU usage warning.", unit="percent", minimum=0, maximum=100)
    cpu_critical: float = _opt(90.0, "CPU usage critical.", unit="percent", minimum=0, maximum=100)
    memory_warning: float = _opt(80.0, "Memory usage warning.", unit="percent", minimum=0,
                                 maximum=100)  # fmt: skip
    memory_critical: float = _opt(95.0, "Memory usage critical.", unit="percent", minimum=0,
                                  maximum=100)  # fmt: skip
    response_time_warning: float = _opt(2.0, "Request time p95 warning.", unit="seconds",
                                        minimum=0)  # fmt: skip
    response_time_critical: float = _opt(5.0, "Request time p95 critical.", unit="seconds",
                                         minimum=0)  # fmt: skip
    error_rate_warning: float = _opt(0.05, "Error rate warning.", minimum=0, maximum=1)
    error_rate_critical: float = _opt(0.10, "Error rate critical.", minimum=0, maximum=1)
    cache_hit_rate_warning: float = _opt(0.80, "Warn when the hit rate falls below.", minimum=0,
                                         maximum=1)  # fmt: skip
    cache_hit_rate_critical: float = _opt(0.60, "Critical when the hit rate falls below.",
                                          minimum=0, maximum=1)  # fmt: skip
    disabled: tuple[str, ...] = _opt((), "Default rules to leave out, by name.")


@dataclass(frozen=True, slots=True, repr=False)
class MonitorAuthConfig(_Section):
    """Credentials of the monitor's endpoints (``[monitor.auth]``); unset = no auth.

    ``SENTIA_MONITOR__AUTH__TOKEN`` and the like set them from the environment.
    """

    token: str | None = _opt(None, "Bearer token every endpoint accepts.", secret=True)
    username: str | None = _opt(None, "HTTP basic user every endpoint accepts.")
    password: str | None = _opt(None, "HTTP basic password (with username).", secret=True)
    metrics_token: str | None = _opt(None, "Bearer token for /metrics and /metrics.json only.",
                                     secret=True)  # fmt: skip
    metrics_username: str | None = _opt(None, "HTTP basic user for /metrics only.")
    metrics_password: str | None = _opt(None, "HTTP basic password for /metrics only.",
                                        secret=True)  # fmt: skip
    pages_token: str | None = _opt(None, "Bearer token for the pages only.", secret=True)
    pages_username: str | None = _opt(None, "HTTP basic user for the pages only.")
    pages_password: str | None = _opt(None, "HTTP basic password for the pages only.",
                                      secret=True)  # fmt: skip
    open_liveness: bool = _opt(False, "Leave /health/live open (orchestrator probes).")

    @property
    def configured(self) -> bool:
        """Whether any credential is set."""
        return any(
            getattr(self, f.name) is not None
            for f in dataclasses.fields(self)
            if f.name != "open_liveness"
        )


@dataclass(frozen=True, slots=True, repr=False)
class MonitorConfig(_Section):
    """The PerformanceMonitor (``[monitor]``)."""

    enabled: bool = _opt(
        True, "Run the sampler (metrics, alert rules) from Sentia(); false for tests."
    )
    sample_interval: float = _opt(10.0, "System sampling and alert evaluation period.",
                                  unit="seconds", minimum=0, exclusive_minimum=True)  # fmt: skip
    retention: float = _opt(7 * 86400.0, "History kept.", unit="seconds", minimum=0,
                            exclusive_minimum=True)  # fmt: skip
    http_host: str = _opt("127.0.0.1", "Address `sentia serve` binds (loopback by default).",
                          name=True)  # fmt: skip
    http_port: int = _opt(9464, "Port `sentia serve` binds (0 = any free port).", minimum=0,
                          maximum=65535)  # fmt: skip
    system_metrics: bool = _opt(True, "Sample CPU, memory, disk and network with psutil.")
    alerts: AlertsConfig = _opt(AlertsConfig, "Default alert thresholds.")
    auth: MonitorAuthConfig = _opt(MonitorAuthConfig, "Endpoint credentials.")
    tls_certfile: str | None = _opt(None, "PEM certificate: `app.serve()` speaks HTTPS.")
    tls_keyfile: str | None = _opt(None, "PEM private key of tls_certfile.")
    allow_unauthenticated: bool = _opt(
        False, "Allow `app.serve()` on a non-loopback address without auth."
    )
    http_max_connections: int = _opt(64, "Open connections the server accepts at most.",
                                     minimum=1, maximum=100_000)  # fmt: skip
    http_header_timeout: float = _opt(10.0, "Time a client has to send a whole request.",
                                      unit="seconds", minimum=0, exclusive_minimum=True,
                                      maximum=3600)  # fmt: skip

    def __post_init__(self) -> None:
        _normalize(self)  # coerce and check every field, as every section does
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ConfigError(
                "tls_keyfile", self.tls_keyfile, "tls_certfile and tls_keyfile go together"
            )


@dataclass(frozen=True, slots=True, repr=False)
class SentiaConfig(_Section):
    """Everything ``Sentia`` builds (the top level of the file)."""

    redis_url: str | None = _opt(
        None, "Redis for shared state (redis://, rediss://, unix://); unset = embedded. "
        "Checked at load time (scheme, host, port 1..65535, database number); its password "
        "is masked in every repr, error and log line.",
    )  # fmt: skip
    namespace: str = _opt("sentia", "Prefix of every Redis key this application writes "
                          "(letters, digits and `_.:-`, at most 100).", name=True)  # fmt: skip
    breaker: BreakerConfig = _opt(BreakerConfig, "Defaults for every breaker.")
    breakers: dict[str, BreakerConfig] = _opt({}, "Per-name breaker settings.")
    services: dict[str, ServiceConfig] = _opt({}, "Outbound dependencies by name.")
    rate_limits: dict[str, str] = _opt(
        {"api": "1000/15min", "auth": "50/15min", "admin": "200/15min"},
        "Rate-limit tiers: name = 'N/period' (merged over the defaults).",
    )
    cache: CacheConfig = _opt(CacheConfig, "The default cache.")
    registry: RegistryConfig = _opt(RegistryConfig, "The service registry client.")
    sql: SqlConfig = _opt(SqlConfig, "The query optimizer.")
    monitor: MonitorConfig = _opt(MonitorConfig, "The performance monitor.")

    def __post_init__(self) -> None:
        _normalize(self)
        _check_references(self)


# ---------------------------------------------------------------------------- loading


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    found = _HINTS.get(cls)
    if found is None:
        found = _HINTS[cls] = get_type_hints(cls, globalns=vars(sys.modules[__name__]))
    return found


def _is_optional(tp: Any) -> tuple[bool, Any]:
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return True, args[0]
    return False, tp


def _normalize(section: Any) -> None:
    """Coerce and check every field of ``section`` in place (it is frozen: setattr by hand)."""
    hints = _hints(type(section))
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        coerced = _coerce(f.name, hints[f.name], value, f.metadata)
        if coerced is not value:
            object.__setattr__(section, f.name, coerced)


def _coerce(key: str, tp: Any, value: Any, meta: Mapping[str, Any]) -> Any:
    try:
        return _coerce_value(key, tp, value, meta)
    except ConfigError as exc:
        if meta.get("secret"):
            raise ConfigError(exc.parameter, mask(exc.value), exc.reason) from None
        raise


def _coerce_value(key: str, tp: Any, value: Any, meta: Mapping[str, Any]) -> Any:
    optional, inner = _is_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.lower() in ("", "none")):
        if optional:
            return None
        raise ConfigError(key, value, "must be set")
    tp = inner
    origin = get_origin(tp)
    unit = meta.get("unit", "")
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _build(tp, value, key)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(key, value, "must be a table of name = value")
        _, vt = get_args(tp)
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or not _NAME.match(k):
                raise ConfigError(
                    f"{key}.{k}", v, "names are letters, digits and _.:- (at most 100)"
                )
            out[k] = _coerce(f"{key}.{k}", vt, v, {})
        return out
    if origin is tuple:
        et = get_args(tp)[0]
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, value, "must be a list")
        return tuple(_coerce(f"{key}[{i}]", et, v, {}) for i, v in enumerate(value))
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(key, value, "must be true or false")
    if tp is str:
        return _text(key, value, meta)
    if tp is int:
        number: float = parse_size(key, value) if unit == "bytes" else _number(key, value, int)
    elif tp is float:
        number = parse_duration(key, value) if unit == "seconds" else _number(key, value, float)
    else:  # a type this loader does not coerce (a callable, an exception class): kept as given
        return value
    _bounds(key, number, meta)
    return number


def _text(key: str, value: Any, meta: Mapping[str, Any]) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, value, "must be a string")
    if len(value) > MAX_TEXT:
        raise ConfigError(key, value, f"is longer than {MAX_TEXT} characters")
    if not value.isprintable():
        raise ConfigError(key, value, "must not contain control or unprintable characters")
    choices = meta.get("choices") or ()
    if choices and value not in choices:
        raise ConfigError(key, value, "must be one of " + ", ".join(repr(c) for c in choices))
    if meta.get("name") and not _NAME.match(value):
        raise ConfigError(key, value, "must be 1 to 100 letters, digits or _.:-")
    if key == "redis_url":
        _check_redis_url(key, value)
    return value


def _check_redis_url(key: str, url: str) -> None:
    """Everything redis-py would only find at the first connection, found now."""
    import urllib.parse

    try:
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme
        if scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(key, url, "a Redis URL starts with redis://, rediss:// or unix://")
        if scheme == "unix":
            if not parts.path:
                raise ConfigError(key, url, "a unix:// URL needs a socket path")
            return
        if not parts.hostname:
            raise ConfigError(key, url, "needs a host, e.g. redis://127.0.0.1:6379/0")
        port = parts.port  # ValueError when not a number or outside 0..65535
        if port == 0:
            raise ConfigError(key, url, "port must be between 1 and 65535")
        db = parts.path.lstrip("/")
        if db and not (db.isdigit() and int(db) < 1_000_000):
            raise ConfigError(key, url, f"the database is a number, got {db[:20]!r}")
        from redis.connection import parse_url

        parse_url(url)  # type: ignore[no-untyped-call]  # redis-py reads the query string
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(key, url, str(exc)) from None


def _number(key: str, value: Any, kind: type) -> Any:
    if isinstance(value, bool):
        raise ConfigError(key, value, f"must be {'an integer' if kind is int else 'a number'}")
    if isinstance(value, str):
        try:
            value = float(value) if kind is float else int(value)
        except ValueError:
            raise ConfigError(key, value, "must be a number") from None
    if kind is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise ConfigError(key, value, "must be an integer")
        return value
    if not isinstance(value, (int, float)):
        raise ConfigError(key, value, "must be a number")
    try:
        v = float(value)
    except OverflowError:
        raise ConfigError(key, value, "is too large") from None
    if not math.isfinite(v):
        raise ConfigError(key, value, "must be a finite number")
    return v


def _bounds(key: str, number: float, meta: Mapping[str, Any]) -> None:
    if isinstance(number, float) and math.isnan(number):
        raise ConfigError(key, number, "must not be NaN")
    lo, hi = meta.get("minimum"), _maximum(meta, number)
    if lo is not None:
        if meta.get("exclusive_minimum") and number <= lo:
            raise ConfigError(key, number, f"must be greater than {lo:g}")
        if number < lo:
            raise ConfigError(key, number, f"must be at least {lo:g}")
    if hi is not None and number > hi:
        raise ConfigError(key, number, f"must be at most {hi:g}")


def _maximum(meta: Mapping[str, Any], number: float | None = None) -> float | None:
    """The documented upper bound: the field's own, else one per unit / type."""
    hi: float | None = meta.get("maximum")
    if hi is not None:
        return hi
    if meta.get("unit") == "seconds":
        return MAX_SECONDS
    if isinstance(number, int) or meta.get("unit") == "bytes":
        return MAX_INTEGER
    return None


def _build(cls: type[T], data: Any, prefix: str) -> T:
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(prefix or "config", data, "must be a table of settings")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for raw_key, raw in data.items():
        value = raw
        name = str(raw_key).replace("-", "_")
        key = f"{prefix}.{raw_key}" if prefix else str(raw_key)
        if name not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(key, value, f"unknown setting (known: {known})")
        f = fields[name]
        if isinstance(value, Mapping) and f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
            if isinstance(default, dict):
                # A table with non-empty defaults (rate_limits) is merged over them, so
                # adding one tier does not silently drop the others.
                value = {**default, **value}
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        key = f"{prefix}.{exc.parameter}" if prefix else exc.parameter
        raise ConfigError(key, exc.value, exc.reason) from None


def _check_references(cfg: SentiaConfig) -> None:
    """What no single section can check: the settings that name each other."""
    from .policies import parse_rate

    for tier, text in cfg.rate_limits.items():
        parse_rate(text, parameter=f"rate_limits.{tier}")
    tiers = ", ".join(sorted(cfg.rate_limits)) or "none"
    for name, svc in cfg.services.items():
        if svc.rate_limit is not None and svc.rate_limit not in cfg.rate_limits:
            raise ConfigError(
                f"services.{name}.rate_limit",
                svc.rate_limit,
                f"no rate-limit tier {svc.rate_limit!r} in rate_limits (tiers: {tiers})",
            )
    if cfg.redis_url is None:
        shared = [("breaker.shared", cfg.breaker)]
        shared += [(f"breakers.{n}.shared", b) for n, b in cfg.breakers.items()]
        for key, b in shared:
            if b.shared:
                raise ConfigError(key, True, "shared breaker state needs redis_url")


def _section_repr(section: Any) -> str:
    parts = []
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if f.metadata.get("secret"):
            shown = mask(value)
        elif isinstance(value, str):
            shown = repr(mask_url(value))
        else:
            shown = repr(value)
        parts.append(f"{f.name}={shown}")
    return f"{type(section).__name__}({', '.join(parts)})"


def load(data: Mapping[str, Any] | SentiaConfig | None = None) -> SentiaConfig:
    """A validated :class:`SentiaConfig` from a nested mapping (``None`` = defaults).

    Raises:
        ConfigError: naming the dotted key (``cache.max_items``) and the value.
    """
    if data is None:
        return SentiaConfig()
    return _build(SentiaConfig, data, "")


def load_file(path: str | os.PathLike[str]) -> SentiaConfig:
    """Load a TOML file.

    Raises:
        ConfigError: naming the file when it cannot be read, is larger than
            ``MAX_FILE_BYTES``, is not UTF-8 text or not valid TOML; naming the
            dotted key when a setting is invalid.
    """
    return load(_read_toml(os.fspath(path)))


def load_env(
    environ: Mapping[str, str] | None = None, base: Mapping[str, Any] | None = None
) -> SentiaConfig:
    """Settings from ``SENTIA_*`` variables layered over ``base``.

    ``SENTIA_REDIS_URL`` sets ``redis_url``; a double underscore descends into a
    section: ``SENTIA_CACHE__MAX_ITEMS=5000``, ``SENTIA_RATE_LIMITS__API=10/s``,
    ``SENTIA_SERVICES__AUTH__TIMEOUT=5``. ``SENTIA_CONFIG`` names a TOML file
    read first.
    """
    env = os.environ if environ is None else environ
    data: dict[str, Any] = _deep_copy(dict(base or {}))
    if env.get("SENTIA_CONFIG"):
        file_data = _read_toml(env["SENTIA_CONFIG"])
        data = _merge(file_data, data)
    for name, value in env.items():
        if not name.startswith("SENTIA_") or name in ("SENTIA_CONFIG",):
            continue
        if name.startswith(("SENTIA_REQUIRE_",)):
            continue
        path = name[len("SENTIA_") :].lower().split("__")
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(name, value, f"{part!r} is not a section")
            node = child
        node[path[-1]] = value
    return load(data)


#: Largest configuration file read (bytes): a configuration is a few KB.
MAX_FILE_BYTES = 1024**2


def _read_toml(path: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(path, None, f"is larger than {MAX_FILE_BYTES} bytes; not a config file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            path, None, f"is not UTF-8 text (byte {exc.start}); a config file is TOML"
        ) from None
    try:
        return dict(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, None, f"invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(path, None, "invalid TOML: nested too deeply") from None


def _deep_copy(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in d.items()}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = _deep_copy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


# ---------------------------------------------------------------------------- reference


def _type_name(tp: Any) -> str:
    optional, inner = _is_optional(tp)
    origin = get_origin(inner)
    if origin is dict:
        name = f"table of {_type_name(get_args(inner)[1])}"
    elif origin is tuple:
        name = f"list of {_type_name(get_args(inner)[0])}"
    elif isinstance(inner, type):
        name = {"int": "integer", "float": "number", "str": "string", "bool": "boolean"}.get(
            inner.__name__, inner.__name__
        )
    else:  # pragma: no cover
        name = str(inner)
    return f"{name} (optional)" if optional else name


def _default_text(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        value: Any = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:  # pragma: no cover
        return ""
    if dataclasses.is_dataclass(value):
        return "(section)"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return ", ".join(f"{k} = {v!r}" for k, v in value.items()) or "{}"
    if isinstance(value, tuple):
        return "[" + ", ".join(repr(v) for v in value) + "]"
    return repr(value)


def reference_markdown() -> str:
    """The configuration reference as Markdown, generated from the classes."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by sentia_core.config.reference_markdown(); do not edit by hand. -->",
        "",
        "`Sentia` takes one configuration: a dict, a TOML file (`Sentia.from_config(path)`)",
        "or environment variables (`Sentia.from_env()`: `SENTIA_REDIS_URL`, and a double",
        "underscore for sections, e.g. `SENTIA_CACHE__MAX_ITEMS=5000`). Durations accept",
        "seconds or strings such as `250ms`, `5min`, `1h`; sizes accept bytes or `1KB`,",
        "`100MB`. Unknown keys and bad values fail at load time, naming the dotted key.",
        "",
        "Every number has a documented upper bound (below, or: durations at most",
        f"{MAX_SECONDS:g} s, integers at most 2^53), so no setting can make a component",
        "allocate without limit later; `nan` and `inf` are refused. Names (`namespace`, the",
        "NAME of `[services.NAME]`, `[breakers.NAME]`, rate-limit tiers) are 1 to 100",
        "letters, digits or `_.:-`. A configuration file is UTF-8 TOML of at most",
        f"{MAX_FILE_BYTES // 1024} KiB. Settings that name each other are checked together:",
        "`services.NAME.rate_limit` must be a key of `rate_limits`, every `rate_limits` value",
        "must parse as `N/period`, and `shared = true` on a breaker needs `redis_url`.",
        "Credentials in `redis_url` (and any URL) are masked in every repr and error.",
        "Python code takes the same duration strings wherever it takes seconds",
        '(`app.protect(name, timeout="2s")`, `CircuitBreaker(reset_timeout="30s")`,',
        '`cache.set(key, value, ttl="5min")`): one parser serves both.',
        "",
    ]
    sections: list[tuple[str, type]] = [
        ("(top level)", SentiaConfig),
        ("[breaker] and [breakers.NAME]", BreakerConfig),
        ("[services.NAME]", ServiceConfig),
        ("[cache]", CacheConfig),
        ("[registry]", RegistryConfig),
        ("[sql]", SqlConfig),
        ("[monitor]", MonitorConfig),
        ("[monitor.alerts]", AlertsConfig),
        ("[monitor.auth]", MonitorAuthConfig),
    ]
    for title, cls in sections:
        hints = _hints(cls)
        lines += [f"## {title}", "", (cls.__doc__ or "").strip(), ""]
        lines += ["| key | type | default | unit | meaning |", "| --- | --- | --- | --- | --- |"]
        for f in dataclasses.fields(cls):
            meta = f.metadata
            bounds = []
            if meta.get("minimum") is not None:
                op = ">" if meta.get("exclusive_minimum") else ">="
                bounds.append(f"{op} {meta['minimum']:g}")
            _, inner = _is_optional(hints[f.name])
            hi = _maximum(meta, 0 if inner is int else None) if inner in (int, float) else None
            if hi is not None:
                bounds.append(f"<= {hi:g}")
            if meta.get("choices"):
                bounds.append("one of " + ", ".join(f"'{c}'" for c in meta["choices"]))
            doc = meta.get("doc", "") + (f" ({', '.join(bounds)})" if bounds else "")
            lines.append(
                f"| `{f.name}` | {_type_name(hints[f.name])} | `{_default_text(f)}` "
                f"| {meta.get('unit', '')} | {doc} |"
            )
        lines.append("")
    return "\n".join(lines)
