"""``Sentia``: builds every component from one configuration and wires them together.

Theory of operation: the facade owns no logic of its own beyond composition.
It builds the monitor first, then each component with settings from
:class:`~sentia_core.config.SentiaConfig`, and subscribes the monitor to every
component's events (DESIGN.md rule 6: the monitor is just one listener).
Components with background work or connections (the registry's heartbeat
thread, Redis clients) are built on first use, so the embedded default starts
no thread and opens no socket until something asks for it.

With no ``redis_url`` everything is in-process. With one, the cache gets its
L2 and invalidation channel, the rate limiter and the registry their Redis
backends, and breakers marked ``shared`` keep their state in Redis — the same
code, one setting changed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ._clock import SYSTEM_CLOCK, Clock
from ._events import Event
from ._redis import make_client
from .breaker import CircuitBreaker
from .cache import TieredCache
from .config import SentiaConfig, load, load_env, load_file
from .errors import ConfigError
from .monitor import HealthReport, PerformanceMonitor, default_rules
from .policies import Policy, RateLimiter, Retry, Timeout
from .sql import QueryOptimizer

__all__ = ["Sentia"]

#: Counters the facade keeps in the monitor from component snapshots, so the
#: default alert rules (cache hit rate) and dashboards see them.
CACHE_HITS = "cache_hits_total"
CACHE_MISSES = "cache_misses_total"


class Sentia:
    """Every sentia_core component, built and wired from one configuration.

    Args:
        config: a :class:`SentiaConfig`, a nested mapping (validated), or None
            for the defaults (embedded, the original deployment's settings).
        clock: the time source shared by every component.
        start_monitor: start the monitor's sampling thread (alerts, history,
            system metrics) at ``config.monitor.sample_interval``.

    Raises:
        ConfigError: invalid configuration, naming the dotted key.

    Use it as a context manager (or call :meth:`close`) so background threads
    stop and Redis connections close.
    """

    def __init__(
        self,
        config: SentiaConfig | Mapping[str, Any] | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        start_monitor: bool = False,
    ) -> None:
        self.config: SentiaConfig = config if isinstance(config, SentiaConfig) else load(config)
        self._clock = clock
        self._lock = threading.RLock()
        self._closed = False
        self._unsubscribe: list[Callable[[], None]] = []
        self._breakers: dict[str, CircuitBreaker] = {}
        self._policies: dict[tuple[Any, ...], Policy] = {}
        self._caches: dict[str, TieredCache] = {}
        self._registry: Any = None
        self._redis: Any = None
        self._reported_cache: dict[str, tuple[int, int]] = {}
        cfg = self.config

        self.monitor = PerformanceMonitor(
            clock=clock,
            retention=cfg.monitor.retention,
            system_metrics=cfg.monitor.system_metrics,
        )
        a = cfg.monitor.alerts
        self.monitor.add_rules(
            default_rules(
                cpu_warning=a.cpu_warning,
                cpu_critical=a.cpu_critical,
                memory_warning=a.memory_warning,
                memory_critical=a.memory_critical,
                response_time_warning=a.response_time_warning,
                response_time_critical=a.response_time_critical,
                error_rate_warning=a.error_rate_warning,
                error_rate_critical=a.error_rate_critical,
                cache_hit_rate_warning=a.cache_hit_rate_warning,
                cache_hit_rate_critical=a.cache_hit_rate_critical,
                disabled=a.disabled,
            )
        )
        self.monitor.add_collector(self._collect_component_metrics)

        self.limiter = RateLimiter(
            dict(cfg.rate_limits),
            redis=cfg.redis_url,
            namespace=f"{cfg.namespace}:ratelimit",
            clock=clock,
        )
        self._watch(self.limiter)

        self.queries = QueryOptimizer(
            slow_query_threshold=cfg.sql.slow_query_threshold,
            sample_rate=cfg.sql.sample_rate,
            nplusone_threshold=cfg.sql.nplusone_threshold,
            clock=clock,
        )
        self._watch(self.queries)

        self.cache = self.named_cache("default")
        self._install_health_checks()
        if start_monitor:
            self.monitor.start(cfg.monitor.sample_interval)

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_config(
        cls, source: str | os.PathLike[str] | Mapping[str, Any] | SentiaConfig, **kwargs: Any
    ) -> Sentia:
        """Build from a TOML file path, a mapping or a :class:`SentiaConfig`."""
        if isinstance(source, (str, os.PathLike)):
            return cls(load_file(source), **kwargs)
        return cls(source, **kwargs)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> Sentia:
        """Build from ``SENTIA_*`` environment variables (and ``SENTIA_CONFIG``, a TOML file)."""
        return cls(load_env(environ), **kwargs)

    @property
    def embedded(self) -> bool:
        """True when no Redis is configured: every component is in-process."""
        return self.config.redis_url is None

    def _watch(self, component: Any) -> None:
        add = getattr(component, "add_listener", None)
        if add is not None:
            self._unsubscribe.append(add(self._on_event))

    def _on_event(self, event: Event) -> None:
        self.monitor.observe_event(event)

    # ------------------------------------------------------------------ accessors

    def breaker(self, name: str) -> CircuitBreaker:
        """The circuit breaker called ``name`` (one per name; built on first use).

        Settings: ``[breaker]`` defaults, then ``[breakers.NAME]`` overrides.
        With ``shared = true`` and a Redis URL its state lives in Redis.
        """
        with self._lock:
            found = self._breakers.get(name)
            if found is not None:
                return found
            b = self.config.breakers.get(name, self.config.breaker)
            store = None
            if b.shared:
                if self.config.redis_url is None:
                    raise ConfigError(
                        f"breakers.{name}.shared", True, "shared breaker state needs redis_url"
                    )
                from .breaker import RedisStateStore

                store = RedisStateStore(self._redis_client(), namespace=self.config.namespace)
            breaker = CircuitBreaker(
                name,
                consecutive_failures=b.consecutive_failures,
                failure_rate_threshold=b.failure_rate_threshold,
                minimum_calls=b.minimum_calls,
                window_type=b.window_type,
                window_size=b.window_size,
                slow_call_duration=b.slow_call_duration,
                slow_call_rate_threshold=b.slow_call_rate_threshold,
                reset_timeout=b.reset_timeout,
                reset_timeout_multiplier=b.reset_timeout_multiplier,
                max_reset_timeout=b.max_reset_timeout,
                half_open_max_calls=b.half_open_max_calls,
                state_store=store,
                clock=self._clock,
            )
            self._watch(breaker)
            self._breakers[name] = breaker
            return breaker

    def breakers(self) -> dict[str, CircuitBreaker]:
        """Every breaker built so far, by name."""
        with self._lock:
            return dict(self._breakers)

    def named_cache(self, name: str, **overrides: Any) -> TieredCache:
        """The cache called ``name`` (``"default"`` is :attr:`cache`), built on first use.

        Each named cache gets its own namespace under the application's, so
        two never collide; ``overrides`` are TieredCache keyword arguments.
        """
        with self._lock:
            found = self._caches.get(name)
            if found is not None:
                return found
            c = self.config.cache
            namespace = f"{self.config.namespace}.{c.namespace}.{name}"
            kwargs: dict[str, Any] = {
                "max_items": c.max_items,
                "max_bytes": c.max_bytes,
                "ttl": c.ttl,
                "stale_ttl": c.stale_ttl,
                "compress_threshold": c.compress_threshold,
                "serializer": c.serializer,
                "secret": c.secret,
                "namespace": namespace,
                "clock": self._clock,
            }
            if self.config.redis_url is not None:
                kwargs["redis"] = self.config.redis_url
                kwargs["redis_ttl"] = c.redis_ttl
            kwargs.update(overrides)
            cache = TieredCache(**kwargs)
            self._watch(cache)
            self._caches[name] = cache
            return cache

    @property
    def registry(self) -> Any:
        """The ServiceRegistry client: built and started on first use, Redis-backed with a URL."""
        from .registry import ServiceRegistry

        with self._lock:
            if self._registry is None:
                r = self.config.registry
                self._registry = ServiceRegistry(
                    self.config.redis_url,
                    namespace=f"{self.config.namespace}:registry",
                    ttl=r.ttl,
                    heartbeat_interval=r.heartbeat_interval,
                    health_check_interval=r.health_check_interval,
                    clock=self._clock,
                )
                self._watch(self._registry)
                # Heartbeats, health checks and sweeps need the background
                # thread; without it a registered instance's lease expires.
                self._registry.start()
            return self._registry

    def _redis_client(self) -> Any:
        with self._lock:
            if self._redis is None:
                if self.config.redis_url is None:
                    raise ConfigError("redis_url", None, "this feature needs redis_url")
                self._redis = make_client(self.config.redis_url, parameter="redis_url")
            return self._redis

    # ------------------------------------------------------------------ policies

    def protect(
        self,
        name: str,
        *,
        timeout: float | None = None,
        retries: int | None = None,
        rate_limit: str | None = None,
        rate_key: str | Callable[..., str] = "",
        max_concurrent: int | None = None,
        fallback: Callable[..., Any] | None = None,
    ) -> Policy:
        """The composed :class:`Policy` for the outbound dependency ``name``.

        Settings default to ``[services.NAME]`` (timeout, retries, rate_limit
        tier, max_concurrent) and the breaker called ``name``; keyword
        arguments override them. Use the result as a decorator on a def or an
        async def: fallback -> retry -> breaker -> rate limit -> bulkhead -> timeout.

        Raises:
            ConfigError: ``rate_limit`` names no configured tier.
        """
        svc = self.config.services.get(name)
        timeout = timeout if timeout is not None else (svc.timeout if svc else None)
        retries = retries if retries is not None else (svc.retries if svc else 0)
        tier = rate_limit if rate_limit is not None else (svc.rate_limit if svc else None)
        bulk = max_concurrent if max_concurrent is not None else (
            svc.max_concurrent if svc else None
        )  # fmt: skip
        if tier is not None and tier not in self.config.rate_limits:
            raise ConfigError("rate_limit", tier, f"no rate-limit tier {tier!r} is configured")
        return Policy(
            name=name,
            retry=Retry(attempts=retries + 1, clock=self._clock) if retries else None,
            breaker=self.breaker(name),
            rate_limit=self.limiter if tier else None,
            rate_tier=tier,
            rate_key=rate_key,
            bulkhead=bulk,
            timeout=Timeout(timeout, clock=self._clock) if timeout else None,
            fallback=fallback,
            clock=self._clock,
        )

    # ------------------------------------------------------------------ monitoring

    def _collect_component_metrics(self) -> None:
        """Before each monitor tick: component snapshots into monitor metrics."""
        with self._lock:
            caches = dict(self._caches)
            breakers = dict(self._breakers)
        for name, cache in caches.items():
            st = cache.stats()
            hits, misses = int(st.hits), int(st.misses)
            last_hits, last_misses = self._reported_cache.get(name, (0, 0))
            if hits > last_hits:
                self.monitor.counter(CACHE_HITS, cache=name).inc(hits - last_hits)
            if misses > last_misses:
                self.monitor.counter(CACHE_MISSES, cache=name).inc(misses - last_misses)
            self._reported_cache[name] = (hits, misses)
            self.monitor.gauge("cache_items", cache=name).set(st.items)
            self.monitor.gauge("cache_bytes", cache=name).set(st.bytes)
        for name, breaker in breakers.items():
            m = breaker.metrics()
            self.monitor.gauge("breaker_open", breaker=name).set(
                0.0 if m.state.value in ("closed", "disabled") else 1.0
            )
            self.monitor.gauge("breaker_failure_rate", breaker=name).set(m.failure_rate)

    def _install_health_checks(self) -> None:
        if self.config.redis_url is not None:
            self.monitor.add_health_check("redis", self._check_redis, critical=True)
        self.monitor.add_health_check("breakers", self._check_breakers, critical=False)
        self.monitor.add_health_check("cache", self._check_cache, critical=False)

    def _check_redis(self) -> bool:
        return bool(self._redis_client().ping())

    def _check_breakers(self) -> str:
        with self._lock:
            states = [b.state.value for b in self._breakers.values()]
        return "degraded" if any(s in ("open", "forced_open") for s in states) else "healthy"

    def _check_cache(self) -> str:
        with self._lock:
            caches = list(self._caches.values())
        for c in caches:
            degraded = getattr(c, "degraded", None)
            if degraded:
                return "degraded"
        return "healthy"

    def add_health_check(self, name: str, fn: Callable[[], object], critical: bool = True) -> None:
        """Add an application health check (see PerformanceMonitor.add_health_check)."""
        self.monitor.add_health_check(name, fn, critical)

    def health(self) -> HealthReport:
        """Every component's health, in the original integration-health shape.

        Overall ``unhealthy`` if a critical check fails (Redis unreachable when
        configured), ``degraded`` if another does (an open breaker, a cache
        serving without its Redis). ``.to_dict()`` gives the JSON form.
        """
        return self.monitor.health()

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop background threads and close connections (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            unsubscribe, self._unsubscribe = self._unsubscribe, []
        for fn in unsubscribe:
            fn()
        self.monitor.close()
        if self._registry is not None:
            self._registry.close()
        for cache in self._caches.values():
            cache.close()
        self.limiter.close()
        if self._redis is not None:
            self._redis.close()

    def __enter__(self) -> Sentia:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Sentia:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Like :meth:`close`, for use from a running event loop."""
        import asyncio

        await asyncio.to_thread(self.close)

    def __repr__(self) -> str:
        mode = "embedded" if self.embedded else "redis"
        return f"Sentia(mode={mode!r}, breakers={sorted(self._breakers)!r})"
