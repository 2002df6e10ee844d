"""What every part of the registry client shares: its state, events, backend status and views.

:class:`~._registry.ServiceRegistry` is assembled from mixins over this base:
:class:`~._leases._Leases` (registration, leases, heartbeats, probes, sweeps,
the background thread) and :class:`~._failover._Failover` (choosing an instance,
calls with retry and failover). The base holds the views each of them reads
(see the theory of operation in :mod:`._registry`).
"""

from __future__ import annotations

import collections
import logging
import math
import random
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from sentia_core._clock import Clock
from sentia_core._events import Listeners
from sentia_core._validate import (
    check_name,
)
from sentia_core.breaker import BreakerLike
from sentia_core.errors import BackendError, BackendUnavailableError, ConfigError

from ._backend import RegistryBackend, Subscription
from ._balancers import STRATEGIES, Balancer
from ._model import (
    BackendStatusChanged,
    Instance,
    RegistryEvent,
    frozen_metadata,
)
from ._outlier import OutlierPolicy
from ._view import ServiceView

__all__: list[str] = []

_log = logging.getLogger("sentia_core.registry")

T = TypeVar("T")

_UNSET: Any = object()
#: longest the background thread waits between two runs (seconds, real time).
_MAX_IDLE = 1.0
_MAX_NAME = 256


Watcher = Callable[[tuple[Instance, ...]], object]


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


def _default_breaker_factory(clock: Clock) -> Callable[[str], BreakerLike]:
    def make(name: str) -> BreakerLike:
        from sentia_core.breaker import CircuitBreaker

        breaker: BreakerLike = CircuitBreaker(name, clock=clock)
        return breaker

    return make


class _RegistryBase:
    """State, events, backend status and views (see the module doc)."""

    # Set by ServiceRegistry.__init__; declared here for the mixins that use them.
    _name: str
    _source: str
    _ttl: float
    _heartbeat_interval: float
    _check_interval: float
    _check_timeout: float
    _rise: int
    _fall: int
    _deregister_after: float | None
    _refresh_interval: float
    _stale_after: float
    _sweep_interval: float
    _backoff: float
    _backoff_max: float
    _strategy: str | Balancer
    _zone: str | None
    _prefer_zone: bool
    _policy: OutlierPolicy
    _panic_threshold: float
    _retries: int
    _retry_on: tuple[type[BaseException], ...]
    _clock: Clock
    _now: Callable[[], float]
    _rng: random.Random
    _breaker_factory: Callable[[str], BreakerLike]
    _owns_backend: bool
    _backend: RegistryBackend
    _lock: threading.Lock
    _views: dict[str, ServiceView]
    _dirty: set[str]
    _watchers: dict[str, tuple[Watcher, ...]]
    _deliveries: collections.deque[tuple[str, tuple[Instance, ...]]]
    _delivering: bool
    _listeners: Listeners[RegistryEvent]
    _seq: Iterator[int]
    _available: bool
    _backend_errors: int
    _reregistrations: int
    _swept: int
    _refreshes: int
    _recovered_at: float
    _preserved: int
    _watcher_errors: int
    _last_services: list[str]
    _next_sweep: float
    _warned_idle: bool
    _tick_lock: threading.Lock
    _stopping: threading.Event
    _thread: threading.Thread | None
    _sub: Subscription

    def _emit(self, event: RegistryEvent) -> None:
        self._listeners.emit(event)

    def _backend_ok(self) -> None:
        if self._available:
            return
        with self._lock:
            was, self._available = self._available, True
            if not was:
                self._recovered_at = self._now()
        if not was:
            _log.info("registry %s: backend %s is reachable again", self._name, self._backend.name)
            self._on_backend_recovered()
            if self._listeners:
                self._emit(BackendStatusChanged(self._source, self._clock.time(), True, ""))

    def _on_backend_recovered(self) -> None:
        """The backend answers again after failing (the lease work re-registers at once)."""

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

    def _on_change(self, service: str | None) -> None:
        """Backend notification: reload ``service`` (None: every view) before next use."""
        if service is None:
            self._dirty.update(list(self._views))
        elif service in self._views:
            self._dirty.add(service)

    def _dirty_if_viewed(self, service: str) -> None:
        if service in self._views:
            self._dirty.add(service)

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
        self._backend_ok()
        if not fresh and view.instances and now - self._recovered_at < self._ttl:
            # Self-preservation: a backend that just came back empty (a Redis
            # restarted without persistence, or failed over) has lost the
            # leases, not the instances. Keep serving the last known ones until
            # their owners re-register (at once, on their own recovery) or a
            # lease length passes; read again soon.
            with view.lock:
                view.loaded_at = now
                view.reload_at = min(view.reload_at, now + self._heartbeat_interval / 4)
                view.stale = True
            with self._lock:
                self._preserved += 1
            return view
        with view.lock:
            changed = view.apply(fresh, seq, now)
            view.reload_at = self._reload_at(now)
            snapshot = view.instances
        with self._lock:
            self._refreshes += 1
        if changed:
            self._deliver(service, snapshot)
        return view

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
