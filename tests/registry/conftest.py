"""Fixtures for the registry tests: one contract harness per backend.

A :class:`Harness` wraps a backend with the two things that differ between
them: how a lease is made to expire (memory: advance the ManualClock; Redis:
the lease is timed by the server's clock, so register with a tiny ttl and
poll, within a bounded deadline, until the server agrees it is gone) and how
notifications arrive (memory: synchronously; Redis: by polling pub/sub).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from sentia_core.registry import MemoryBackend, RedisBackend, RegistryBackend, Subscription
from sentia_core.testing import ManualClock
from tests.waiting import wait_until

DEADLINE = 10.0


def wait_for(predicate: Callable[[], object], deadline: float = DEADLINE, what: str = "") -> None:
    """The suite's :func:`tests.waiting.wait_until`, with the registry tests' deadline."""
    wait_until(predicate, what, timeout=deadline)


@dataclass
class Harness:
    kind: str
    backend: RegistryBackend
    clock: ManualClock
    #: a ttl that expires quickly on this backend (seconds)
    short_ttl: float
    make_peer: Callable[[], RegistryBackend]
    changes: list[str | None] = field(default_factory=list)

    @property
    def is_redis(self) -> bool:
        return self.kind != "memory"

    def let_expire(self, service: str, instance_ids: set[str]) -> None:
        """Wait until none of ``instance_ids`` is visible any more."""
        if not self.is_redis:
            self.clock.advance(self.short_ttl + 0.001)
        wait_for(
            lambda: not instance_ids & {i.id for i in self.backend.instances(service)},
            what=f"leases {instance_ids} expire",
        )

    def subscribe(self) -> Subscription:
        """A subscription that is already listening (Redis subscribes on first poll)."""
        sub = self.backend.subscribe(self.changes.append)
        sub.poll(0.01)
        self.changes.clear()
        return sub

    def expect_change(self, sub: Subscription, service: str) -> None:
        """Wait until ``service`` was notified, then forget the notifications so far."""

        def seen() -> bool:
            sub.poll(0.05)
            return service in self.changes

        wait_for(seen, what=f"notification for {service}")
        self.changes.clear()

    def quiet(self, sub: Subscription) -> list[str | None]:
        """Notifications that arrive within a short poll (after the ones pending)."""
        for _ in range(3):
            sub.poll(0.02)
        got = [c for c in self.changes if c is not None]
        self.changes.clear()
        return got


def _memory() -> Harness:
    clock = ManualClock()
    backend = MemoryBackend(clock)
    return Harness("memory", backend, clock, 5.0, lambda: backend)


def _redis(client: Any, kind: str, namespace: str = "t:reg") -> Harness:
    backend = RedisBackend(client, namespace=namespace)
    return Harness(
        kind,
        backend,
        ManualClock(),
        0.05,
        lambda: RedisBackend(client, namespace=namespace),
    )


@pytest.fixture(params=["memory", "fakeredis", pytest.param("redis", marks=pytest.mark.redis)])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """The same backend contract, on memory, fakeredis and a real redis-server."""
    if request.param == "memory":
        yield _memory()
    elif request.param == "fakeredis":
        yield _redis(request.getfixturevalue("fake_redis"), "fakeredis")
    else:
        yield _redis(request.getfixturevalue("real_redis"), "redis")


class FlakyBackend:
    """Wraps a backend; while ``down`` every operation raises BackendUnavailableError.

    ``fail_registrations`` makes only the next N ``register`` calls fail.
    ``silent`` stops change notifications (to test the periodic refresh).
    """

    def __init__(self, inner: RegistryBackend, clock: ManualClock) -> None:
        self.inner = inner
        self.clock = clock
        self.name = "flaky"
        self.down = False
        self.silent = False
        self.fail_registrations = 0
        self.register_attempts: list[float] = []
        self.calls: list[str] = []
        #: called (once) at the start of the next ``register``: a concurrent actor
        self.on_register: Callable[[], object] | None = None

    def _gate(self, op: str) -> None:
        from sentia_core.errors import BackendUnavailableError

        self.calls.append(op)
        if self.down:
            raise BackendUnavailableError("backend is down (test)")

    def register(self, instance: Any, ttl: float) -> Any:
        from sentia_core.errors import BackendUnavailableError

        self.register_attempts.append(self.clock.monotonic())
        hook, self.on_register = self.on_register, None
        if hook is not None:
            hook()
        self._gate("register")
        if self.fail_registrations:
            self.fail_registrations -= 1
            raise BackendUnavailableError("refused (test)")
        return self.inner.register(instance, ttl)

    def heartbeat(self, service: str, instance_id: str, ttl: float) -> bool:
        self._gate("heartbeat")
        return self.inner.heartbeat(service, instance_id, ttl)

    def set_status(self, service: str, instance_id: str, status: Any) -> bool:
        self._gate("set_status")
        return self.inner.set_status(service, instance_id, status)

    def deregister(self, service: str, instance_id: str) -> bool:
        self._gate("deregister")
        return self.inner.deregister(service, instance_id)

    def instances(self, service: str) -> list[Any]:
        self._gate("instances")
        return self.inner.instances(service)

    def services(self) -> list[str]:
        self._gate("services")
        return self.inner.services()

    def sweep(self, service: str) -> list[str]:
        self._gate("sweep")
        return self.inner.sweep(service)

    def subscribe(self, on_change: Callable[[str | None], None]) -> Subscription:
        def relay(service: str | None) -> None:
            if not self.silent:
                on_change(service)

        return self.inner.subscribe(relay)

    def close(self) -> None:
        self.inner.close()
