"""A state machine drives a two-tier limiter (GCRA with a burst, sliding window) over several keys.

Every rule is checked against per-(tier, key) reference models; the
invariants check the stats counters and the memory bound. The same machine
runs on the in-memory backend and, through the Lua scripts, on fakeredis with
the scripts' clock pinned to the ManualClock.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import fakeredis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from sentia_core.policies._ratelimit import Rate, RateLimiter
from sentia_core.testing import ManualClock

from .models import SlidingWindowModel, TokenBucketModel
from .strategies import TICK

KEYS = ("a", "b", "c", "10.0.0.1")
GCRA_RATE = Rate(5, 2.0)
GCRA_BURST = 3
WINDOW_RATE = Rate(4, 1.0)


class LimiterMachine(RuleBasedStateMachine):
    """The public API against the models, on one backend."""

    redis = False

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        redis: Any = fakeredis.FakeRedis(server=fakeredis.FakeServer()) if self.redis else None
        self.limiters = {
            "gcra": RateLimiter(
                {"t": GCRA_RATE}, burst=GCRA_BURST, clock=self.clock, redis=redis, max_keys=64
            ),
            "window": RateLimiter(
                {"t": WINDOW_RATE},
                algorithm="sliding_window",
                clock=self.clock,
                redis=redis,
                namespace="w",
                max_keys=64,
            ),
        }
        if redis is not None:
            for limiter in self.limiters.values():
                limiter._store.time_override = self.clock.monotonic
        self.models: dict[tuple[str, str], Any] = {}
        self.counts = {"gcra": [0, 0], "window": [0, 0]}

    def model(self, which: str, key: str) -> Any:
        if (which, key) not in self.models:
            self.models[which, key] = (
                TokenBucketModel(GCRA_RATE.limit, GCRA_RATE.period, GCRA_BURST)
                if which == "gcra"
                else SlidingWindowModel(WINDOW_RATE.limit, WINDOW_RATE.period)
            )
        return self.models[which, key]

    def now(self) -> Fraction:
        return Fraction(self.clock.monotonic())

    @rule(ticks=st.one_of(st.integers(0, 16), st.integers(0, 400)))
    def advance(self, ticks: int) -> None:
        self.clock.advance(ticks * TICK)

    @rule(
        which=st.sampled_from(["gcra", "window"]),
        key=st.sampled_from(KEYS),
        cost=st.one_of(st.just(1), st.integers(0, 6)),
    )
    def hit(self, which: str, key: str, cost: int) -> None:
        decision = self.limiters[which].hit("t", key, cost)
        model = self.model(which, key)
        assert decision.allowed == model.hit(self.now(), cost)
        assert decision.remaining == model.remaining(self.now())
        assert bool(decision) == decision.allowed
        self.counts[which][0 if decision.allowed else 1] += 1

    @rule(
        which=st.sampled_from(["gcra", "window"]),
        key=st.sampled_from(KEYS),
        cost=st.integers(0, 6),
    )
    def peek(self, which: str, key: str, cost: int) -> None:
        decision = self.limiters[which].peek("t", key, cost)
        model = self.model(which, key)
        assert decision.allowed == model.allows(self.now(), cost)
        assert decision.remaining == model.remaining(self.now())

    @rule(which=st.sampled_from(["gcra", "window"]), key=st.sampled_from(KEYS))
    def reset(self, which: str, key: str) -> None:
        self.limiters[which].reset("t", key)
        self.models.pop((which, key), None)

    @invariant()
    def counters_match(self) -> None:
        for which, limiter in self.limiters.items():
            stats = limiter.stats()
            allowed, denied = self.counts[which]
            assert (stats.allowed, stats.denied, stats.decisions) == (
                allowed,
                denied,
                allowed + denied,
            )
            assert stats.tiers["t"].allowed == allowed
            assert stats.keys <= 64
            assert stats.evictions == 0


TestInMemory = LimiterMachine.TestCase
TestInMemory.settings = settings(max_examples=40, stateful_step_count=40, deadline=None)


class RedisLimiterMachine(LimiterMachine):
    redis = True


TestOnRedisScripts = RedisLimiterMachine.TestCase
TestOnRedisScripts.settings = settings(max_examples=25, stateful_step_count=30, deadline=None)
