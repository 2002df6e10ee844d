"""The backend contract, and the in-memory backend (the embedded default).

Theory of operation: a backend stores leases. ``register`` takes a lease of
``ttl`` seconds for one instance, ``heartbeat`` renews it and says whether it
still existed, and a lease whose deadline has passed is invisible to reads at
once and physically removed by ``sweep`` (idempotent: whichever registry
sweeps first removes it; the others find nothing). Every write that changes
what readers see (register, deregister, a status change, a sweep that removed
something) notifies subscribers with the service name; a subscriber reloads
that service. Backends raise :class:`~sentia_core.errors.BackendError` (never
a driver error) so the registry can fall back on its last known view.

The memory backend keeps everything in one process behind one lock and calls
subscribers synchronously, after releasing the lock, so a registry sharing it
sees a change on its very next read.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from sentia_core._clock import SYSTEM_CLOCK, Clock

from ._model import HealthStatus, Instance

__all__ = ["MemoryBackend", "RegistryBackend", "Subscription"]

#: ``on_change(service)``; ``None`` means "anything may have changed, reload all".
ChangeCallback = Callable[[str | None], None]


@runtime_checkable
class Subscription(Protocol):
    """A live feed of change notifications from a backend."""

    def poll(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for notifications and deliver them.

        Returns early when a notification arrives or :meth:`wake` is called.

        Raises:
            BackendError: the feed broke; the caller re-subscribes later.
        """
        ...

    def wake(self) -> None:
        """Make a concurrent :meth:`poll` return soon (used to stop a thread)."""
        ...

    def close(self) -> None:
        """Stop the feed and release its resources."""
        ...


@runtime_checkable
class RegistryBackend(Protocol):
    """Where a registry keeps instances: one contract, several stores.

    Every method may raise :class:`~sentia_core.errors.BackendError`;
    none raises anything else for backend trouble.
    """

    #: short name shown in stats: ``"memory"``, ``"redis"``.
    name: str

    def register(self, instance: Instance, ttl: float) -> Instance:
        """Store ``instance`` with a fresh lease of ``ttl`` seconds; returns it as stored
        (with the backend's ``registered_at`` / ``last_heartbeat``)."""
        ...

    def heartbeat(self, service: str, instance_id: str, ttl: float) -> bool:
        """Renew the lease for ``ttl`` seconds; False when the lease is gone (or expired)."""
        ...

    def set_status(self, service: str, instance_id: str, status: HealthStatus) -> bool:
        """Publish a new health status; False when the instance is not registered."""
        ...

    def deregister(self, service: str, instance_id: str) -> bool:
        """Remove an instance; False when it was not there."""
        ...

    def instances(self, service: str) -> list[Instance]:
        """Every instance of ``service`` whose lease is live, in any status."""
        ...

    def services(self) -> list[str]:
        """Names of services with at least one live lease, sorted."""
        ...

    def sweep(self, service: str) -> list[str]:
        """Remove expired leases of ``service``; returns the ids this call removed."""
        ...

    def subscribe(self, on_change: ChangeCallback) -> Subscription:
        """Start a notification feed calling ``on_change(service)`` on every change."""
        ...

    def close(self) -> None:
        """Release connections the backend owns (not a client it was given)."""
        ...


class _MemorySubscription:
    # The backend holds subscriptions weakly: a registry that is dropped
    # without stop() does not stay alive through the shared default backend.
    __slots__ = ("__weakref__", "_event", "on_change")

    def __init__(self, on_change: ChangeCallback) -> None:
        self.on_change = on_change
        self._event = threading.Event()

    def notify(self, service: str) -> None:
        self.on_change(service)
        self._event.set()

    def poll(self, timeout: float) -> None:
        if self._event.wait(max(0.0, timeout)):
            self._event.clear()

    def wake(self) -> None:
        self._event.set()

    def close(self) -> None:
        # Nothing to release. Notifications keep flowing so a stopped registry
        # still sees changes on its next read; the weak reference ends them.
        self._event.set()


class MemoryBackend:
    """Instances kept in this process: the embedded default.

    Several registries in one process share one (``MemoryBackend.default()``
    is what ``ServiceRegistry()`` uses), so services registered by one are
    discovered by the others.

    Args:
        clock: supplies lease deadlines (``monotonic``) and the timestamps
            stored on instances (``time``).
    """

    name = "memory"

    _default: MemoryBackend | None = None
    _default_lock = threading.Lock()

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # service -> id -> (instance, lease deadline on clock.monotonic)
        self._data: dict[str, dict[str, tuple[Instance, float]]] = {}
        self._subs: weakref.WeakSet[_MemorySubscription] = weakref.WeakSet()

    @classmethod
    def default(cls) -> MemoryBackend:
        """The process-wide backend on the system clock, made on first use."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls()
            return cls._default

    def _notify(self, service: str) -> None:
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            sub.notify(service)

    def register(self, instance: Instance, ttl: float) -> Instance:
        now = self._clock.monotonic()
        wall = self._clock.time()
        stored = dataclasses.replace(instance, registered_at=wall, last_heartbeat=wall)
        with self._lock:
            self._data.setdefault(instance.service, {})[instance.id] = (stored, now + ttl)
        self._notify(instance.service)
        return stored

    def heartbeat(self, service: str, instance_id: str, ttl: float) -> bool:
        now = self._clock.monotonic()
        with self._lock:
            entry = self._data.get(service, {}).get(instance_id)
            if entry is None or entry[1] <= now:
                return False
            stored = dataclasses.replace(entry[0], last_heartbeat=self._clock.time())
            self._data[service][instance_id] = (stored, now + ttl)
        return True

    def set_status(self, service: str, instance_id: str, status: HealthStatus) -> bool:
        now = self._clock.monotonic()
        with self._lock:
            entry = self._data.get(service, {}).get(instance_id)
            if entry is None or entry[1] <= now:
                return False
            if entry[0].status is status:
                return True
            self._data[service][instance_id] = (
                dataclasses.replace(entry[0], status=status),
                entry[1],
            )
        self._notify(service)
        return True

    def deregister(self, service: str, instance_id: str) -> bool:
        with self._lock:
            members = self._data.get(service)
            if members is None or members.pop(instance_id, None) is None:
                return False
            if not members:
                del self._data[service]
        self._notify(service)
        return True

    def instances(self, service: str) -> list[Instance]:
        now = self._clock.monotonic()
        with self._lock:
            members = self._data.get(service)
            if not members:
                return []
            return [inst for inst, deadline in members.values() if deadline > now]

    def services(self) -> list[str]:
        now = self._clock.monotonic()
        with self._lock:
            return sorted(
                name
                for name, members in self._data.items()
                if any(deadline > now for _, deadline in members.values())
            )

    def sweep(self, service: str) -> list[str]:
        now = self._clock.monotonic()
        with self._lock:
            members = self._data.get(service)
            if not members:
                return []
            removed = [iid for iid, (_, deadline) in members.items() if deadline <= now]
            for iid in removed:
                del members[iid]
            if not members:
                del self._data[service]
        if removed:
            self._notify(service)
        return removed

    def subscribe(self, on_change: ChangeCallback) -> Subscription:
        sub = _MemorySubscription(on_change)
        with self._lock:
            self._subs.add(sub)
        return sub

    def close(self) -> None:
        """Nothing to release; kept for the contract."""

    def __repr__(self) -> str:
        return f"MemoryBackend(services={len(self._data)})"
