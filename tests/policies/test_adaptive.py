"""AdaptiveBulkhead: limit algorithms as models, admission as a state machine, threads and tasks."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sentia_core import AdaptiveBulkhead, Policy
from sentia_core.errors import BulkheadFullError, CallTimeoutError, ConfigError
from sentia_core.policies import AdaptiveEvent, AIMDLimit, Gradient2Limit, VegasLimit
from sentia_core.policies._adaptive import _LimitCore
from sentia_core.testing import ManualClock

from .test_bulkhead import async_wait_until, wait_until

ALGORITHMS = ["gradient2", "vegas", "aimd"]

samples = st.tuples(
    st.floats(0.0, 10.0),  # rtt
    st.integers(0, 500),  # inflight
    st.one_of(st.none(), st.booleans()),  # dropped (None: ignored error)
)


class LimitMachine(RuleBasedStateMachine):
    """Any sequence of samples, admissions and releases keeps the limit within its bounds."""

    def __init__(self) -> None:
        super().__init__()
        self.core: _LimitCore | None = None

    @rule(
        algorithm=st.sampled_from(ALGORITHMS),
        low=st.integers(1, 50),
        span=st.integers(0, 200),
        initial=st.integers(1, 300),
    )
    @precondition(lambda self: self.core is None)
    def build(self, algorithm: str, low: int, span: int, initial: int) -> None:
        self.bulkhead = AdaptiveBulkhead(
            algorithm,  # type: ignore[arg-type]
            initial=initial,
            min=low,
            max=low + span,
            clock=ManualClock(),
        )
        self.core = self.bulkhead._core
        self.low, self.high = low, low + span

    @rule()
    @precondition(lambda self: self.core is not None)
    def admit(self) -> None:
        assert self.core is not None
        before = self.core.inflight
        if self.core.try_admit():
            assert before < self.core.limit
        else:
            assert before >= self.core.limit

    @rule(sample=samples)
    @precondition(lambda self: self.core is not None and self.core.inflight > 0)
    def release(self, sample: tuple[float, int, bool | None]) -> None:
        assert self.core is not None
        rtt, inflight, dropped = sample
        limit = self.core.estimate
        self.core.sample(rtt, inflight, dropped)
        if dropped is None:
            assert self.core.estimate == limit  # ignored errors never move the limit
        if dropped is True and self.bulkhead.algorithm == "aimd":
            assert self.core.estimate <= limit

    @invariant()
    def within_bounds(self) -> None:
        if self.core is not None:
            assert self.low <= self.core.estimate <= self.high
            assert self.low <= self.core.limit <= self.high
            assert self.core.inflight >= 0


TestLimitMachine = LimitMachine.TestCase
TestLimitMachine.settings = settings(max_examples=200, stateful_step_count=60, deadline=None)


@pytest.mark.parametrize("algorithm", [AIMDLimit(), VegasLimit(), Gradient2Limit()])
def test_each_algorithm_grows_under_steady_latency_and_shrinks_on_drops(algorithm: Any) -> None:
    limit = 10.0
    for _ in range(200):  # busy (inflight == limit), latency flat
        limit = max(1.0, min(1000.0, algorithm.update(limit, 0.010, int(limit), False)))
    grown = limit
    assert grown > 10.0
    for _ in range(50):
        limit = max(1.0, min(1000.0, algorithm.update(limit, 0.010, int(limit), True)))
    assert limit < grown


def test_gradient2_shrinks_when_latency_rises_above_its_long_run_average() -> None:
    algorithm = Gradient2Limit()
    limit = 50.0
    for _ in range(100):
        limit = algorithm.update(limit, 0.010, 50, False)
    high = limit
    for _ in range(30):
        limit = max(1.0, algorithm.update(limit, 0.100, int(limit), False))
    assert limit < high


def test_vegas_holds_its_limit_when_a_queue_forms() -> None:
    algorithm = VegasLimit(probe_every=10_000)
    limit = algorithm.update(40.0, 0.010, 40, False)  # learns rtt_noload = 10 ms
    for _ in range(20):
        limit = max(1.0, algorithm.update(limit, 0.100, int(limit), False))
    assert limit < 40.0  # 90 % of the limit is queueing: shrink


def test_an_idle_client_learns_nothing() -> None:
    for algorithm in (AIMDLimit(), VegasLimit(), Gradient2Limit()):
        algorithm.update(20.0, 0.01, 20, False)  # warm up baselines
        assert algorithm.update(20.0, 0.01, 2, False) == 20.0


@given(st.lists(samples, max_size=100), st.sampled_from(ALGORITHMS))
def test_a_broken_or_wild_sample_stream_never_escapes_the_bounds(
    stream: list[tuple[float, int, bool | None]], algorithm: str
) -> None:
    bulkhead = AdaptiveBulkhead(algorithm, initial=5, min=2, max=9)  # type: ignore[arg-type]
    core = bulkhead._core
    for rtt, inflight, dropped in stream:
        core.inflight += 1
        core.sample(rtt, inflight, dropped)
        assert 2 <= core.estimate <= 9


def test_a_custom_algorithm_that_raises_keeps_the_limit() -> None:
    class Broken:
        def update(self, limit: float, rtt: float, inflight: int, dropped: bool) -> float:
            raise RuntimeError("bug")

    bulkhead = AdaptiveBulkhead(Broken(), initial=4, min=1, max=10, window=1)
    assert bulkhead.call(lambda: 1) == 1
    assert bulkhead.stats().limit == 4
    assert bulkhead.stats().algorithm == "Broken"


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"algorithm": "bbr"}, "algorithm"),
        ({"min": 0}, "min"),
        ({"min": 5, "max": 4}, "max"),
        ({"initial": 0}, "initial"),
        ({"max_waiting": -1}, "max_waiting"),
        ({"drop_on": 3}, "drop_on"),
    ],
)
def test_bad_configuration_names_the_parameter(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ConfigError) as info:
        AdaptiveBulkhead(**kwargs)
    assert info.value.parameter == parameter


def test_a_window_aggregates_samples_into_one_update() -> None:
    seen: list[tuple[float, int, bool]] = []

    class Recorder:
        def update(self, limit: float, rtt: float, inflight: int, dropped: bool) -> float:
            seen.append((rtt, inflight, dropped))
            return limit

    core = AdaptiveBulkhead(Recorder(), window=3, window_time=1.0)._core
    for rtt, inflight, dropped, now in [
        (0.1, 2, False, 0.0),
        (0.2, 5, True, 0.5),
        (0.3, 1, None, 0.6),  # ignored: not part of the window
        (0.3, 1, False, 0.7),  # three samples, but only 0.7 s
        (0.6, 1, False, 1.0),
    ]:
        core.inflight += 1
        core.sample(rtt, inflight, dropped, now)
    assert seen == [(pytest.approx(0.3), 5, True)]


# ------------------------------------------------------------ drops and stats


def test_timeouts_are_drops_other_errors_are_ignored_and_the_limit_event_fires() -> None:
    clock = ManualClock()
    bulkhead = AdaptiveBulkhead("aimd", initial=10, min=1, max=10, window=1, clock=clock)
    events: list[AdaptiveEvent] = []
    bulkhead.add_listener(events.append)

    def timed_out() -> None:
        raise CallTimeoutError(1.0, "late")

    def broken() -> None:
        raise KeyError("bug")

    with pytest.raises(CallTimeoutError):
        bulkhead.call(timed_out)
    with pytest.raises(KeyError):
        bulkhead.call(broken)
    stats = bulkhead.stats()
    assert (stats.limit, stats.samples, stats.drops, stats.active) == (9, 1, 1, 0)
    assert [(e.kind, e.limit) for e in events] == [("limit", 9)]


def test_rejects_past_the_limit_without_a_queue() -> None:
    bulkhead = AdaptiveBulkhead("aimd", initial=1, min=1, max=1)
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        inside.set()
        release.wait(30)

    t = threading.Thread(target=bulkhead.call, args=(hold,))
    t.start()
    assert inside.wait(30)
    with pytest.raises(BulkheadFullError):
        bulkhead.call(lambda: None)
    release.set()
    t.join(30)
    stats = bulkhead.stats()
    assert (stats.accepted, stats.rejected, stats.active) == (1, 1, 0)


# -------------------------------------------------------------------- threads


def test_threads_never_exceed_the_limit_and_queued_callers_get_their_turn() -> None:
    bulkhead = AdaptiveBulkhead("aimd", initial=3, min=3, max=3, max_waiting=32)
    lock = threading.Lock()
    inside = 0
    peak = 0
    gate = threading.Event()

    def work() -> None:
        nonlocal inside, peak
        with lock:
            inside += 1
            peak = max(peak, inside)
        gate.wait(30)
        with lock:
            inside -= 1

    threads = [threading.Thread(target=bulkhead.call, args=(work,)) for _ in range(12)]
    for t in threads:
        t.start()
    wait_until(lambda: bulkhead.stats().waiting == 9, "nine callers queued")
    gate.set()
    for t in threads:
        t.join(30)
    stats = bulkhead.stats()
    assert peak == 3
    assert (stats.accepted, stats.rejected, stats.active, stats.waiting) == (12, 0, 0, 0)


def test_max_wait_zero_refuses_at_once_instead_of_queueing() -> None:
    bulkhead = AdaptiveBulkhead("aimd", initial=1, min=1, max=1, max_waiting=1, max_wait=0.0)
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        inside.set()
        release.wait(30)

    t = threading.Thread(target=bulkhead.call, args=(hold,))
    t.start()
    assert inside.wait(30)
    with pytest.raises(BulkheadFullError):  # max_wait=0: refused at once, never blocks
        bulkhead.call(lambda: None)
    release.set()
    t.join(30)


# -------------------------------------------------------------------- asyncio


async def test_tasks_never_exceed_the_limit_and_drain_in_order() -> None:
    bulkhead = AdaptiveBulkhead("vegas", initial=2, min=2, max=2, max_waiting=10)
    gate = asyncio.Event()
    inside = 0
    peak = 0
    order: list[int] = []

    async def work(i: int) -> int:
        nonlocal inside, peak
        inside += 1
        peak = max(peak, inside)
        await gate.wait()
        inside -= 1
        order.append(i)
        return i

    tasks = [asyncio.ensure_future(bulkhead.call_async(work, i)) for i in range(6)]
    await async_wait_until(lambda: bulkhead.stats().waiting == 4, "four tasks queued")
    gate.set()
    assert sorted(await asyncio.gather(*tasks)) == list(range(6))
    assert peak == 2
    assert bulkhead.stats().accepted == 6


async def test_a_cancelled_waiting_task_loses_no_slot() -> None:
    bulkhead = AdaptiveBulkhead("aimd", initial=1, min=1, max=1, max_waiting=5)
    gate = asyncio.Event()

    async def hold() -> None:
        await gate.wait()

    holder = asyncio.ensure_future(bulkhead.call_async(hold))
    await async_wait_until(lambda: bulkhead.stats().active == 1, "holder inside")
    waiter = asyncio.ensure_future(bulkhead.call_async(hold))
    await async_wait_until(lambda: bulkhead.stats().waiting == 1, "waiter queued")
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    gate.set()
    await holder
    assert await bulkhead.call_async(asyncio.sleep, 0) is None
    stats = bulkhead.stats()
    assert (stats.active, stats.waiting, stats.accepted) == (0, 0, 2)


# --------------------------------------------------------------- composition


def test_policy_adaptive_sees_a_timed_out_attempt_as_a_drop() -> None:
    bulkhead = AdaptiveBulkhead("aimd", initial=8, min=1, max=8, window=1)

    @Policy(adaptive=bulkhead)
    def late() -> None:
        raise CallTimeoutError(1.0, "late")

    with pytest.raises(CallTimeoutError):
        late()
    policy_stats = bulkhead.stats()
    assert policy_stats.drops == 1 and policy_stats.limit == 7


async def test_policy_adaptive_async() -> None:
    policy = Policy(adaptive=AdaptiveBulkhead("gradient2"))

    @policy
    async def fine() -> int:
        return 3

    assert await fine() == 3
    stats = policy.stats()
    assert stats.adaptive is not None and stats.adaptive.accepted == 1


def test_a_queued_thread_that_waits_past_max_wait_times_out_and_is_counted() -> None:
    bulkhead = AdaptiveBulkhead("aimd", initial=1, min=1, max=1, max_waiting=1, max_wait=0.01)
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        inside.set()
        release.wait(30)

    t = threading.Thread(target=bulkhead.call, args=(hold,))
    t.start()
    assert inside.wait(30)
    with pytest.raises(BulkheadFullError):
        bulkhead.call(lambda: None)
    release.set()
    t.join(30)
    stats = bulkhead.stats()
    assert (stats.timed_out, stats.rejected, stats.waiting, stats.active) == (1, 0, 0, 0)
    assert bulkhead.call(lambda: 5) == 5  # the slot came back


async def test_a_queued_task_that_waits_past_max_wait_times_out_and_is_counted() -> None:
    bulkhead = AdaptiveBulkhead("aimd", initial=1, min=1, max=1, max_waiting=1, max_wait=0.01)
    gate = asyncio.Event()

    async def hold() -> None:
        await gate.wait()

    holder = asyncio.ensure_future(bulkhead.call_async(hold))
    await async_wait_until(lambda: bulkhead.stats().active == 1, "holder inside")
    with pytest.raises(BulkheadFullError):
        await bulkhead.call_async(hold)
    gate.set()
    await holder
    stats = bulkhead.stats()
    assert (stats.timed_out, stats.waiting, stats.active) == (1, 0, 0)
