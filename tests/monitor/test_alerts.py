"""Alert rules: validation, the state table, notifications, and a model-checked state machine."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sentia_core.errors import ConfigError
from sentia_core.monitor import (
    TRANSITIONS,
    Alert,
    AlertRule,
    NotificationKind,
    NotifyState,
    PerformanceMonitor,
    RuleState,
    Severity,
    Signal,
    alert_state_diagram,
    classify,
    decide,
)
from sentia_core.monitor._alerts import Timers
from sentia_core.testing import ManualClock

DOCS = Path(__file__).resolve().parents[2] / "docs" / "monitor.md"


# ----------------------------------------------------------------------------- the rule


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"name": ""}, "name"),
        ({"metric": "rate(x)"}, "metric"),
        ({"warning": None, "critical": None}, "warning"),
        ({"warning": math.nan}, "warning"),
        ({"critical": "high"}, "critical"),
        ({"warning": 90, "critical": 70}, "critical"),
        ({"warning": 70, "critical": 90, "above": False}, "critical"),
        ({"above": "yes"}, "above"),
        ({"resolve_below": 80}, "resolve_below"),
        ({"resolve_above": 10}, "resolve_above"),
        ({"warning": 80, "critical": 60, "above": False, "resolve_above": 70}, "resolve_above"),
        ({"warning": 80, "critical": 60, "above": False, "resolve_below": 90}, "resolve_below"),
        ({"for_seconds": -1}, "for_seconds"),
        ({"cooldown": math.inf}, "cooldown"),
        ({"repeat_interval": 0}, "repeat_interval"),
        ({"labels": {"team": 1}}, "labels"),
    ],
)
def test_invalid_rules_name_the_parameter(kwargs: dict[str, object], parameter: str) -> None:
    args: dict[str, object] = {
        "name": "cpu",
        "metric": "cpu_percent",
        "warning": 70,
        "critical": 90,
    }
    args.update(kwargs)
    with pytest.raises(ConfigError) as info:
        AlertRule(**args)  # type: ignore[arg-type]
    assert info.value.parameter == parameter


def test_a_rule_is_frozen_and_keeps_its_parsed_expression() -> None:
    rule = AlertRule("lat", "p95(http_seconds[5m])", warning=2, critical=5, labels={"team": "web"})
    assert rule.expression is not None
    with pytest.raises(AttributeError):
        rule.warning = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        rule.labels["team"] = "ops"  # type: ignore[index]


# ----------------------------------------------------------------------------- the table


def test_the_table_covers_every_state_and_signal() -> None:
    assert set(TRANSITIONS) == {(s, g) for s in RuleState for g in Signal}


def test_firing_states_resolve_only_on_clear() -> None:
    for state in (RuleState.FIRING_WARNING, RuleState.FIRING_CRITICAL):
        for signal in Signal:
            target = TRANSITIONS[state, signal]
            assert (target is RuleState.RESOLVED) == (signal is Signal.CLEAR)


def test_the_docs_draw_the_diagram_from_the_table() -> None:
    assert alert_state_diagram() in DOCS.read_text()


RULE = AlertRule("cpu", "cpu", warning=60, critical=80, for_seconds=30, resolve_below=50)


@pytest.mark.parametrize(
    ("value", "now", "timers", "signal"),
    [
        (None, 100, Timers(0, 0), Signal.CLEAR),
        (math.nan, 100, Timers(), Signal.CLEAR),
        (45, 100, Timers(), Signal.CLEAR),
        (55, 100, Timers(), Signal.HOLD),
        (65, 100, Timers(), Signal.BREACH_WAIT),
        (65, 100, Timers(80, None), Signal.BREACH_WAIT),
        (65, 100, Timers(70, None), Signal.WARNING_READY),
        (85, 100, Timers(70, None), Signal.WARNING_READY),
        (85, 100, Timers(70, 90), Signal.WARNING_READY),
        (85, 100, Timers(60, 70), Signal.CRITICAL_READY),
    ],
)
def test_classify(value: float | None, now: float, timers: Timers, signal: Signal) -> None:
    assert classify(RULE, value, now, timers)[0] is signal


def test_classify_starts_and_resets_the_timers() -> None:
    _, t = classify(RULE, 85, 10, Timers())
    assert t == Timers(10, 10)
    _, t = classify(RULE, 65, 20, t)
    assert t == Timers(10, None)
    _, t = classify(RULE, 55, 30, t)
    assert t == Timers()


def test_below_rules_mirror_everything() -> None:
    rule = AlertRule("hit", "hit_rate", warning=0.8, critical=0.6, above=False, resolve_above=0.85)
    assert classify(rule, 0.5, 0, Timers())[0] is Signal.CRITICAL_READY
    assert classify(rule, 0.7, 0, Timers())[0] is Signal.WARNING_READY
    assert classify(rule, 0.82, 0, Timers())[0] is Signal.HOLD
    assert classify(rule, 0.9, 0, Timers())[0] is Signal.CLEAR


def test_decide() -> None:
    rule = AlertRule("r", "x", warning=1, critical=2, cooldown=60, repeat_interval=600)
    w, c = Severity.WARNING, Severity.CRITICAL
    assert decide(rule, w, 0, NotifyState()) == (NotificationKind.FIRING, NotifyState(w, 0))
    assert decide(rule, c, 5, NotifyState(w, 0)) == (NotificationKind.ESCALATED, NotifyState(c, 5))
    assert decide(rule, w, 10, NotifyState(c, 5)) == (None, NotifyState(c, 5))  # cooling
    assert decide(rule, w, 70, NotifyState(c, 5))[0] is NotificationKind.DEESCALATED
    assert decide(rule, None, 6, NotifyState(c, 5))[0] is NotificationKind.RESOLVED
    assert decide(rule, w, 30, NotifyState(None, 6)) == (None, NotifyState(None, 6))
    assert decide(rule, w, 66, NotifyState(None, 6))[0] is NotificationKind.FIRING
    assert decide(rule, w, 599, NotifyState(w, 0)) == (None, NotifyState(w, 0))
    assert decide(rule, w, 600, NotifyState(w, 0)) == (NotificationKind.REPEAT, NotifyState(w, 600))


# ----------------------------------------------------------------------------- through the monitor


class Inbox:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def __call__(self, alert: Alert) -> None:
        self.alerts.append(alert)

    @property
    def kinds(self) -> list[tuple[str, str]]:
        return [(a.kind.value, a.severity.value) for a in self.alerts]


@pytest.fixture
def inbox(monitor: PerformanceMonitor) -> Inbox:
    box = Inbox()
    monitor.add_notifier(box)
    return box


def test_for_duration_pending_then_firing(
    monitor: PerformanceMonitor, clock: ManualClock, inbox: Inbox
) -> None:
    cpu = monitor.gauge("system_cpu_percent")
    monitor.add_rule(
        AlertRule("cpu", "system_cpu_percent", warning=70, critical=90, for_seconds=60)
    )
    cpu.set(75)
    monitor.evaluate()
    assert monitor.alert("cpu").state == "pending"
    clock.advance(59)
    monitor.evaluate()
    assert monitor.alert("cpu").state == "pending" and inbox.alerts == []
    clock.advance(1)
    monitor.evaluate()
    status = monitor.alert("cpu")
    assert (status.state, status.severity) == ("firing", "warning")
    assert inbox.kinds == [("firing", "warning")]
    assert inbox.alerts[0].active_since == clock.time() - 60
    assert inbox.alerts[0].value == 75 and inbox.alerts[0].threshold == 70


def test_a_breach_that_goes_away_while_pending_never_fires(
    monitor: PerformanceMonitor, clock: ManualClock, inbox: Inbox
) -> None:
    cpu = monitor.gauge("system_cpu_percent")
    monitor.add_rule(AlertRule("cpu", "system_cpu_percent", warning=70, for_seconds=60))
    cpu.set(75)
    monitor.evaluate()
    clock.advance(30)
    cpu.set(10)
    monitor.evaluate()
    assert monitor.alert("cpu").state == "inactive"
    clock.advance(30)
    cpu.set(75)
    monitor.evaluate()
    clock.advance(30)
    monitor.evaluate()  # the new breach is only 30 s old
    assert monitor.alert("cpu").state == "pending"
    assert inbox.alerts == []


def test_escalation_sends_one_notification_not_two(
    monitor: PerformanceMonitor, clock: ManualClock, inbox: Inbox
) -> None:
    cpu = monitor.gauge("system_cpu_percent")
    monitor.add_rule(AlertRule("cpu", "system_cpu_percent", warning=70, critical=90, cooldown=300))
    cpu.set(75)
    monitor.evaluate()
    clock.advance(10)
    cpu.set(95)
    monitor.evaluate()
    clock.advance(10)
    monitor.evaluate()
    assert inbox.kinds == [("firing", "warning"), ("escalated", "critical")]
    assert inbox.alerts[1].previous_severity is Severity.WARNING
    # straight to critical: a single "firing critical"
    monitor.add_rule(AlertRule("cpu2", "system_cpu_percent", warning=70, critical=90))
    monitor.evaluate()
    assert inbox.kinds[-1] == ("firing", "critical")
    assert len(inbox.alerts) == 3


def test_hysteresis_keeps_firing_until_resolve_below(
    monitor: PerformanceMonitor, clock: ManualClock, inbox: Inbox
) -> None:
    mem = monitor.gauge("system_memory_percent")
    monitor.add_rule(AlertRule("mem", "system_memory_percent", warning=80, resolve_below=70))
    mem.set(85)
    monitor.evaluate()
    for v in (79, 75, 70.5, 81, 72):
        clock.advance(10)
        mem.set(v)
        monitor.evaluate()
        assert monitor.alert("mem").state == "firing", v
    clock.advance(10)
    mem.set(69)
    monitor.evaluate()
    assert monitor.alert("mem").state == "resolved"
    assert inbox.kinds == [("firing", "warning"), ("resolved", "warning")]
    assert inbox.alerts[1].threshold == 70


def test_cooldown_holds_a_refire_back_and_releases_it_later(
    monitor: PerformanceMonitor, clock: ManualClock, inbox: Inbox
) -> None:
    g = monitor.gauge("error_ratio")
    monitor.add_rule(AlertRule("err", "error_ratio", warning=0.05, cooldown=120))
    g.set(0.2)
    monitor.evaluate()
    clock.advance(10)
    g.set(0.0)
    monitor.evaluate()  # resolved goes out at once
    clock.advance(10)
    g.set(0.2)
    monitor.evaluate()  # firing again, but within the cooldown
    assert monitor.alert("err").state == "firing"
    assert monitor.alert("err").announced is None
    assert inbox.kinds == [("firing", "warning"), ("resolved", "warning")]
    clock.advance(109)
    monitor.evaluate()  # 119 s after the resolution: still held
    assert len(inbox.alerts) == 2
    clock.advance(1)
    monitor.evaluate()  # 120 s after the resolution: released
    assert inbox.kinds[-1] == ("firing", "warning")
    assert len(inbox.alerts) == 3


def test_a_held_firing_that_resolves_is_never_heard_of(
    monitor: PerformanceMonitor, clock: ManualClock, inbox: Inbox
) -> None:
    g = monitor.gauge("error_ratio")
    monitor.add_rule(AlertRule("err", "error_ratio", warning=0.05, cooldown=120))
    for v in (0.2, 0.0, 0.2, 0.0):
        g.set(v)
        monitor.evaluate()
        clock.advance(10)
    assert inbox.kinds == [("firing", "warning"), ("resolved", "warning")]


def test_repeat_interval_resends_while_firing(
    monitor: PerformanceMonitor, clock: ManualClock, inbox: Inbox
) -> None:
    g = monitor.gauge("queue_depth")
    monitor.add_rule(AlertRule("q", "queue_depth", critical=100, repeat_interval=3600))
    g.set(500)
    for _ in range(8):
        monitor.evaluate()
        clock.advance(900)
    assert inbox.kinds == [("firing", "critical"), ("repeat", "critical")]


def test_de_escalation_is_announced_after_the_cooldown(
    monitor: PerformanceMonitor, clock: ManualClock, inbox: Inbox
) -> None:
    g = monitor.gauge("cpu")
    monitor.add_rule(AlertRule("cpu", "cpu", warning=70, critical=90, cooldown=60))
    g.set(95)
    monitor.evaluate()
    g.set(75)
    clock.advance(30)
    monitor.evaluate()
    assert monitor.alert("cpu").severity == "warning"
    assert inbox.kinds == [("firing", "critical")]
    clock.advance(30)
    monitor.evaluate()
    assert inbox.kinds == [("firing", "critical"), ("deescalated", "warning")]
    assert inbox.alerts[-1].previous_severity is Severity.CRITICAL


def test_below_threshold_rule_for_cache_hit_rate(
    monitor: PerformanceMonitor, clock: ManualClock, inbox: Inbox
) -> None:
    hits, misses = monitor.counter("cache_hits_total"), monitor.counter("cache_misses_total")
    monitor.add_rule(
        AlertRule(
            "hit_rate",
            "rate(cache_hits_total[1m])"
            " / (rate(cache_hits_total[1m]) + rate(cache_misses_total[1m]))",
            warning=0.8,
            critical=0.6,
            above=False,
        )
    )
    monitor.evaluate()  # first samples: no rate yet
    assert monitor.alert("hit_rate").value is None
    hits.inc(70)
    misses.inc(30)
    clock.advance(10)
    monitor.evaluate()
    assert monitor.alert("hit_rate").value == pytest.approx(0.7)
    assert inbox.kinds == [("firing", "warning")]


def test_no_data_never_fires_and_resolves(
    monitor: PerformanceMonitor, clock: ManualClock, inbox: Inbox
) -> None:
    monitor.add_rule(AlertRule("lat", "p95(http_seconds[1m])", warning=2))
    monitor.evaluate()
    assert monitor.alert("lat").state == "inactive"
    monitor.histogram("http_seconds").observe(3)
    monitor.evaluate()
    assert monitor.alert("lat").state == "firing"
    clock.advance(120)  # traffic stops: the window empties
    monitor.evaluate()
    assert monitor.alert("lat").state == "resolved"
    assert inbox.kinds == [("firing", "warning"), ("resolved", "warning")]


def test_evaluation_errors_are_reported_not_raised(
    monitor: PerformanceMonitor, inbox: Inbox
) -> None:
    monitor.counter("jobs_total").inc()
    monitor.add_rule(AlertRule("bad", "p95(jobs_total)", warning=1))
    assert monitor.evaluate() == []
    status = monitor.alert("bad")
    assert status.state == "inactive"
    assert status.last_error is not None and "histogram" in status.last_error
    assert monitor.stats().evaluation_errors == 1


def test_rules_are_managed_by_name(monitor: PerformanceMonitor) -> None:
    rule = AlertRule("r", "x", warning=1)
    monitor.add_rule(rule)
    with pytest.raises(ConfigError, match="already exists"):
        monitor.add_rule(rule)
    with pytest.raises(ConfigError, match="windows"):
        monitor.add_rule(AlertRule("long", "p95(h[1h])", warning=1))
    assert monitor.rules() == [rule]
    assert monitor.remove_rule("r") is True
    assert monitor.remove_rule("r") is False


def test_listeners_receive_alert_events(monitor: PerformanceMonitor) -> None:
    got: list[Alert] = []
    monitor.listeners.add(got.append)
    monitor.gauge("x").set(5)
    monitor.add_rule(AlertRule("r", "x", warning=1))
    monitor.evaluate()
    assert [a.rule for a in got] == ["r"]
    assert got[0].source == "monitor" and got[0].at == monitor._wall()
    assert got[0].to_dict()["status"] == "firing"
    assert "[WARNING] r firing: x = 5" in got[0].summary()
