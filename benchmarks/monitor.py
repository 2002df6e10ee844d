"""PerformanceMonitor side by side with prometheus_client and ddsketch.

Run: ``python benchmarks/monitor.py`` (``--quick`` for a smoke run, ``--json PATH``).

Sections:

1. ``counter.inc()`` against prometheus_client's ``Counter.inc``.
2. ``histogram.observe()`` of lognormal latencies against prometheus_client's
   ``Histogram.observe`` (fixed buckets, no quantiles) and ``Summary.observe``
   (count and sum only), and ddsketch's ``DDSketch.add``; target: at most
   0.5x prometheus_client's ``Histogram.observe`` while keeping quantiles
   (all-time and 1/5-minute windows).
3. the labelled path (label lookup on every call) and the ``timed()``
   decorator against prometheus_client's ``.labels(...).observe`` and
   ``@Histogram.time()``.
4. quantile relative error against exact quantiles of 10^6 lognormal values,
   sentia and ddsketch (both promise 1 %).
5. memory of one histogram after 10^6 observations (tracemalloc), sentia
   (with and without windows), ddsketch, prometheus_client.
6. what one system sample costs (psutil), and rendering ``/metrics``.
"""

from __future__ import annotations

import gc
import itertools
import math
import random
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import prometheus_client
from _harness import Suite, parse_args
from ddsketch import DDSketch
from prometheus_client import CollectorRegistry
from prometheus_client.process_collector import ProcessCollector

from sentia_core.monitor import PerformanceMonitor, SystemCollector


def lognormal(n: int, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(-3.0, 1.0) for _ in range(n)]


def cycling(values: list[float]) -> Callable[[], float]:
    return itertools.cycle(values).__next__


def section_counters(suite: Suite) -> None:
    reg = CollectorRegistry()
    peer = prometheus_client.Counter("jobs", "Jobs.", registry=reg)
    mine = PerformanceMonitor(system_metrics=False).counter("jobs_total")
    med = suite.compare(
        "counter.inc()",
        {
            "sentia Counter.inc": mine.inc,
            "prometheus_client Counter.inc": peer.inc,
        },
        number=100_000,
    )
    suite.ratio(
        "sentia / prometheus_client Counter.inc",
        med["sentia Counter.inc"],
        med["prometheus_client Counter.inc"],
        target=1.0,
    )


def section_observe(suite: Suite) -> None:
    values = lognormal(4096)
    reg = CollectorRegistry()
    p_hist = prometheus_client.Histogram("lat_seconds", "Latency.", registry=reg)
    p_summary = prometheus_client.Summary("sum_seconds", "Latency.", registry=reg)
    sketch = DDSketch(relative_accuracy=0.01)
    windowed = PerformanceMonitor(system_metrics=False).histogram("lat_seconds")
    plain = PerformanceMonitor(system_metrics=False, windows=()).histogram("lat_seconds")
    n1, n2, n3, n4, n5 = (cycling(values) for _ in range(5))
    o1, o2, o3, o4, o5 = (
        windowed.observe,
        plain.observe,
        p_hist.observe,
        p_summary.observe,
        sketch.add,
    )
    cases: dict[str, Callable[[], object]] = {
        "sentia Histogram.observe (windows 60/300 s)": lambda: o1(n1()),
        "sentia Histogram.observe (all-time only)": lambda: o2(n2()),
        "prometheus_client Histogram.observe": lambda: o3(n3()),
        "prometheus_client Summary.observe": lambda: o4(n4()),
        "ddsketch DDSketch.add": lambda: o5(n5()),
    }
    med = suite.compare("histogram.observe() of lognormal seconds", cases, number=100_000)
    mine = med["sentia Histogram.observe (windows 60/300 s)"]
    suite.ratio(
        "sentia / prometheus_client Histogram.observe",
        mine,
        med["prometheus_client Histogram.observe"],
        target=0.5,
    )
    suite.ratio("sentia / ddsketch DDSketch.add", mine, med["ddsketch DDSketch.add"], target=1.0)
    suite.ratio(
        "sentia / prometheus_client Summary.observe",
        mine,
        med["prometheus_client Summary.observe"],
    )
    suite.note(
        "observe: windowed quantiles drained",
        f"{windowed.count} observations, p99 {windowed.quantile(0.99):.4f} s",
    )


def section_labelled(suite: Suite) -> None:
    reg = CollectorRegistry()
    p_hist = prometheus_client.Histogram("req_seconds", "Latency.", ["route"], registry=reg)
    monitor = PerformanceMonitor(system_metrics=False)
    monitor.histogram("req_seconds", route="/api").observe(0.01)
    p_hist.labels(route="/api").observe(0.01)

    @monitor.timed("handler_seconds")
    def mine() -> int:
        return 1

    p_handler = prometheus_client.Histogram("handler_seconds", "Latency.", registry=reg)

    @p_handler.time()
    def peer() -> int:
        return 1

    med = suite.compare(
        "labelled observe (label lookup each call)",
        {
            "sentia monitor.histogram(name, route=).observe": lambda: monitor.histogram(
                "req_seconds", route="/api"
            ).observe(0.01),
            "prometheus_client .labels(route=).observe": lambda: p_hist.labels(
                route="/api"
            ).observe(0.01),
        },
        number=50_000,
    )
    suite.ratio(
        "sentia / prometheus_client labelled observe",
        med["sentia monitor.histogram(name, route=).observe"],
        med["prometheus_client .labels(route=).observe"],
        target=1.0,
    )
    med = suite.compare(
        "timed() decorated call",
        {"sentia @monitor.timed": mine, "prometheus_client @Histogram.time()": peer},
        number=50_000,
    )
    suite.ratio(
        "sentia / prometheus_client timed call",
        med["sentia @monitor.timed"],
        med["prometheus_client @Histogram.time()"],
        target=1.0,
    )


def exact(sorted_values: list[float], q: float) -> float:
    return sorted_values[math.floor(q * (len(sorted_values) - 1))]


def section_accuracy(suite: Suite, n: int) -> None:
    values = lognormal(n, seed=42)
    ordered = sorted(values)
    hist = PerformanceMonitor(system_metrics=False).histogram("lat_seconds")
    for v in values:
        hist.observe(v)
    sketch = DDSketch(relative_accuracy=0.01)
    for v in values:
        sketch.add(v)
    worst_mine = worst_peer = 0.0
    for q in (0.5, 0.9, 0.95, 0.99, 0.999):
        truth = exact(ordered, q)
        mine = hist.quantile(q)
        peer = sketch.get_quantile_value(q)
        assert mine is not None
        assert peer is not None
        e_mine = abs(mine - truth) / truth
        e_peer = abs(peer - truth) / truth
        worst_mine, worst_peer = max(worst_mine, e_mine), max(worst_peer, e_peer)
        suite.note(
            f"p{q * 100:g} relative error (n={n})",
            f"sentia {e_mine * 100:.3f} %, ddsketch {e_peer * 100:.3f} % (exact {truth:.5f} s)",
        )
    suite.note(
        "worst quantile relative error",
        f"sentia {worst_mine * 100:.3f} %, ddsketch {worst_peer * 100:.3f} % (promised: 1 %)",
    )


def measure_memory(build: Callable[[], Any], feed: Callable[[Any, list[float]], None],
                   values: list[float]) -> int:  # fmt: skip
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    obj = build()
    feed(obj, values)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del obj
    return after - before


def section_memory(suite: Suite, n: int) -> None:
    values = lognormal(n, seed=3)

    def feed_observe(h: Any, vs: list[float]) -> None:
        obs = h.observe
        for v in vs:
            obs(v)
        _ = h.count  # drain what is pending

    def feed_add(s: Any, vs: list[float]) -> None:
        add = s.add
        for v in vs:
            add(v)

    figures = {
        "sentia Histogram (windows 60/300 s)": measure_memory(
            lambda: PerformanceMonitor(system_metrics=False).histogram("m_seconds"),
            feed_observe,
            values,
        ),
        "sentia Histogram (all-time only)": measure_memory(
            lambda: PerformanceMonitor(system_metrics=False, windows=()).histogram("m_seconds"),
            feed_observe,
            values,
        ),
        "ddsketch DDSketch": measure_memory(lambda: DDSketch(0.01), feed_add, values),
        "prometheus_client Histogram": measure_memory(
            lambda: prometheus_client.Histogram("m_seconds", "x", registry=CollectorRegistry()),
            feed_observe_prom,
            values,
        ),
    }
    for name, size in figures.items():
        suite.note(f"memory after {n} observations: {name}", f"{size / 1024:.1f} KiB")


def feed_observe_prom(h: Any, vs: list[float]) -> None:
    obs = h.observe
    for v in vs:
        obs(v)


def section_system(suite: Suite) -> None:
    collector = SystemCollector()
    monitor = PerformanceMonitor(system_metrics=True)
    monitor.collect()
    proc = ProcessCollector(registry=None)
    med = suite.compare(
        "one system sample (psutil)",
        {
            "sentia SystemCollector.collect (machine + process)": collector.collect,
            "sentia monitor.collect (+ updating 26 metrics)": monitor.collect,
            "prometheus_client ProcessCollector.collect (process only)": lambda: list(
                proc.collect()
            ),
        },
        number=500,
        rounds=9,
    )
    suite.note(
        "system sample cost",
        f"{med['sentia monitor.collect (+ updating 26 metrics)'] / 1000:.0f} us per sample "
        "(at the default 10 s interval: "
        f"{med['sentia monitor.collect (+ updating 26 metrics)'] / 1e8:.4f} % of one core)",
    )


def section_render(suite: Suite) -> None:
    reg = CollectorRegistry()
    monitor = PerformanceMonitor(system_metrics=False)
    p_counter = prometheus_client.Counter("req", "Requests.", ["route", "code"], registry=reg)
    p_hist = prometheus_client.Histogram("lat_seconds", "Latency.", ["route"], registry=reg)
    values = lognormal(1000)
    for r in range(20):
        for code in ("200", "500"):
            monitor.counter("req_total", route=f"/r{r}", code=code).inc(r)
            p_counter.labels(route=f"/r{r}", code=code).inc(r)
        mh = monitor.histogram("lat_seconds", route=f"/r{r}")
        ph = p_hist.labels(route=f"/r{r}")
        for v in values:
            mh.observe(v)
            ph.observe(v)

    def summaries() -> str:
        return monitor.prometheus_text()

    def buckets() -> str:
        return monitor.prometheus_text(histograms="buckets")

    def peer() -> bytes:
        return prometheus_client.generate_latest(reg)

    med = suite.compare(
        "render /metrics (40 counters + 20 histograms)",
        {
            "sentia prometheus_text (summaries: 4 windowed quantiles each)": summaries,
            "sentia prometheus_text (buckets)": buckets,
            "prometheus_client generate_latest (buckets)": peer,
        },
        number=200,
        rounds=9,
    )
    suite.ratio(
        "sentia buckets / prometheus_client generate_latest",
        med["sentia prometheus_text (buckets)"],
        med["prometheus_client generate_latest (buckets)"],
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(__doc__ or "", argv)
    suite = Suite.from_args("monitor", args)
    n = 30_000 if args.quick else 1_000_000
    section_counters(suite)
    section_observe(suite)
    section_labelled(suite)
    section_accuracy(suite, n)
    section_memory(suite, n)
    section_system(suite)
    section_render(suite)
    suite.finish(args)


if __name__ == "__main__":
    main()
