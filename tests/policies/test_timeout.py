"""Timeout: real cancellation for async, abandon-in-a-worker or cooperative for sync."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import pytest

from sentia_core.errors import CallTimeoutError, ConfigError
from sentia_core.policies import Timeout, TimeoutEvent, check_deadline, deadline, remaining_time
from sentia_core.testing import ManualClock
from tests.waiting import wait_until

# A deadline short enough to keep the suite fast; tests assert outcomes, never durations.
SHORT = 0.02
# For sync tests that need the worker to have *started* the call before the caller
# gives up: generous, because a loaded CI machine may take a while to schedule it.
STARTED_WITHIN = 0.5


# ------------------------------------------------------------------ asyncio


async def test_a_slow_coroutine_is_cancelled_and_a_call_timeout_raised() -> None:
    cleaned_up = asyncio.Event()
    events: list[TimeoutEvent] = []
    t = Timeout(SHORT, name="partner")
    t.add_listener(events.append)

    async def hang() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned_up.set()

    with pytest.raises(CallTimeoutError) as info:
        await t.call_async(hang)
    assert isinstance(info.value, TimeoutError)
    assert info.value.timeout == SHORT
    assert cleaned_up.is_set()
    assert [(e.kind, e.timeout) for e in events] == [("timed_out", "partner")]
    assert t.stats().timeouts == 1


async def test_a_fast_coroutine_returns_and_sees_its_deadline() -> None:
    @Timeout(30.0)
    async def fast(x: int) -> tuple[int, float | None]:
        await asyncio.sleep(0)
        return x, remaining_time()

    value, left = await fast(3)
    assert value == 3
    assert left is not None
    assert 0 < left <= 30.0
    assert remaining_time() is None  # restored afterwards
    assert fast.__name__ == "fast"


async def test_the_calls_own_timeout_error_passes_through_unconverted() -> None:
    t = Timeout(30.0)

    async def own() -> None:
        raise TimeoutError("the driver's own")

    with pytest.raises(TimeoutError, match="driver") as info:
        await t.call_async(own)
    assert not isinstance(info.value, CallTimeoutError)
    assert t.stats().timeouts == 0


async def test_an_expired_outer_deadline_fails_fast_without_calling(clock: ManualClock) -> None:
    called = False

    async def fn() -> None:
        nonlocal called
        called = True

    async with deadline(1.0, clock=clock):
        clock.advance(5.0)
        with pytest.raises(CallTimeoutError):
            await Timeout(30.0).call_async(fn)
    assert not called


async def test_an_outer_deadline_shortens_the_timeout(clock: ManualClock) -> None:
    seen: list[float | None] = []

    async def fn() -> None:
        seen.append(remaining_time())

    async with deadline(2.0, clock=clock):
        await Timeout(30.0, clock=clock).call_async(fn)
    assert seen == [2.0]


async def test_cancelling_the_caller_is_a_cancellation_not_a_timeout() -> None:
    t = Timeout(30.0)
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(t.call_async(hang))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert t.stats().timeouts == 0


# ---------------------------------------------------------- sync: "thread"


def test_a_hung_sync_call_is_abandoned_and_counted() -> None:
    t = Timeout(STARTED_WITHIN, name="legacy")
    assert t.call(lambda: "warm") == "warm"  # a worker is up and idle
    started = threading.Event()
    release = threading.Event()
    finished = threading.Event()
    events: list[TimeoutEvent] = []
    t.add_listener(events.append)

    def hang() -> str:
        started.set()
        release.wait(30)
        finished.set()
        return "late"

    with pytest.raises(CallTimeoutError):
        t.call(hang)
    assert started.is_set()
    s = t.stats()
    assert (s.abandoned, s.abandoned_running, s.timeouts) == (1, 1, 1)
    assert [e.kind for e in events] == ["abandoned"]
    release.set()  # the abandoned call runs to its end in the worker
    assert finished.wait(30)
    wait_until(lambda: t.stats().abandoned_running == 0, "abandoned call finished")
    t.close()


def test_results_and_errors_come_back_from_the_worker() -> None:
    t = Timeout(30.0)
    assert t.call(lambda a, b: a + b, 2, b=3) == 5
    boom = ValueError("from the worker")

    def fail() -> None:
        raise boom

    with pytest.raises(ValueError, match="from the worker") as info:
        t.call(fail)
    assert info.value is boom
    t.close()


def test_the_worker_sees_the_callers_context_and_deadline() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var")
    var.set("request-42")
    t = Timeout(30.0)

    def probe() -> tuple[str, float | None, str]:
        return var.get(), remaining_time(), threading.current_thread().name

    value, left, thread = t.call(probe)
    assert value == "request-42"
    assert left is not None
    assert 0 < left <= 30.0
    assert thread.startswith("sentia-timeout-timeout-")
    t.close()


def test_when_every_worker_is_stuck_new_calls_time_out_without_starting() -> None:
    t = Timeout(STARTED_WITHIN, max_workers=1)
    assert t.call(lambda: "warm") == "warm"
    started = threading.Event()
    release = threading.Event()
    ran = []

    def hang() -> None:
        started.set()
        release.wait(30)

    with pytest.raises(CallTimeoutError):
        t.call(hang)
    assert started.is_set()
    with pytest.raises(CallTimeoutError):
        t.call(ran.append, "should never run")
    s = t.stats()
    assert (s.abandoned, s.never_started, s.workers) == (1, 1, 1)
    release.set()
    wait_until(lambda: t.stats().abandoned_running == 0, "worker freed")
    assert t.call(lambda: "free again") == "free again"
    assert ran == []  # the cancelled job was skipped
    t.close()


def test_a_closed_timeout_refuses_sync_calls_and_stops_its_workers() -> None:
    t = Timeout(30.0)
    assert t.call(lambda: 1) == 1
    t.close()
    with pytest.raises(RuntimeError, match="closed"):
        t.call(lambda: 1)
    wait_until(lambda: t.stats().workers == 0, "workers exited")


def test_sync_decorator() -> None:
    @Timeout(30.0)
    def add(a: int, b: int) -> int:
        """Adds."""
        return a + b

    assert add(1, 2) == 3
    assert add.__doc__ == "Adds."


# ----------------------------------------------------- sync: "cooperative"


def test_cooperative_code_can_stop_itself_with_check_deadline(clock: ManualClock) -> None:
    t = Timeout(5.0, sync_mode="cooperative", clock=clock)
    steps = []

    def batch() -> None:
        for i in range(10):
            check_deadline()
            steps.append(i)
            clock.advance(1.0)

    with pytest.raises(CallTimeoutError):
        t.call(batch)
    assert steps == [0, 1, 2, 3, 4]
    assert t.stats().timeouts == 1


def test_a_cooperative_call_that_ignores_the_deadline_is_an_overrun(clock: ManualClock) -> None:
    t = Timeout(1.0, sync_mode="cooperative", clock=clock)
    events: list[TimeoutEvent] = []
    t.add_listener(events.append)

    def slow() -> str:
        clock.advance(3.0)
        return "late but returned"

    assert t.call(slow) == "late but returned"
    assert t.stats().overruns == 1
    assert [e.kind for e in events] == ["overrun"]


def test_cooperative_calls_run_in_the_callers_thread(clock: ManualClock) -> None:
    t = Timeout(2.0, sync_mode="cooperative", clock=clock)
    here = threading.get_ident()
    assert t.call(lambda: (threading.get_ident(), remaining_time())) == (here, 2.0)


# -------------------------------------------------------------- configuration


def test_repr_and_stats_start_at_zero() -> None:
    t = Timeout(1.5, name="db")
    assert "db" in repr(t)
    assert t.stats().calls == 0


@pytest.mark.parametrize(
    ("args", "kwargs", "parameter"),
    [
        ((0,), {}, "seconds"),
        ((-1,), {}, "seconds"),
        ((float("inf"),), {}, "seconds"),
        (("1 fortnight",), {}, "seconds"),
        ((1,), {"sync_mode": "signal"}, "sync_mode"),
        ((1,), {"max_workers": 0}, "max_workers"),
        ((1,), {"name": ""}, "name"),
        ((1,), {"clock": None}, "clock"),
    ],
)
def test_bad_configuration_names_the_parameter(
    args: tuple[Any, ...], kwargs: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Timeout(*args, **kwargs)
    assert info.value.parameter == parameter
