"""Retry (sync): what callers observe. The async twin is test_retry_async.py."""

from __future__ import annotations

import math
import random
import threading
from datetime import timedelta
from typing import Any

import pytest

from sentia_core.errors import CircuitOpenError, ConfigError, RateLimitExceeded
from sentia_core.policies import (
    FixedBackoff,
    Retry,
    RetryBudget,
    RetryEvent,
    deadline,
    retry,
)
from sentia_core.testing import ManualClock


class Flaky:
    """Fails with the given errors (or returns the given results) in turn, then succeeds."""

    def __init__(self, *outcomes: Any, value: Any = "ok") -> None:
        self.outcomes = list(outcomes)
        self.value = value
        self.calls = 0
        self.raised: list[BaseException] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.args = (args, kwargs)
        if self.outcomes:
            outcome = self.outcomes.pop(0)
            if isinstance(outcome, BaseException):
                self.raised.append(outcome)
                raise outcome
            return outcome
        return self.value


def make(clock: ManualClock, **kwargs: Any) -> Retry:
    kwargs.setdefault("backoff", FixedBackoff(1.0))
    return Retry(clock=clock, rng=random.Random(7), **kwargs)


def test_a_first_success_returns_at_once_without_sleeping(clock: ManualClock) -> None:
    fn = Flaky()
    assert make(clock)(fn)(1, k=2) == "ok"
    assert fn.calls == 1
    assert fn.args == ((1,), {"k": 2})
    assert clock.sleeps == []


def test_retryable_errors_are_retried_until_success(clock: ManualClock) -> None:
    fn = Flaky(ConnectionError(), ConnectionError())
    r = make(clock, attempts=3, on=ConnectionError)
    assert r(fn)() == "ok"
    assert fn.calls == 3
    assert clock.sleeps == [1.0, 1.0]
    s = r.stats()
    assert (s.calls, s.retries, s.recovered) == (1, 2, 1)


def test_when_attempts_run_out_the_last_error_surfaces_unchained(clock: ManualClock) -> None:
    fn = Flaky(ConnectionError("1"), ConnectionError("2"), ConnectionError("3"))
    r = make(clock, attempts=3, on=ConnectionError)
    with pytest.raises(ConnectionError) as info:
        r(fn)()
    assert info.value is fn.raised[-1]
    assert info.value.__context__ is None
    assert fn.calls == 3
    assert r.stats().gave_up_attempts == 1


def test_an_error_outside_on_is_raised_at_once(clock: ManualClock) -> None:
    fn = Flaky(ValueError("bug"))
    r = make(clock, on=(ConnectionError, TimeoutError))
    with pytest.raises(ValueError, match="bug"):
        r(fn)()
    assert fn.calls == 1
    assert clock.sleeps == []
    assert r.stats().not_retryable == 1


def test_on_accepts_a_predicate(clock: ManualClock) -> None:
    fn = Flaky(OSError(503, "busy"), OSError(404, "gone"))
    r = make(clock, on=lambda e: isinstance(e, OSError) and e.errno == 503)
    with pytest.raises(OSError, match="gone"):
        r(fn)()
    assert fn.calls == 2


@pytest.mark.parametrize("on", [Exception, CircuitOpenError, lambda e: True])
def test_an_open_circuit_is_never_retried(clock: ManualClock, on: Any) -> None:
    fn = Flaky(CircuitOpenError("payments", retry_after=5.0))
    r = make(clock, attempts=5, on=on)
    with pytest.raises(CircuitOpenError):
        r(fn)()
    assert fn.calls == 1
    assert clock.sleeps == []
    assert r.stats().gave_up_circuit_open == 1


def test_base_exceptions_are_never_retried(clock: ManualClock) -> None:
    fn = Flaky(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        make(clock, on=BaseException)(fn)()
    assert fn.calls == 1


def test_results_rejected_by_on_result_are_retried(clock: ManualClock) -> None:
    fn = Flaky({"status": 503}, {"status": 503}, value={"status": 200})
    r = make(clock, attempts=5, on_result=lambda resp: resp["status"] >= 500)
    assert r(fn)() == {"status": 200}
    assert fn.calls == 3


def test_the_last_rejected_result_is_returned_when_attempts_run_out(clock: ManualClock) -> None:
    fn = Flaky(1, 2, 3, value=4)
    r = make(clock, attempts=3, on_result=lambda v: v < 10)
    assert r(fn)() == 3


class Throttled(Exception):
    def __init__(self, retry_after: object) -> None:
        self.retry_after = retry_after


def test_a_retry_after_hint_sets_the_next_delay(clock: ManualClock) -> None:
    fn = Flaky(Throttled(2.5), Throttled(timedelta(seconds=4)))
    assert make(clock, attempts=3)(fn)() == "ok"
    assert clock.sleeps == [2.5, 4.0]


def test_a_rate_limit_rejection_waits_its_retry_after(clock: ManualClock) -> None:
    fn = Flaky(RateLimitExceeded("api", "tenant-1", 0.75))
    assert make(clock)(fn)() == "ok"
    assert clock.sleeps == [0.75]


def test_a_retry_after_hint_is_capped(clock: ManualClock) -> None:
    fn = Flaky(Throttled(3600))
    assert make(clock, max_retry_after=30)(fn)() == "ok"
    assert clock.sleeps == [30.0]


@pytest.mark.parametrize("hint", [math.nan, "soon", None, True, [1], -5])
def test_a_hostile_hint_falls_back_to_backoff_or_zero(clock: ManualClock, hint: object) -> None:
    fn = Flaky(Throttled(hint))
    assert make(clock)(fn)() == "ok"
    assert clock.sleeps == ([] if hint == -5 else [1.0])  # a zero delay does not sleep


def test_a_hint_property_that_raises_is_ignored(clock: ManualClock) -> None:
    class Weird(Exception):
        @property
        def retry_after(self) -> float:
            raise RuntimeError("nope")

    assert make(clock)(Flaky(Weird()))() == "ok"
    assert clock.sleeps == [1.0]


def test_hints_can_be_ignored_or_read_by_a_callable(clock: ManualClock) -> None:
    assert make(clock, retry_after=False)(Flaky(Throttled(9)))() == "ok"
    reader = make(clock, retry_after=lambda outcome: 0.125)
    assert reader(Flaky(ConnectionError()))() == "ok"
    assert clock.sleeps == [1.0, 0.125]


def test_max_time_stops_before_a_sleep_that_would_overrun(clock: ManualClock) -> None:
    def slow_failure() -> None:
        clock.advance(2.0)  # each attempt takes 2 s
        raise ConnectionError

    r = make(clock, attempts=None, max_time=5.0, backoff=FixedBackoff(1.0))
    with pytest.raises(ConnectionError):
        r(slow_failure)()
    # attempt 1 ends at 2 s, sleep to 3 s, attempt 2 ends at 5 s: 5 + 1 > 5, stop.
    assert clock.sleeps == [1.0]
    assert r.stats().gave_up_max_time == 1


def test_the_context_deadline_stops_retrying(clock: ManualClock) -> None:
    fn = Flaky(ConnectionError(), ConnectionError())
    r = make(clock, attempts=5, backoff=FixedBackoff(2.0))
    with deadline(3.0, clock=clock), pytest.raises(ConnectionError):
        r(fn)()
    assert clock.sleeps == [2.0]  # the second sleep would end past the deadline
    assert r.stats().gave_up_deadline == 1


def test_an_empty_budget_surfaces_the_original_error_at_once(clock: ManualClock) -> None:
    budget = RetryBudget(0.0, min_per_second=0.0, max_tokens=1, clock=clock)
    a = make(clock, attempts=5, budget=budget)
    b = make(clock, attempts=5, budget=budget)
    assert a(Flaky(ConnectionError()))() == "ok"  # uses the only token
    error = ConnectionError("outage")
    fn = Flaky(error)
    with pytest.raises(ConnectionError) as info:
        b(fn)()
    assert info.value is error
    assert fn.calls == 1
    assert b.stats().gave_up_budget == 1
    assert budget.stats().deposits == 2


def test_every_attempt_is_reported_to_listeners(clock: ManualClock) -> None:
    events: list[RetryEvent] = []
    r = make(clock, attempts=3, name="partner")
    unsubscribe = r.add_listener(events.append)
    boom = ConnectionError()
    assert r(Flaky(boom))() == "ok"
    assert [(e.attempt, e.outcome, e.reason, e.delay) for e in events] == [
        (1, "retry", "backoff", 1.0),
        (2, "success", "", 0.0),
    ]
    assert events[0].error is boom
    assert events[0].source == "retry:partner"
    assert events[0].at == clock.time() - 1.0
    unsubscribe()
    r(Flaky())()
    assert len(events) == 2


def test_a_first_success_is_an_event_too(clock: ManualClock) -> None:
    events: list[RetryEvent] = []
    r = make(clock)
    r.add_listener(events.append)
    r(Flaky())()
    assert [(e.attempt, e.outcome) for e in events] == [(1, "success")]


def test_blocks_can_be_retried_with_attempts(clock: ManualClock) -> None:
    r = make(clock, attempts=3, on=ConnectionError)
    seen = []
    for attempt in r.attempts():
        with attempt:
            seen.append(attempt.number)
            if attempt.number < 3:
                raise ConnectionError
    assert seen == [1, 2, 3]
    assert clock.sleeps == [1.0, 1.0]
    assert r.stats().recovered == 1


def test_a_block_that_keeps_failing_raises_out_of_the_loop(clock: ManualClock) -> None:
    r = make(clock, attempts=2, on=ConnectionError)
    seen = []

    def block() -> None:
        for attempt in r.attempts():
            with attempt:
                seen.append(attempt.number)
                raise ConnectionError

    with pytest.raises(ConnectionError):
        block()
    assert seen == [1, 2]


def test_call_is_the_same_as_decorating(clock: ManualClock) -> None:
    fn = Flaky(ConnectionError())
    assert make(clock).call(fn, 5, x=1) == "ok"
    assert fn.args == ((5,), {"x": 1})


def test_the_decorator_keeps_the_function_identity() -> None:
    @retry
    def documented() -> int:
        """Docs."""
        return 1

    @retry(attempts=2)
    def other() -> int:
        return 2

    assert documented() == 1
    assert other() == 2
    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Docs."
    assert documented.__wrapped__ is not None  # type: ignore[attr-defined]


def test_the_default_sleep_is_the_clocks(clock: ManualClock) -> None:
    r = Retry(attempts=2, backoff=0.5, clock=clock)
    assert r(Flaky(ConnectionError()))() == "ok"
    assert clock.sleeps == [0.5]


def test_an_injected_sleep_replaces_the_clocks(clock: ManualClock) -> None:
    slept: list[float] = []
    r = Retry(attempts=2, backoff=0.5, clock=clock, sleep=slept.append)
    assert r(Flaky(ConnectionError()))() == "ok"
    assert slept == [0.5]
    assert clock.sleeps == []


def test_threads_can_share_one_retry(clock: ManualClock) -> None:
    r = make(clock, attempts=3, backoff=0.0)
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        for _ in range(200):
            try:
                assert r(Flaky(ConnectionError()))() == "ok"
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    s = r.stats()
    assert (s.calls, s.retries, s.recovered) == (1200, 1200, 1200)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"attempts": 0}, "attempts"),
        ({"attempts": 2.5}, "attempts"),
        ({"attempts": None}, "attempts"),
        ({"on": "ConnectionError"}, "on"),
        ({"on": (ConnectionError, "x")}, "on"),
        ({"on": ()}, "on"),
        ({"on_result": 3}, "on_result"),
        ({"max_time": 0}, "max_time"),
        ({"max_time": -1}, "max_time"),
        ({"backoff": -1}, "backoff"),
        ({"backoff": "exp"}, "backoff"),
        ({"retry_after": "yes"}, "retry_after"),
        ({"max_retry_after": -1}, "max_retry_after"),
        ({"budget": object()}, "budget"),
        ({"name": ""}, "name"),
        ({"clock": object()}, "clock"),
        ({"rng": object()}, "rng"),
        ({"sleep": 1}, "sleep"),
        ({"async_sleep": 1}, "async_sleep"),
    ],
)
def test_bad_configuration_names_the_parameter(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ConfigError) as info:
        Retry(**kwargs)
    assert info.value.parameter == parameter


def test_decorating_a_non_callable_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Retry()(42)  # type: ignore[call-overload]


@pytest.mark.parametrize(("bad", "expected"), [(-1.0, []), (math.nan, []), (math.inf, [60.0])])
def test_a_broken_custom_backoff_cannot_produce_a_negative_or_endless_sleep(
    clock: ManualClock, bad: float, expected: list[float]
) -> None:
    r = Retry(attempts=2, backoff=lambda n, rng: bad, clock=clock)
    assert r(Flaky(ConnectionError()))() == "ok"
    assert clock.sleeps == expected


def test_a_predicate_that_raises_lets_the_original_error_surface(clock: ManualClock) -> None:
    error = ConnectionError("the real problem")

    def broken(exc: BaseException) -> bool:
        raise KeyError("bug in the predicate")

    with pytest.raises(ConnectionError) as info:
        make(clock, on=broken)(Flaky(error))()
    assert info.value is error


@pytest.mark.parametrize("answer", ["5", math.nan, RuntimeError])
def test_a_hint_reader_that_misbehaves_falls_back_to_backoff(
    clock: ManualClock, answer: object
) -> None:
    def reader(outcome: object) -> object:
        if answer is RuntimeError:
            raise RuntimeError("cannot parse")
        return answer

    r = make(clock, retry_after=reader)  # type: ignore[arg-type]
    assert r(Flaky(ConnectionError()))() == "ok"
    assert clock.sleeps == [1.0]
