"""The monitor as a whole: configuration, events, default rules, stats."""

from __future__ import annotations

from typing import Any

import pytest

from sentia_core._events import Event, Listeners
from sentia_core.errors import ConfigError
from sentia_core.monitor import (
    DEFAULT_RULE_NAMES,
    EVENTS_METRIC,
    Alert,
    AlertRule,
    PerformanceMonitor,
    default_rules,
)
from sentia_core.testing import ManualClock


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"clock": object()}, "clock"),
        ({"name": ""}, "name"),
        ({"max_series": 0}, "max_series"),
        ({"relative_accuracy": 0.9}, "relative_accuracy"),
        ({"max_buckets": 1}, "max_buckets"),
        ({"windows": (5,)}, "windows"),
        ({"windows": "60"}, "windows"),
        ({"window_slot": 0}, "window_slot"),
        ({"quantiles": (1.5,)}, "quantiles"),
        ({"quantiles": ()}, "quantiles"),
        ({"summary_window": 3600}, "summary_window"),
        ({"histogram_exposition": "native"}, "histogram_exposition"),
        ({"buckets": ()}, "buckets"),
        ({"buckets": (-1,)}, "buckets"),
        ({"retention": -5}, "retention"),
        ({"history_max_series": -1}, "history_max_series"),
        ({"history_quantiles": (2,)}, "history_quantiles"),
        ({"system_metrics": "yes"}, "system_metrics"),
        ({"disk_paths": "/"}, "disk_paths"),
        ({"notify_max_attempts": 0}, "notify_max_attempts"),
        ({"notify_backoff": 0}, "notify_backoff"),
        ({"notify_jitter": 2}, "notify_jitter"),
        ({"health_timeout": 0}, "health_timeout"),
    ],
)
def test_bad_configuration_fails_at_construction(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ConfigError) as info:
        PerformanceMonitor(**kwargs)
    assert info.value.parameter == parameter


class Opened(Event):
    pass


class Closed(Event):
    pass


def test_observe_event_counts_events_by_type_and_source(monitor: PerformanceMonitor) -> None:
    listeners: Listeners[Event] = Listeners()
    unsubscribe = monitor.subscribe(listeners)
    for _ in range(3):
        listeners.emit(Opened(source="breaker:payments", at=0.0))
    listeners.emit(Closed(source="breaker:payments", at=0.0))
    monitor.observe_event(Opened(source="cache:users", at=0.0))
    c = monitor.counter
    assert c(EVENTS_METRIC, type="Opened", source="breaker:payments").value == 3
    assert c(EVENTS_METRIC, type="Closed", source="breaker:payments").value == 1
    assert c(EVENTS_METRIC, type="Opened", source="cache:users").value == 1
    unsubscribe()
    listeners.emit(Opened(source="breaker:payments", at=0.0))
    assert c(EVENTS_METRIC, type="Opened", source="breaker:payments").value == 3
    assert 'sentia_events_total{source="breaker:payments",type="Opened"} 3' in (
        monitor.prometheus_text()
    )


def test_default_rules_are_the_original_specs_thresholds() -> None:
    rules = {r.name: r for r in default_rules()}
    assert tuple(rules) == DEFAULT_RULE_NAMES
    assert (rules["cpu"].warning, rules["cpu"].critical) == (70, 90)
    assert (rules["memory"].warning, rules["memory"].critical) == (80, 95)
    assert (rules["response_time"].warning, rules["response_time"].critical) == (2, 5)
    assert (rules["error_rate"].warning, rules["error_rate"].critical) == (0.05, 0.10)
    hit = rules["cache_hit_rate"]
    assert (hit.warning, hit.critical, hit.above) == (0.80, 0.60, False)
    assert [r.name for r in default_rules(disabled=["cpu", "memory"])] == [
        "response_time",
        "error_rate",
        "cache_hit_rate",
    ]
    with pytest.raises(ConfigError) as info:
        default_rules(disabled=["disk"])
    assert info.value.parameter == "disabled"


def test_default_rules_match_the_configuration_keys() -> None:
    import dataclasses

    from sentia_core.config import AlertsConfig

    rules = default_rules(
        **{f.name: getattr(AlertsConfig(), f.name) for f in dataclasses.fields(AlertsConfig)}
    )
    assert len(rules) == len(DEFAULT_RULE_NAMES)


def test_default_rules_fire_on_recorded_requests(
    monitor: PerformanceMonitor, clock: ManualClock
) -> None:
    got: list[Alert] = []
    monitor.add_notifier(got.append)
    monitor.add_rules(default_rules(for_seconds=0))
    monitor.evaluate()
    for i in range(100):
        monitor.record_request(3.0 if i % 2 else 0.1, error=i % 5 == 0)
    clock.advance(10)
    monitor.evaluate()
    states = {s.rule: (s.state, s.severity) for s in monitor.alerts()}
    assert states["response_time"] == ("firing", "warning")  # p95 3 s > 2 s
    assert states["error_rate"] == ("firing", "critical")  # 20 % errors > 10 %
    assert states["cpu"] == ("inactive", None)  # no system sampling in this monitor
    assert states["cache_hit_rate"] == ("inactive", None)  # no cache traffic: no data
    assert {a.rule for a in got} == {"response_time", "error_rate"}


def test_error_rate_thresholds_are_strict(monitor: PerformanceMonitor, clock: ManualClock) -> None:
    monitor.add_rules(default_rules(for_seconds=0, disabled=["cpu", "memory", "cache_hit_rate"]))
    monitor.evaluate()
    for i in range(100):
        monitor.record_request(0.1, error=i < 7)
    clock.advance(10)
    monitor.evaluate()
    assert monitor.alert("error_rate").severity == "warning"  # 7 % is above 5 %, below 10 %
    assert monitor.alert("error_rate").value == pytest.approx(0.07)


def test_stats_describe_the_monitor(monitor: PerformanceMonitor) -> None:
    monitor.counter("a_total").inc()
    monitor.add_rule(AlertRule("r", "a_total", warning=0))
    monitor.add_notifier(lambda alert: None, name="noop")
    monitor.add_health_check("h", lambda: True)
    monitor.tick()
    stats = monitor.stats()
    assert stats.rules == 1 and stats.firing == 1 and stats.pending == 0
    assert stats.notifiers[0].name == "noop" and stats.notifiers[0].sent == 1
    assert stats.health_checks == 1 and stats.ticks == 1 and stats.tick_errors == 0
    assert stats.families >= 1 and stats.series >= 1 and not stats.running


def test_the_monitor_is_a_context_manager(clock: ManualClock) -> None:
    with PerformanceMonitor(clock=clock, system_metrics=False) as m:
        server = m.serve()
        assert server.running
    assert not server.running


def test_unknown_alert_names_raise(monitor: PerformanceMonitor) -> None:
    from sentia_core.errors import MonitorError

    with pytest.raises(MonitorError, match="no alert rule"):
        monitor.alert("nope")


def test_concurrent_ticks_and_evaluations_notify_once(clock: ManualClock) -> None:
    import threading

    m = PerformanceMonitor(clock=clock, system_metrics=False)
    got: list[Alert] = []
    lock = threading.Lock()

    def inbox(alert: Alert) -> None:
        with lock:
            got.append(alert)

    m.add_notifier(inbox)
    m.gauge("load").set(99)
    m.add_rule(AlertRule("hot", "load", warning=50))
    h = m.histogram("lat_seconds")
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            for _ in range(50):
                h.observe(0.01 * (i + 1))
                if i % 2:
                    m.tick()
                else:
                    m.evaluate()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [(a.rule, a.kind.value) for a in got] == [("hot", "firing")]
    assert h.count == 300
    assert m.stats().tick_errors == 0
