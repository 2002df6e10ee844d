"""Collectors copy state kept elsewhere into metrics at the start of every tick."""

from __future__ import annotations

import pytest

from sentia_core.errors import ConfigError
from sentia_core.monitor import PerformanceMonitor
from sentia_core.testing import ManualClock


def test_collectors_run_before_evaluation_and_can_be_removed() -> None:
    monitor = PerformanceMonitor(clock=ManualClock(), system_metrics=False)
    seen: list[int] = []

    def copy_stats() -> None:
        seen.append(len(seen))
        monitor.gauge("component_items").set(len(seen) * 10)

    remove = monitor.add_collector(copy_stats)
    monitor.tick()
    monitor.tick()
    assert seen == [0, 1]
    assert "component_items 20" in monitor.prometheus_text()
    remove()
    monitor.tick()
    assert seen == [0, 1]
    monitor.close()


def test_a_failing_collector_does_not_stop_the_tick() -> None:
    monitor = PerformanceMonitor(clock=ManualClock(), system_metrics=False)

    def broken() -> None:
        raise RuntimeError("component gone")

    ran = []
    monitor.add_collector(broken)
    monitor.add_collector(lambda: ran.append(True))
    monitor.tick()
    assert ran == [True]
    assert monitor.stats().tick_errors == 1
    with pytest.raises(ConfigError):
        monitor.add_collector(42)  # type: ignore[arg-type]
    monitor.close()
