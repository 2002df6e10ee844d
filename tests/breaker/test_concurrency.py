"""Real threads and real asyncio tasks against the half-open limit and the window.

No lock is held while the user's function runs (pybreaker#3): many calls run
at once in CLOSED, and the half-open limit holds under contention.
"""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

from sentia_core.breaker import BreakerState, CircuitBreaker
from sentia_core.errors import CircuitOpenError
from sentia_core.testing import ManualClock

from .conftest import Boom


def _open_then_half_open(b: CircuitBreaker, clock: ManualClock) -> None:
    b.force_open()
    b.reset()
    for _ in range(b.config.consecutive_failures or 1):
        with pytest.raises(Boom):
            b.call(_raise)
    assert b.state is BreakerState.OPEN
    clock.advance(b.config.reset_timeout)


def _raise() -> None:
    raise Boom


def test_calls_in_closed_run_concurrently() -> None:
    b = CircuitBreaker("db")
    n = 8
    barrier = threading.Barrier(n, timeout=10)

    @b
    def work() -> int:
        # Every thread must be inside the breaker at the same time to pass.
        return barrier.wait()

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(work())) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == list(range(n))
    assert b.metrics().calls == n


@pytest.mark.parametrize("limit", [1, 3])
def test_half_open_limit_holds_across_threads(clock: ManualClock, limit: int) -> None:
    b = CircuitBreaker(
        "db",
        consecutive_failures=1,
        reset_timeout=5,
        half_open_max_calls=limit,
        success_threshold=100,
        clock=clock,
    )
    _open_then_half_open(b, clock)
    threads_n = 12
    start = threading.Barrier(threads_n, timeout=10)
    release = threading.Event()
    admitted: list[int] = []
    rejected: list[CircuitOpenError] = []
    lock = threading.Lock()

    def trial(i: int) -> None:
        def body() -> None:
            with lock:
                admitted.append(i)
            release.wait(10)

        start.wait()
        try:
            b.call(body)
        except CircuitOpenError as e:
            with lock:
                rejected.append(e)

    threads = [threading.Thread(target=trial, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    # Wait until every thread was either admitted or rejected.
    for _ in range(10_000):
        with lock:
            if len(admitted) + len(rejected) == threads_n or (
                len(admitted) == limit and len(rejected) == threads_n - limit
            ):
                break
        threading.Event().wait(0.001)
    assert b.metrics().half_open_in_flight == len(admitted) == limit
    release.set()
    for t in threads:
        t.join(10)
    assert len(rejected) == threads_n - limit
    assert all(e.state == "half_open" for e in rejected)
    assert b.metrics().half_open_in_flight == 0


@pytest.mark.parametrize("limit", [1, 2])
async def test_half_open_limit_holds_across_tasks(clock: ManualClock, limit: int) -> None:
    b = CircuitBreaker(
        "db",
        consecutive_failures=1,
        reset_timeout=5,
        half_open_max_calls=limit,
        success_threshold=100,
        clock=clock,
    )
    _open_then_half_open(b, clock)
    release = asyncio.Event()
    admitted = 0

    async def body() -> None:
        nonlocal admitted
        admitted += 1
        await release.wait()

    tasks = [asyncio.create_task(b.call_async(body)) for _ in range(10)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert admitted == limit
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(isinstance(r, CircuitOpenError) for r in results) == 10 - limit
    assert b.metrics().half_open_in_flight == 0


def test_window_totals_stay_exact_under_thread_contention() -> None:
    b = CircuitBreaker(
        "db",
        consecutive_failures=None,
        failure_rate_threshold=None,
        window_size=1000,
        minimum_calls=1,
    )
    per_thread = 500
    threads_n = 4
    start = threading.Barrier(threads_n, timeout=10)

    def hammer(fail_every: int) -> None:
        start.wait()
        for i in range(per_thread):
            if i % fail_every == 0:
                with pytest.raises(Boom):
                    b.call(_raise)
            else:
                b.call(lambda: None)

    threads = [threading.Thread(target=hammer, args=(k + 2,)) for k in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    m = b.metrics()
    expected_failures = sum(len(range(0, per_thread, k + 2)) for k in range(threads_n))
    # 2000 calls into a 1000-call window: the window holds the last 1000;
    # check the running totals against a recount of the ring.
    ring = b._core.window._ring  # type: ignore[union-attr]
    assert m.calls == 1000
    assert m.failures == sum(x & 1 for x in ring)
    assert 0 < m.failures <= expected_failures


def test_a_lost_trial_permit_is_reclaimed(clock: ManualClock) -> None:
    """A trial whose thread never returns cannot wedge the breaker in HALF_OPEN."""
    b = CircuitBreaker(
        "db", consecutive_failures=1, reset_timeout=5, half_open_timeout=30, clock=clock
    )
    _open_then_half_open(b, clock)
    entered = threading.Event()
    release = threading.Event()

    def stuck() -> None:
        entered.set()
        release.wait(10)

    t = threading.Thread(target=lambda: b.call(stuck))
    t.start()
    entered.wait(10)
    with pytest.raises(CircuitOpenError):
        b.call(lambda: None)
    clock.advance(30)
    assert b.call(lambda: "probe") == "probe"  # the stale permit was reclaimed
    assert b.state is BreakerState.CLOSED
    release.set()
    t.join(10)
    # the stuck call's late outcome is stale and changes nothing
    assert b.state is BreakerState.CLOSED and b.metrics().calls == 0


def test_listener_changes_racing_transitions_never_leave_a_stale_shortcut() -> None:
    """Adding a listener while another thread trips the breaker must not
    re-enable the lock-free admission of a breaker that is open (a stress
    test: threads are switched as often as the interpreter allows)."""
    b = CircuitBreaker("db", consecutive_failures=1, reset_timeout=3600)
    stop = threading.Event()
    start = threading.Barrier(2, timeout=10)

    def churn_listeners() -> None:
        start.wait()
        while not stop.is_set():
            b.add_listener(lambda _: None)()

    t = threading.Thread(target=churn_listeners)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    t.start()
    start.wait()
    try:
        for _ in range(2000):
            b.reset()
            with pytest.raises(Boom):
                b.call(_raise)
            assert b._core.fast is None  # open: nothing may bypass the core
            with pytest.raises(CircuitOpenError):
                b.call(lambda: None)
    finally:
        stop.set()
        t.join(10)
        sys.setswitchinterval(interval)


def test_rejections_are_counted_exactly_across_threads() -> None:
    b = CircuitBreaker("db", consecutive_failures=1, reset_timeout=3600)
    with pytest.raises(Boom):
        b.call(_raise)
    threads_n, per_thread = 6, 400
    start = threading.Barrier(threads_n, timeout=10)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)

    def reject_many() -> None:
        start.wait()
        for _ in range(per_thread):
            with pytest.raises(CircuitOpenError):
                b.call(lambda: None)

    threads = [threading.Thread(target=reject_many) for _ in range(threads_n)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        sys.setswitchinterval(interval)
    assert b.metrics().rejected == threads_n * per_thread
