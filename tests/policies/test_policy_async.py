"""Policy (async): the twin of test_policy.py, plus cancellation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sentia_core.errors import CircuitOpenError, RateLimitExceeded
from sentia_core.policies import Bulkhead, FixedBackoff, Policy, Retry, Timeout
from sentia_core.testing import ManualClock

from .fakes import FakeBreaker, FakeLimiter, LoggingBulkhead, LoggingRetry, LoggingTimeout

INNER = ["breaker>", "rate:api:k:1", "bulkhead>", "timeout>"]
OUTER = ["<timeout", "<bulkhead", "<breaker"]


def full_policy(log: list[str], clock: ManualClock, **kwargs: Any) -> Policy:
    return Policy(
        retry=LoggingRetry(log, attempts=3, backoff=FixedBackoff(1.0), clock=clock),
        breaker=kwargs.pop("breaker", FakeBreaker(log)),
        rate_limit=kwargs.pop("limiter", FakeLimiter(log)),
        rate_tier="api",
        rate_key="k",
        bulkhead=LoggingBulkhead(log, 2),
        timeout=LoggingTimeout(log, 5.0),
        clock=clock,
        **kwargs,
    )


async def test_each_attempt_passes_every_stage_in_order(clock: ManualClock) -> None:
    log: list[str] = []
    failures = [ConnectionError()]

    @full_policy(log, clock)
    async def fn() -> str:
        log.append("fn")
        await asyncio.sleep(0)
        if failures:
            raise failures.pop()
        return "ok"

    assert asyncio.iscoroutinefunction(fn)
    assert await fn() == "ok"
    attempt = [*INNER, "fn", *OUTER]
    assert log == ["retry>", *attempt, *attempt, "<retry"]
    assert clock.sleeps == [1.0]


async def test_an_async_fallback_is_awaited(clock: ManualClock) -> None:
    log: list[str] = []

    async def fallback(error: BaseException, *args: Any, **kwargs: Any) -> str:
        log.append("fallback")
        return f"fallback for {args[0]}"

    @full_policy(log, clock, fallback=fallback)
    async def fn(item: str) -> str:
        raise ConnectionError

    assert await fn("sku-9") == "fallback for sku-9"
    assert log[-2:] == ["<retry", "fallback"]


async def test_an_open_circuit_stops_at_once(clock: ManualClock) -> None:
    log: list[str] = []

    @full_policy(log, clock, breaker=FakeBreaker(log, is_open=True))
    async def fn() -> None:
        log.append("fn")

    with pytest.raises(CircuitOpenError):
        await fn()
    assert log == ["retry>", "breaker>", "<retry"]


async def test_a_blocking_rate_limit_awaits_the_async_sleep(clock: ManualClock) -> None:
    limiter = FakeLimiter([], (False, 0.75))
    p = Policy(rate_limit=limiter, rate_tier="api", rate_block=True, clock=clock)

    async def send() -> str:
        return "sent"

    assert await p.call_async(send) == "sent"
    assert clock.sleeps == [0.75]


async def test_a_non_blocking_rate_limit_raises(clock: ManualClock) -> None:
    p = Policy(rate_limit=FakeLimiter([], (False, 9.0)), rate_tier="api")

    async def send() -> None:
        pass

    with pytest.raises(RateLimitExceeded):
        await p.call_async(send)


async def test_a_timed_out_attempt_is_cancelled_and_retried() -> None:
    attempts = 0
    cancelled = asyncio.Event()

    @Policy(retry=Retry(attempts=2, backoff=0.0), timeout=Timeout(0.02))
    async def fetch() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            try:
                await asyncio.Event().wait()
            finally:
                cancelled.set()
        return "second attempt"

    assert await fetch() == "second attempt"
    assert cancelled.is_set()


async def test_cancelling_the_caller_propagates_and_releases_everything() -> None:
    started = asyncio.Event()
    bulkhead = Bulkhead(1)
    fell_back = []

    @Policy(
        retry=Retry(attempts=5, on=BaseException, backoff=0.0),
        bulkhead=bulkhead,
        timeout=Timeout(30.0),
        fallback=lambda e, *a, **k: fell_back.append(e),
    )
    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(hang())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fell_back == []  # cancellation is never "handled"
    assert bulkhead.stats().active == 0
    assert bulkhead.stats().accepted == 1  # and never retried


async def test_without_stages_the_coroutine_is_awaited_as_is() -> None:
    async def fn(a: int) -> int:
        return a + 1

    wrapped = Policy()(fn)
    assert wrapped is not fn
    assert asyncio.iscoroutinefunction(wrapped)
    assert await wrapped(1) == 2
