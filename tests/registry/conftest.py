"""Fixtures for the registry tests: one contract harness per backend.

A :class:`Harness` wraps a backend with the two things that differ between
them: how a lease is made to expire (memory: advance the ManualClock; Redis:
the lease is timed by the server's clock, so register with a tiny ttl and
poll, within a bounded deadline, until the server agrees it is gone) and how
notifications arrive (memory: synchronously; Redis: by polling pub/sub).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from sentia_core.registry import MemoryBackend, RedisBackend, RegistryBackend, Subscription
from sentia_core.testing import ManualClock

DEADLINE = 10.0


def wait_for(predicate: Callable[[], object], deadline: float = DEADLINE, what: str = "") -> None:
    """Poll ``predicate`` until truthy; fail after ``deadline`` seconds (never asserts timing)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.01)
    pytest.fail(f"condition not reached within {deadline}s: {what or predicate}")


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
