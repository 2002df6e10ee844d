"""RetryBudget: retries limited to a fraction of calls plus a per-second minimum."""

from __future__ import annotations

import threading

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from sentia_core.errors import ConfigError
from sentia_core.policies import RetryBudget, RetryBudgetLike
from sentia_core.testing import ManualClock


class BudgetMatchesTokenBucketModel(RuleBasedStateMachine):
    """The lock-free, lazily settled bucket behaves like a naive eager one.

    Ratios, rates and time steps are multiples of 1/4 so that float arithmetic
    is exact and the comparison can be strict.
    """

    @initialize(
        ratio=st.sampled_from([0.0, 0.25, 0.5, 1.0]),
        rate=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
        cap=st.sampled_from([1.0, 2.0, 5.0, 10.0]),
    )
    def setup(self, ratio: float, rate: float, cap: float) -> None:
        self.clock = ManualClock()
        self.budget = RetryBudget(ratio, min_per_second=rate, max_tokens=cap, clock=self.clock)
        self.ratio, self.rate, self.cap = ratio, rate, cap
        self.tokens = cap
        self.calls = 0
        self.granted = 0
        self.elapsed = 0.0

    @rule(n=st.integers(min_value=1, max_value=20))
    def calls_arrive(self, n: int) -> None:
        for _ in range(n):
            self.budget.deposit()
            self.tokens = min(self.cap, self.tokens + self.ratio)
        self.calls += n

    @rule(quarters=st.integers(min_value=1, max_value=40))
    def time_passes(self, quarters: int) -> None:
        dt = quarters / 4
        self.clock.advance(dt)
        self.elapsed += dt
        self.tokens = min(self.cap, self.tokens + self.rate * dt)

    @rule()
    def a_retry_asks(self) -> None:
        expected = self.tokens >= 1.0
        assert self.budget.try_withdraw() is expected
        if expected:
            self.tokens -= 1.0
            self.granted += 1

    @invariant()
    def never_more_retries_than_the_budget_allows(self) -> None:
        assert self.granted <= self.cap + self.ratio * self.calls + self.rate * self.elapsed

    @invariant()
    def stats_agree(self) -> None:
        s = self.budget.stats()
        assert s.deposits == self.calls
        assert s.granted == self.granted
        assert s.tokens == self.tokens


BudgetMatchesTokenBucketModel.TestCase.settings = settings(max_examples=50, stateful_step_count=30)
TestBudgetModel = BudgetMatchesTokenBucketModel.TestCase


def test_an_empty_budget_refuses_until_calls_refill_it(clock: ManualClock) -> None:
    budget = RetryBudget(0.2, min_per_second=0.0, max_tokens=2, clock=clock)
    assert budget.try_withdraw()
    assert budget.try_withdraw()
    assert not budget.try_withdraw()
    for _ in range(5):  # 5 calls * 20 % = one retry
        budget.deposit()
    assert budget.try_withdraw()
    assert not budget.try_withdraw()
    assert budget.stats().denied == 2


def test_the_per_second_minimum_refills_a_quiet_client(clock: ManualClock) -> None:
    budget = RetryBudget(0.2, min_per_second=1.0, max_tokens=1, clock=clock)
    assert budget.try_withdraw()
    assert not budget.try_withdraw()
    clock.advance(1.0)
    assert budget.try_withdraw()


def test_deposits_from_many_threads_are_all_counted(clock: ManualClock) -> None:
    budget = RetryBudget(0.5, min_per_second=0.0, max_tokens=1e9, clock=clock)
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for i in range(2000):
            budget.deposit()
            if i % 100 == 0:
                budget.try_withdraw()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = budget.stats()
    assert s.deposits == 16_000
    assert s.granted == 160


def test_it_is_a_retry_budget_like() -> None:
    assert isinstance(RetryBudget(), RetryBudgetLike)
    assert "ratio=0.2" in repr(RetryBudget())


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"ratio": 1.5}, "ratio"),
        ({"ratio": -0.1}, "ratio"),
        ({"min_per_second": -1}, "min_per_second"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
    ],
)
def test_bad_configuration_names_the_parameter(kwargs: dict[str, object], parameter: str) -> None:
    with pytest.raises(ConfigError) as info:
        RetryBudget(**kwargs)  # type: ignore[arg-type]
    assert info.value.parameter == parameter
