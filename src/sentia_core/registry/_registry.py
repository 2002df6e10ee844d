"""ServiceRegistry: register, discover, health-check and call service instances.

Theory of operation. The class is assembled from three modules: the shared
state, events and views (``_base.py``), owned instances and the background
work (``_leases.py``), and choosing and calling instances (``_failover.py``).

*Owned instances.* ``register`` stores an instance with a lease of ``ttl``
seconds and remembers it as *owned*. The background work renews each lease
every ``heartbeat_interval``; a heartbeat that finds the lease gone (swept
after a long pause, Redis flushed or failed over) re-registers at once. When
the backend is unreachable, registration and heartbeats are retried with
exponential backoff and jitter, so a service that starts before Redis
registers as soon as Redis answers. Owned instances with a health check are
probed every interval; the rise/fall tracker (``_health.py``) decides their
status, which is published to the backend; ``deregister_after`` drops an
instance that stays unhealthy that long.

*Views.* For each service it looks at, the registry keeps a ``ServiceView``
(``_view.py``): the last instance list read from the backend plus this
process's counters and outlier state. A view is reloaded when a change
notification names its service (memory: synchronously; Redis: pub/sub, read
by the background thread), every ``refresh_interval`` (a safety net for lost
notifications), and on first use. When a reload fails the view keeps its
last instances and is marked stale: self-preservation, the list is never
emptied because the registry cannot reach its backend.

*Calls.* ``choose`` asks the service's balancer for one of the view's
candidates. ``call`` / ``acall`` run ``fn(instance)`` through the instance's
circuit breaker, record the outcome (counters, latency, outlier detection)
and on a failure retry on an instance not tried yet. Both share every
decision (``_begin``, ``_after_success``, ``_after_failure``); the two loops
differ only in ``await``.

*Background work* runs in one daemon thread per registry, which calls
``run_once`` and then waits on the backend's notification feed until the next
piece of work is due. Every decision reads the injected clock, so tests drive
it by calling ``run_once`` with a ManualClock and never start the thread.
"""

from __future__ import annotations

import collections
import itertools
import math
import random
import threading
from collections.abc import Callable
from typing import Any

from sentia_core._clock import SYSTEM_CLOCK, Clock
from sentia_core._events import Listeners
from sentia_core._validate import (
    check_callable,
    check_fraction,
    check_int,
    check_name,
    check_optional_positive,
    check_positive,
)
from sentia_core.breaker import BreakerLike
from sentia_core.errors import BackendError, ConfigError

from ._backend import MemoryBackend, RegistryBackend, Subscription
from ._balancers import Balancer
from ._base import Watcher, _check_retry_on, _check_text, _default_breaker_factory, _percent
from ._failover import _Failover
from ._leases import _Leases, _Owned
from ._model import (
    HealthStatus,
    Instance,
    RegistryEvent,
    RegistryStats,
)
from ._outlier import OutlierPolicy
from ._view import ServiceView

__all__ = ["ServiceRegistry"]


class ServiceRegistry(_Leases, _Failover):
    """A service-registry client: registration, discovery, health, balancing, failover.

    Args:
        redis: None (in-process, the default), a Redis URL or a synchronous
            redis client. With Redis, every process using the same Redis and
            ``namespace`` shares one registry.
        backend: a custom :class:`RegistryBackend` instead of ``redis``. Default
            (both None): ``MemoryBackend.default()``, shared by every registry
            in the process; with a non-system ``clock``, a private
            ``MemoryBackend(clock)`` (pass one backend to several registries
            in tests to share it).
        namespace: Redis key prefix.
        ttl: lease length, seconds; an instance that misses heartbeats this
            long is gone.
        heartbeat_interval: seconds between lease renewals (< ``ttl``).
        health_check_interval: default seconds between active probes.
        health_check_timeout: default seconds a probe may take.
        healthy_threshold: default passes in a row to turn healthy (rise).
        unhealthy_threshold: default failures in a row to turn unhealthy (fall).
        deregister_after: seconds an owned instance may stay unhealthy before
            it is deregistered; None (default) never.
        refresh_interval: seconds between reloads of each watched service
            (notifications make changes visible sooner; this covers lost ones).
        sweep_interval: seconds between sweeps of expired leases (default:
            ``heartbeat_interval``), jittered by up to -25 %.
        registration_backoff: first retry delay, seconds, when the backend is
            unreachable; doubles per attempt, with jitter.
        registration_backoff_max: cap on that delay, seconds.
        strategy: default balancer: one of ``"weighted_round_robin"``
            (default), ``"round_robin"``, ``"random"``, ``"least_outstanding"``,
            ``"power_of_two"``, or a :class:`Balancer`.
        zone: this process's zone: the default zone of registered instances
            and the zone ``choose`` prefers.
        prefer_zone: pick instances in ``zone`` when any is available.
        outlier_consecutive_failures: failed calls in a row that eject an instance.
        base_ejection_time: seconds of a first ejection (grows per re-ejection).
        max_ejection_time: cap on one ejection, seconds.
        max_ejection_percent: most of a service (0..100 %) ejected at once;
            0 disables outlier ejection. At least one instance always stays.
        panic_threshold: percent (0..100); when fewer instances than this are
            healthy and not ejected, balance over all of them.
        retries: default number of retries of ``call`` / ``acall``, each on an
            instance not tried yet.
        retry_on: exception types that count as a failed call (recorded,
            ejected for, retried); other exceptions propagate at once.
        breaker_factory: ``f(name) -> breaker`` for the per-instance breakers
            (default: :class:`sentia_core.CircuitBreaker` with its defaults
            and this registry's clock). The name is ``"service/instance_id"``.
        name: names this registry in events (``"registry:<name>"``) and its thread.
        clock: time source (tests: :class:`sentia_core.testing.ManualClock`).
        rng: random source for ids, jitter and random balancers.

    Raises:
        ConfigError: any invalid parameter, naming it.
    """

    def __init__(
        self,
        redis: Any = None,
        *,
        backend: RegistryBackend | None = None,
        namespace: str = "sentia:registry",
        ttl: float = 30.0,
        heartbeat_interval: float = 10.0,
        health_check_interval: float = 30.0,
        health_check_timeout: float = 2.0,
        healthy_threshold: int = 2,
        unhealthy_threshold: int = 3,
        deregister_after: float | None = None,
        refresh_interval: float = 10.0,
        sweep_interval: float | None = None,
        registration_backoff: float = 0.5,
        registration_backoff_max: float = 30.0,
        strategy: str | Balancer = "weighted_round_robin",
        zone: str | None = None,
        prefer_zone: bool = True,
        outlier_consecutive_failures: int = 5,
        base_ejection_time: float = 30.0,
        max_ejection_time: float = 300.0,
        max_ejection_percent: float = 50.0,
        panic_threshold: float = 50.0,
        retries: int = 2,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        breaker_factory: Callable[[str], BreakerLike] | None = None,
        name: str = "registry",
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        if not isinstance(clock, Clock):
            raise ConfigError("clock", clock, "must provide monotonic(), time(), sleep()")
        if rng is not None and not isinstance(rng, random.Random):
            raise ConfigError("rng", rng, "must be a random.Random")
        self._name = check_name("name", name)
        self._source = f"registry:{name}"
        self._ttl = check_positive("ttl", ttl)
        self._heartbeat_interval = check_positive("heartbeat_interval", heartbeat_interval)
        if self._heartbeat_interval >= self._ttl:
            raise ConfigError(
                "heartbeat_interval", heartbeat_interval, f"must be less than ttl ({ttl})"
            )
        self._check_interval = check_positive("health_check_interval", health_check_interval)
        self._check_timeout = check_positive("health_check_timeout", health_check_timeout)
        self._rise = check_int("healthy_threshold", healthy_threshold, minimum=1)
        self._fall = check_int("unhealthy_threshold", unhealthy_threshold, minimum=1)
        self._deregister_after = check_optional_positive("deregister_after", deregister_after)
        self._refresh_interval = check_positive("refresh_interval", refresh_interval)
        self._stale_after = 2 * self._refresh_interval
        self._sweep_interval = (
            self._heartbeat_interval
            if sweep_interval is None
            else check_positive("sweep_interval", sweep_interval)
        )
        self._backoff = check_positive("registration_backoff", registration_backoff)
        self._backoff_max = check_positive("registration_backoff_max", registration_backoff_max)
        if self._backoff_max < self._backoff:
            raise ConfigError(
                "registration_backoff_max",
                registration_backoff_max,
                "must be >= registration_backoff",
            )
        self._strategy = self._check_strategy(strategy)
        if zone is not None:
            check_name("zone", zone)
        self._zone = zone
        self._prefer_zone = bool(prefer_zone)
        self._policy = OutlierPolicy(
            consecutive_failures=outlier_consecutive_failures,
            base_ejection_time=base_ejection_time,
            max_ejection_time=max_ejection_time,
            max_ejection_percent=max_ejection_percent,
        )
        self._panic_threshold = 100.0 * check_fraction(
            "panic_threshold", _percent("panic_threshold", panic_threshold) / 100.0
        )
        self._retries = check_int("retries", retries, minimum=0)
        self._retry_on = _check_retry_on(retry_on)
        self._clock = clock
        self._now = clock.monotonic
        self._rng = rng if rng is not None else random.Random()
        if breaker_factory is None:
            breaker_factory = _default_breaker_factory(clock)
        check_callable("breaker_factory", breaker_factory)
        self._breaker_factory = breaker_factory

        if redis is not None and backend is not None:
            raise ConfigError("backend", backend, "pass either redis= or backend=, not both")
        self._owns_backend = False
        if backend is not None:
            if not isinstance(backend, RegistryBackend):
                raise ConfigError("backend", backend, "must implement RegistryBackend")
            self._backend = backend
        elif redis is not None:
            from ._redis_backend import RedisBackend

            self._backend = RedisBackend(redis, namespace=namespace)
            self._owns_backend = isinstance(redis, str)
        elif clock is SYSTEM_CLOCK:
            self._backend = MemoryBackend.default()
        else:
            self._backend = MemoryBackend(clock)

        self._lock = threading.Lock()
        self._views: dict[str, ServiceView] = {}
        self._dirty: set[str] = set()
        self._owned: dict[tuple[str, str], _Owned] = {}
        self._watchers: dict[str, tuple[Watcher, ...]] = {}
        self._deliveries: collections.deque[tuple[str, tuple[Instance, ...]]] = collections.deque()
        self._delivering = False
        self._listeners: Listeners[RegistryEvent] = Listeners()
        self._seq = itertools.count()
        self._available = True
        self._backend_errors = 0
        self._reregistrations = 0
        self._swept = 0
        self._refreshes = 0
        self._watcher_errors = 0
        self._last_services: list[str] = []
        self._next_sweep = -math.inf
        self._recovered_at = -math.inf
        self._preserved = 0
        self._warned_idle = False
        self._tick_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sub: Subscription = self._backend.subscribe(self._on_change)

    # configuration helpers ---------------------------------------------------------

    # events ----------------------------------------------------------------------

    def add_listener(self, fn: Callable[[RegistryEvent], object]) -> Callable[[], None]:
        """Subscribe ``fn`` to this registry's events; returns the unsubscribe function."""
        return self._listeners.add(fn)

    # registration --------------------------------------------------------------------

    # discovery -------------------------------------------------------------------------

    def instances(self, service: str, healthy_only: bool = True) -> list[Instance]:
        """The instances of ``service`` (sorted by id).

        Args:
            service: the service name.
            healthy_only: only instances whose status is healthy (default);
                False returns every live instance in any status.

        Returns:
            The current view (the last known one while the backend is
            unreachable). Outlier ejection is this registry's local opinion
            and does not filter this list; see :meth:`choose`.
        """
        view = self._view(service, self._now())
        if healthy_only:
            return [i for i in view.instances if i.status is HealthStatus.HEALTHY]
        return list(view.instances)

    def services(self) -> list[str]:
        """Names of services with at least one live instance, sorted.

        The last known list while the backend is unreachable.
        """
        try:
            names = self._backend.services()
        except BackendError as exc:
            self._backend_failed(exc)
            return list(self._last_services)
        self._backend_ok()
        self._last_services = names
        return list(names)

    def watch(self, service: str, callback: Watcher) -> Callable[[], None]:
        """Call ``callback(instances)`` now and whenever ``service`` changes.

        ``instances`` is a tuple of every live instance (any status), sorted
        by id. Calls are serialized and in order, from whichever thread
        noticed the change (usually the background thread); an exception in
        the callback is logged and does not stop later calls.

        Returns:
            A function that stops the watch.
        """
        service = _check_text("service", service)
        check_callable("callback", callback)
        with self._lock:
            self._watchers[service] = (*self._watchers.get(service, ()), callback)
        view = self._view(service, self._now())
        self._safe_call(callback, view.instances)

        def unwatch() -> None:
            with self._lock:
                rest = tuple(w for w in self._watchers.get(service, ()) if w is not callback)
                if rest:
                    self._watchers[service] = rest
                else:
                    self._watchers.pop(service, None)

        return unwatch

    # views ---------------------------------------------------------------------------

    # A request reloads a view when it is missing, a notification named its
    # service, or it is past ``view.reload_at``: with the background thread
    # running that is never (the thread refreshes views); without it, two
    # refresh intervals after the last load. choose/call/acall inline this test.

    # calling -----------------------------------------------------------------------------

    # background work ---------------------------------------------------------------------

    # stats -----------------------------------------------------------------------------

    def stats(self) -> RegistryStats:
        """A snapshot of this registry: backend state, owned instances, per-service stats."""
        now = self._now()
        services = {s: v.snapshot(now) for s, v in sorted(self._views.items())}
        with self._lock:
            owned = list(self._owned.values())
            return RegistryStats(
                backend=self._backend.name,
                backend_available=self._available,
                backend_errors=self._backend_errors,
                owned_instances=len(owned),
                pending_registrations=sum(1 for o in owned if not o.registered),
                reregistrations=self._reregistrations,
                swept=self._swept,
                refreshes=self._refreshes,
                running=self._thread is not None,
                services=services,
                preserved_reloads=self._preserved,
            )

    @property
    def backend(self) -> RegistryBackend:
        """The backend this registry uses."""
        return self._backend

    def __repr__(self) -> str:
        return (
            f"ServiceRegistry(name={self._name!r}, backend={self._backend.name!r}, "
            f"owned={len(self._owned)}, running={self.running})"
        )
