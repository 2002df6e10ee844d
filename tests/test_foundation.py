"""The foundation every component builds on: errors, clock, events, validation."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

import sentia_core
from sentia_core import errors
from sentia_core._clock import SYSTEM_CLOCK, Clock
from sentia_core._events import Event, Listeners
from sentia_core._redis import key, make_client
from sentia_core._validate import (
    check_choice,
    check_fraction,
    check_int,
    check_name,
    check_non_negative,
    check_positive,
)
from sentia_core.errors import ConfigError, NotCallableError
from sentia_core.testing import ManualClock


def test_every_error_derives_from_sentia_error() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.SentiaError), name


def test_builtin_meanings_are_kept() -> None:
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.CallTimeoutError, TimeoutError)
    assert issubclass(errors.SerializationError, TypeError)
    assert issubclass(errors.MetricError, ValueError)


def test_errors_carry_their_details() -> None:
    e = errors.CircuitOpenError("payments", retry_after=12.5)
    assert (e.breaker, e.retry_after) == ("payments", 12.5)
    assert "payments" in str(e)
    r = errors.RateLimitExceeded("api", "1.2.3.4", 3.0)
    assert (r.tier, r.key, r.retry_after) == ("api", "1.2.3.4", 3.0)
    c = errors.ConfigError("window_size", -1, "must be positive")
    assert c.parameter == "window_size" and "window_size" in str(c)
    assert errors.NoHealthyInstanceError("auth").service == "auth"


def test_error_tree_docstring_names_every_error() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        assert name in doc, f"{name} missing from the tree drawn in errors.py"


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(start=5.0, wall_start=100.0)
    assert isinstance(clock, Clock)
    assert (clock.monotonic(), clock.time()) == (5.0, 100.0)
    clock.advance(2.5)
    assert (clock.monotonic(), clock.time()) == (7.5, 102.5)
    clock.sleep(1.0)
    assert clock.monotonic() == 8.5 and clock.sleeps == [1.0]
    asyncio.run(clock.async_sleep(0.5))
    assert clock.monotonic() == 9.0 and clock.sleeps == [1.0, 0.5]
    with pytest.raises(errors.ConfigError):
        clock.advance(-1)


def test_manual_clock_is_thread_safe() -> None:
    clock = ManualClock(start=0.0)

    def work() -> None:
        for _ in range(1000):
            clock.advance(1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.monotonic() == 4000


def test_system_clock_satisfies_the_protocol() -> None:
    assert isinstance(SYSTEM_CLOCK, Clock)
    a = SYSTEM_CLOCK.monotonic()
    assert SYSTEM_CLOCK.monotonic() >= a


def test_listeners_deliver_and_survive_failures() -> None:
    seen: list[Event] = []
    listeners: Listeners[Event] = Listeners()
    assert not listeners

    def boom(_: Event) -> None:
        raise RuntimeError("listener bug")

    unsubscribe = listeners.add(seen.append)
    listeners.add(boom)
    assert len(listeners) == 2
    ev = Event(source="x", at=1.0)
    listeners.emit(ev)
    assert seen == [ev] and listeners.errors == 1
    unsubscribe()
    listeners.remove(boom)
    listeners.remove(boom)  # removing twice is harmless
    listeners.emit(ev)
    assert seen == [ev] and not listeners


def test_events_are_frozen() -> None:
    ev = Event(source="x", at=1.0)
    with pytest.raises(AttributeError):
        ev.source = "y"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (check_positive, 0),
        (check_positive, -1.0),
        (check_positive, float("inf")),
        (check_positive, float("nan")),
        (check_positive, "3 fortnights"),
        (check_positive, True),
        (check_non_negative, -0.1),
        (check_fraction, 1.01),
        (check_fraction, -0.01),
        (check_int, 1.5),
        (check_int, -1),
        (check_name, ""),
        (check_name, 3),
    ],
)
def test_validation_names_the_parameter(check, value) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(errors.ConfigError) as info:
        check("my_param", value)
    assert info.value.parameter == "my_param"
    assert "my_param" in str(info.value)


def test_validation_accepts_good_values() -> None:
    assert check_positive("p", 2) == 2.0
    assert check_positive("p", float("inf"), allow_inf=True) == float("inf")
    assert check_non_negative("p", 0) == 0.0
    assert check_fraction("p", 0.5) == 0.5
    assert check_int("p", 3, minimum=1) == 3
    assert check_choice("p", "count", ("count", "time")) == "count"
    with pytest.raises(errors.ConfigError):
        check_choice("p", "other", ("count", "time"))


def test_redis_keys_are_hash_tagged() -> None:
    assert key("sentia", "breaker:db") == "sentia:{breaker:db}"
    assert key("ns", "tag", "a", "b") == "ns:{tag}:a:b"


def test_make_client_rejects_garbage() -> None:
    with pytest.raises(errors.ConfigError) as info:
        make_client("http://localhost:6379")
    assert info.value.parameter == "redis"
    with pytest.raises(errors.ConfigError):
        make_client(42)


def test_circuit_open_error_pickles_and_formats_lazily() -> None:
    import pickle

    e = errors.CircuitOpenError("db", 2.5, "half_open")
    back = pickle.loads(pickle.dumps(e))
    assert (back.breaker, back.retry_after, back.state) == ("db", 2.5, "half_open")
    assert str(back) == str(e) == "circuit 'db' is half_open; retry after 2.500s"


@pytest.mark.parametrize(
    "decorator",
    [
        lambda: sentia_core.CircuitBreaker("nc"),
        sentia_core.Policy,
        sentia_core.Retry,
        lambda: sentia_core.Timeout(1.0),
        lambda: sentia_core.Bulkhead(max_concurrent=1),
    ],
    ids=["breaker", "policy", "retry", "timeout", "bulkhead"],
)
def test_decorating_a_non_callable_is_one_error_everywhere(decorator: Callable[[], Any]) -> None:
    with pytest.raises(NotCallableError) as info:
        decorator()(42)
    assert isinstance(info.value, TypeError) and isinstance(info.value, ConfigError)
    assert info.value.parameter == "fn"
