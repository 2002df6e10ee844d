"""Property-based tests: the breaker against a simple reference model.

:class:`Model` is the specification written the naive way (a list of
outcomes, a dict of permits); the machine drives the real core and, in a
second run, the Redis store's Lua script (on fakeredis), through the same
random interleavings of admissions, completions (in any order, including
stale ones), clock advances and manual triggers, and checks that decisions,
state and window totals agree at every step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import fakeredis
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from sentia_core.breaker import BreakerState, CircuitBreaker, RedisStateStore, StoreRequest
from sentia_core.breaker._core import Admit, Reject, Trial
from sentia_core.breaker._store import parse_reply
from sentia_core.breaker._window import FAILURE, SLOW, CountWindow, TimeWindow
from sentia_core.testing import ManualClock

from .strategies import JUNK, OUTCOMES, PIPED, QUARTERS, configs

CODES = {"success": 0, "failure": FAILURE, "ignored": -1}
S = BreakerState


# -- the reference model -----------------------------------------------------


@dataclass
class Model:
    cfg: dict[str, Any]
    state: BreakerState = S.CLOSED
    gen: int = 0
    window: list[tuple[float, int]] = field(default_factory=list)  # (time, outcome bits)
    consecutive: int = 0
    open_until: float = 0.0
    trips: int = 0
    permits: dict[int, float] = field(default_factory=dict)
    trial_ok: int = 0
    next_permit: int = 1

    def totals(self, now: float) -> tuple[int, int, int]:
        size = self.cfg["window_size"]
        if self.cfg["window_type"] == "count":
            kept = self.window[-size:]
        else:
            kept = [(t, o) for t, o in self.window if math.floor(t) > math.floor(now) - size]
        return (
            len(kept),
            sum(1 for _, o in kept if o & FAILURE),
            sum(1 for _, o in kept if o & SLOW),
        )

    def enter(self, state: BreakerState) -> None:
        self.state = state
        self.gen += 1
        self.permits = {}
        self.trial_ok = 0
        if state is S.CLOSED:
            self.window = []
            self.consecutive = 0
            self.trips = 0

    def trip(self, now: float) -> None:
        self.trips += 1
        timeout = min(
            self.cfg["reset_timeout"] * self.cfg["reset_timeout_multiplier"] ** (self.trips - 1),
            self.cfg["max_reset_timeout"],
        )
        self.open_until = now + timeout
        self.enter(S.OPEN)

    def admit(self, now: float) -> tuple[str, Any]:
        if self.state is S.CLOSED:
            return "admit", (self.gen, True)
        if self.state is S.DISABLED:
            return "admit", (self.gen, False)
        if self.state is S.FORCED_OPEN:
            return "reject", (0.0, S.FORCED_OPEN)
        if self.state is S.OPEN:
            if now < self.open_until:
                return "reject", (self.open_until - now, S.OPEN)
            self.enter(S.HALF_OPEN)
        expiry = self.cfg["half_open_timeout"]
        self.permits = {p: t for p, t in self.permits.items() if now < t + expiry}
        if len(self.permits) < self.cfg["half_open_max_calls"]:
            permit = self.next_permit
            self.next_permit += 1
            self.permits[permit] = now
            return "trial", (self.gen, permit)
        return "reject", (0.0, S.HALF_OPEN)

    def complete(self, kind: str, token: Any, outcome: int, duration: float, now: float) -> None:
        slow_after = self.cfg["slow_call_duration"]
        if outcome >= 0 and slow_after is not None and duration >= slow_after:
            outcome |= SLOW
        if kind == "admit":
            gen, record = token
            if not record or outcome < 0 or gen != self.gen or self.state is not S.CLOSED:
                return
            self.window.append((now, outcome))
            self.consecutive = self.consecutive + 1 if outcome & FAILURE else 0
            if outcome:
                self.evaluate(now)
            return
        gen, permit = token
        started = self.permits.pop(permit, None)
        if started is None or gen != self.gen or outcome < 0:
            return
        if now >= started + self.cfg["half_open_timeout"]:
            return
        if outcome:
            self.trip(now)
            return
        self.trial_ok += 1
        if self.trial_ok >= self.cfg["success_threshold"]:
            self.enter(S.CLOSED)

    def evaluate(self, now: float) -> None:
        c = self.cfg
        if c["consecutive_failures"] is not None and self.consecutive >= c["consecutive_failures"]:
            self.trip(now)
            return
        calls, failures, slow = self.totals(now)
        if calls < c["minimum_calls"]:
            return
        rate = c["failure_rate_threshold"]
        if (
            rate is not None
            and failures / calls >= rate
            or c["slow_call_duration"] is not None
            and slow / calls >= c["slow_call_rate_threshold"]
        ):
            self.trip(now)

    def manual(self, trigger: str) -> None:
        if trigger == "reset":
            self.trips = 0
        target = {"force_open": S.FORCED_OPEN, "disable": S.DISABLED, "reset": S.CLOSED}
        self.enter(target[trigger])


# -- the systems under test --------------------------------------------------


class CoreSystem:
    """The in-process core, driven with explicit times."""

    def __init__(self, cfg: dict[str, Any], clock: ManualClock) -> None:
        self.breaker = CircuitBreaker("prop", clock=clock, **cfg)
        self.core = self.breaker._core

    def admit(self, now: float) -> tuple[str, Any]:
        d = self.core.acquire(now)
        if isinstance(d, Reject):
            return "reject", (d.retry_after(now), d.state)
        if isinstance(d, Trial):
            return "trial", d
        assert isinstance(d, Admit)
        return "admit", d

    def complete(self, kind: str, token: Any, outcome: int, duration: float, now: float) -> None:
        assert self.core.complete(token, outcome, duration, now) is None

    def manual(self, trigger: str) -> None:
        getattr(self.breaker, trigger)()

    def state(self, now: float) -> BreakerState:
        return self.core.state

    def totals(self, now: float) -> tuple[int, int, int]:
        return self.core.window.totals(now)


class LuaSystem:
    """The Redis store's Lua script on fakeredis, driven with explicit times."""

    def __init__(self, cfg: dict[str, Any], clock: ManualClock) -> None:
        self.clock = clock
        self.config = CircuitBreaker("prop", **cfg).config
        self.store = RedisStateStore(fakeredis.FakeRedis(), clock=clock)
        self.slow_after = cfg["slow_call_duration"]

    def run(self, request: StoreRequest, now: float) -> Any:
        assert self.clock.monotonic() == now
        return self.store.execute(self.config, request)

    def admit(self, now: float) -> tuple[str, Any]:
        r = self.run(StoreRequest("acquire"), now)
        if r.state in (S.CLOSED, S.DISABLED):
            return "admit", (r.generation, r.state is S.CLOSED)
        if r.state is S.HALF_OPEN and r.permit:
            return "trial", (r.generation, r.permit)
        return "reject", (r.retry_after, r.state)

    def complete(self, kind: str, token: Any, outcome: int, duration: float, now: float) -> None:
        if outcome >= 0 and self.slow_after is not None and duration >= self.slow_after:
            outcome |= SLOW
        gen, extra = token
        if kind == "admit":
            if extra:
                self.run(StoreRequest("record", outcome=outcome, generation=gen), now)
        else:
            self.run(StoreRequest("record", outcome=outcome, generation=gen, permit=extra), now)

    def manual(self, trigger: str) -> None:
        self.store.execute(self.config, StoreRequest("manual", trigger=trigger))

    def state(self, now: float) -> BreakerState:
        return self.run(StoreRequest("read"), now).state

    def totals(self, now: float) -> tuple[int, int, int]:
        r = self.run(StoreRequest("read"), now)
        return r.calls, r.failures, r.slow_calls


class BreakerMachine(RuleBasedStateMachine):
    system_type: type = CoreSystem
    calls = Bundle("calls")

    @initialize(cfg=configs())
    def setup(self, cfg: dict[str, Any]) -> None:
        self.clock = ManualClock()
        self.model = Model(cfg)
        self.system = self.system_type(cfg, self.clock)

    def now(self) -> float:
        return self.clock.monotonic()

    def _admit(self) -> Any:
        now = self.now()
        expected_kind, expected = self.model.admit(now)
        kind, token = self.system.admit(now)
        assert kind == expected_kind, (kind, expected_kind)
        if kind == "reject":
            assert token[1] is expected[1]
            assert math.isclose(token[0], expected[0], abs_tol=1e-6)
            return None
        return (kind, token, expected)

    def _finish(self, call: Any, outcome: str, slow: bool) -> None:
        if call is None:
            return
        kind, token, model_token = call
        now = self.now()
        duration = 1.0 if slow else 0.0
        self.model.complete(kind, model_token, CODES[outcome], duration, now)
        self.system.complete(kind, token, CODES[outcome], duration, now)

    @rule(outcome=OUTCOMES, slow=st.booleans())
    def call(self, outcome: str, slow: bool) -> None:
        """A call that starts and finishes before anything else happens."""
        self._finish(self._admit(), outcome, slow)

    @rule(target=calls)
    def start_call(self) -> Any:
        """A call that stays in flight while other rules run."""
        return self._admit()

    @rule(call=consumes(calls), outcome=OUTCOMES, slow=st.booleans())
    def finish_call(self, call: Any, outcome: str, slow: bool) -> None:
        self._finish(call, outcome, slow)

    @rule(seconds=QUARTERS)
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(trigger=st.sampled_from(["force_open", "disable", "reset"]), dice=st.integers(0, 7))
    def manual(self, trigger: str, dice: int) -> None:
        if dice:  # rare: an operator acts once in a while
            return
        self.model.manual(trigger)
        self.system.manual(trigger)

    @invariant()
    def same_state(self) -> None:
        if hasattr(self, "model"):
            assert self.system.state(self.now()) is self.model.state

    @invariant()
    def same_window(self) -> None:
        if hasattr(self, "model"):
            now = self.now()
            assert self.system.totals(now) == self.model.totals(now)


class LuaMachine(BreakerMachine):
    system_type = LuaSystem


TestCoreAgainstModel = BreakerMachine.TestCase
TestCoreAgainstModel.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestLuaAgainstModel = LuaMachine.TestCase
TestLuaAgainstModel.settings = settings(max_examples=15, stateful_step_count=30, deadline=None)


# -- windows against naive recounts -----------------------------------------


@given(
    size=st.integers(1, 20),
    outcomes=st.lists(st.sampled_from([0, FAILURE, SLOW, FAILURE | SLOW]), max_size=80),
)
def test_count_window_matches_a_recount(size: int, outcomes: list[int]) -> None:
    w = CountWindow(size)
    for i, o in enumerate(outcomes):
        w.record(o, 0.0)
        kept = outcomes[max(0, i + 1 - size) : i + 1]
        assert w.totals(0.0) == (
            len(kept),
            sum(1 for x in kept if x & FAILURE),
            sum(1 for x in kept if x & SLOW),
        )
        assert w.clean == (len(kept) == size and not any(kept))


@given(
    size=st.integers(1, 10),
    steps=st.lists(
        st.tuples(st.sampled_from([0.0, 0.3, 1.0, 2.7, 9.0, 40.0]), st.sampled_from([0, 1, 2, 3])),
        max_size=60,
    ),
)
def test_time_window_matches_a_recount(size: int, steps: list[tuple[float, int]]) -> None:
    w = TimeWindow(size)
    now = 100.0
    seen: list[tuple[float, int]] = []
    for dt, o in steps:
        now += dt
        w.record(o, now)
        seen.append((now, o))
        kept = [x for t, x in seen if math.floor(t) > math.floor(now) - size]
        assert w.totals(now) == (
            len(kept),
            sum(1 for x in kept if x & FAILURE),
            sum(1 for x in kept if x & SLOW),
        )


@settings(max_examples=60)
@given(JUNK | PIPED | PIPED.map(lambda b: b"closed|" + b))
def test_hostile_store_replies_raise_only_value_error(raw: Any) -> None:
    try:
        reply = parse_reply(raw)
    except ValueError:
        return
    assert reply.state in set(BreakerState)
    assert min(reply.generation, reply.calls, reply.permit) >= 0


@settings(max_examples=30)
@given(cfg=configs())
def test_config_roundtrip_through_the_constructor(cfg: dict[str, Any]) -> None:
    b = CircuitBreaker("cfg", **cfg)
    for k, v in cfg.items():
        if k == "success_threshold":
            assert b.config.success_threshold == v
        else:
            assert getattr(b.config, k) == v
