"""Registration and the background work: leases, heartbeats, health probes, sweeps.

See *Owned instances* and *Background work* in :mod:`._registry`.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sentia_core._clock import SYSTEM_CLOCK
from sentia_core._validate import (
    check_int,
    check_name,
)
from sentia_core.errors import BackendError, ConfigError

from ._base import _MAX_IDLE, _UNSET, _check_metadata, _check_text, _log, _RegistryBase
from ._health import HealthCheck, HealthTracker, as_health_check
from ._model import (
    HealthStatus,
    Instance,
    InstanceDeregistered,
    InstanceHealthChanged,
    InstanceRegistered,
    LeaseLost,
)

__all__: list[str] = []

_L = TypeVar("_L", bound="_Leases")


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


class _Leases(_RegistryBase):
    """Owned instances and the thread that keeps them alive."""

    _owned: dict[tuple[str, str], _Owned]

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

    def _on_backend_recovered(self) -> None:
        # The backend may have come back empty (a restart, a failover): renew
        # every registered lease now rather than at the next heartbeat, so other
        # processes see the instances again within one background run. Pending
        # registrations keep their back-off (the refusal may be theirs alone).
        with self._lock:
            for owned in self._owned.values():
                if owned.registered:
                    owned.next_heartbeat = -math.inf
        self._sub.wake()

    @property
    def running(self) -> bool:
        """Whether the background thread is running."""
        return self._thread is not None

    def start(self: _L) -> _L:
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

    def __enter__(self: _L) -> _L:
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

    def owned(self) -> list[Instance]:
        """The instances this registry registered and keeps alive, as last stored."""
        with self._lock:
            return [o.instance for o in self._owned.values()]
