"""Hostile label values and metric names never break the exposition (issue 12 item 6).

On main, ``monitor.counter("http_requests_total", path="/caf\\udce9")`` made
``/metrics`` answer 500 for every metric (a lone surrogate cannot be encoded as
UTF-8); a 5 MB label value was emitted on every scrape; the number of metric
names was unbounded.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from sentia_core.monitor import PerformanceMonitor
from sentia_core.monitor._metrics import MAX_FAMILIES
from sentia_core.monitor._names import MAX_LABEL_VALUE_LENGTH

from .test_http import fetch


def _parse(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_a_lone_surrogate_label_does_not_break_metrics_over_http(
    monitor: PerformanceMonitor,
) -> None:
    monitor.counter("http_requests_total", path="/caf\udce9").inc()
    monitor.counter("http_requests_total", path="/ok").inc(2)
    monitor.gauge("queue_depth").set(3)
    with monitor.serve() as server:
        status, _, body = fetch(server.url + "/metrics")
        assert status == 200
        families = _parse(body.decode("utf-8"))
        samples = {s.labels["path"]: s.value for s in families["http_requests"].samples}
        assert samples == {"/caf\ufffd": 1.0, "/ok": 2.0}
        assert families["queue_depth"].samples[0].value == 3.0
        status, _, body = fetch(server.url + "/metrics.json")
        assert status == 200
        json.loads(body)


def test_label_values_are_bounded_and_control_characters_replaced(
    monitor: PerformanceMonitor,
) -> None:
    monitor.counter("big_total", path="x" * 5_000_000).inc()
    monitor.counter("big_total", path="a\x00b\x1b[31mc\rd").inc()
    text = monitor.prometheus_text()
    assert len(text) < 4096
    values = {s.labels["path"] for s in _parse(text)["big"].samples}
    long = next(v for v in values if v.startswith("x"))
    assert len(long) == MAX_LABEL_VALUE_LENGTH and long.endswith("\u2026")
    assert "a\ufffdb\ufffd[31mc\ufffdd" in values


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(), max_size=300))
def test_any_label_value_renders_as_valid_utf8_exposition(value: str) -> None:
    m = PerformanceMonitor(system_metrics=False)
    try:
        m.counter("c_total", v=value).inc()
        m.histogram("h_seconds", v=value).observe(0.5)
        text = m.prometheus_text()
        text.encode("utf-8")  # never raises
        families = _parse(text)
        assert families["c"].samples[0].value == 1.0
        assert m.prometheus_text(histograms="buckets").encode("utf-8")
    finally:
        m.close()


def test_one_series_that_cannot_render_leaves_the_others(monitor: PerformanceMonitor) -> None:
    monitor.counter("good_total").inc(5)
    bad = monitor.gauge("bad_gauge", k="1")
    monitor.gauge("bad_gauge", k="2").set(7)
    bad._value = object()  # type: ignore[assignment]  # a value nothing can format
    text = monitor.prometheus_text()
    families = _parse(text)
    assert families["good"].samples[0].value == 5.0
    assert [s.labels["k"] for s in families["bad_gauge"].samples] == ["2"]


def test_metric_families_are_bounded(monitor: PerformanceMonitor) -> None:
    before = monitor.stats().families
    for i in range(MAX_FAMILIES + 50):
        monitor.counter(f"family_{i}_total").inc()
    st_ = monitor.stats()
    assert st_.families == MAX_FAMILIES
    assert st_.families_dropped == before + 50
    # the caller of a dropped name still gets a working counter
    c = monitor.counter("one_more_total")
    c.inc(2)
    assert c.value == 2
    assert "one_more_total" not in monitor.prometheus_text()


@pytest.mark.parametrize("help_text", ["caf\udce9", "x" * 100_000])
def test_help_text_is_made_safe(monitor: PerformanceMonitor, help_text: str) -> None:
    monitor.counter("helped_total", help=help_text).inc()
    text = monitor.prometheus_text()
    text.encode("utf-8")
    assert len(text) < 2048
