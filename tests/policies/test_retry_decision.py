"""Retry.decide, the pure core both loops share, against a reference model."""

from __future__ import annotations

import random
from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from sentia_core.errors import CircuitOpenError, RateLimitExceeded
from sentia_core.policies import FixedBackoff, Retry, RetryDecision
from sentia_core.testing import ManualClock


class Retryable(Exception):
    pass


class Fatal(Exception):
    pass


class RateLimitedRetryable(RateLimitExceeded, Retryable):
    """A rejection that carries the server's retry_after and matches ``on``."""


@dataclass
class CountingBudget:
    tokens: int

    def deposit(self) -> None:
        pass

    def try_withdraw(self) -> bool:
        if self.tokens > 0:
            self.tokens -= 1
            return True
        return False


KINDS = ["retryable", "fatal", "circuit_open", "rate_limited", "bad_result"]


class DecisionModel(RuleBasedStateMachine):
    """Feed a sequence of attempt outcomes; every decision matches the model."""

    @initialize(
        attempts=st.one_of(st.none(), st.integers(min_value=1, max_value=6)),
        delay=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
        max_time=st.one_of(st.none(), st.sampled_from([0.5, 1.0, 3.0, 10.0])),
        cap=st.sampled_from([0.0, 1.0, 5.0]),
        tokens=st.integers(min_value=0, max_value=8),
    )
    def setup(
        self, attempts: int | None, delay: float, max_time: float | None, cap: float, tokens: int
    ) -> None:
        if attempts is None and max_time is None:
            max_time = 10.0
        self.clock = ManualClock()
        self.budget = CountingBudget(tokens)
        self.retry = Retry(
            attempts=attempts,
            on=Retryable,
            on_result=lambda r: r == "bad",
            max_time=max_time,
            backoff=FixedBackoff(delay),
            max_retry_after=cap,
            budget=self.budget,
            clock=self.clock,
            rng=random.Random(0),
        )
        self.attempts, self.delay, self.max_time, self.cap = attempts, delay, max_time, cap
        self.model_tokens = tokens
        self.new_call()

    def new_call(self) -> None:
        self.attempt = 1
        self.started = self.clock.monotonic()

    def expected(self, kind: str, hint: float | None) -> RetryDecision:
        if kind == "circuit_open":
            return RetryDecision(False, 0.0, "circuit_open")
        if kind == "fatal":
            return RetryDecision(False, 0.0, "not_retryable")
        if self.attempts is not None and self.attempt >= self.attempts:
            return RetryDecision(False, 0.0, "attempts")
        if kind == "rate_limited" and hint is not None:
            delay, reason = min(hint, self.cap), "retry_after"
        else:
            delay, reason = self.delay, "backoff"
        elapsed = self.clock.monotonic() - self.started
        if self.max_time is not None and elapsed + delay > self.max_time:
            return RetryDecision(False, 0.0, "max_time")
        if self.model_tokens == 0:
            return RetryDecision(False, 0.0, "budget")
        self.model_tokens -= 1
        return RetryDecision(True, delay, reason)

    @rule(
        kind=st.sampled_from(KINDS),
        hint=st.sampled_from([0.0, 0.25, 3.0, 100.0]),
        work=st.sampled_from([0.0, 0.25, 1.0]),
    )
    def an_attempt_fails(self, kind: str, hint: float, work: float) -> None:
        self.clock.advance(work)  # the attempt itself took this long
        error: BaseException | None
        result: object = None
        if kind == "retryable":
            error = Retryable()
        elif kind == "fatal":
            error = Fatal()
        elif kind == "circuit_open":
            error = CircuitOpenError("b", retry_after=hint)
        elif kind == "rate_limited":
            error = RateLimitedRetryable("api", "k", hint)
        else:
            error, result = None, "bad"
        want = self.expected(kind, hint)
        got = self.retry.decide(self.attempt, error, result, self.started, self.clock.monotonic())
        assert got == want
        if got.retry:
            self.clock.advance(got.delay)
            self.attempt += 1
        else:
            self.new_call()

    @rule(work=st.sampled_from([0.0, 1.0]))
    def an_attempt_succeeds(self, work: float) -> None:
        self.clock.advance(work)
        self.new_call()

    @invariant()
    def the_budget_is_never_overdrawn(self) -> None:
        assert self.budget.tokens == self.model_tokens >= 0


DecisionModel.TestCase.settings = settings(max_examples=50, stateful_step_count=30)
TestDecisionModel = DecisionModel.TestCase
