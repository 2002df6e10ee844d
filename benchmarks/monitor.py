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
7. the dashboard: building ``/dashboard.json`` (document + JSON encoding) for
   7 days of history of 50 metric series (target: at most 50 ms), next to the
   1 h and 24 h windows and to ``export_json(history=True)`` of the same
   history; and the page's transfer size (HTML, scripts, styles, one JSON
   document; raw and gzip as served).
"""

from __future__ import annotations

import gc
import gzip
import itertools
import json
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
from sentia_core.monitor._dashboard import STATIC_FILES, page_html, static_file
from sentia_core.testing import ManualClock


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


def dashboard_monitor(days: float = 7.0) -> tuple[PerformanceMonitor, int]:
    """A monitor with ``days`` of 10-minute history of 50 charted metric series."""
    clock = ManualClock(wall_start=1_750_000_000.0)
    monitor = PerformanceMonitor(clock=clock, system_metrics=False)
    rng = random.Random(3)
    routes = [f"/api/v1/r{i}/{{id}}" for i in range(8)]
    series = 0
    for r in routes:  # 8 x (requests, errors, latency histogram) = 24
        monitor.counter("app_requests_total", method="GET", route=r)
        monitor.counter("app_request_errors_total", method="GET", route=r)
        monitor.histogram("app_request_seconds", method="GET", route=r)
        series += 3
    for c in ("default", "catalog", "users", "sessions"):  # 4 x 3 = 12
        for name in ("cache_hits_total", "cache_misses_total"):
            monitor.counter(name, cache=c)
        monitor.counter("cache_evictions_total", cache=c, reason="size")
        series += 3
    for b in ("payments", "partner", "search"):  # 3 + 3 = 6
        monitor.gauge("breaker_state", breaker=b)
        monitor.counter("ratelimit_denied_total", tier=b)
        series += 2
    for svc in ("inventory", "pricing"):  # 2 x 4 = 8
        for name in ("registry_instances", "registry_healthy_instances",
                     "registry_ejected_instances", "registry_outstanding"):  # fmt: skip
            monitor.gauge(name, service=svc)
            series += 1
    step = 600.0
    for _ in range(int(days * 86400 / step)):
        for fam in monitor.families():
            for s in fam.all_series():
                if fam.kind.value == "counter":
                    s.inc(rng.randint(0, 500))
                elif fam.kind.value == "gauge":
                    s.set(rng.randint(0, 3))
                else:
                    for _ in range(20):
                        s.observe(rng.lognormvariate(-3.0, 1.0))
        monitor._record_history()  # one history sample of every series, as a tick takes
        clock.advance(step)
    return monitor, series


def section_dashboard(suite: Suite) -> None:
    monitor, series = dashboard_monitor(7.0)

    def build(window: str) -> Callable[[], bytes]:
        def run() -> bytes:
            doc = monitor.dashboard(window)
            return json.dumps(doc, allow_nan=False, separators=(",", ":")).encode()

        return run

    since = monitor.dashboard("7d")["since"]
    med = suite.compare(
        f"dashboard JSON, {series} metric series ({len(monitor.history_keys())} history keys)",
        {
            "sentia /dashboard.json 7d (1008 points per series)": build("7d"),
            "sentia /dashboard.json 24h": build("24h"),
            "sentia /dashboard.json 1h": build("1h"),
            "sentia export_json(history=True) 7d (same history)": lambda: monitor.export_json(
                history=True, since=since, resolution=600.0
            ),
        },
        number=3,
        rounds=9,
    )
    seven = med["sentia /dashboard.json 7d (1008 points per series)"]
    suite.ratio("dashboard 7d / 50 ms target", seven, 50e6, target=1.0)
    suite.note("dashboard 7d build ms", round(seven / 1e6, 2))
    doc_bytes = build("7d")()
    files = {"page": page_html(), "dashboard.json (7d)": doc_bytes}
    files.update({name: static_file(name) or b"" for name in STATIC_FILES})
    sizes = {name: {"raw": len(body), "gzip": len(gzip.compress(body, compresslevel=5))
                    if len(body) > 1024 else len(body)}
             for name, body in files.items()}  # fmt: skip
    page_only = [n for n in sizes if n != "dashboard.json (7d)" and n != "favicon.svg"]
    suite.note(
        "dashboard transfer bytes",
        {
            **sizes,
            "first load (page + scripts + styles, gzip)": sum(sizes[n]["gzip"] for n in page_only),
            "first load + one 7d document (gzip)": sum(sizes[n]["gzip"] for n in page_only)
            + sizes["dashboard.json (7d)"]["gzip"],
        },
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
    section_dashboard(suite)
    suite.finish(args)


if __name__ == "__main__":
    main()
