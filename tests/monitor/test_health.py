"""Health checks: statuses, response time, last error, time-weighted uptime, timeouts."""

from __future__ import annotations

import asyncio
import threading

import pytest

from sentia_core.errors import ConfigError
from sentia_core.monitor import HealthStatus, PerformanceMonitor
from sentia_core.testing import ManualClock


def test_no_checks_is_healthy(monitor: PerformanceMonitor) -> None:
    report = monitor.health()
    assert report.status is HealthStatus.HEALTHY and report.healthy
    assert report.components == {}


def test_check_results_are_interpreted(monitor: PerformanceMonitor) -> None:
    outcomes = {
        "none": None,
        "true": True,
        "false": False,
        "degraded": "degraded",
        "enum": HealthStatus.UNHEALTHY,
        "odd": "kaputt",
        "object": {"pool": 3},
    }
    for name, result in outcomes.items():
        monitor.add_health_check(name, lambda r=result: r, critical=False, timeout=None)
    rows = monitor.health().components
    assert {n: r.status.value for n, r in rows.items()} == {
        "none": "healthy",
        "true": "healthy",
        "false": "unhealthy",
        "degraded": "degraded",
        "enum": "unhealthy",
        "odd": "unhealthy",
        "object": "healthy",
    }
    assert rows["odd"].last_error == "check returned 'kaputt'"


def test_overall_status_depends_on_criticality(monitor: PerformanceMonitor) -> None:
    state = {"cache": True, "db": True}
    monitor.add_health_check("cache", lambda: state["cache"], critical=False)
    monitor.add_health_check("db", lambda: state["db"], critical=True)
    assert monitor.health().status is HealthStatus.HEALTHY
    state["cache"] = False
    assert monitor.health().status is HealthStatus.DEGRADED
    state["db"] = False
    report = monitor.health()
    assert report.status is HealthStatus.UNHEALTHY and not report.healthy


def test_exceptions_are_last_errors_and_survive_recovery(
    monitor: PerformanceMonitor, clock: ManualClock
) -> None:
    up = {"ok": False}

    def db() -> None:
        clock.advance(0.15)  # the check "takes" 150 ms
        if not up["ok"]:
            raise ConnectionRefusedError("connection refused")

    monitor.add_health_check("db", db)
    row = monitor.health().components["db"]
    assert row.status is HealthStatus.UNHEALTHY
    assert row.last_error == "ConnectionRefusedError: connection refused"
    assert row.response_time == pytest.approx(0.15)
    assert row.consecutive_failures == 1
    up["ok"] = True
    row = monitor.health().components["db"]
    assert row.status is HealthStatus.HEALTHY
    assert row.last_error == "ConnectionRefusedError: connection refused"
    assert row.consecutive_failures == 0
    assert row.checked_at == clock.time()


def test_uptime_is_time_weighted(monitor: PerformanceMonitor, clock: ManualClock) -> None:
    up = {"ok": True}
    monitor.add_health_check("shopify", lambda: up["ok"], timeout=None)
    monitor.health()
    assert monitor.health(refresh=False).components["shopify"].uptime == 1.0
    clock.advance(90)  # up for 90 s
    up["ok"] = False
    monitor.health()
    clock.advance(10)  # down for 10 s
    up["ok"] = True
    row = monitor.health().components["shopify"]
    assert row.uptime == pytest.approx(0.9)
    d = monitor.health(refresh=False).to_dict()["components"]["shopify"]
    assert set(d) >= {"status", "response_time_ms", "uptime", "last_error"}


def test_a_hung_check_times_out_instead_of_hanging(monitor: PerformanceMonitor) -> None:
    release = threading.Event()
    monitor.add_health_check("hung", lambda: release.wait(30), timeout=0.05)
    try:
        row = monitor.health().components["hung"]
        assert row.status is HealthStatus.UNHEALTHY
        assert row.last_error is not None and "no answer within 0.05s" in row.last_error
    finally:
        release.set()


def test_coroutine_checks_run_to_completion(monitor: PerformanceMonitor) -> None:
    async def ping() -> str:
        await asyncio.sleep(0)
        return "degraded"

    monitor.add_health_check("redis", ping)
    assert monitor.health().components["redis"].status is HealthStatus.DEGRADED


async def test_ahealth_does_not_block_the_loop(monitor: PerformanceMonitor) -> None:
    monitor.add_health_check("x", lambda: True)
    report = await monitor.ahealth()
    assert report.status is HealthStatus.HEALTHY


def test_ticks_run_checks(monitor: PerformanceMonitor) -> None:
    calls: list[int] = []
    monitor.add_health_check("x", lambda: calls.append(1))
    monitor.tick()
    monitor.tick()
    assert len(calls) == 2


def test_checks_are_validated_and_removable(monitor: PerformanceMonitor) -> None:
    with pytest.raises(ConfigError) as info:
        monitor.add_health_check("x", "not callable")  # type: ignore[arg-type]
    assert info.value.parameter == "fn"
    with pytest.raises(ConfigError):
        monitor.add_health_check("", lambda: True)
    with pytest.raises(ConfigError):
        monitor.add_health_check("x", lambda: True, timeout=-1)
    monitor.add_health_check("x", lambda: True)
    assert monitor.remove_health_check("x") is True
    assert monitor.remove_health_check("x") is False
