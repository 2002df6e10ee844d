"""Retry (async): the twin of test_retry.py, plus cancellation."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from sentia_core.errors import CircuitOpenError
from sentia_core.policies import FixedBackoff, Retry, RetryEvent, deadline, retry
from sentia_core.testing import ManualClock


class AsyncFlaky:
    def __init__(self, *outcomes: Any, value: Any = "ok") -> None:
        self.outcomes = list(outcomes)
        self.value = value
        self.calls = 0

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.args = (args, kwargs)
        await asyncio.sleep(0)
        if self.outcomes:
            outcome = self.outcomes.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        return self.value


def make(clock: ManualClock, **kwargs: Any) -> Retry:
    kwargs.setdefault("backoff", FixedBackoff(1.0))
    return Retry(clock=clock, rng=random.Random(7), **kwargs)


async def test_a_first_success_returns_at_once(clock: ManualClock) -> None:
    fn = AsyncFlaky()
    assert await make(clock)(fn)(1, k=2) == "ok"
    assert fn.args == ((1,), {"k": 2})
    assert clock.sleeps == []


async def test_retryable_errors_are_retried_with_the_async_sleep(clock: ManualClock) -> None:
    fn = AsyncFlaky(ConnectionError(), ConnectionError())
    r = make(clock, attempts=3, on=ConnectionError)
    assert await r(fn)() == "ok"
    assert fn.calls == 3
    assert clock.sleeps == [1.0, 1.0]
    assert r.stats().recovered == 1


async def test_when_attempts_run_out_the_last_error_surfaces(clock: ManualClock) -> None:
    last = ConnectionError("3")
    fn = AsyncFlaky(ConnectionError("1"), ConnectionError("2"), last)
    with pytest.raises(ConnectionError) as info:
        await make(clock, attempts=3)(fn)()
    assert info.value is last


async def test_an_open_circuit_stops_at_once(clock: ManualClock) -> None:
    fn = AsyncFlaky(CircuitOpenError("b", 1.0))
    with pytest.raises(CircuitOpenError):
        await make(clock, attempts=4)(fn)()
    assert fn.calls == 1


async def test_rejected_results_are_retried(clock: ManualClock) -> None:
    fn = AsyncFlaky(None, None, value=7)
    assert await make(clock, attempts=3, on_result=lambda v: v is None)(fn)() == 7


async def test_cancellation_raised_by_the_call_is_not_retried(clock: ManualClock) -> None:
    fn = AsyncFlaky(asyncio.CancelledError())
    with pytest.raises(asyncio.CancelledError):
        await make(clock, on=BaseException)(fn)()
    assert fn.calls == 1


async def test_cancelling_during_the_backoff_stops_the_retries() -> None:
    sleeping = asyncio.Event()

    async def parked_sleep(seconds: float) -> None:
        sleeping.set()
        await asyncio.Event().wait()  # only cancellation ends this

    fn = AsyncFlaky(ConnectionError(), ConnectionError())
    r = Retry(attempts=5, backoff=1.0, async_sleep=parked_sleep)
    task = asyncio.create_task(r(fn)())
    await sleeping.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fn.calls == 1


async def test_the_context_deadline_stops_retrying(clock: ManualClock) -> None:
    fn = AsyncFlaky(ConnectionError(), ConnectionError())
    r = make(clock, attempts=5, backoff=FixedBackoff(2.0))
    async with deadline(3.0, clock=clock):
        with pytest.raises(ConnectionError):
            await r(fn)()
    assert clock.sleeps == [2.0]


async def test_events_are_reported_per_attempt(clock: ManualClock) -> None:
    events: list[RetryEvent] = []
    r = make(clock, attempts=2)
    r.add_listener(events.append)
    with pytest.raises(ConnectionError):
        await r(AsyncFlaky(ConnectionError(), ConnectionError()))()
    assert [(e.attempt, e.outcome, e.reason) for e in events] == [
        (1, "retry", "backoff"),
        (2, "give_up", "attempts"),
    ]


async def test_blocks_can_be_retried_with_attempts_async(clock: ManualClock) -> None:
    r = make(clock, attempts=3, on=ConnectionError)
    seen = []
    async for attempt in r.attempts_async():
        with attempt:
            seen.append(attempt.number)
            if attempt.number == 1:
                raise ConnectionError
    assert seen == [1, 2]
    assert clock.sleeps == [1.0]


async def test_call_async_and_the_bare_decorator(clock: ManualClock) -> None:
    fn = AsyncFlaky(ConnectionError())
    assert await make(clock).call_async(fn, 3) == "ok"

    @retry
    async def documented() -> int:
        """Docs."""
        return 1

    assert await documented() == 1
    assert documented.__doc__ == "Docs."


async def test_objects_with_an_async_call_are_wrapped_as_async(clock: ManualClock) -> None:
    fn = AsyncFlaky(ConnectionError())
    wrapped = make(clock)(fn)
    assert asyncio.iscoroutinefunction(wrapped)
    assert await wrapped() == "ok"


async def test_many_tasks_share_one_retry(clock: ManualClock) -> None:
    r = make(clock, attempts=3, backoff=0.0)
    results = await asyncio.gather(*(r(AsyncFlaky(ConnectionError()))() for _ in range(100)))
    assert results == ["ok"] * 100
    s = r.stats()
    assert (s.calls, s.retries, s.recovered) == (100, 100, 100)
