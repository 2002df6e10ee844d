"""Bulkhead: never more than max_concurrent inside, a bounded FIFO queue, threads and tasks."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from hypothesis import settings
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, multiple, rule

from sentia_core.errors import BulkheadFullError, ConfigError
from sentia_core.policies import Bulkhead, BulkheadEvent, deadline
from sentia_core.testing import ManualClock
from tests.waiting import async_wait_until, wait_until

# ----------------------------------------------------------------- the core


class FakeWaiter:
    def __init__(self, n: int) -> None:
        self.n = n
        self.granted = False
        self.woken = 0

    def wake(self) -> bool:
        self.woken += 1
        return True


class BulkheadModel(RuleBasedStateMachine):
    """Arrivals, departures, time-outs and cancellations against a FIFO model."""

    waiters = Bundle("waiters")

    def __init__(self) -> None:
        super().__init__()
        self.b = Bulkhead(3, max_waiting=2)
        self.active = 0  # slots held (including granted waiters)
        self.queue: list[FakeWaiter] = []
        self.granted_order: list[int] = []
        self.arrivals = 0

    def grant_next(self) -> None:
        w = self.queue.pop(0)
        self.granted_order.append(w.n)

    @rule(target=waiters)
    def someone_arrives(self) -> object:
        self.arrivals += 1
        w = FakeWaiter(self.arrivals)
        if self.active < 3:
            assert self.b._enqueue(w, None) is True
            self.active += 1
            return multiple()
        if len(self.queue) >= 2:
            with pytest.raises(BulkheadFullError):
                self.b._enqueue(w, None)
            return multiple()
        assert self.b._enqueue(w, None) is False
        self.queue.append(w)
        return w

    @rule()
    def a_holder_leaves(self) -> None:
        if self.active == 0:
            return
        self.b._release()
        if self.queue:
            self.grant_next()  # the slot passes straight to the oldest waiter
        else:
            self.active -= 1

    @rule(w=consumes(waiters))
    def a_waiter_times_out(self, w: FakeWaiter) -> None:
        if w.granted:
            assert self.b._give_up(w, cancelled=False) is True  # it keeps the slot
            return
        with pytest.raises(BulkheadFullError):
            self.b._give_up(w, cancelled=False)
        self.queue.remove(w)

    @rule(w=consumes(waiters))
    def a_waiter_is_cancelled(self, w: FakeWaiter) -> None:
        assert self.b._give_up(w, cancelled=True) is False
        if w.granted:  # it must hand its slot on
            if self.queue:
                self.grant_next()
            else:
                self.active -= 1
        else:
            self.queue.remove(w)

    @invariant()
    def matches_the_model(self) -> None:
        s = self.b.stats()
        assert s.active == self.active <= 3
        assert s.waiting == len(self.queue)

    @invariant()
    def grants_are_first_in_first_out(self) -> None:
        assert self.granted_order == sorted(self.granted_order)


BulkheadModel.TestCase.settings = settings(max_examples=50, stateful_step_count=30)
TestBulkheadModel = BulkheadModel.TestCase


# ------------------------------------------------------------------ threads


def test_threads_never_exceed_max_concurrent_and_all_get_through() -> None:
    b = Bulkhead(3, max_waiting=20)
    gate = threading.Event()
    inside = 0
    peak = 0
    lock = threading.Lock()

    def worker() -> None:
        nonlocal inside, peak
        with b:
            with lock:
                inside += 1
                peak = max(peak, inside)
            gate.wait(30)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    wait_until(lambda: b.stats().waiting == 17, "17 threads queued")
    assert b.stats().active == 3
    gate.set()
    for t in threads:
        t.join()
    s = b.stats()
    assert peak == 3
    assert (s.active, s.waiting, s.accepted, s.rejected) == (0, 0, 20, 0)


def test_a_full_bulkhead_without_a_queue_rejects_at_once() -> None:
    b = Bulkhead(1, name="partner")
    events: list[BulkheadEvent] = []
    b.add_listener(events.append)
    with b:
        with pytest.raises(BulkheadFullError) as info:
            b.call(lambda: None)
        assert info.value.bulkhead == "partner"
    assert b.call(lambda: 5) == 5
    assert [(e.kind, e.active, e.waiting) for e in events] == [("rejected", 1, 0)]
    assert b.stats().rejected == 1


def test_a_full_queue_rejects_the_next_caller() -> None:
    b = Bulkhead(1, max_waiting=1)
    gate = threading.Event()
    holder = threading.Thread(target=lambda: b.call(gate.wait, 30))
    holder.start()
    wait_until(lambda: b.stats().active == 1, "holder inside")
    waiter = threading.Thread(target=lambda: b.call(lambda: None))
    waiter.start()
    wait_until(lambda: b.stats().waiting == 1, "one queued")
    with pytest.raises(BulkheadFullError):
        b.call(lambda: None)
    gate.set()
    holder.join()
    waiter.join()
    assert b.stats().accepted == 2


def test_a_thread_waiter_gives_up_after_max_wait() -> None:
    b = Bulkhead(1, max_waiting=1, max_wait=0.01)
    with b:
        with pytest.raises(BulkheadFullError, match="in time"):
            b.call(lambda: None)
        assert b.stats().waiting == 0
    assert b.stats().timed_out == 1
    assert b.call(lambda: 1) == 1  # the slot was not leaked


def test_an_expired_deadline_means_no_waiting(clock: ManualClock) -> None:
    b = Bulkhead(1, max_waiting=5)
    with b, deadline(1.0, clock=clock):
        clock.advance(2.0)
        with pytest.raises(BulkheadFullError):
            b.call(lambda: None)


def test_the_slot_is_released_when_the_call_raises() -> None:
    b = Bulkhead(1)

    @b
    def boom() -> None:
        raise RuntimeError

    for _ in range(3):
        with pytest.raises(RuntimeError):
            boom()
    assert b.stats().active == 0


# ------------------------------------------------------------------ asyncio


async def test_tasks_never_exceed_max_concurrent() -> None:
    b = Bulkhead(5, max_waiting=100)
    gate = asyncio.Event()
    inside = 0
    peak = 0

    @b
    async def work(i: int) -> int:
        nonlocal inside, peak
        inside += 1
        peak = max(peak, inside)
        await gate.wait()
        inside -= 1
        return i

    tasks = [asyncio.create_task(work(i)) for i in range(50)]
    await async_wait_until(lambda: b.stats().waiting == 45, "45 tasks queued")
    gate.set()
    assert await asyncio.gather(*tasks) == list(range(50))
    assert peak == 5
    assert b.stats().accepted == 50


async def test_waiting_tasks_are_served_in_arrival_order() -> None:
    b = Bulkhead(1, max_waiting=10)
    order: list[int] = []

    async def work(i: int) -> None:
        async with b:
            order.append(i)
            await asyncio.sleep(0)

    async with b:
        tasks = []
        for i in range(5):
            tasks.append(asyncio.create_task(work(i)))
            await async_wait_until(lambda i=i: b.stats().waiting == i + 1, "queued")
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]


async def test_a_task_waiter_gives_up_after_max_wait() -> None:
    b = Bulkhead(1, max_waiting=1, max_wait=0.01)
    async with b:
        with pytest.raises(BulkheadFullError):
            await b.call_async(asyncio.sleep, 0)
    assert b.stats().timed_out == 1
    assert await b.call_async(asyncio.sleep, 0, "free") == "free"


async def test_a_cancelled_waiter_leaves_the_queue_and_leaks_nothing() -> None:
    b = Bulkhead(1, max_waiting=5)
    async with b:
        task = asyncio.create_task(b.call_async(asyncio.sleep, 0))
        await async_wait_until(lambda: b.stats().waiting == 1, "queued")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert b.stats().waiting == 0
    s = b.stats()
    assert (s.active, s.waiting) == (0, 0)


async def test_cancellation_inside_the_slot_releases_it() -> None:
    b = Bulkhead(1)
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(b.call_async(hang))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert b.stats().active == 0


async def test_threads_and_tasks_share_one_bulkhead() -> None:
    b = Bulkhead(1, max_waiting=1)
    release = threading.Event()
    entered = threading.Event()

    def hold() -> None:
        with b:
            entered.set()
            release.wait(30)

    t = threading.Thread(target=hold)
    t.start()
    await asyncio.to_thread(entered.wait, 30)
    task = asyncio.create_task(b.call_async(asyncio.sleep, 0, "task ran"))
    await async_wait_until(lambda: b.stats().waiting == 1, "task queued")
    release.set()  # the thread's release wakes the task through its loop
    assert await task == "task ran"
    t.join()
    assert b.stats().accepted == 2


# -------------------------------------------------------------- configuration


def test_stats_and_repr() -> None:
    b = Bulkhead(2, max_waiting=3, max_wait=1.5, name="db")
    assert b.max_wait == 1.5
    assert "db" in repr(b)
    s = b.stats()
    assert (s.max_concurrent, s.max_waiting, s.active) == (2, 3, 0)
    assert Bulkhead(1, max_wait=float("inf")).max_wait is None


@pytest.mark.parametrize(
    ("args", "kwargs", "parameter"),
    [
        ((0,), {}, "max_concurrent"),
        ((1.5,), {}, "max_concurrent"),
        ((1,), {"max_waiting": -1}, "max_waiting"),
        ((1,), {"max_wait": -0.1}, "max_wait"),
        ((1,), {"name": ""}, "name"),
        ((1,), {"clock": object()}, "clock"),
    ],
)
def test_bad_configuration_names_the_parameter(
    args: tuple[Any, ...], kwargs: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Bulkhead(*args, **kwargs)
    assert info.value.parameter == parameter
