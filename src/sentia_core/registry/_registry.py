"""ServiceRegistry: register, discover, health-check and call service instances.

Theory of operation.

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

import asyncio
import collections
import dataclasses
import itertools
import logging
import math
import random
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

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
from sentia_core.errors import (
    BackendError,
    BackendUnavailableError,
    CircuitOpenError,
    ConfigError,
    NoHealthyInstanceError,
)

from ._backend import MemoryBackend, RegistryBackend, Subscription
from ._balancers import STRATEGIES, Balancer, make_balancer
from ._health import HealthCheck, HealthTracker, as_health_check
from ._model import (
    BackendStatusChanged,
    HealthStatus,
    Instance,
    InstanceDeregistered,
    InstanceEjected,
    InstanceHealthChanged,
    InstanceRegistered,
    LeaseLost,
    RegistryEvent,
    RegistryStats,
    frozen_metadata,
)
from ._outlier import OutlierPolicy
from ._view import Counters, ServiceView

__all__ = ["BreakerLike", "ServiceRegistry"]

_log = logging.getLogger("sentia_core.registry")

T = TypeVar("T")

_UNSET: Any = object()
#: longest the background thread waits between two runs (seconds, real time).
_MAX_IDLE = 1.0
_MAX_NAME = 256


@runtime_checkable
class BreakerLike(Protocol):
    """What ``call`` needs from a per-instance circuit breaker.

    :class:`sentia_core.CircuitBreaker` is one; ``breaker_factory`` may build
    any object with these two methods. A breaker that refuses a call raises
    :class:`~sentia_core.errors.CircuitOpenError` carrying its name.
    """

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` under the breaker."""
        ...

    async def call_async(self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        """Await ``fn(*args, **kwargs)`` under the breaker."""
        ...


def _default_breaker_factory(clock: Clock) -> Callable[[str], BreakerLike]:
    def make(name: str) -> BreakerLike:
        from sentia_core.breaker import CircuitBreaker

        breaker: BreakerLike = CircuitBreaker(name, clock=clock)
        return breaker

    return make


class _Owned:
    """An instance this registry registered and keeps alive (bg-thread state)."""

    __slots__ = (
        "attempts",
        "check",
        "check_interval",
        "check_timeout",
        "ever_registered",
        "instance",
        "next_check",
        "next_heartbeat",
        "registered",
        "retry_at",
        "status_unpublished",
        "tracker",
        "unhealthy_since",
    )

    def __init__(
        self,
        instance: Instance,
        check: HealthCheck | None,
        tracker: HealthTracker | None,
        check_interval: float,
        check_timeout: float,
    ) -> None:
        self.instance = instance
        self.check = check
        self.tracker = tracker
        self.check_interval = check_interval
        self.check_timeout = check_timeout
        self.registered = False
        self.ever_registered = False
        self.attempts = 0
        self.retry_at = -math.inf
        self.next_heartbeat = math.inf
        self.next_check = -math.inf
        self.unhealthy_since: float | None = None
        self.status_unpublished = False


class _Retry:
    """State of a call after its first failure (the success path never makes one)."""

    __slots__ = ("last_error", "rejection", "retries_left", "tried")

    def __init__(self, retries: int) -> None:
        self.retries_left = retries
        self.tried: set[str] = set()
        self.last_error: BaseException | None = None
        self.rejection: BaseException | None = None


Watcher = Callable[[tuple[Instance, ...]], object]


class ServiceRegistry:
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
        self._breaker_factory = check_callable("breaker_factory", breaker_factory)

        if redis is not None and backend is not None:
            raise ConfigError("backend", backend, "pass either redis= or backend=, not both")
        self._owns_backend = False
        if backend is not None:
            if not isinstance(backend, RegistryBackend):
                raise ConfigError("backend", backend, "must implement RegistryBackend")
            self._backend: RegistryBackend = backend
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
        self._warned_idle = False
        self._tick_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sub: Subscription = self._backend.subscribe(self._on_change)

    # configuration helpers ---------------------------------------------------------

    @staticmethod
    def _check_strategy(strategy: object) -> str | Balancer:
        if isinstance(strategy, str):
            if strategy not in STRATEGIES:
                allowed = ", ".join(repr(s) for s in STRATEGIES)
                raise ConfigError("strategy", strategy, f"must be one of {allowed} or a Balancer")
            return strategy
        if isinstance(strategy, Balancer):
            return strategy
        raise ConfigError("strategy", strategy, "must be a strategy name or a Balancer")

    # events ----------------------------------------------------------------------

    def add_listener(self, fn: Callable[[RegistryEvent], object]) -> Callable[[], None]:
        """Subscribe ``fn`` to this registry's events; returns the unsubscribe function."""
        return self._listeners.add(fn)

    def _emit(self, event: RegistryEvent) -> None:
        self._listeners.emit(event)

    def _backend_ok(self) -> None:
        if self._available:
            return
        with self._lock:
            was, self._available = self._available, True
        if not was:
            _log.info("registry %s: backend %s is reachable again", self._name, self._backend.name)
            if self._listeners:
                self._emit(BackendStatusChanged(self._source, self._clock.time(), True, ""))

    def _backend_failed(self, exc: BaseException) -> None:
        with self._lock:
            self._backend_errors += 1
            was, self._available = self._available, False
        if was:
            # an error reply (OOM, a script error) is not an unreachable server
            what = "unreachable" if isinstance(exc, BackendUnavailableError) else "refused a call"
            _log.warning(
                "registry %s: backend %s %s, serving last known instances: %s",
                self._name,
                self._backend.name,
                what,
                exc,
            )
            if self._listeners:
                self._emit(BackendStatusChanged(self._source, self._clock.time(), False, str(exc)))

    # registration --------------------------------------------------------------------

    def register(
        self,
        service: str,
        address: str,
        weight: int = 1,
        metadata: Mapping[str, str] | None = None,
        health_check: HealthCheck | Callable[[Instance], object] | str | None = None,
        *,
        instance_id: str | None = None,
        zone: str | None = _UNSET,
    ) -> Instance:
        """Register an instance of ``service`` owned (kept alive) by this registry.

        The lease is taken at once. If the backend cannot be reached the
        instance is still returned and registration is retried with backoff
        by the background work. An instance with a health check starts as
        ``"starting"`` (not routed to) until its first probe, run by the
        background work (or :meth:`run_once`).

        Args:
            service: the service name.
            address: ``host:port`` or a URL.
            weight: relative traffic share for the weighted balancer (int >= 1).
            metadata: string labels stored with the instance.
            health_check: None, a :class:`HttpCheck` / :class:`TcpCheck` /
                :class:`CallableCheck`, a callable ``fn(instance) -> bool``, an
                ``http(s)://`` URL or ``/path`` (HTTP GET on the instance),
                ``"tcp"`` or ``tcp://host:port``.
            instance_id: the id (default: 16 random hex digits).
            zone: the instance's zone (default: the registry's ``zone``).

        Returns:
            The instance as stored (``registered_at`` is 0.0 while pending).

        Raises:
            ConfigError: an invalid argument, naming it.
        """
        service = _check_text("service", service)
        address = _check_text("address", address)
        weight = check_int("weight", weight, minimum=1)
        if weight > 1_000_000:
            raise ConfigError("weight", weight, "must be at most 1000000")
        meta = _check_metadata(metadata)
        check = as_health_check(health_check)
        iid = (
            f"{self._rng.getrandbits(64):016x}"
            if instance_id is None
            else _check_text("instance_id", instance_id)
        )
        if zone is _UNSET:
            zone = self._zone
        elif zone is not None:
            check_name("zone", zone)
        tracker = None
        status = HealthStatus.HEALTHY
        interval, timeout = self._check_interval, self._check_timeout
        if check is not None:
            tracker = HealthTracker(
                check.rise if check.rise is not None else self._rise,
                check.fall if check.fall is not None else self._fall,
            )
            status = HealthStatus.STARTING
            interval = check.interval if check.interval is not None else interval
            timeout = check.timeout if check.timeout is not None else timeout
        instance = Instance(
            service=service,
            id=iid,
            address=address,
            weight=weight,
            zone=zone,
            metadata=meta,
            status=status,
        )
        owned = _Owned(instance, check, tracker, interval, timeout)
        if self._thread is None and self._clock is SYSTEM_CLOCK and not self._warned_idle:
            self._warned_idle = True
            _log.warning(
                "registry %s: %s/%s registered but the registry is not started: without "
                "start() (or run_once() calls) its lease expires after ttl=%gs",
                self._name,
                service,
                iid,
                self._ttl,
            )
        self._try_register(owned, self._now())
        with self._lock:
            self._owned[(service, iid)] = owned
        if check is not None and self._thread is not None:
            self._sub.wake()  # probe it now rather than at the next idle wake-up
        return owned.instance

    def _try_register(self, owned: _Owned, now: float) -> None:
        rereg = owned.ever_registered
        try:
            stored = self._backend.register(owned.instance, self._ttl)
        except BackendError as exc:
            self._backend_failed(exc)
            owned.registered = False
            owned.attempts += 1
            owned.retry_at = now + self._delay(owned.attempts)
            return
        self._backend_ok()
        owned.instance = stored
        owned.registered = owned.ever_registered = True
        owned.attempts = 0
        owned.status_unpublished = False
        owned.next_heartbeat = now + self._heartbeat_interval
        if rereg:
            with self._lock:
                self._reregistrations += 1
        self._dirty_if_viewed(stored.service)
        if self._listeners:
            self._emit(InstanceRegistered(self._source, self._clock.time(), stored, rereg))

    def _delay(self, attempts: int) -> float:
        """Exponential backoff with equal jitter: in [d/2, d], d = base * 2**(n-1) capped."""
        d = min(self._backoff_max, self._backoff * 2.0 ** min(attempts - 1, 62))
        return d * (0.5 + 0.5 * self._rng.random())

    def deregister(self, instance: Instance) -> bool:
        """Remove an instance from the registry and stop keeping it alive.

        Args:
            instance: an instance returned by :meth:`register` (or found by
                discovery: any registry may deregister any instance).

        Returns:
            True when the backend removed it; False when it was not there or
            the backend is unreachable (its lease then expires after ``ttl``).
        """
        with self._lock:
            self._owned.pop((instance.service, instance.id), None)
        return self._remove(instance.service, instance.id, "deregistered")

    def _remove(self, service: str, instance_id: str, reason: Any) -> bool:
        try:
            removed = self._backend.deregister(service, instance_id)
        except BackendError as exc:
            self._backend_failed(exc)
            return False
        self._backend_ok()
        self._dirty_if_viewed(service)
        if removed and self._listeners:
            self._emit(
                InstanceDeregistered(self._source, self._clock.time(), service, instance_id, reason)
            )
        return removed

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

    def _safe_call(self, callback: Watcher, instances: tuple[Instance, ...]) -> None:
        try:
            callback(instances)
        except Exception:
            with self._lock:
                self._watcher_errors += 1
            _log.exception("registry %s: watch callback %r failed", self._name, callback)

    def _deliver(self, service: str, instances: tuple[Instance, ...]) -> None:
        """Queue a watch notification and drain the queue unless another thread is."""
        with self._lock:
            if service not in self._watchers:
                return
            self._deliveries.append((service, instances))
            if self._delivering:
                return
            self._delivering = True
        while True:
            with self._lock:
                if not self._deliveries:
                    self._delivering = False
                    return
                svc, snapshot = self._deliveries.popleft()
                callbacks = self._watchers.get(svc, ())
            for callback in callbacks:
                self._safe_call(callback, snapshot)

    # views ---------------------------------------------------------------------------

    def _on_change(self, service: str | None) -> None:
        """Backend notification: reload ``service`` (None: every view) before next use."""
        if service is None:
            self._dirty.update(list(self._views))
        elif service in self._views:
            self._dirty.add(service)

    def _dirty_if_viewed(self, service: str) -> None:
        if service in self._views:
            self._dirty.add(service)

    # A request reloads a view when it is missing, a notification named its
    # service, or it is past ``view.reload_at``: with the background thread
    # running that is never (the thread refreshes views); without it, two
    # refresh intervals after the last load. choose/call/acall inline this test.

    def _reload_at(self, now: float) -> float:
        return math.inf if self._thread is not None else now + self._stale_after

    def _view(self, service: str, now: float) -> ServiceView:
        view = self._views.get(service)
        if view is None or service in self._dirty or now > view.reload_at:
            return self._reload(service, now)
        return view

    def _reload(self, service: str, now: float) -> ServiceView:
        view = self._views.get(service)
        if view is None:
            _check_text("service", service)
            with self._lock:
                view = self._views.get(service)
                if view is None:
                    view = ServiceView(service, self._policy, self._panic_threshold)
                    self._views[service] = view
        self._dirty.discard(service)
        seq = next(self._seq)
        try:
            fresh = self._backend.instances(service)
        except BackendError as exc:
            with view.lock:
                view.loaded_at = now
                view.reload_at = self._reload_at(now)
                view.stale = True
            self._backend_failed(exc)
            return view
        with view.lock:
            changed = view.apply(fresh, seq, now)
            view.reload_at = self._reload_at(now)
            snapshot = view.instances
        with self._lock:
            self._refreshes += 1
        self._backend_ok()
        if changed:
            self._deliver(service, snapshot)
        return view

    def _balancer(self, view: ServiceView, strategy: object) -> Balancer:
        """The view's balancer for ``strategy``, made (and validated) on first use."""
        key = self._strategy if strategy is None else strategy
        balancer = view.balancers.get(key)
        if balancer is None:
            checked = self._check_strategy(key)
            balancer = (
                checked if not isinstance(checked, str) else make_balancer(checked, self._rng)
            )
            with view.lock:
                balancer = view.balancers.setdefault(key, balancer)
        return balancer

    def choose(
        self, service: str, strategy: str | Balancer | None = None, *, zone: str | None = _UNSET
    ) -> Instance:
        """Pick one instance of ``service`` with a balancer.

        Candidates are the healthy instances not ejected by outlier detection
        (all live instances in panic mode), narrowed to ``zone`` when any
        candidate is there.

        Args:
            service: the service name.
            strategy: a strategy name or :class:`Balancer` (default: the
                registry's ``strategy``).
            zone: the zone to prefer (default: the registry's ``zone`` when
                ``prefer_zone``; None: no preference).

        Raises:
            NoHealthyInstanceError: no candidate.
            ConfigError: unknown strategy.
        """
        now = self._now()
        view = self._views.get(service)
        if view is None or service in self._dirty or now > view.reload_at:
            view = self._reload(service, now)
        if zone is _UNSET:
            zone = self._zone if self._prefer_zone else None
        cands = view.candidates(now, zone)
        if not cands:
            with view.lock:
                view.no_instance_errors += 1
            raise NoHealthyInstanceError(service)
        balancer = view.balancers.get(self._strategy if strategy is None else strategy)
        if balancer is None:
            balancer = self._balancer(view, strategy)
        return balancer.choose(cands, view.outstanding)

    # calling -----------------------------------------------------------------------------

    def call(
        self,
        service: str,
        fn: Callable[[Instance], T],
        *,
        retries: int | None = None,
        strategy: str | Balancer | None = None,
        zone: str | None = _UNSET,
    ) -> T:
        """Run ``fn(instance)`` on a chosen instance, failing over to others.

        The call runs through the instance's circuit breaker. An exception
        in ``retry_on`` counts as a failure of that instance (stats, outlier
        detection) and the call is retried on an instance not tried yet, up
        to ``retries`` times; an instance whose breaker is open is skipped
        without using up a retry. Other exceptions propagate at once.

        Args:
            service: the service name.
            fn: called with the :class:`Instance`; its result is returned.
            retries: retries after the first attempt (default: the registry's).
            strategy: balancer for this call (default: the registry's).
            zone: zone to prefer (see :meth:`choose`).

        Returns:
            What ``fn`` returned.

        Raises:
            NoHealthyInstanceError: no instance could take the call (none
                available, or every candidate's breaker was open).
            Exception: the last failure of ``fn`` when every attempt failed.
        """
        left = self._retries if retries is None else check_int("retries", retries, minimum=0)
        now = self._now()
        view = self._views.get(service)
        if view is None or service in self._dirty or now > view.reload_at:
            view = self._reload(service, now)
        if zone is _UNSET:
            zone = self._zone if self._prefer_zone else None
        retry: _Retry | None = None
        while True:
            inst, counters, breaker = self._begin(view, now, strategy, zone, retry)
            try:
                result = breaker.call(fn, inst)
            except BaseException as exc:
                end = self._now()
                retry = self._after_failure(
                    view, inst, counters, exc, start=now, end=end, retry=retry, retries=left
                )
                if retry is None:
                    raise
                now = end
                continue
            self._after_success(counters, self._now() - now)
            return result

    async def acall(
        self,
        service: str,
        fn: Callable[[Instance], Awaitable[T]],
        *,
        retries: int | None = None,
        strategy: str | Balancer | None = None,
        zone: str | None = _UNSET,
    ) -> T:
        """The asyncio twin of :meth:`call`: awaits ``fn(instance)``.

        A view that must be (re)loaded from the backend is read in a worker
        thread, so the event loop never blocks on Redis.
        """
        left = self._retries if retries is None else check_int("retries", retries, minimum=0)
        now = self._now()
        view = self._views.get(service)
        if view is None or service in self._dirty or now > view.reload_at:
            view = await asyncio.to_thread(self._reload, service, now)
        if zone is _UNSET:
            zone = self._zone if self._prefer_zone else None
        retry: _Retry | None = None
        while True:
            inst, counters, breaker = self._begin(view, now, strategy, zone, retry)
            try:
                result = await breaker.call_async(fn, inst)
            except BaseException as exc:
                end = self._now()
                retry = self._after_failure(
                    view, inst, counters, exc, start=now, end=end, retry=retry, retries=left
                )
                if retry is None:
                    raise
                now = end
                continue
            self._after_success(counters, self._now() - now)
            return result

    def _begin(
        self,
        view: ServiceView,
        now: float,
        strategy: object,
        zone: str | None,
        retry: _Retry | None,
    ) -> tuple[Instance, Counters, BreakerLike]:
        """Pick an instance for the next attempt and count it as started."""
        cands: Sequence[Instance] | None
        if retry is None:
            # the cached-candidates fast path of view.candidates(), inlined
            cands = view.cache.get(zone) if now < view.cache_until else None
            if cands is None:
                cands = view.candidates(now, zone)
        else:
            cands = view.retry_candidates(now, zone, retry.tried)
        if not cands:
            with view.lock:
                view.no_instance_errors += 1
            if retry is not None and retry.last_error is not None:
                raise retry.last_error
            cause = retry.rejection if retry is not None else None
            raise NoHealthyInstanceError(view.service) from cause
        balancer = view.balancers.get(self._strategy if strategy is None else strategy)
        if balancer is None:
            balancer = self._balancer(view, strategy)
        inst = balancer.choose(cands, view.outstanding)
        counters = view.counters.get(inst.id)
        if counters is None:
            counters = view.counters_for(inst)
        breaker = counters.breaker
        if breaker is None:
            made = self._breaker_factory(counters.breaker_name)
            with view.lock:
                if counters.breaker is None:
                    counters.breaker = made
                breaker = counters.breaker
        next(counters.started)  # GIL-atomic: no lock on the success path
        counters.inflight.append(None)
        return inst, counters, breaker

    @staticmethod
    def _after_success(counters: Counters, latency: float) -> None:
        # Lock-free (see Counters). A success racing a failure's count may let
        # one reset slip; ejection needs a streak anyway.
        counters.inflight.pop()
        counters.samples.append(latency)
        host = counters.host
        if host.consecutive_failures:
            host.consecutive_failures = 0

    def _after_failure(
        self,
        view: ServiceView,
        inst: Instance,
        counters: Counters,
        exc: BaseException,
        *,
        start: float,
        end: float,
        retry: _Retry | None,
        retries: int,
    ) -> _Retry | None:
        """Record a failed attempt; returns the retry state, or None to re-raise ``exc``."""
        rejected = isinstance(exc, CircuitOpenError) and exc.breaker == counters.breaker_name
        failed = not rejected and isinstance(exc, self._retry_on)
        ejected: float | None = None
        counters.inflight.pop()
        with view.lock:
            if rejected:
                counters.rejections += 1
            elif isinstance(exc, Exception):
                counters.samples.append(end - start)
                if failed:
                    counters.failures += 1
                    ejected = self._policy.on_failure(
                        counters.host, end, len(view.instances), view.detector.ejected_count(end)
                    )
                    if ejected is not None:
                        view.invalidate()
                else:
                    counters.host.consecutive_failures = 0  # it answered
        if ejected is not None and self._listeners:
            self._emit(
                InstanceEjected(
                    self._source,
                    self._clock.time(),
                    view.service,
                    inst.id,
                    ejected,
                    counters.host.ejections,
                )
            )
        if not (rejected or failed):
            return None
        if retry is None:
            retry = _Retry(retries)
        retry.tried.add(inst.id)
        if rejected:
            retry.rejection = exc
            return retry
        if retry.retries_left <= 0:
            return None
        retry.retries_left -= 1
        retry.last_error = exc
        return retry

    # background work ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the background thread is running."""
        return self._thread is not None

    def start(self) -> ServiceRegistry:
        """Start the background thread (heartbeats, health checks, sweeps, refresh).

        Idempotent. Returns self.
        """
        with self._lock:
            if self._thread is not None:
                return self
            self._stopping.clear()
            thread = threading.Thread(
                target=self._loop, name=f"sentia-registry-{self._name}", daemon=True
            )
            self._thread = thread
            for view in self._views.values():
                view.reload_at = math.inf
        thread.start()
        return self

    def stop(self, *, deregister: bool = True, timeout: float = 5.0) -> None:
        """Stop the background thread and, by default, deregister owned instances.

        Args:
            deregister: remove owned instances from the backend now (False:
                leave them to expire after ``ttl``).
            timeout: seconds to wait for the thread to finish its current run.
        """
        with self._lock:
            thread, self._thread = self._thread, None
            for view in self._views.values():
                view.reload_at = view.loaded_at + self._stale_after
        if thread is not None:
            self._stopping.set()
            self._sub.wake()
            thread.join(timeout)
        with self._lock:
            owned = list(self._owned.values())
            self._owned.clear()
        if deregister:
            for o in owned:
                if o.registered:
                    self._remove(o.instance.service, o.instance.id, "deregistered")
        self._sub.close()

    def close(self) -> None:
        """:meth:`stop`, then release the backend's connections if this registry made them."""
        self.stop()
        if self._owns_backend:
            self._backend.close()

    def __enter__(self) -> ServiceRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                delay = self.run_once()
            except Exception:  # a bug; keep the registry alive
                _log.exception("registry %s: background run failed", self._name)
                delay = _MAX_IDLE
            if self._stopping.is_set():
                return
            try:
                self._sub.poll(min(max(delay, 0.005), _MAX_IDLE))
                failures = 0
            except BackendError as exc:
                self._backend_failed(exc)
                failures += 1
                self._stopping.wait(min(self._delay(failures), _MAX_IDLE))

    def run_once(self) -> float:
        """Do every piece of background work that is due now; returns seconds until the next.

        Registrations to retry, heartbeats, health probes, ``deregister_after``,
        the sweep of expired leases, and view refreshes. The background thread
        calls it in a loop; tests call it directly after advancing a ManualClock.
        If another thread is inside ``run_once`` it returns at once.
        """
        if not self._tick_lock.acquire(blocking=False):
            return 0.05
        try:
            return self._run_once()
        finally:
            self._tick_lock.release()

    def _run_once(self) -> float:
        now = self._now()
        next_due = now + self._refresh_interval
        with self._lock:
            owned = list(self._owned.items())
        for key, o in owned:
            next_due = min(next_due, self._maintain(key, o))
        now = self._now()
        if now >= self._next_sweep:
            self._sweep(now)
            self._next_sweep = now + self._sweep_interval * (0.75 + 0.25 * self._rng.random())
        next_due = min(next_due, self._next_sweep)
        for service, view in list(self._views.items()):
            if service in self._dirty or now - view.loaded_at >= self._refresh_interval:
                self._reload(service, now)
            next_due = min(next_due, view.loaded_at + self._refresh_interval)
        return max(0.0, next_due - self._now())

    def _still_owned(self, key: tuple[str, str], o: _Owned) -> bool:
        return self._owned.get(key) is o

    def _maintain(self, key: tuple[str, str], o: _Owned) -> float:
        """Registration retry / heartbeat / probe / deregister_after for one owned instance."""
        now = self._now()
        if not o.registered:
            if now >= o.retry_at:
                self._register_owned(key, o, now)
        elif now >= o.next_heartbeat:
            self._heartbeat(key, o, now)
        if o.check is not None and self._still_owned(key, o) and self._now() >= o.next_check:
            self._probe(key, o)
        if (
            self._deregister_after is not None
            and o.unhealthy_since is not None
            and self._now() - o.unhealthy_since >= self._deregister_after
            and self._still_owned(key, o)
        ):
            with self._lock:
                if self._owned.get(key) is o:
                    del self._owned[key]
            if o.registered:
                self._remove(o.instance.service, o.instance.id, "unhealthy")
            return math.inf
        due = o.next_heartbeat if o.registered else o.retry_at
        if o.check is not None:
            due = min(due, o.next_check)
        return due

    def _heartbeat(self, key: tuple[str, str], o: _Owned, now: float) -> None:
        inst = o.instance
        try:
            if o.status_unpublished and not self._backend.set_status(
                inst.service, inst.id, inst.status
            ):
                alive = False
            else:
                alive = self._backend.heartbeat(inst.service, inst.id, self._ttl)
        except BackendError as exc:
            self._backend_failed(exc)
            o.attempts += 1
            o.next_heartbeat = now + min(self._heartbeat_interval, self._delay(o.attempts))
            return
        self._backend_ok()
        o.attempts = 0
        o.status_unpublished = False
        if alive:
            o.next_heartbeat = now + self._heartbeat_interval
            return
        if not self._still_owned(key, o):
            return
        _log.warning(
            "registry %s: lease of %s/%s was lost; registering again",
            self._name,
            inst.service,
            inst.id,
        )
        if self._listeners:
            self._emit(LeaseLost(self._source, self._clock.time(), inst))
        self._register_owned(key, o, now)

    def _register_owned(self, key: tuple[str, str], o: _Owned, now: float) -> None:
        """(Re)register an owned instance from the background work.

        ``deregister`` (or ``register`` with the same id) may run meanwhile in
        another thread; then undo this registration rather than resurrect the
        instance, or store the newer registration over it.
        """
        self._try_register(o, now)
        current = self._owned.get(key)
        if current is o or not o.registered:
            return
        if current is None:
            self._remove(o.instance.service, o.instance.id, "deregistered")
        else:
            self._try_register(current, now)

    def _probe(self, key: tuple[str, str], o: _Owned) -> None:
        assert o.check is not None
        assert o.tracker is not None
        start = self._now()
        try:
            passed = bool(o.check.probe(o.instance, o.check_timeout))
        except Exception:
            passed = False
        end = self._now()
        if end - start > o.check_timeout:
            passed = False
        o.next_check = max(start + o.check_interval, end)
        previous = o.tracker.status
        status = o.tracker.record(passed)
        if status is None:
            return
        o.instance = dataclasses.replace(o.instance, status=status)
        if status is HealthStatus.UNHEALTHY:
            if o.unhealthy_since is None:
                o.unhealthy_since = end
        else:
            o.unhealthy_since = None
        if self._listeners:
            self._emit(
                InstanceHealthChanged(self._source, self._clock.time(), o.instance, previous)
            )
        if not (o.registered and self._still_owned(key, o)):
            return  # a pending registration will carry the new status
        try:
            published = self._backend.set_status(o.instance.service, o.instance.id, status)
        except BackendError as exc:
            self._backend_failed(exc)
            o.status_unpublished = True  # the next heartbeat publishes it
            return
        self._backend_ok()
        if published:
            self._dirty_if_viewed(o.instance.service)
            return
        if self._listeners:
            self._emit(LeaseLost(self._source, self._clock.time(), o.instance))
        self._register_owned(key, o, end)  # lease lost: register again, new status included

    def _sweep(self, now: float) -> None:
        with self._lock:
            services = set(self._views) | {s for s, _ in self._owned}
        for service in sorted(services):
            try:
                removed = self._backend.sweep(service)
            except BackendError as exc:
                self._backend_failed(exc)
                return
            self._backend_ok()
            if not removed:
                continue
            with self._lock:
                self._swept += len(removed)
            self._dirty_if_viewed(service)
            if self._listeners:
                at = self._clock.time()
                for iid in removed:
                    self._emit(InstanceDeregistered(self._source, at, service, iid, "expired"))

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
            )

    def owned(self) -> list[Instance]:
        """The instances this registry registered and keeps alive, as last stored."""
        with self._lock:
            return [o.instance for o in self._owned.values()]

    @property
    def backend(self) -> RegistryBackend:
        """The backend this registry uses."""
        return self._backend

    def __repr__(self) -> str:
        return (
            f"ServiceRegistry(name={self._name!r}, backend={self._backend.name!r}, "
            f"owned={len(self._owned)}, running={self.running})"
        )


# validation helpers -------------------------------------------------------------------


def _check_text(parameter: str, value: object) -> str:
    text = check_name(parameter, value)
    if len(text) > _MAX_NAME or any(ch in text for ch in "\x00\r\n"):
        raise ConfigError(
            parameter, value, f"must be at most {_MAX_NAME} characters without NUL or newlines"
        )
    return text


def _check_metadata(metadata: object) -> Mapping[str, str]:
    if metadata is None:
        return frozen_metadata(None)
    if not isinstance(metadata, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise ConfigError("metadata", metadata, "must map strings to strings")
    return frozen_metadata(metadata)


def _percent(parameter: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise ConfigError(parameter, value, "must be a percentage between 0 and 100")
    return float(value)


def _check_retry_on(value: object) -> tuple[type[BaseException], ...]:
    types = value if isinstance(value, tuple) else (value,)
    if not types or not all(isinstance(t, type) and issubclass(t, BaseException) for t in types):
        raise ConfigError("retry_on", value, "must be an exception type or a tuple of them")
    return types
