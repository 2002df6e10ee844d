"""The psutil collector and the sampler thread."""

from __future__ import annotations

import threading

import pytest

from sentia_core.errors import ConfigError, MonitorError
from sentia_core.monitor import Alert, AlertRule, PerformanceMonitor, SystemCollector
from sentia_core.testing import ManualClock


def test_a_sample_has_every_figure_in_range() -> None:
    sample = SystemCollector().collect()
    assert sample.cpu_percent is not None and 0 <= sample.cpu_percent <= 100
    assert sample.memory_percent is not None and 0 < sample.memory_percent <= 100
    assert sample.memory_total_bytes is not None and sample.memory_total_bytes > 0
    assert sample.swap_percent is not None and 0 <= sample.swap_percent <= 100
    assert 0 <= sample.disk_usage_percent["/"] <= 100 and sample.disk_free_bytes["/"] > 0
    assert sample.network_sent_bytes is not None and sample.network_sent_bytes >= 0
    assert sample.load1 is not None and sample.load1 >= 0
    assert sample.process_resident_memory_bytes is not None
    assert sample.process_resident_memory_bytes > 1_000_000
    assert sample.process_threads is not None and sample.process_threads >= 1
    assert sample.process_open_fds is not None and sample.process_open_fds >= 3
    assert sample.process_cpu_seconds is not None and sample.process_cpu_seconds > 0
    assert sample.process_cpu_percent is not None and sample.process_cpu_percent >= 0
    assert set(sample.to_dict()) >= {"cpu_percent", "load15", "disk_read_bytes"}


def test_missing_paths_are_left_out() -> None:
    sample = SystemCollector(disk_paths=("/", "/definitely/not/here")).collect()
    assert list(sample.disk_usage_percent) == ["/"]


def test_collect_updates_gauges_and_counters(clock: ManualClock) -> None:
    m = PerformanceMonitor(clock=clock)
    sample = m.collect()
    assert m.gauge("system_memory_percent").value == sample.memory_percent
    assert m.gauge("system_disk_usage_percent", path="/").value == sample.disk_usage_percent["/"]
    sent = m.counter("system_network_sent_bytes_total").value
    assert sent == sample.network_sent_bytes
    clock.advance(10)
    later = m.collect()
    assert m.counter("system_network_sent_bytes_total").value == later.network_sent_bytes
    assert m.counter("process_cpu_seconds_total").value == pytest.approx(later.process_cpu_seconds)


def test_the_sampler_thread_ticks_until_stopped() -> None:
    m = PerformanceMonitor(system_metrics=False)
    ticked = threading.Event()
    m.add_health_check("probe", ticked.set, timeout=None)
    with m.start(interval=0.01):
        assert m.running
        assert ticked.wait(10)
        with pytest.raises(MonitorError, match="already running"):
            m.start(interval=1)
    assert not m.running
    ticks = m.stats().ticks
    assert ticks >= 1
    m.stop()  # idempotent


def test_the_sampler_evaluates_rules_and_notifies() -> None:
    m = PerformanceMonitor(system_metrics=True)
    got: list[Alert] = []
    delivered = threading.Event()

    def notifier(alert: Alert) -> None:
        got.append(alert)
        delivered.set()

    m.add_notifier(notifier)
    m.add_rule(AlertRule("memory_visible", "system_memory_total_bytes", warning=0))
    m.start(interval=0.01)
    try:
        assert delivered.wait(10)
    finally:
        m.close()
    assert got[0].rule == "memory_visible"


def test_a_failing_step_is_counted_and_the_sampler_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    m = PerformanceMonitor(system_metrics=True)
    calls = 0
    second = threading.Event()

    def broken_collect() -> None:
        nonlocal calls
        calls += 1
        if calls >= 2:
            second.set()
        raise OSError("proc is gone")

    monkeypatch.setattr(m, "collect", broken_collect)
    with m.start(interval=0.01):
        assert second.wait(10)
    assert m.stats().tick_errors >= 2


def test_interval_is_validated(monitor: PerformanceMonitor) -> None:
    with pytest.raises(ConfigError) as info:
        monitor.start(interval=0)
    assert info.value.parameter == "interval"
