"""``Sentia``: builds every component from one configuration and wires them together.

Theory of operation: the facade owns no logic of its own beyond composition.
It builds the monitor first, then each component with settings from
:class:`~sentia_core.config.SentiaConfig`, and subscribes the monitor to every
component's *state-change* events (DESIGN.md rule 6: the monitor is just one
listener). Per-call outcomes never travel as events: the monitor's collector
reads each component's counters (``stats()`` / ``metrics()``) once per tick,
so wiring a component costs its calls nothing.

The monitor's sampler thread starts at construction (``start_monitor=False``
or ``monitor.enabled = false`` turns it off, for tests). Nothing the monitor
holds points back at the facade (its collector and health checks go through
weak references), so a ``Sentia`` nobody closes is still collected, and a
finalizer then stops its threads; :meth:`Sentia.close` does it at once.
Components with connections (the registry, Redis clients) are built on first
use, so the embedded default opens no socket until something asks for it.

With no ``redis_url`` everything is in-process. With one, the cache gets its
L2 and invalidation channel, the rate limiter and the registry their Redis
backends, and breakers marked ``shared`` keep their state in Redis — the same
code, one setting changed.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._clock import SYSTEM_CLOCK, Clock
from ._dashboard_feed import DashboardFeed
from ._redis import make_client
from .breaker import CircuitBreaker
from .cache import AsyncTieredCache, TieredCache
from .config import SentiaConfig, ServiceConfig, load, load_env, load_file
from .errors import ConfigError
from .monitor import (
    EndpointAuth,
    HealthReport,
    MetricsServer,
    MonitorApp,
    PerformanceMonitor,
    ServerLimits,
    default_rules,
)
from .monitor._routing import AuthSpec, as_auth
from .policies import AdaptiveBulkhead, Policy, RateLimiter, Retry, Timeout
from .policies._outcomes import OutcomeRules, resolve_rules
from .sql import QueryOptimizer

if TYPE_CHECKING:
    from .registry import ServiceRegistry

__all__ = ["Sentia"]

#: Counters the facade keeps in the monitor from component snapshots, so the
#: default alert rules (cache hit rate) and dashboards see them.
CACHE_HITS = "cache_hits_total"
CACHE_MISSES = "cache_misses_total"

#: Policies per name whose counters the collector reports (protect() called
#: once per request would otherwise grow the list without bound).
_MAX_POLICIES_PER_NAME = 64

#: An exception rule as protect() takes it: a class, a predicate, a rule name
#: (``"transient"``, ``"http:503"``), or a sequence of those.
Rules = Any


def _weak(method: Callable[[], Any], dead: object = None) -> Callable[[], Any]:
    """``method`` (bound to the facade) behind a weak reference: what the monitor's
    thread holds must not keep the facade alive."""
    ref = weakref.WeakMethod(method)

    def call() -> Any:
        fn = ref()
        return dead if fn is None else fn()

    call.__name__ = getattr(method, "__name__", "call")
    return call


def _invalidation_relay(target: Any) -> Callable[[Any], None]:
    """A listener applying a cache's local invalidations to ``target``'s L1."""
    from .cache import CacheInvalidation

    kinds = {"delete": "keys", "tags": "tags", "pattern": "pattern", "clear": "clear"}
    ref = weakref.ref(target)

    def relay(event: Any) -> None:
        if event.__class__ is CacheInvalidation and not event.remote and event.kind in kinds:
            cache = ref()
            if cache is not None:
                cache._core.apply_remote(kinds[event.kind], event.targets)

    return relay


def _release(resources: list[Any]) -> None:
    """Close what a facade owns, newest first (its ``close()`` and its finalizer)."""
    while resources:
        item = resources.pop()
        try:
            item()
        except Exception:  # pragma: no cover - closing is best effort
            import logging

            logging.getLogger("sentia_core").exception("closing %r failed", item)


class Sentia:
    """Every sentia_core component, built and wired from one configuration.

    Args:
        config: a :class:`SentiaConfig`, a nested mapping (validated), or None
            for the defaults (embedded, the original deployment's settings).
        clock: the time source shared by every component.
        start_monitor: run the monitor's sampling thread (component metrics,
            alert rules, history, system metrics) every
            ``config.monitor.sample_interval`` seconds. Default: on, unless
            ``monitor.enabled = false``; pass False in tests that drive
            ``app.monitor.tick()`` themselves.

    Raises:
        ConfigError: invalid configuration, naming the dotted key.

    Use it as a context manager (or call :meth:`close` / :meth:`aclose`) so
    background threads stop and Redis connections close at once; a facade
    that is dropped without closing is cleaned up when it is collected.
    """

    def __init__(
        self,
        config: SentiaConfig | Mapping[str, Any] | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        start_monitor: bool | None = None,
    ) -> None:
        self.config: SentiaConfig = config if isinstance(config, SentiaConfig) else load(config)
        self._clock = clock
        self._lock = threading.RLock()
        self._closed = False
        self._unsubscribe: list[Callable[[], None]] = []
        self._breakers: dict[str, CircuitBreaker] = {}
        self._policies: dict[str, list[Policy]] = {}
        self._caches: dict[str, TieredCache] = {}
        self._async_caches: dict[str, AsyncTieredCache] = {}
        self._breaker_rules: dict[str, tuple[OutcomeRules, OutcomeRules]] = {}
        self._registry: ServiceRegistry | None = None
        self._reported: dict[tuple[str, str], int] = {}
        #: Closers, oldest first; close() and the finalizer run them newest first.
        self._resources: list[Callable[[], object]] = []
        self._redis: Any = None
        self._reported_cache: dict[str, tuple[int, int]] = {}
        self._adaptive: dict[str, AdaptiveBulkhead] = {}  # issue 19: protect(adaptive=True)
        cfg = self.config

        self.monitor = PerformanceMonitor(
            clock=clock,
            retention=cfg.monitor.retention,
            system_metrics=cfg.monitor.system_metrics,
        )
        self._resources.append(self.monitor.close)
        self._finalizer = weakref.finalize(self, _release, self._resources)
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
        self.monitor.add_collector(_weak(self._collect_component_metrics))
        self._dashboard = DashboardFeed(self)  # holds the facade weakly too

        self.limiter = RateLimiter(
            dict(cfg.rate_limits),
            redis=cfg.redis_url,
            namespace=f"{cfg.namespace}:ratelimit",
            clock=clock,
        )
        self._resources.append(self.limiter.close)
        self._watch(self.limiter)

        self.queries = QueryOptimizer(
            slow_query_threshold=cfg.sql.slow_query_threshold,
            sample_rate=cfg.sql.sample_rate,
            nplusone_threshold=cfg.sql.nplusone_threshold,
            clock=clock,
        )
        self._watch(self.queries)

        self.cache = self.named_cache("default")
        self._endpoint_auth(None)  # [monitor.auth] is checked now, not at serve()
        self._install_health_checks()
        if cfg.monitor.enabled if start_monitor is None else start_monitor:
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

    def _watch(self, component: Any, **options: Any) -> None:
        """Subscribe the monitor to ``component``'s events (``options``: add_listener's)."""
        add = getattr(component, "add_listener", None)
        if add is not None:
            # The monitor's and the dashboard feed's own methods, not ours: no
            # reference back to the facade (the feed holds it weakly).
            self._unsubscribe.append(add(self.monitor.observe_event, **options))
            self._unsubscribe.append(add(self._dashboard.on_event, **options))

    # ------------------------------------------------------------------ accessors

    def breaker(self, name: str) -> CircuitBreaker:
        """The circuit breaker called ``name`` (one per name; built on first use).

        Settings: ``[breaker]`` defaults, then ``[breakers.NAME]`` overrides;
        which errors count as failures comes from ``[services.NAME]``
        (``record_exceptions`` / ``ignore_exceptions``; by default every
        exception except a policy's own rejections and an HTTP 429).
        With ``shared = true`` and a Redis URL its state lives in Redis.
        """
        return self._breaker(name, None, None)

    def _breaker(
        self, name: str, record: OutcomeRules | None, ignore: OutcomeRules | None
    ) -> CircuitBreaker:
        with self._lock:
            found = self._breakers.get(name)
            if found is not None:
                if (record, ignore) != (None, None):
                    built = self._breaker_rules[name]
                    wanted = (record or built[0], ignore or built[1])
                    if wanted != built:
                        raise ConfigError(
                            "record_exceptions" if wanted[0] != built[0] else "ignore_exceptions",
                            wanted[0] if wanted[0] != built[0] else wanted[1],
                            f"breaker {name!r} already exists with other rules: set them in "
                            f"[services.{name}] or in the first protect({name!r})",
                        )
                return found
            svc = self._service(name)
            if record is None:
                record = resolve_rules(f"services.{name}.record_exceptions", svc.record_exceptions)
            if ignore is None:
                ignore = resolve_rules(f"services.{name}.ignore_exceptions", svc.ignore_exceptions)
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
                record_exceptions=record.as_breaker_rules(),
                ignore_exceptions=ignore.as_breaker_rules(),
                state_store=store,
                clock=self._clock,
            )
            # State changes only: per-call outcomes are read from metrics() by the collector.
            self._watch(breaker, outcomes=False)
            self._breakers[name] = breaker
            self._breaker_rules[name] = (record, ignore)
            return breaker

    def _service(self, name: str) -> ServiceConfig:
        return self.config.services.get(name) or ServiceConfig()

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
            cache = TieredCache(**self._cache_kwargs(name, overrides))
            self._resources.append(cache.close)
            self._watch(cache)
            self._caches[name] = cache
            twin = self._async_caches.get(name)
            if twin is not None:
                self._link(cache, twin)
            return cache

    @property
    def async_cache(self) -> AsyncTieredCache:
        """The default cache for ``async`` code: :meth:`named_async_cache` ``("default")``."""
        return self.named_async_cache("default")

    def named_async_cache(self, name: str, **overrides: Any) -> AsyncTieredCache:
        """The :class:`AsyncTieredCache` called ``name``, built on first use.

        Built from the same ``[cache]`` settings as :meth:`named_cache` with the
        same namespace: with a Redis URL both share the L2 and the
        invalidation channel; embedded, each invalidation (``delete``,
        ``invalidate_tags``, ``invalidate_pattern``, ``clear``) through one is
        applied to the other's L1 too. Closed by :meth:`aclose` (or
        :meth:`close`).
        """
        with self._lock:
            found = self._async_caches.get(name)
            if found is not None:
                return found
            # Not in _resources: its Redis client belongs to the event loop, so
            # aclose() closes it there.
            cache = AsyncTieredCache(**self._cache_kwargs(name, overrides))
            self._watch(cache)
            self._async_caches[name] = cache
            twin = self._caches.get(name)
            if twin is not None:
                self._link(twin, cache)
            return cache

    def _cache_kwargs(self, name: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
        c = self.config.cache
        kwargs: dict[str, Any] = {
            "max_items": c.max_items,
            "max_bytes": c.max_bytes,
            "ttl": c.ttl,
            "stale_ttl": c.stale_ttl,
            "compress_threshold": c.compress_threshold,
            "serializer": c.serializer,
            "secret": c.secret,
            "namespace": f"{self.config.namespace}.{c.namespace}.{name}",
            "clock": self._clock,
        }
        if self.config.redis_url is not None:
            kwargs["redis"] = self.config.redis_url
            kwargs["redis_ttl"] = c.redis_ttl
        kwargs.update(overrides)
        return kwargs

    def _link(self, sync: TieredCache, async_: AsyncTieredCache) -> None:
        """Embedded twins: an invalidation through one drops the other's L1 entries too.

        (With Redis the invalidation channel already does this, across processes.)
        """
        if self.config.redis_url is not None:
            return
        for source, target in ((sync, async_), (async_, sync)):
            self._unsubscribe.append(source.add_listener(_invalidation_relay(target)))

    @property
    def registry(self) -> ServiceRegistry:
        """The ServiceRegistry client: built and started on first use, Redis-backed with a URL."""
        from .registry import ServiceRegistry  # lazily: most apps never need it

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
                self._resources.append(self._registry.close)
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
                self._resources.append(self._redis.close)
            return self._redis

    # ------------------------------------------------------------------ policies

    def protect(
        self,
        name: str,
        *,
        timeout: float | str | None = None,
        timeout_mode: str | None = None,
        retries: int | None = None,
        retry_on: Rules = None,
        record_exceptions: Rules = None,
        ignore_exceptions: Rules = None,
        rate_limit: str | None = None,
        rate_key: str | Callable[..., str] = "",
        max_concurrent: int | None = None,
        fallback: Callable[..., Any] | None = None,
        fallback_on: Rules = None,
        adaptive: bool = False,
    ) -> Policy:
        """The composed :class:`Policy` for the outbound dependency ``name``.

        Settings default to ``[services.NAME]`` and the breaker called
        ``name``; keyword arguments override them. Use the result as a
        decorator on a def or an async def: fallback -> retry -> breaker ->
        rate limit -> bulkhead -> timeout.

        Args:
            timeout: seconds (or ``"2s"``) per attempt.
            timeout_mode: how a *sync* function is timed out: ``"deadline"``
                (default) runs it inline under a contextvars deadline it can
                read with :func:`~sentia_core.policies.remaining_time` (a call
                that ignores it finishes late, counted as an overrun);
                ``"thread"`` runs it in a worker thread and abandons it on
                expiry (thread-bound objects such as a sqlite3 connection
                break there). Async functions are always cancelled at the deadline.
            retries: retries after the first attempt.
            retry_on: what is retried (classes, predicates, or names such as
                ``"transient"`` / ``"http:503"``). Default ``"transient"``:
                ``ConnectionError``, ``TimeoutError`` (``CallTimeoutError``
                included), ``RateLimitExceeded``, and exceptions or results
                carrying HTTP 429, 502, 503 or 504. A ``TypeError`` or
                ``ValueError`` is not retried.
            record_exceptions: what the breaker counts as a failure (default
                every ``Exception``).
            ignore_exceptions: what the breaker does not count at all
                (default: a policy's own rejections and an HTTP 429 — the
                partner throttling us is not the partner failing).
            rate_limit: a ``rate_limits`` tier applied to each attempt.
            rate_key: the limiter key, or ``fn(*args, **kwargs) -> str``.
            max_concurrent: bulkhead size.
            fallback: ``fallback(error, *args, **kwargs)`` gives the result
                when the call finally fails with an error ``fallback_on`` matches.
            fallback_on: default ``"unavailable"``: the transient errors,
                rejections (open circuit, rate limit, full bulkhead) and
                errors carrying an HTTP 5xx or 429. A bug (``TypeError``...)
                still reaches the caller.

        ``adaptive=True`` adds an :class:`AdaptiveBulkhead` (gradient2, at most
        ``max_concurrent`` or 200 calls) inside the bulkhead, one per ``name``;
        its limit is the monitor gauge ``adaptive_concurrency_limit{policy=name}``.

        Raises:
            ConfigError: a bad argument, naming it (``rate_limit``: no such tier;
                rules: a name that resolves to no exception class).
        """
        svc = self._service(name)
        key = f"services.{name}"
        settings = {
            "timeout": svc.timeout if timeout is None else timeout,
            "timeout_mode": svc.timeout_mode if timeout_mode is None else timeout_mode,
            "retries": svc.retries if retries is None else retries,
            "retry_on": resolve_rules(
                "retry_on" if retry_on is not None else f"{key}.retry_on",
                svc.retry_on if retry_on is None else retry_on,
            ),
            "record": None
            if record_exceptions is None
            else resolve_rules("record_exceptions", record_exceptions),
            "ignore": None
            if ignore_exceptions is None
            else resolve_rules("ignore_exceptions", ignore_exceptions),
            "rate_tier": svc.rate_limit if rate_limit is None else rate_limit,
            "rate_key": rate_key,
            "bulkhead": svc.max_concurrent if max_concurrent is None else max_concurrent,
            "fallback": fallback,
            "adaptive": adaptive,
            "fallback_on": resolve_rules(
                "fallback_on" if fallback_on is not None else f"{key}.fallback_on",
                svc.fallback_on if fallback_on is None else fallback_on,
            ),
        }
        return self._build_policy(name, settings)

    def _build_policy(self, name: str, s: Mapping[str, Any]) -> Policy:
        """Every Policy stage from resolved settings: the one place a Policy is built.

        ``s`` holds what :meth:`protect` resolved (keyword argument, else
        ``[services.NAME]``, else the default); a stage whose setting is unset
        is left out, so an unused stage costs a call nothing.
        """
        from .config import parse_duration

        clock = self._clock
        tier = s["rate_tier"]
        if tier is not None and tier not in self.config.rate_limits:
            raise ConfigError("rate_limit", tier, f"no rate-limit tier {tier!r} is configured")
        mode = s["timeout_mode"]
        if mode not in ("deadline", "thread"):
            raise ConfigError("timeout_mode", mode, "must be 'deadline' or 'thread'")
        seconds = None if s["timeout"] is None else parse_duration("timeout", s["timeout"])
        timeout = None
        if seconds:
            timeout = Timeout(
                seconds,
                sync_mode="cooperative" if mode == "deadline" else "thread",
                name=f"{name}-timeout",
                clock=clock,
            )
        retries = s["retries"]
        retry = None
        if retries:
            on: OutcomeRules = s["retry_on"]
            retry = Retry(
                attempts=retries + 1,
                on=on.matches,
                on_result=on.matches_result if on.handles_results else None,
                name=f"{name}-retry",
                clock=clock,
            )
        fallback_on: OutcomeRules = s["fallback_on"]
        policy = Policy(
            name=name,
            retry=retry,
            breaker=self._breaker(name, s["record"], s["ignore"]),
            rate_limit=self.limiter if tier else None,
            rate_tier=tier,
            rate_key=s["rate_key"],
            bulkhead=s["bulkhead"],
            timeout=timeout,
            fallback=s["fallback"],
            fallback_on=fallback_on.matches,
            clock=clock,
            adaptive=self._adaptive_bulkhead(name, s["bulkhead"]) if s.get("adaptive") else None,
        )
        with self._lock:
            kept = self._policies.setdefault(name, [])
            if len(kept) < _MAX_POLICIES_PER_NAME:  # protect() per call: count the first ones
                kept.append(policy)
            if timeout is not None and mode == "thread":
                self._resources.append(timeout.close)
        return policy

    # --- issue 19: adaptive concurrency (begin) ---
    def _adaptive_bulkhead(self, name: str, maximum: int | None) -> AdaptiveBulkhead:
        """The AdaptiveBulkhead of policy ``name`` (made once; its limit becomes a gauge)."""
        with self._lock:
            found = self._adaptive.get(name)
            if found is None:
                found = AdaptiveBulkhead(
                    max=maximum or 200,
                    initial=min(20, maximum or 200),
                    name=f"{name}-adaptive",
                    clock=self._clock,
                )
                self._adaptive[name] = found
            return found

    # --- issue 19: adaptive concurrency (end) ---

    # ------------------------------------------------------------------ monitoring

    def _collect_component_metrics(self) -> None:
        """Before each monitor tick: component counters and snapshots into monitor metrics.

        Per-call outcomes are counted by the components themselves (cheaply,
        on their hot paths); here they become monitor counters by delta, so a
        call through the facade costs what it costs standalone.
        """
        with self._lock:
            caches: list[tuple[str, Any]] = [*self._caches.items(), *self._async_caches.items()]
            breakers = dict(self._breakers)
            policies = {n: list(p) for n, p in self._policies.items()}
        hits: dict[str, int] = {}
        misses: dict[str, int] = {}
        for name, cache in caches:
            st = cache.stats()
            hits[name] = hits.get(name, 0) + int(st.hits)
            misses[name] = misses.get(name, 0) + int(st.misses)
            self.monitor.gauge("cache_items", cache=name).set(st.items)
            self.monitor.gauge("cache_bytes", cache=name).set(st.bytes)
        for name, hit_total in hits.items():
            self._count(CACHE_HITS, "cache", name, hit_total)
            self._count(CACHE_MISSES, "cache", name, misses[name])
        for name, breaker in breakers.items():
            m = breaker.metrics()
            self.monitor.gauge("breaker_open", breaker=name).set(
                0.0 if m.state.value in ("closed", "disabled") else 1.0
            )
            self.monitor.gauge("breaker_failure_rate", breaker=name).set(m.failure_rate)
            self.monitor.gauge("breaker_window_calls", breaker=name).set(m.calls)
            self.monitor.gauge("breaker_window_failures", breaker=name).set(m.failures)
            self._count("breaker_rejected_total", "breaker", name, m.rejected)
            self._count("breaker_opened_total", "breaker", name, m.times_opened)
        with self._lock:  # issue 19: adaptive concurrency limits as gauges
            adaptive = dict(self._adaptive)
        for name, limiter in adaptive.items():
            self.monitor.gauge("adaptive_concurrency_limit", policy=name).set(limiter.limit)
        for name, kept in policies.items():
            stats = [p.stats() for p in kept]
            self._count("policy_fallbacks_total", "policy", name, sum(x.fallbacks for x in stats))
            self._count(
                "policy_rate_limited_total", "policy", name, sum(x.rate_limited for x in stats)
            )
            self._count(
                "policy_retries_total",
                "policy",
                name,
                sum(x.retry.retries for x in stats if x.retry is not None),
            )
            self._count(
                "policy_timeouts_total",
                "policy",
                name,
                sum(x.timeout.timeouts for x in stats if x.timeout is not None),
            )

    def _count(self, metric: str, label: str, name: str, total: int) -> None:
        """Advance the monitor counter ``metric{label=name}`` to a component's ``total``."""
        last = self._reported.get((metric, name), 0)
        if total > last:
            self.monitor.counter(metric, **{label: name}).inc(total - last)
        self._reported[metric, name] = total

    def _install_health_checks(self) -> None:
        if self.config.redis_url is not None:
            # Every component the facade builds fails open on Redis (L1 and the
            # loader, local breaker decisions, the last known instances, a
            # fail-open limiter): an outage degrades the service, it does not
            # make it unready.
            self.monitor.add_health_check("redis", _weak(self._check_redis, True), critical=False)
        self.monitor.add_health_check(
            "breakers", _weak(self._check_breakers, "healthy"), critical=False
        )
        self.monitor.add_health_check("cache", _weak(self._check_cache, "healthy"), critical=False)

    def _check_redis(self) -> bool:
        return bool(self._redis_client().ping())

    def _check_breakers(self) -> str:
        with self._lock:
            breakers = list(self._breakers.values())
        # metrics(), not state: a shared breaker's mirror is refreshed from Redis,
        # so one opened by another process shows here without a local call.
        states = [b.metrics().state.value for b in breakers]
        return "degraded" if any(s in ("open", "forced_open") for s in states) else "healthy"

    def _check_cache(self) -> str:
        with self._lock:
            caches: list[Any] = [*self._caches.values(), *self._async_caches.values()]
        for c in caches:
            degraded = getattr(c, "degraded", None)
            if degraded:
                return "degraded"
        return "healthy"

    def verify_indexes(self, connection: object, **options: Any) -> list[Any]:
        """Suggest indexes for the recorded SQL workload and verify them on ``connection``.

        :meth:`QueryOptimizer.suggest_indexes` then :meth:`QueryOptimizer.verify`
        (nothing persists); the results also appear in the dashboard's SQL panel.
        Returns the :class:`~sentia_core.sql.VerifiedSuggestion` list.
        """
        verified = self.queries.verify(
            self.queries.suggest_indexes(connection=connection), connection, **options
        )
        self._dashboard.verified = tuple(verified)
        return verified

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

    # ------------------------------------------------------------------ endpoints

    def _endpoint_auth(self, auth: AuthSpec) -> EndpointAuth | None:
        if auth is not None:
            return as_auth(auth)
        a = self.config.monitor.auth
        if not a.configured:
            return None
        try:
            return EndpointAuth(**{f.name: getattr(a, f.name) for f in dataclasses.fields(a)})
        except ConfigError as exc:
            key = "monitor.auth" + ("" if exc.parameter == "auth" else f".{exc.parameter}")
            raise ConfigError(key, exc.value, exc.reason) from None

    def serve(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        auth: AuthSpec = None,
        tls: object = None,
        allow_unauthenticated: bool | None = None,
        limits: ServerLimits | None = None,
    ) -> MetricsServer:
        """Serve this application's monitor over HTTP from its own process.

        ``/metrics``, ``/metrics.json``, ``/health``, ``/health/live``,
        ``/health/ready`` and the pages, from one event-loop thread. Every
        argument defaults to ``[monitor]``: ``http_host`` (127.0.0.1),
        ``http_port`` (9464), ``[monitor.auth]``, ``tls_certfile``/``tls_keyfile``,
        ``allow_unauthenticated``, ``http_max_connections``, ``http_header_timeout``.

        Args:
            auth: an ``EndpointAuth``, a bearer token, or ``(username, password)``.
            tls: ``(certfile, keyfile)`` or an ``ssl.SSLContext``.
            limits: a ``ServerLimits`` (overrides the two ``http_*`` settings).

        Returns:
            The running ``MetricsServer``: ``.address``, ``.url``, ``.close()``
            (also closed by :meth:`close`).

        Raises:
            ConfigError: a non-loopback host without auth (unless
                ``allow_unauthenticated``), bad TLS files, bad limits.
            OSError: the address cannot be bound.
        """
        m = self.config.monitor
        if tls is None and m.tls_certfile is not None and m.tls_keyfile is not None:
            tls = (m.tls_certfile, m.tls_keyfile)
        if limits is None:
            limits = ServerLimits(
                max_connections=m.http_max_connections, header_timeout=m.http_header_timeout
            )
        return self.monitor.serve(
            m.http_host if host is None else host,
            m.http_port if port is None else port,
            auth=self._endpoint_auth(auth),
            tls=tls,
            allow_unauthenticated=(
                m.allow_unauthenticated if allow_unauthenticated is None else allow_unauthenticated
            ),
            limits=limits,
        )

    def asgi(self, *, auth: AuthSpec = None) -> MonitorApp:
        """This application's monitor as an ASGI app (``MonitorApp``) to mount under
        an existing one: ``fastapi_app.mount("/monitor", app.asgi())``.

        The same routes and rules as :meth:`serve` (``auth`` defaults to
        ``[monitor.auth]``); no web framework is needed at runtime.
        """
        return self.monitor.asgi(auth=self._endpoint_auth(auth))

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Stop background threads and close connections (idempotent).

        Async caches (:meth:`named_async_cache`) hold connections of their event
        loop: close those with :meth:`aclose` from that loop.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            unsubscribe, self._unsubscribe = self._unsubscribe, []
        for fn in unsubscribe:
            fn()
        self._finalizer()

    def __enter__(self) -> Sentia:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Sentia:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Like :meth:`close`, from a running event loop; also closes the async caches."""
        import asyncio

        with self._lock:
            async_caches = list(self._async_caches.values())
        for cache in async_caches:
            await cache.aclose()
        await asyncio.to_thread(self.close)

    def __repr__(self) -> str:
        mode = "embedded" if self.embedded else "redis"
        return f"Sentia(mode={mode!r}, breakers={sorted(self._breakers)!r})"
