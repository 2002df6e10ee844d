"""Counters, gauges and histograms: values, labels, the cardinality cap, names, windows."""

from __future__ import annotations

import math
import threading

import pytest

from sentia_core.errors import MetricError
from sentia_core.monitor import OVERFLOW_LABEL_VALUE, MetricKind, PerformanceMonitor
from sentia_core.testing import ManualClock


def test_counter_counts_and_refuses_to_go_down(monitor: PerformanceMonitor) -> None:
    c = monitor.counter("jobs_total")
    c.inc()
    c.inc(2.5)
    assert c.value == 3.5
    for bad in (-1, math.nan, math.inf):
        with pytest.raises(MetricError, match="cannot add"):
            c.inc(bad)
    assert c.value == 3.5


def test_counter_flushes_large_batches_exactly(monitor: PerformanceMonitor) -> None:
    c = monitor.counter("events_total")
    for _ in range(10_000):
        c.inc()
    assert c.value == 10_000


def test_gauge_sets_moves_and_reads_callbacks(monitor: PerformanceMonitor) -> None:
    g = monitor.gauge("queue_depth")
    g.set(10)
    g.inc(5)
    g.dec(2)
    assert g.value == 13.0
    depth = [4]
    g.set_function(lambda: depth[0])
    assert g.value == 4.0
    depth[0] = 9
    assert g.value == 9.0
    g.set_function(lambda: 1 / 0)
    assert math.isnan(g.value)
    g.set_function(None)
    assert g.value == 13.0
    with pytest.raises(TypeError):
        g.set("high")  # type: ignore[arg-type]


def test_the_same_name_and_labels_return_the_same_series(monitor: PerformanceMonitor) -> None:
    a = monitor.counter("http_requests_total", method="GET", status=200)
    b = monitor.counter("http_requests_total", {"status": "200", "method": "GET"})
    assert a is b
    assert a.labels == {"method": "GET", "status": "200"}
    assert monitor.counter("http_requests_total", method="POST", status=200) is not a


def test_label_names_are_fixed_by_the_first_use(monitor: PerformanceMonitor) -> None:
    monitor.counter("http_requests_total", method="GET")
    with pytest.raises(MetricError, match="has labels"):
        monitor.counter("http_requests_total", route="/")
    with pytest.raises(MetricError, match="has labels"):
        monitor.counter("http_requests_total")


def test_a_name_keeps_its_kind(monitor: PerformanceMonitor) -> None:
    monitor.counter("jobs_total")
    with pytest.raises(MetricError, match="is a counter, not a gauge"):
        monitor.gauge("jobs_total")


@pytest.mark.parametrize("name", ["", "9lives", "http-requests", "a b", "é", None, "x{y}"])
def test_invalid_metric_names_are_refused_with_a_clear_error(
    monitor: PerformanceMonitor, name: str
) -> None:
    with pytest.raises(MetricError, match="invalid metric name"):
        monitor.counter(name)


@pytest.mark.parametrize("label", ["9x", "a-b", "__reserved"])
def test_invalid_label_names_are_refused(monitor: PerformanceMonitor, label: str) -> None:
    with pytest.raises(MetricError, match="label name"):
        monitor.gauge("temperature_celsius", {label: "x"})


@pytest.mark.parametrize("label", ["quantile", "le"])
def test_histograms_reserve_quantile_and_le(monitor: PerformanceMonitor, label: str) -> None:
    with pytest.raises(MetricError, match="reserved"):
        monitor.histogram("latency_seconds", {label: "x"})


def test_exposed_names_may_not_collide(monitor: PerformanceMonitor) -> None:
    monitor.counter("jobs")  # exposed as jobs_total
    with pytest.raises(MetricError, match="already writes"):
        monitor.gauge("jobs_total")
    monitor.histogram("latency_seconds")
    with pytest.raises(MetricError, match="already writes"):
        monitor.gauge("latency_seconds_count")


def test_the_cardinality_cap_routes_new_label_sets_to_one_overflow_series(
    clock: ManualClock,
) -> None:
    m = PerformanceMonitor(clock=clock, system_metrics=False, max_series=3)
    for user in range(10):
        m.counter("logins_total", user=str(user)).inc()
    fam = m.metric("logins_total")
    assert fam is not None
    series = fam.all_series()
    assert len(series) == 4  # 3 kept + the overflow series
    overflow = series[-1]
    assert overflow.labels == {"user": OVERFLOW_LABEL_VALUE}
    assert overflow.value == 7
    assert fam.overflowed == 7
    assert m.stats().overflowed == 7
    # known label sets still reach their own series
    m.counter("logins_total", user="0").inc()
    assert series[0].value == 2


def test_a_metric_can_have_its_own_cap(monitor: PerformanceMonitor) -> None:
    fam = monitor._registry.family("tiny", MetricKind.GAUGE, ("k",), None, max_series=1)
    fam.series({"k": "a"})
    assert fam.series({"k": "b"}).labels == {"k": OVERFLOW_LABEL_VALUE}


def test_help_text_is_kept(monitor: PerformanceMonitor) -> None:
    monitor.gauge("temperature_celsius", help="Room temperature.")
    fam = monitor.metric("temperature_celsius")
    assert fam is not None and fam.help == "Room temperature."
    monitor.counter("unnamed_total")
    other = monitor.metric("unnamed_total")
    assert other is not None and other.help  # a default help text keeps promtool happy


def test_histogram_statistics_over_all_time(monitor: PerformanceMonitor) -> None:
    h = monitor.histogram("latency_seconds")
    for v in (0.1, 0.2, 0.3, 0.4, 5.0):
        h.observe(v)
    assert h.count == 5
    assert h.sum == pytest.approx(6.0)
    assert (h.min, h.max) == (0.1, 5.0)
    assert h.mean == pytest.approx(1.2)
    p50 = h.quantile(0.5)
    assert p50 is not None and abs(p50 - 0.3) <= 0.003
    snap = h.snapshot(quantiles=(0.5, 1.0))
    assert snap.count == 5 and snap.quantiles[1.0] == 5.0 and snap.window is None


def test_histogram_skips_nan_and_infinity_and_counts_them(monitor: PerformanceMonitor) -> None:
    h = monitor.histogram("latency_seconds")
    h.observe(1.0)
    h.observe(math.nan)
    h.observe(math.inf)
    assert h.count == 1
    assert h.skipped == 2
    with pytest.raises(TypeError):
        h.observe("slow")  # type: ignore[arg-type]
    assert h.count == 1


def test_histogram_per_metric_accuracy(monitor: PerformanceMonitor) -> None:
    h = monitor.histogram("coarse_seconds", relative_accuracy=0.05)
    assert h.sketch().relative_accuracy == 0.05
    with pytest.raises(MetricError, match="already has relative_accuracy"):
        monitor.histogram("coarse_seconds", relative_accuracy=0.01)


def test_windows_only_see_recent_observations(clock: ManualClock) -> None:
    m = PerformanceMonitor(clock=clock, system_metrics=False, windows=(60, 300), window_slot=10)
    h = m.histogram("latency_seconds")
    for _ in range(100):
        h.observe(1.0)  # old and fast... well, slow: 1 s
    clock.advance(120)
    for _ in range(10):
        h.observe(0.01)
    one_minute = h.snapshot(60)
    assert one_minute.count == 10
    assert one_minute.max == 0.01
    five_minutes = h.snapshot(300)
    assert five_minutes.count == 110
    assert h.count == 110
    clock.advance(400)
    assert h.snapshot(300).count == 0
    assert h.quantile(0.5, window=60) is None
    assert h.count == 110  # all-time keeps everything


def test_a_window_covers_between_w_and_w_plus_one_slot(clock: ManualClock) -> None:
    m = PerformanceMonitor(clock=clock, system_metrics=False, windows=(60,), window_slot=10)
    h = m.histogram("latency_seconds")
    h.observe(1.0)
    clock.advance(59.9)
    assert h.snapshot(60).count == 1
    clock.advance(20.2)  # 80.1 s later: past w + slot
    assert h.snapshot(60).count == 0


def test_pending_observations_land_in_the_slot_they_were_made_in(clock: ManualClock) -> None:
    m = PerformanceMonitor(clock=clock, system_metrics=False, windows=(60,), window_slot=10)
    h = m.histogram("latency_seconds")
    for _ in range(5):  # fewer than a batch: still queued when the clock moves on
        h.observe(2.0)
    clock.advance(65)
    h.observe(0.5)  # crossing the slot boundary files the queued values first
    clock.advance(10)
    snap = h.snapshot(60)
    assert snap.count == 1 and snap.max == 0.5


def test_windows_longer_than_kept_are_refused(clock: ManualClock) -> None:
    m = PerformanceMonitor(clock=clock, system_metrics=False, windows=(60,))
    h = m.histogram("latency_seconds")
    with pytest.raises(MetricError, match="longer than"):
        h.snapshot(3600)
    m2 = PerformanceMonitor(clock=clock, system_metrics=False, windows=())
    h2 = m2.histogram("latency_seconds")
    h2.observe(1.0)
    assert h2.count == 1
    with pytest.raises(MetricError, match="keeps no windows"):
        h2.snapshot(60)


def test_concurrent_writers_lose_nothing(monitor: PerformanceMonitor) -> None:
    c = monitor.counter("hits_total")
    h = monitor.histogram("latency_seconds")
    threads, per_thread = 8, 5_000
    barrier = threading.Barrier(threads + 1)
    stop_reading = threading.Event()

    def write() -> None:
        barrier.wait()
        for i in range(per_thread):
            c.inc()
            h.observe(0.001 * (1 + i % 100))

    def read() -> None:  # readers drain concurrently with the writers
        while not stop_reading.is_set():
            _ = c.value, h.count

    workers = [threading.Thread(target=write) for _ in range(threads)]
    reader = threading.Thread(target=read)
    for t in [*workers, reader]:
        t.start()
    barrier.wait()
    for t in workers:
        t.join()
    stop_reading.set()
    reader.join()
    assert c.value == threads * per_thread
    assert h.count == threads * per_thread
    assert h.sum == pytest.approx(threads * sum(0.001 * (1 + i % 100) for i in range(per_thread)))


def test_concurrent_series_creation_yields_one_series_per_label_set(
    monitor: PerformanceMonitor,
) -> None:
    barrier = threading.Barrier(8)
    got: list[object] = []

    def create() -> None:
        barrier.wait()
        got.append(monitor.counter("race_total", k="same"))

    ts = [threading.Thread(target=create) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert all(s is got[0] for s in got)


def test_window_memory_is_a_bounded_ring_of_compact_slots(clock: ManualClock) -> None:
    m = PerformanceMonitor(clock=clock, system_metrics=False, windows=(60, 300), window_slot=10)
    h = m.histogram("latency_seconds")
    for i in range(500):  # 5000 s of traffic, one observation per 10 s slot
        h.observe(0.001 * (1 + i))
        clock.advance(10)
    assert len(h._ring) <= 300 / 10 + 2
    assert h.count == 500  # all time keeps everything
    assert h.snapshot(300).count == 30
    assert h.snapshot(60).count == 6
    assert h.max == pytest.approx(0.5)
