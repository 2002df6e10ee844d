"""Passive outlier detection: ejection, growth and decay, the ejection cap."""

from __future__ import annotations

import math

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from sentia_core.errors import ConfigError
from sentia_core.registry import OutlierPolicy
from sentia_core.registry._outlier import OutlierDetector


def detector(n: int = 4, **kw: object) -> OutlierDetector:
    d = OutlierDetector(OutlierPolicy(**kw))  # type: ignore[arg-type]
    d.sync([f"h{k}" for k in range(n)])
    return d


def fail(d: OutlierDetector, host: str, times: int, now: float) -> list[float | None]:
    return [d.failure(host, now) for _ in range(times)]


def test_consecutive_failures_eject_for_the_base_time() -> None:
    d = detector(consecutive_failures=3, base_ejection_time=30)
    assert fail(d, "h0", 3, 100.0) == [None, None, 30.0]
    assert d.ejected_ids(100.0) == {"h0"}
    assert d.hosts["h0"].is_ejected(129.9)
    assert not d.hosts["h0"].is_ejected(130.0)
    assert d.next_return(100.0) == 130.0
    assert d.next_return(130.0) == math.inf


def test_a_success_resets_the_streak() -> None:
    d = detector(consecutive_failures=3)
    fail(d, "h0", 2, 1.0)
    d.success("h0")
    assert fail(d, "h0", 2, 1.0) == [None, None]
    assert d.ejected_count(1.0) == 0


def test_repeated_ejections_grow_and_are_capped() -> None:
    d = detector(consecutive_failures=1, base_ejection_time=10, max_ejection_time=35)
    now = 0.0
    lengths = []
    for _ in range(5):
        (length,) = fail(d, "h0", 1, now)
        assert length is not None
        lengths.append(length)
        now += length  # fails again the moment it returns
    assert lengths == [10, 20, 30, 35, 35]
    assert d.hosts["h0"].ejections == 5


def test_the_multiplier_decays_while_the_host_behaves() -> None:
    d = detector(consecutive_failures=1, base_ejection_time=10, max_ejection_time=300)
    assert fail(d, "h0", 1, 0.0) == [10]  # back at 10
    assert fail(d, "h0", 1, 10.0) == [20]  # back at 30
    assert fail(d, "h0", 1, 30.0) == [30]  # back at 60, multiplier 3
    # 25 s of good behaviour: two whole base periods, the multiplier drops 3 -> 1
    assert fail(d, "h0", 1, 85.0) == [20]


@pytest.mark.parametrize(
    ("live", "percent", "allowed"),
    [
        (1, 100, 0),
        (2, 10, 1),
        (3, 50, 1),
        (4, 50, 2),
        (10, 10, 1),
        (10, 35, 3),
        (3, 100, 2),
        (5, 0, 0),
    ],
)
def test_the_ejection_cap(live: int, percent: float, allowed: int) -> None:
    assert OutlierPolicy(max_ejection_percent=percent).allowed(live) == allowed


def test_never_more_than_the_cap_and_never_the_last_one() -> None:
    d = detector(n=4, consecutive_failures=2, max_ejection_percent=50)
    for host in ("h0", "h1", "h2", "h3"):
        fail(d, host, 2, 5.0)
    assert d.ejected_count(5.0) == 2
    lone = detector(n=1, consecutive_failures=1, max_ejection_percent=100)
    assert fail(lone, "h0", 5, 5.0) == [None] * 5


def test_a_host_refused_ejection_by_the_cap_is_ejected_once_there_is_room() -> None:
    d = detector(n=2, consecutive_failures=2, base_ejection_time=10)
    fail(d, "h0", 2, 0.0)
    assert fail(d, "h1", 3, 1.0) == [None, None, None]  # cap 1 reached
    assert fail(d, "h1", 1, 10.0) == [10]  # h0 returned at 10: room again


def test_failures_while_ejected_do_not_extend_the_ejection() -> None:
    d = detector(consecutive_failures=1, base_ejection_time=10)
    fail(d, "h0", 1, 0.0)
    assert fail(d, "h0", 3, 5.0) == [None, None, None]
    assert d.hosts["h0"].ejected_until == 10.0


def test_sync_forgets_departed_hosts() -> None:
    d = detector(n=3, consecutive_failures=1)
    fail(d, "h2", 1, 0.0)
    d.sync(["h0", "h1", "new"])
    assert set(d.hosts) == {"h0", "h1", "new"}
    assert d.ejected_count(0.0) == 0


@pytest.mark.parametrize(
    ("kw", "parameter"),
    [
        ({"consecutive_failures": 0}, "outlier_consecutive_failures"),
        ({"base_ejection_time": 0}, "base_ejection_time"),
        ({"max_ejection_time": -1}, "max_ejection_time"),
        ({"base_ejection_time": 10, "max_ejection_time": 5}, "max_ejection_time"),
        ({"max_ejection_percent": 101}, "max_ejection_percent"),
        ({"max_ejection_percent": True}, "max_ejection_percent"),
    ],
)
def test_policy_is_validated(kw: dict[str, object], parameter: str) -> None:
    with pytest.raises(ConfigError) as err:
        OutlierPolicy(**kw)  # type: ignore[arg-type]
    assert err.value.parameter == parameter


class _ModelHost:
    def __init__(self) -> None:
        self.streak = 0
        self.until = -math.inf
        self.mult = 0
        self.back = -math.inf


class OutlierMachine(RuleBasedStateMachine):
    """The detector against a literal reading of the rules, with time moving forward."""

    @initialize(
        n=st.integers(1, 6),
        threshold=st.integers(1, 4),
        base=st.sampled_from([1.0, 5.0, 30.0]),
        cap_factor=st.integers(1, 5),
        percent=st.sampled_from([0, 10, 34, 50, 100]),
    )
    def setup(self, n: int, threshold: int, base: float, cap_factor: int, percent: int) -> None:
        self.policy = OutlierPolicy(threshold, base, base * cap_factor, percent)
        self.d = OutlierDetector(self.policy)
        self.ids = [f"h{k}" for k in range(n)]
        self.d.sync(self.ids)
        self.model = {i: _ModelHost() for i in self.ids}
        self.now = 0.0

    def _allowed(self) -> int:
        n, pct = len(self.ids), self.policy.max_ejection_percent
        if pct == 0 or n < 2:
            return 0
        return min(n - 1, max(1, math.floor(n * pct / 100)))

    @rule(data=st.data())
    def success(self, data: st.DataObject) -> None:
        host = data.draw(st.sampled_from(self.ids))
        self.d.success(host)
        self.model[host].streak = 0

    @rule(data=st.data())
    def failure(self, data: st.DataObject) -> None:
        host = data.draw(st.sampled_from(self.ids))
        m = self.model[host]
        expected: float | None = None
        if not self.now < m.until:
            m.streak += 1
            ejected = sum(1 for h in self.model.values() if self.now < h.until)
            if m.streak >= self.policy.consecutive_failures and ejected < self._allowed():
                mult = m.mult
                if mult and m.back > -math.inf:
                    mult = max(0, mult - int((self.now - m.back) // self.policy.base_ejection_time))
                mult += 1
                expected = min(self.policy.base_ejection_time * mult, self.policy.max_ejection_time)
                m.mult, m.streak = mult, 0
                m.until = m.back = self.now + expected
        assert self.d.failure(host, self.now) == expected

    @rule(dt=st.sampled_from([0.0, 0.5, 1.0, 5.0, 29.0, 60.0, 400.0]))
    def advance(self, dt: float) -> None:
        self.now += dt

    @invariant()
    def agrees_with_the_model(self) -> None:
        expected = {i for i, h in self.model.items() if self.now < h.until}
        assert self.d.ejected_ids(self.now) == expected

    @invariant()
    def respects_the_cap_and_keeps_one(self) -> None:
        count = self.d.ejected_count(self.now)
        assert count <= self._allowed()
        assert count < len(self.ids)


TestOutlierMachine = OutlierMachine.TestCase
TestOutlierMachine.settings = settings(stateful_step_count=20)
