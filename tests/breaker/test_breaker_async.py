"""CircuitBreaker behaviour on the async paths (mirrors test_breaker.py)."""

from __future__ import annotations

import asyncio

import pytest

from sentia_core.breaker import BreakerState, CircuitBreaker
from sentia_core.errors import CircuitOpenError
from sentia_core.testing import ManualClock

from .conftest import Boom, Recorder


async def aok(value: object = "ok") -> object:
    await asyncio.sleep(0)
    return value


async def afail(*_: object) -> object:
    await asyncio.sleep(0)
    raise Boom("down")


async def trip(breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        with pytest.raises(Boom):
            await breaker.call_async(afail)


async def test_call_async_opens_and_rejects(clock: ManualClock) -> None:
    b = CircuitBreaker("db", consecutive_failures=2, reset_timeout=5, clock=clock)
    await trip(b, 2)
    assert b.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError) as info:
        await b.call_async(aok)
    assert info.value.retry_after == 5.0


async def test_decorated_coroutine_function(clock: ManualClock) -> None:
    b = CircuitBreaker("db", consecutive_failures=1, reset_timeout=5, clock=clock)

    @b
    async def fetch(key: str) -> str:
        await asyncio.sleep(0)
        if key == "bad":
            raise Boom
        return key.upper()

    assert asyncio.iscoroutinefunction(fetch)
    assert fetch.__name__ == "fetch"
    assert await fetch("a") == "A"
    with pytest.raises(Boom):
        await fetch("bad")
    with pytest.raises(CircuitOpenError):
        await fetch("a")
    clock.advance(5)
    assert await fetch("b") == "B"
    assert b.state is BreakerState.CLOSED


async def test_async_with_is_not_run_while_open(clock: ManualClock) -> None:
    b = CircuitBreaker("db", consecutive_failures=1, clock=clock)
    with pytest.raises(Boom):
        async with b:
            raise Boom
    ran = []
    with pytest.raises(CircuitOpenError):
        async with b:
            ran.append(1)
    assert ran == []


async def test_async_fallback_may_be_a_coroutine_function(clock: ManualClock) -> None:
    async def cached(key: str) -> str:
        return f"cached:{key}"

    b = CircuitBreaker("db", consecutive_failures=1, fallback=cached, clock=clock)
    await trip(b, 1)

    @b
    async def fetch(key: str) -> str:
        raise AssertionError("not called while open")

    assert await fetch("k") == "cached:k"
    assert await b.call_async(fetch, "j") == "cached:j"


async def test_async_fallback_may_be_a_plain_function(clock: ManualClock) -> None:
    b = CircuitBreaker("db", consecutive_failures=1, fallback=lambda: "plain", clock=clock)
    await trip(b, 1)
    assert await b.call_async(aok) == "plain"


async def test_cancelling_a_trial_releases_the_permit(clock: ManualClock) -> None:
    b = CircuitBreaker("db", consecutive_failures=1, reset_timeout=5, clock=clock)
    await trip(b, 1)
    clock.advance(5)
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(b.call_async(hang))
    await started.wait()
    assert b.metrics().half_open_in_flight == 1
    with pytest.raises(CircuitOpenError):
        await b.call_async(aok)  # the only permit is taken
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert b.metrics().half_open_in_flight == 0
    assert b.state is BreakerState.HALF_OPEN  # cancellation is not a failure
    assert await b.call_async(aok) == "ok"
    assert b.state is BreakerState.CLOSED


async def test_a_timed_out_trial_releases_the_permit(clock: ManualClock) -> None:
    b = CircuitBreaker("db", consecutive_failures=1, reset_timeout=5, clock=clock)
    await trip(b, 1)
    clock.advance(5)

    async def hang() -> None:
        await asyncio.Event().wait()

    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(b.call_async(hang), timeout=0.01)
    assert b.metrics().half_open_in_flight == 0
    assert await b.call_async(aok) == "ok"


async def test_a_timeout_error_raised_by_the_call_is_a_failure(clock: ManualClock) -> None:
    b = CircuitBreaker("db", consecutive_failures=1, reset_timeout=5, clock=clock)

    async def times_out() -> None:
        raise TimeoutError("upstream took too long")

    with pytest.raises(TimeoutError):
        await b.call_async(times_out)
    assert b.state is BreakerState.OPEN


async def test_async_events(clock: ManualClock, recorder: Recorder) -> None:
    b = CircuitBreaker("db", consecutive_failures=1, clock=clock)
    b.add_listener(recorder)
    await b.call_async(aok)
    await trip(b, 1)
    with pytest.raises(CircuitOpenError):
        await b.call_async(aok)
    assert recorder.outcomes == ["success", "failure", "rejected"]
    assert recorder.transitions == [("closed", "open")]


async def test_async_with_in_concurrent_tasks_keeps_decisions_apart(clock: ManualClock) -> None:
    b = CircuitBreaker(
        "db", consecutive_failures=1, reset_timeout=5, half_open_max_calls=2, clock=clock
    )
    await trip(b, 1)
    clock.advance(5)
    both_in = asyncio.Barrier(2) if hasattr(asyncio, "Barrier") else None
    entered = asyncio.Event()
    release = asyncio.Event()
    inside = 0

    async def trial() -> None:
        nonlocal inside
        async with b:
            inside += 1
            if inside == 2:
                entered.set()
            if both_in is not None:
                await both_in.wait()
            await release.wait()

    tasks = [asyncio.create_task(trial()) for _ in range(2)]
    await entered.wait()
    assert b.metrics().half_open_in_flight == 2
    release.set()
    await asyncio.gather(*tasks)
    assert b.metrics().half_open_in_flight == 0
    assert b.state is BreakerState.CLOSED
