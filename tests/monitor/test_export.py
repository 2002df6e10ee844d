"""Exposition: Prometheus text checked by promtool and prometheus_client's parser; JSON; CSV."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sentia_core.monitor import AlertRule, PerformanceMonitor
from sentia_core.testing import ManualClock
from tests._servers import unavailable

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def require_promtool() -> None:
    if not os.path.exists(PROMTOOL):
        unavailable("promtool (Debian package prometheus)", "SENTIA_REQUIRE_PROMTOOL")


def populated(clock: ManualClock, **kw: object) -> PerformanceMonitor:
    m = PerformanceMonitor(clock=clock, system_metrics=True, **kw)  # type: ignore[arg-type]
    m.counter("http_requests_total", help="Requests.", method="GET", code="200").inc(41)
    m.counter("http_requests_total", method="POST", code="500").inc()
    m.counter("jobs", help="Jobs done.").inc(3)  # exposed as jobs_total
    m.gauge("queue_depth", help='Tricky "help"\nwith a newline and a \\ backslash.').set(7)
    m.gauge("temperature_celsius", room='a "quoted"\nroom \\ name').set(-3.5)
    h = m.histogram("http_request_seconds", help="Request latency.", route="/api")
    for i in range(1, 1001):
        h.observe(i / 1000)
    m.histogram("empty_seconds", help="Never observed.")
    m.gauge("weird_value").set(math.inf)
    m.add_rule(AlertRule("q", "queue_depth", warning=5))
    m.tick()
    return m


def promtool(text: str) -> subprocess.CompletedProcess[str]:
    require_promtool()
    return subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("histograms", ["summary", "buckets"])
def test_promtool_accepts_the_exposition(clock: ManualClock, histograms: str) -> None:
    text = populated(clock).prometheus_text(histograms=histograms)
    result = promtool(text)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_would_catch_a_broken_exposition() -> None:
    result = promtool("# TYPE x counter\nx{a=unquoted} 1\n")
    assert result.returncode != 0


def test_prometheus_client_parses_every_sample(clock: ManualClock) -> None:
    m = populated(clock)
    families = {f.name: f for f in text_string_to_metric_families(m.prometheus_text())}
    assert families["http_requests"].type == "counter"
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for s in families["http_requests"].samples
    }
    assert samples[("http_requests_total", (("code", "200"), ("method", "GET")))] == 41
    assert families["jobs"].samples[0].value == 3
    assert (
        families["queue_depth"].documentation == 'Tricky "help"\nwith a newline and a \\ backslash.'
    )
    temp = families["temperature_celsius"].samples[0]
    assert temp.labels == {"room": 'a "quoted"\nroom \\ name'} and temp.value == -3.5
    summary = families["http_request_seconds"]
    assert summary.type == "summary"
    by_name = {(s.name, s.labels.get("quantile")): s.value for s in summary.samples}
    assert by_name[("http_request_seconds_count", None)] == 1000
    assert by_name[("http_request_seconds_sum", None)] == pytest.approx(500.5)
    assert by_name[("http_request_seconds", "0.99")] == pytest.approx(0.99, rel=0.01)
    assert by_name[("http_request_seconds", "0.5")] == pytest.approx(0.5, rel=0.01)
    empty = {(s.name, s.labels.get("quantile")): s.value for s in families["empty_seconds"].samples}
    assert math.isnan(empty[("empty_seconds", "0.5")]) and empty[("empty_seconds_count", None)] == 0
    assert families["weird_value"].samples[0].value == math.inf
    assert "system_cpu_percent" in families and "process_resident_memory_bytes" in families


def test_bucket_exposition_is_cumulative_and_matches_counts(clock: ManualClock) -> None:
    m = populated(clock, buckets=(0.1, 0.5, 1.0))
    families = {
        f.name: f for f in text_string_to_metric_families(m.prometheus_text(histograms="buckets"))
    }
    hist = families["http_request_seconds"]
    assert hist.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in hist.samples if s.name.endswith("_bucket")}
    assert buckets["+Inf"] == 1000
    assert buckets["0.1"] == pytest.approx(100, abs=2)  # within a bucket of the boundary
    assert buckets["0.5"] == pytest.approx(500, abs=6)
    assert buckets["0.1"] <= buckets["0.5"] <= buckets["1.0"] <= buckets["+Inf"]


def test_summary_quantiles_follow_the_summary_window(clock: ManualClock) -> None:
    m = PerformanceMonitor(clock=clock, system_metrics=False, windows=(60,))
    h = m.histogram("lat_seconds")
    h.observe(10.0)
    clock.advance(120)
    h.observe(0.1)
    families = {f.name: f for f in text_string_to_metric_families(m.prometheus_text())}
    samples = {(s.name, s.labels.get("quantile")): s.value for s in families["lat_seconds"].samples}
    assert samples[("lat_seconds", "0.99")] == 0.1  # the old 10 s is out of the window
    assert samples[("lat_seconds_count", None)] == 2  # count and sum are all-time


def test_json_export_is_strict_json(clock: ManualClock) -> None:
    m = populated(clock)
    doc = json.loads(m.export_json(indent=2))
    names = {f["name"]: f for f in doc["metrics"]}
    series = names["http_request_seconds"]["series"][0]
    assert series["labels"] == {"route": "/api"}
    assert series["count"] == 1000 and series["quantiles"]["0.99"] == pytest.approx(0.99, rel=0.01)
    assert set(series["windows"]) == {"60.0", "300.0"}
    assert names["weird_value"]["series"][0]["value"] is None  # inf is not JSON
    assert doc["alerts"][0]["rule"] == "q" and doc["alerts"][0]["state"] == "firing"
    assert "NaN" not in m.export_json() and "Infinity" not in m.export_json()


def test_json_export_with_history(clock: ManualClock) -> None:
    m = populated(clock)
    clock.advance(10)
    m.tick()
    doc = json.loads(m.export_json(history=True))
    rows = {(r["name"], r["stat"]): r for r in doc["history"]}
    points = rows[("queue_depth", "value")]["points"]
    assert [p[1] for p in points] == [7.0, 7.0]
    assert doc["history_columns"][:2] == ["time", "value"]


def test_csv_export_of_current_values(clock: ManualClock) -> None:
    m = populated(clock)
    rows = list(csv.DictReader(io.StringIO(m.export_csv())))
    q = [r for r in rows if r["name"] == "queue_depth"]
    assert q == [
        {
            "name": "queue_depth",
            "kind": "gauge",
            "labels": "",
            "window": "",
            "stat": "value",
            "value": "7.0",
        }
    ]
    lat = {
        (r["window"], r["stat"]): r["value"] for r in rows if r["name"] == "http_request_seconds"
    }
    assert lat[("", "count")] == "1000"
    assert float(lat[("60.0", "q0.99")]) == pytest.approx(0.99, rel=0.01)
    get = [r for r in rows if r["name"] == "http_requests_total" and '"GET"' in r["labels"]]
    assert json.loads(get[0]["labels"]) == {"code": "200", "method": "GET"}


def test_csv_cells_never_start_like_a_spreadsheet_formula(clock: ManualClock) -> None:
    m = PerformanceMonitor(clock=clock, system_metrics=False)
    m.gauge("g", user='=HYPERLINK("http://evil")').set(1)
    m.tick()
    for text in (m.export_csv(), m.export_csv(history=True)):
        for row in csv.reader(io.StringIO(text)):
            for cell in row:
                assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell


def test_csv_export_of_history(clock: ManualClock) -> None:
    m = PerformanceMonitor(clock=clock, system_metrics=False)
    g = m.gauge("stock_units", sku="a")
    for v in (1, 2):
        g.set(v)
        m.tick()
        clock.advance(10)
    rows = list(csv.DictReader(io.StringIO(m.export_csv(history=True))))
    assert [r["value"] for r in rows] == ["1.0", "2.0"]
    assert rows[0]["resolution"] == "10.0" and rows[0]["samples"] == "1"
    assert json.loads(rows[0]["labels"]) == {"sku": "a"}
