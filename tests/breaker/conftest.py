"""Helpers for the breaker tests: a recording listener and a flaky dependency."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sentia_core._events import Event
from sentia_core.breaker import BreakerCallOutcome, BreakerStateChanged


class Recorder:
    """A listener that keeps every event it receives."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    @property
    def transitions(self) -> list[tuple[str, str]]:
        return [
            (e.from_state.value, e.to_state.value)
            for e in self.events
            if isinstance(e, BreakerStateChanged)
        ]

    @property
    def changes(self) -> list[BreakerStateChanged]:
        return [e for e in self.events if isinstance(e, BreakerStateChanged)]

    @property
    def outcomes(self) -> list[str]:
        return [e.outcome for e in self.events if isinstance(e, BreakerCallOutcome)]


class Boom(Exception):
    """The dependency failed."""


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def ok(value: object = "ok") -> object:
    return value


def fail(*_: object) -> object:
    raise Boom("down")


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[Any]:
    """The shared 3-node cluster, started with ports whose cluster-bus port
    (port + 10000) is valid.

    ``tests._servers.free_port`` may return a port above 55535, for which
    redis-server cannot open its cluster bus and never starts; until the
    foundation fixture picks low ports itself, this override does.
    """
    from tests import _servers

    original = _servers.free_port

    def low_port() -> int:
        for _ in range(1000):
            port = original()
            if port < 55_000:
                return port
        raise RuntimeError("no free loopback port below 55000")

    _servers.free_port = low_port
    try:
        cluster = _servers.RedisCluster()
    finally:
        _servers.free_port = original
    yield cluster
    cluster.stop()
