"""timer() and timed(): sync and async, one core, time from the injected clock."""

from __future__ import annotations

import asyncio

import pytest

from sentia_core.monitor import PerformanceMonitor
from sentia_core.testing import ManualClock


def test_timer_observes_the_body_duration(monitor: PerformanceMonitor, clock: ManualClock) -> None:
    with monitor.timer("work_seconds", job="a") as t:
        clock.advance(1.5)
    assert t.elapsed == 1.5
    h = monitor.histogram("work_seconds", job="a")
    assert (h.count, h.max) == (1, 1.5)


def test_timer_records_even_when_the_body_raises(
    monitor: PerformanceMonitor, clock: ManualClock
) -> None:
    def work() -> None:
        with monitor.timer("work_seconds"):
            clock.advance(0.25)
            raise KeyError("boom")

    with pytest.raises(KeyError):
        work()
    assert monitor.histogram("work_seconds").sum == 0.25


async def test_timer_works_with_async_with(monitor: PerformanceMonitor, clock: ManualClock) -> None:
    async with monitor.timer("io_seconds") as t:
        await clock.async_sleep(0.75)
    assert t.elapsed == 0.75
    assert monitor.histogram("io_seconds").max == 0.75


def test_histogram_time_is_the_same_timer(monitor: PerformanceMonitor, clock: ManualClock) -> None:
    h = monitor.histogram("step_seconds")
    with h.time():
        clock.advance(2.0)
    assert h.sum == 2.0


def test_timed_decorates_sync_functions(monitor: PerformanceMonitor, clock: ManualClock) -> None:
    @monitor.timed("compute_seconds")
    def compute(x: int) -> int:
        clock.advance(0.5)
        return x * 2

    assert compute(21) == 42
    assert compute.__name__ == "compute"
    h = monitor.histogram("compute_seconds")
    assert (h.count, h.sum) == (1, 0.5)


async def test_timed_decorates_coroutine_functions(
    monitor: PerformanceMonitor, clock: ManualClock
) -> None:
    @monitor.timed("fetch_seconds", backend="db")
    async def fetch(key: str) -> str:
        await clock.async_sleep(0.2)
        return key.upper()

    assert asyncio.iscoroutinefunction(fetch)
    results = await asyncio.gather(*(fetch(k) for k in "abc"))
    assert results == ["A", "B", "C"]
    assert monitor.histogram("fetch_seconds", backend="db").count == 3


async def test_timed_records_failures_too(monitor: PerformanceMonitor, clock: ManualClock) -> None:
    @monitor.timed("flaky_seconds")
    async def flaky() -> None:
        clock.advance(3.0)
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        await flaky()
    assert monitor.histogram("flaky_seconds").max == 3.0
