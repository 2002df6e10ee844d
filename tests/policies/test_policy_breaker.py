"""Policy with the real CircuitBreaker: retries stop the moment the circuit opens."""

from __future__ import annotations

import asyncio

import pytest

from sentia_core.breaker import CircuitBreaker
from sentia_core.errors import CallRejectedError, CircuitOpenError
from sentia_core.policies import BreakerLike, Bulkhead, Policy, Retry
from sentia_core.testing import ManualClock


def breaker(clock: ManualClock) -> CircuitBreaker:
    return CircuitBreaker(
        "partner",
        consecutive_failures=2,
        failure_rate_threshold=None,
        reset_timeout=30.0,
        ignore_exceptions=(CallRejectedError,),
        clock=clock,
    )


def test_the_real_breaker_fits_the_protocol(clock: ManualClock) -> None:
    assert isinstance(breaker(clock), BreakerLike)


def test_retries_stop_when_the_breaker_opens(clock: ManualClock) -> None:
    calls = []
    cb = breaker(clock)

    @Policy(retry=Retry(attempts=5, backoff=1.0, clock=clock), breaker=cb)
    def flaky() -> None:
        calls.append(1)
        raise ConnectionError

    with pytest.raises(CircuitOpenError):
        flaky()
    assert len(calls) == 2  # the third attempt met an open circuit and stopped
    assert clock.sleeps == [1.0, 1.0]
    with pytest.raises(CircuitOpenError):
        flaky()
    assert len(calls) == 2
    clock.advance(30.0)  # the breaker admits one trial call; it fails and reopens the circuit
    with pytest.raises(CircuitOpenError):
        flaky()
    assert len(calls) == 3


def test_an_open_breaker_is_answered_by_the_fallback(clock: ManualClock) -> None:
    cb = breaker(clock)
    cb.force_open()
    p = Policy(
        retry=Retry(attempts=3, clock=clock),
        breaker=cb,
        fallback=lambda e, *a, **k: "stale but served",
    )
    assert p.call(lambda: "live") == "stale but served"
    assert clock.sleeps == []


def test_bulkhead_rejections_do_not_open_a_breaker_that_ignores_them(clock: ManualClock) -> None:
    cb = breaker(clock)
    bulkhead = Bulkhead(1)
    p = Policy(breaker=cb, bulkhead=bulkhead)
    with bulkhead:  # hold the only slot: every call is rejected locally
        for _ in range(5):
            with pytest.raises(CallRejectedError):
                p.call(lambda: None)
    assert cb.state.value == "closed"
    assert p.call(lambda: "through") == "through"


async def test_async_retries_stop_when_the_breaker_opens(clock: ManualClock) -> None:
    calls = []

    @Policy(retry=Retry(attempts=5, backoff=1.0, clock=clock), breaker=breaker(clock))
    async def flaky() -> None:
        calls.append(1)
        await asyncio.sleep(0)
        raise ConnectionError

    with pytest.raises(CircuitOpenError):
        await flaky()
    assert len(calls) == 2
