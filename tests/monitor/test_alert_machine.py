"""The alert rule state machine, checked against a simple reference model.

The model is written the obvious way — breach start times, "is it firing,
at which severity", "what did receivers hear last" — without the state table
or the Signal vocabulary, and every evaluation through a real monitor (gauge,
ManualClock, notifier) must agree with it, step for step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from sentia_core.monitor import Alert, AlertRule, PerformanceMonitor
from sentia_core.testing import ManualClock

from .strategies import rule_values, steps


@dataclass
class Model:
    warning: float | None
    critical: float | None
    resolve_below: float | None
    for_seconds: float
    cooldown: float
    repeat: float | None
    breach_start: float | None = None
    critical_start: float | None = None
    firing: str | None = None  # None, "warning", "critical"
    ever_fired: bool = False
    announced: str | None = None
    last_sent: float | None = None
    sent: list[tuple[str, str]] = field(default_factory=list)

    def phase(self) -> str:
        if self.firing:
            return "firing"
        if self.breach_start is not None:
            return "pending"
        return "resolved" if self.ever_fired else "inactive"

    def step(self, now: float, value: float | None) -> None:
        over_w = value is not None and self.warning is not None and value > self.warning
        over_c = value is not None and self.critical is not None and value > self.critical
        breach = over_w or over_c
        if breach:
            if self.breach_start is None:
                self.breach_start = now
        else:
            self.breach_start = None
        if over_c:
            if self.critical_start is None:
                self.critical_start = now
        else:
            self.critical_start = None
        crit_ready = (
            self.critical_start is not None and now - self.critical_start >= self.for_seconds
        )
        warn_ready = (
            self.warning is not None
            and self.breach_start is not None
            and now - self.breach_start >= self.for_seconds
        )
        if crit_ready:
            self.firing = "critical"
        elif warn_ready:
            self.firing = "warning"
        elif self.firing and not breach:
            limit = self.resolve_below if self.resolve_below is not None else None
            if value is None or limit is None or value < limit:
                self.firing = None
        if self.firing:
            self.ever_fired = True
        elif breach:  # a new breach, not firing yet: pending, no longer "resolved"
            self.ever_fired = False
        # what receivers hear
        cooling = self.last_sent is not None and now - self.last_sent < self.cooldown
        kind = None
        if self.firing == self.announced:
            if (
                self.firing
                and self.repeat is not None
                and now - (self.last_sent or 0) >= self.repeat
            ):
                kind = "repeat"
        elif self.firing is None:
            kind = "resolved"
        elif self.announced is None:
            kind = None if cooling else "firing"
        elif self.firing == "critical":
            kind = "escalated"
        else:
            kind = None if cooling else "deescalated"
        if kind is not None:
            severity = self.announced if kind == "resolved" else self.firing
            assert severity is not None
            self.sent.append((kind, severity))
            self.announced = self.firing
            self.last_sent = now


thresholds = st.sampled_from(
    [
        (60.0, 80.0, None),
        (60.0, 80.0, 50.0),
        (60.0, None, None),
        (None, 80.0, 70.0),
        (60.0, 60.0, None),
    ]
)


class AlertMachine(RuleBasedStateMachine):
    @initialize(
        limits=thresholds,
        for_seconds=st.sampled_from([0.0, 10.0, 30.0]),
        cooldown=st.sampled_from([0.0, 20.0, 120.0]),
        repeat=st.sampled_from([None, 60.0]),
    )
    def setup(
        self,
        limits: tuple[float | None, float | None, float | None],
        for_seconds: float,
        cooldown: float,
        repeat: float | None,
    ) -> None:
        warning, critical, resolve_below = limits
        self.clock = ManualClock()
        self.monitor = PerformanceMonitor(clock=self.clock, system_metrics=False)
        self.gauge = self.monitor.gauge("load")
        self.received: list[Alert] = []
        self.monitor.add_notifier(self.received.append)
        self.monitor.add_rule(
            AlertRule(
                "r",
                "load",
                warning=warning,
                critical=critical,
                resolve_below=resolve_below,
                for_seconds=for_seconds,
                cooldown=cooldown,
                repeat_interval=repeat,
            )
        )
        self.model = Model(warning, critical, resolve_below, for_seconds, cooldown, repeat)

    @rule(value=rule_values, dt=steps)
    def evaluate(self, value: float | None, dt: float) -> None:
        self.clock.advance(dt)
        self.gauge.set(math.nan if value is None else value)
        self.monitor.evaluate()
        self.model.step(self.clock.monotonic(), value)

    @invariant()
    def state_matches_the_model(self) -> None:
        if not hasattr(self, "model"):
            return
        status = self.monitor.alert("r")
        if status.evaluated_at is None:
            return
        assert status.state == self.model.phase()
        assert status.severity == self.model.firing
        assert status.announced == self.model.announced

    @invariant()
    def notifications_match_the_model(self) -> None:
        if not hasattr(self, "model"):
            return
        got = [(a.kind.value, a.severity.value) for a in self.received]
        assert got == self.model.sent

    @invariant()
    def firing_and_resolved_alternate(self) -> None:
        if not hasattr(self, "model"):
            return
        open_ = False
        for alert in self.received:
            if alert.kind.value == "firing":
                assert not open_
                open_ = True
            elif alert.kind.value == "resolved":
                assert open_
                open_ = False
            else:
                assert open_


AlertMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
TestAlertStateMachine = AlertMachine.TestCase
