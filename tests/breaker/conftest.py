"""Helpers for the breaker tests: a recording listener and a flaky dependency."""

from __future__ import annotations

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
