"""Hedge: the race's decision core as a model, then real threads and real asyncio tasks.

Timing never decides an assertion: an attempt that must lose blocks on an
event the test controls, ``delay=0`` means "hedge at once" and ``delay=3600``
means "never within this test".
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sentia_core import Hedge, Policy, Retry, RetryBudget
from sentia_core.errors import ConfigError
from sentia_core.policies import (
    HedgeEvent,
    LatencyWindow,
    current_hedge_attempt,
    deadline,
    remaining_time,
)
from sentia_core.policies._hedge import FINAL, LAUNCH, WAIT, WIN, _HedgeRun
from sentia_core.testing import ManualClock

from .fakes import FakeBreaker
from .test_bulkhead import async_wait_until, wait_until


class CountingBudget:
    """A budget that grants ``tokens`` withdrawals, then refuses."""

    def __init__(self, tokens: int) -> None:
        self.tokens = tokens
        self.granted = 0
        self.deposits = 0

    def deposit(self) -> None:
        self.deposits += 1

    def try_withdraw(self) -> bool:
        if self.granted < self.tokens:
            self.granted += 1
            return True
        return False


# ------------------------------------------------------------------ the core


class HedgeRace(RuleBasedStateMachine):
    """Drive one race with timers and outcomes in any order; check the contract."""

    def __init__(self) -> None:
        super().__init__()
        self.run: _HedgeRun | None = None

    @rule(max_attempts=st.integers(1, 6), tokens=st.integers(0, 6))
    @precondition(lambda self: self.run is None or self.over)
    def start(self, max_attempts: int, tokens: int) -> None:
        self.budget = CountingBudget(tokens)
        self.hedge = Hedge(0.5, max_attempts=max_attempts, on=ValueError, budget=self.budget)
        self.run = self.hedge._begin()
        self.running: list[int] = [self.run.launch()]
        self.over = False
        self.max_attempts = max_attempts

    @rule()
    @precondition(lambda self: self.run is not None and not self.over)
    def timer(self) -> None:
        assert self.run is not None
        before = self.run.hedging
        if self.run.on_timer():
            assert before
            self.running.append(self.run.launch())
        else:
            assert self.run.wait_for() is None  # no timer once hedging stopped

    @rule(index=st.integers(0, 10), kind=st.sampled_from(["ok", "handled", "other"]))
    @precondition(lambda self: self.run is not None and not self.over and self.running)
    def finish(self, index: int, kind: str) -> None:
        assert self.run is not None
        number = self.running.pop(index % len(self.running))
        error = {"ok": None, "handled": ValueError("x"), "other": KeyError("y")}[kind]
        action = self.run.on_outcome(number, error, "r")
        if kind == "ok":
            assert action == WIN
        elif kind == "other":
            assert action == FINAL
        elif action == LAUNCH:
            self.running.append(self.run.launch())
        elif action == WAIT:
            assert self.running, "WAIT only while attempts are still running"
        else:
            assert action == FINAL and not self.running
        self.over = action in (WIN, FINAL)

    @invariant()
    def bounded(self) -> None:
        if self.run is None:
            return
        assert self.run.started <= self.max_attempts
        assert self.run.started - 1 <= self.budget.granted  # every hedge paid a token
        assert self.run.running == len(self.running)
        stats = self.hedge.stats()
        assert stats.hedges == self.run.started - 1

    @invariant()
    def never_stuck(self) -> None:
        # Not over means someone is still running: a race never waits for nothing.
        if self.run is not None and not self.over:
            assert self.running


TestHedgeRace = HedgeRace.TestCase
TestHedgeRace.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)


@given(
    samples=st.lists(st.floats(0.0, 10.0), min_size=1, max_size=300),
    q=st.floats(0.01, 0.99),
)
def test_latency_window_quantile_is_an_observed_value_of_the_right_rank(
    samples: list[float], q: float
) -> None:
    window = LatencyWindow(size=1000, refresh=1, min_samples=1)
    for s in samples:
        window.observe(s)
    value = window.quantile(q)
    assert value in samples
    below = sum(1 for s in samples if s <= value)
    assert below >= q * len(samples)


def test_latency_window_needs_min_samples_and_ignores_nonsense() -> None:
    window = LatencyWindow(size=4, refresh=1, min_samples=3)
    for bad in (float("nan"), float("inf"), -1.0):
        window.observe(bad)
    window.observe(1.0)
    window.observe(2.0)
    assert window.quantile(0.5) is None
    window.observe(3.0)
    assert window.quantile(0.99) == 3.0


def test_quantile_delay_reads_the_window_and_starts_at_initial_delay() -> None:
    window = LatencyWindow(size=100, refresh=1, min_samples=10)
    hedge = Hedge("p90", initial_delay=0.25, latency=window)
    assert hedge.current_delay() == 0.25
    for i in range(1, 101):
        window.observe(i / 100)
    assert hedge.current_delay() == pytest.approx(0.90)
    assert "p90" in repr(hedge)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"delay": "p0"}, "delay"),
        ({"delay": "p100"}, "delay"),
        ({"delay": "fast"}, "delay"),
        ({"delay": -1}, "delay"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"budget": object()}, "budget"),
        ({"latency": object()}, "latency"),
        ({"on": 3}, "on"),
        ({"max_workers": 0}, "max_workers"),
    ],
)
def test_bad_configuration_names_the_parameter(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ConfigError) as info:
        Hedge(**kwargs)
    assert info.value.parameter == parameter


# -------------------------------------------------------------------- threads


def test_a_slow_first_attempt_is_hedged_and_the_hedge_wins_the_thread_is_abandoned() -> None:
    release = threading.Event()
    first_running = threading.Event()
    events: list[HedgeEvent] = []
    hedge = Hedge(0.0, max_attempts=2)
    hedge.add_listener(events.append)

    def fetch() -> str:
        attempt = current_hedge_attempt()
        assert attempt is not None
        if attempt.number == 1:
            first_running.set()
            release.wait(30)
            return "first"
        assert first_running.wait(30)  # the loser is really running when the hedge wins
        return "hedge"

    assert hedge.call(fetch) == "hedge"
    stats = hedge.stats()
    assert (stats.calls, stats.hedges, stats.hedge_wins, stats.abandoned) == (1, 1, 1, 1)
    assert stats.abandoned_running == 1
    assert [e.kind for e in events] == ["hedged", "won", "abandoned"]
    release.set()
    wait_until(lambda: hedge.stats().abandoned_running == 0, "the abandoned attempt ended")


def test_a_fast_first_attempt_is_never_hedged() -> None:
    hedge = Hedge(3600.0, max_attempts=3)
    assert hedge.call(lambda: 7) == 7
    stats = hedge.stats()
    assert (stats.hedges, stats.abandoned, stats.hedge_wins) == (0, 0, 0)


def test_a_handled_failure_hedges_at_once_and_the_last_failure_is_raised() -> None:
    calls: list[int] = []

    def broken() -> None:
        attempt = current_hedge_attempt()
        assert attempt is not None
        calls.append(attempt.number)
        raise ConnectionError(attempt.number)

    hedge = Hedge(3600.0, max_attempts=3, on=ConnectionError)
    with pytest.raises(ConnectionError):
        hedge.call(broken)
    assert sorted(calls) == [1, 2, 3]
    assert hedge.stats().hedges_on_failure == 2


def test_an_unhandled_error_is_final_at_once() -> None:
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise KeyError("no")

    hedge = Hedge(3600.0, max_attempts=3, on=ConnectionError)
    with pytest.raises(KeyError):
        hedge.call(broken)
    assert calls == [1]


def test_hedges_draw_from_the_retry_budget() -> None:
    budget = RetryBudget(ratio=0.0, min_per_second=0.0, max_tokens=1.0, clock=ManualClock())
    attempts: list[int] = []

    def broken() -> None:
        attempt = current_hedge_attempt()
        assert attempt is not None
        attempts.append(attempt.number)
        raise ValueError("down")

    hedge = Hedge(3600.0, max_attempts=4, on=ValueError, budget=budget)
    for _ in range(2):
        with pytest.raises(ValueError):
            hedge.call(broken)
    # one token: call 1 hedges once, then the budget says no; call 2 never hedges
    assert attempts == [1, 2, 1]
    stats = hedge.stats()
    assert (stats.hedges, stats.budget_denied) == (1, 2)
    assert budget.stats().granted == 1
    assert budget.stats().deposits == 2


def test_rejected_results_keep_racing_and_the_last_result_is_returned() -> None:
    hedge = Hedge(3600.0, max_attempts=2, on_result=lambda r: r is None)
    assert hedge.call(lambda: None) is None
    assert hedge.stats().hedges_on_failure == 1


def test_attempts_of_one_call_share_the_avoid_set_and_run_in_the_callers_context() -> None:
    seen: list[tuple[int, int]] = []
    hedge = Hedge(3600.0, max_attempts=2, on=LookupError)

    def pick() -> str:
        attempt = current_hedge_attempt()
        assert attempt is not None
        seen.append((attempt.number, id(attempt.avoid)))
        if attempt.number == 1:
            attempt.avoid.add("a")
            raise LookupError("a is down")
        assert attempt.avoid == {"a"}
        return "b"

    assert current_hedge_attempt() is None
    assert hedge.call(pick) == "b"
    assert len({avoid for _, avoid in seen}) == 1


def test_attempts_wait_for_a_worker_when_every_worker_is_busy() -> None:
    release = threading.Event()
    hedge = Hedge(0.0, max_attempts=2, max_workers=1)
    started: list[int] = []

    def fetch() -> int:
        attempt = current_hedge_attempt()
        assert attempt is not None
        started.append(attempt.number)
        if attempt.number == 1:
            release.wait(30)
        return attempt.number

    result: list[int] = []
    caller = threading.Thread(target=lambda: result.append(hedge.call(fetch)))
    caller.start()
    wait_until(lambda: started == [1] and hedge.stats().hedges == 1, "attempt 1 runs, hedge due")
    assert started == [1]  # the hedge waits for the one worker, held by attempt 1
    release.set()
    caller.join(30)
    assert result == [1]
    wait_until(lambda: hedge.stats().abandoned_running == 0, "the queued hedge was dropped")
    # The worker may pick the hedge up (and even finish it, a loser whose result is
    # discarded) before the caller ends the race; otherwise it is dropped unstarted.
    assert started in ([1], [1, 2])
    assert hedge.stats().abandoned <= 1


def test_many_threads_share_one_hedge_and_every_call_is_counted() -> None:
    hedge = Hedge(3600.0, max_attempts=2)
    results: list[int] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        value = hedge.call(lambda: i)
        with lock:
            results.append(value)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == list(range(16))
    assert hedge.stats().calls == 16


# -------------------------------------------------------------------- asyncio


async def test_async_hedge_wins_and_the_slow_task_is_cancelled() -> None:
    cancelled = asyncio.Event()
    hedge = Hedge(0.0, max_attempts=2)

    async def fetch() -> int:
        attempt = current_hedge_attempt()
        assert attempt is not None
        if attempt.number == 1:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise
        return attempt.number

    assert await hedge.call_async(fetch) == 2
    await asyncio.wait_for(cancelled.wait(), 30)
    stats = hedge.stats()
    assert (stats.hedges, stats.hedge_wins, stats.cancelled, stats.abandoned) == (1, 1, 1, 0)


async def test_async_handled_failures_and_the_last_error() -> None:
    hedge = Hedge(3600.0, max_attempts=3, on=ConnectionError)
    numbers: list[int] = []

    async def broken() -> None:
        attempt = current_hedge_attempt()
        assert attempt is not None
        numbers.append(attempt.number)
        raise ConnectionError(attempt.number)

    with pytest.raises(ConnectionError):
        await hedge.call_async(broken)
    assert sorted(numbers) == [1, 2, 3]


async def test_async_first_acceptable_result_wins_among_many_tasks() -> None:
    gates = [asyncio.Event() for _ in range(3)]
    hedge = Hedge(0.0, max_attempts=3)
    started: list[int] = []

    async def fetch() -> int:
        attempt = current_hedge_attempt()
        assert attempt is not None
        started.append(attempt.number)
        await gates[attempt.number - 1].wait()
        return attempt.number

    task = asyncio.ensure_future(hedge.call_async(fetch))
    await async_wait_until(lambda: len(started) == 3, "every attempt started")
    gates[1].set()
    assert await task == 2
    assert hedge.stats().cancelled == 2


# --------------------------------------------------------------- composition


def test_policy_order_retry_outside_hedge_each_attempt_through_the_timeout() -> None:
    order: list[str] = []
    hedge = Hedge(3600.0, max_attempts=2, on=ValueError)
    retry = Retry(attempts=2, backoff=0.0, on=ValueError, clock=ManualClock())
    policy = Policy(retry=retry, hedge=hedge)

    @policy
    def flaky() -> str:
        attempt = current_hedge_attempt()
        assert attempt is not None
        order.append(f"attempt{attempt.number}")
        raise ValueError("down")

    with pytest.raises(ValueError):
        flaky()
    # each retry runs a whole race of two attempts
    assert sorted(order) == ["attempt1", "attempt1", "attempt2", "attempt2"]
    stats = policy.stats()
    assert stats.hedge is not None and stats.hedge.calls == 2
    assert stats.retry is not None and stats.retry.retries == 1
    assert "retry -> hedge" in repr(policy)


async def test_policy_hedge_async_through_the_pipeline() -> None:
    policy = Policy(hedge=Hedge(3600.0), timeout=30.0)

    @policy
    async def fine() -> int:
        return 5

    assert await fine() == 5
    stats = policy.stats()
    assert stats.hedge is not None and stats.hedge.calls == 1


def test_policy_rejects_a_wrong_hedge() -> None:
    with pytest.raises(ConfigError) as info:
        Policy(hedge=3)  # type: ignore[arg-type]
    assert info.value.parameter == "hedge"


def test_each_hedged_attempt_goes_through_the_breaker_and_sees_the_callers_deadline() -> None:
    log: list[str] = []
    seen: list[float | None] = []

    @Policy(hedge=Hedge(3600.0, max_attempts=2, on=ValueError), breaker=FakeBreaker(log))
    def flaky() -> str:
        attempt = current_hedge_attempt()
        assert attempt is not None
        seen.append(remaining_time())
        if attempt.number == 1:
            raise ValueError("first")
        return "second"

    with deadline(600.0):
        assert flaky() == "second"
    assert log.count("breaker>") == 2  # the breaker sees every attempt
    assert all(left is not None and 0 < left <= 600.0 for left in seen)
