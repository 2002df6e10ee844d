"""The dashboard's JSON document, its page and static files, over real loopback HTTP."""

from __future__ import annotations

import hashlib
import json
import math
import re
from html.parser import HTMLParser
from importlib import resources
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentia_core.errors import ConfigError
from sentia_core.monitor import PerformanceMonitor
from sentia_core.monitor._dashboard import (
    CONTENT_SECURITY_POLICY,
    MAX_ROWS,
    STATIC_FILES,
    _rate,
    dashboard_response,
)
from sentia_core.monitor._retention import History
from sentia_core.testing import ManualClock

from .test_http import fetch


def _panel(doc: dict[str, Any], pid: str) -> dict[str, Any]:
    return next(p for p in doc["panels"] if p["id"] == pid)


def _chart(doc: dict[str, Any], cid: str) -> dict[str, Any]:
    for panel in doc["panels"]:
        for chart in panel["charts"]:
            if chart["id"] == cid:
                return chart
    raise KeyError(cid)


def _series(chart: dict[str, Any]) -> dict[str, list[float | None]]:
    return {s["label"]: s["values"] for s in chart["series"]}


def _run(monitor: PerformanceMonitor, clock: ManualClock, ticks: int, per_tick: int = 20) -> None:
    """``per_tick`` requests per route every 10 s: /a fast and failing 1 in 4, /b slow."""
    for _ in range(ticks):
        for i in range(per_tick):
            monitor.record_request(0.010, error=i % 4 == 0, method="GET", route="/a/{id}")
            monitor.record_request(0.200, method="POST", route="/b")
        monitor.tick()
        clock.advance(10.0)


# --------------------------------------------------------------------------- document


def test_requests_errors_and_latency_per_route(monitor: PerformanceMonitor, clock) -> None:  # type: ignore[no-untyped-def]
    _run(monitor, clock, ticks=12)
    doc = monitor.dashboard("1h")
    assert doc["window"] == "1h" and doc["resolution"] == 10.0
    times = doc["times"]
    assert len(times) == 12 and times == sorted(times)
    assert all(b - a == 10.0 for a, b in zip(times, times[1:], strict=False))

    rps = _series(_chart(doc, "http.rps"))
    assert set(rps) == {"GET /a/{id}", "POST /b"}
    assert rps["GET /a/{id}"][0] is None  # a rate needs two buckets
    assert rps["GET /a/{id}"][1:] == pytest.approx([2.0] * 11)  # 20 requests per 10 s

    errors = _series(_chart(doc, "http.errors"))
    assert errors["GET /a/{id}"][1:] == pytest.approx([25.0] * 11)
    assert errors["POST /b"][1:] == pytest.approx([0.0] * 11)

    latency = _chart(doc, "http.latency")
    assert latency["unit"] == "ms"
    values = _series(latency)
    assert {"p50 GET /a/{id}", "p95 POST /b", "p99 POST /b"} <= set(values)
    assert values["p95 POST /b"][-1] == pytest.approx(200.0, rel=0.02)
    assert values["p50 GET /a/{id}"][-1] == pytest.approx(10.0, rel=0.02)
    json.dumps(doc, allow_nan=False)  # JSON as it is served


def test_the_window_picks_the_tier_that_covers_it(monitor: PerformanceMonitor, clock) -> None:  # type: ignore[no-untyped-def]
    _run(monitor, clock, ticks=4, per_tick=1)
    assert monitor.dashboard("1h")["resolution"] == 10.0
    assert monitor.dashboard("24h")["resolution"] == 60.0
    assert monitor.dashboard("7d")["resolution"] == 600.0
    doc = monitor.dashboard("7d")
    assert doc["since"] == pytest.approx(doc["generated_at"] - 7 * 86400)
    with pytest.raises(ConfigError, match="window"):
        monitor.dashboard("2h")


def test_every_built_in_panel_is_present_even_without_data(monitor: PerformanceMonitor) -> None:
    doc = monitor.dashboard()
    ids = [p["id"] for p in doc["panels"]]
    assert ids == ["http", "cache", "breakers", "registry", "alerts", "system", "sql"]
    for panel in doc["panels"]:
        assert panel["title"]
        for chart in panel["charts"]:
            assert chart["unit"] and chart["series"] == []


def test_breaker_timeline_shows_a_transition_shorter_than_a_bucket(
    monitor: PerformanceMonitor, clock: ManualClock
) -> None:
    gauge = monitor.gauge("breaker_state", breaker="pay")
    for i in range(6):
        gauge.set(0.0)
        if i == 3:  # open, half-open and closed again between two ticks
            monitor.record_transition("breaker", "pay", "closed", "open", "5 failures")
            monitor.record_transition("breaker", "pay", "open", "half_open", "reset_timeout")
            monitor.record_transition("breaker", "pay", "half_open", "closed", "trial ok")
        monitor.tick()
        clock.advance(10.0)
    doc = monitor.dashboard()
    states = _series(_chart(doc, "breakers.state"))["pay"]
    assert states == [0.0, 0.0, 0.0, 2.0, 0.0, 0.0]
    table = next(t for t in _panel(doc, "breakers")["tables"] if t["id"] == "breakers.transitions")
    assert [r[2:] for r in table["rows"]] == [
        ["half_open", "closed", "trial ok"],
        ["open", "half_open", "reset_timeout"],
        ["closed", "open", "5 failures"],
    ]
    assert [t.to_state for t in monitor.transitions("breaker")] == ["open", "half_open", "closed"]
    assert monitor.transitions("cache") == []


def test_a_breaker_known_only_from_transitions_is_charted(
    monitor: PerformanceMonitor, clock: ManualClock
) -> None:
    monitor.counter("anything_total").inc()
    for i in range(4):
        if i == 1:
            monitor.record_transition("breaker", "s3", "closed", "open", "timeouts")
        monitor.tick()
        clock.advance(10.0)
    states = _series(_chart(monitor.dashboard(), "breakers.state"))["s3"]
    assert states == [None, 2.0, 2.0, 2.0]


_LEVELS = {"closed": 0.0, "half_open": 1.0, "open": 2.0}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0, 99.9), st.sampled_from(sorted(_LEVELS))), max_size=12),
    st.sampled_from(sorted(_LEVELS)),
    st.lists(st.one_of(st.none(), st.sampled_from([0.0, 1.0, 2.0])), min_size=10, max_size=10),
)
def test_breaker_timeline_is_the_worst_state_of_each_bucket(
    steps: list[tuple[float, str]], first: str, samples: list[float | None]
) -> None:
    """Against a brute-force model: per 10 s bucket, the max of the sample, the state
    held at its start (once known) and the states each transition in it left or entered."""
    from sentia_core.monitor._dashboard import Transition, _overlay

    transitions, state = [], first
    for at, to in sorted(steps):
        transitions.append(Transition(at, "breaker", "b", state, to, ""))
        state = to
    times = [10.0 * i for i in range(10)]
    col = list(samples)
    _overlay(times, 10.0, col, transitions)
    for i, start in enumerate(times):
        levels = [] if samples[i] is None else [samples[i]]
        earlier = [t for t in transitions if t.at < start]
        if earlier:
            levels.append(_LEVELS[earlier[-1].to_state])
        for t in transitions:
            if start <= t.at < start + 10.0:
                levels += [_LEVELS[t.from_state], _LEVELS[t.to_state]]
        assert col[i] == (max(levels) if levels else None), (i, transitions, samples)


def test_alerts_panel_charts_counts_and_lists_rules_and_notifications(
    monitor: PerformanceMonitor, clock: ManualClock
) -> None:
    from sentia_core.monitor import AlertRule

    monitor.add_rule(AlertRule("load", "load_gauge", warning=5.0, critical=10.0))
    g = monitor.gauge("load_gauge")
    for v in (1.0, 7.0, 12.0, 1.0):
        g.set(v)
        monitor.tick()
        clock.advance(10.0)
    doc = monitor.dashboard()
    counts = _series(_chart(doc, "alerts.count"))
    assert counts["firing"] == [0.0, 1.0, 1.0, 0.0]
    tables = {t["id"]: t for t in _panel(doc, "alerts")["tables"]}
    assert tables["alerts.rules"]["rows"][0][:2] == ["load", "resolved"]
    kinds = [r[2] for r in tables["alerts.log"]["rows"]]
    assert kinds == ["resolved", "escalated", "firing"]  # newest first


def test_sections_add_tables_and_a_failing_one_only_marks_its_panel(
    monitor: PerformanceMonitor,
) -> None:
    rows = [[i, float("inf"), {"x": 1}] for i in range(MAX_ROWS + 30)]
    remove = monitor.add_dashboard_section(
        "sql",
        lambda: {"tables": [{"id": "t", "title": "T",
                             "columns": [["n", "num"], ["v", "num"], ["o", "text"]],
                             "rows": rows}]},
    )  # fmt: skip
    monitor.add_dashboard_section("custom", lambda: 1 / 0)  # type: ignore[arg-type,return-value]
    doc = monitor.dashboard()
    table = _panel(doc, "sql")["tables"][0]
    assert len(table["rows"]) == MAX_ROWS
    assert table["rows"][0] == [0, None, "{'x': 1}"]  # non-finite -> null, objects -> text
    custom = _panel(doc, "custom")
    assert custom["error"] == "ZeroDivisionError: division by zero"
    assert "error" not in _panel(doc, "sql")
    json.dumps(doc, allow_nan=False)
    remove()
    assert _panel(monitor.dashboard(), "sql")["tables"] == []
    with pytest.raises(ConfigError):
        monitor.add_dashboard_section("", dict)


def test_too_many_series_keep_the_busiest(monitor: PerformanceMonitor, clock: ManualClock) -> None:
    for _ in range(3):
        for i in range(12):
            monitor.counter("app_requests_total", route=f"/r{i:02d}", method="GET").inc(i + 1)
        monitor.tick()
        clock.advance(10.0)
    labels = set(_series(_chart(monitor.dashboard(), "http.rps")))
    assert labels == {f"GET /r{i:02d}" for i in range(4, 12)}


# --------------------------------------------------------------------------- columns


def test_rate_skips_gaps_and_resets() -> None:
    times = [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    assert _rate(times, [0.0, 10.0, None, 40.0, 5.0, 25.0]) == [None, 1.0, None, 1.5, None, 2.0]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.floats(0, 1e6, allow_nan=False), st.integers(1, 40)),
        min_size=1,
        max_size=60,
    )
)
def test_columns_agree_with_query(samples: list[tuple[int, float, int]]) -> None:
    tiers = ((10.0, 300.0), (60.0, 3600.0))
    history = History(tiers, max_series=10)
    keys = [("m", (("k", str(i)),), "value") for i in range(3)]
    now = 1_000_000.0
    for key_index, value, step in samples:
        now += step
        history.record(now, [(keys[key_index], value, key_index == 0)])
    for since in (now - 250.0, now - 3000.0):
        times, cols = history.columns(keys, now, since)
        for key, col in zip(keys, cols, strict=True):
            points = {p.time: p.value for p in history.query(key, now, since)}
            assert set(points) <= set(times)
            for t, v in zip(times, col, strict=True):
                assert (v is None) == (t not in points)
                if v is not None:
                    assert math.isclose(v, points[t], rel_tol=1e-12)


# --------------------------------------------------------------------------- HTTP


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.data: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in = tag

    def handle_data(self, data: str) -> None:
        if self._in in ("script", "style") and data.strip():
            self.data.append(data)


def test_the_page_has_no_inline_script_or_style_and_a_strict_csp(
    monitor: PerformanceMonitor,
) -> None:
    with monitor.serve() as server:
        for path in ("/", "/dashboard"):
            status, headers, body = fetch(server.url + path)
            assert status == 200
            assert headers["Content-Type"] == "text/html; charset=utf-8"
            assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
            assert CONTENT_SECURITY_POLICY.startswith("default-src 'self'")
            assert "unsafe" not in CONTENT_SECURITY_POLICY
            parser = _Tags()
            parser.feed(body.decode())
            assert parser.data == []  # no inline script or style text
            assert not [t for t, _ in parser.tags if t == "style"]
            assert not [a for _, a in parser.tags if "style" in a or any(
                k.startswith("on") for k in a)]  # fmt: skip
            srcs = [
                a.get("src") or a.get("href") for t, a in parser.tags if t in ("script", "link")
            ]
            assert srcs and all(s and s.startswith("/static/") for s in srcs), srcs
            assert not re.search(rb"https?://", body.split(b"<body>")[0])


def test_static_files_are_served_with_types_and_nothing_else_is(
    monitor: PerformanceMonitor,
) -> None:
    with monitor.serve() as server:
        for name, ctype in STATIC_FILES.items():
            status, headers, body = fetch(server.url + "/static/" + name)
            assert status == 200, name
            assert headers["Content-Type"] == ctype
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert body == resources.files("sentia_core.monitor").joinpath(
                "static").joinpath(name).read_bytes()  # fmt: skip
        status, headers, body = fetch(
            server.url + "/static/uPlot.iife.min.js", **{"Accept-Encoding": "gzip"}
        )
        assert headers.get("Content-Encoding") == "gzip"
        for bad in (
            "/static/",
            "/static/VENDORED.json",
            "/static/../_monitor.py",
            "/static/%2e%2e/_monitor.py",
            "/static/dashboard.js/x",
            "/dashboardx",
        ):
            assert fetch(server.url + bad)[0] == 404, bad  # fmt: skip


def test_dashboard_json_over_http(monitor: PerformanceMonitor, clock: ManualClock) -> None:
    _run(monitor, clock, ticks=3, per_tick=2)
    with monitor.serve() as server:
        status, headers, body = fetch(server.url + "/dashboard.json?window=24h")
        assert status == 200 and headers["Content-Type"] == "application/json"
        assert headers["Cache-Control"] == "no-store"
        doc = json.loads(body)
        assert doc["window"] == "24h"
        assert _series(_chart(doc, "http.rps"))
        assert json.loads(fetch(server.url + "/dashboard.json")[2])["window"] == "1h"
        status, _, body = fetch(server.url + "/dashboard.json?window=%3Cscript%3E")
        assert status == 400
        assert "window must be one of" in json.loads(body)["error"]


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=3000))
def test_hostile_query_strings_get_a_bounded_answer(query: str) -> None:
    calls: list[str] = []

    def build(window: str) -> dict[str, Any]:
        calls.append(window)
        return {"window": window}

    found = dashboard_response("/dashboard.json", query, build)
    assert found is not None
    status, headers, body = found
    assert status in (200, 400)
    assert headers["Content-Type"] == "application/json"
    assert len(calls) == (status == 200)
    json.loads(body)


def test_the_vendored_uplot_is_recorded() -> None:
    static = resources.files("sentia_core.monitor").joinpath("static")
    record = json.loads(static.joinpath("VENDORED.json").read_text())["uplot"]
    assert record["license"] == "MIT"
    assert record["tarball"].startswith("https://registry.npmjs.org/uplot/-/uplot-")
    for name, digest in record["files"].items():
        assert hashlib.sha256(static.joinpath(name).read_bytes()).hexdigest() == digest, name
    head = static.joinpath("uPlot.iife.min.js").read_text()[:200]
    assert f"(v{record['version']})" in head
    assert "MIT License" in static.joinpath("uPlot.LICENSE").read_text()
    js = static.joinpath("dashboard.js").read_text()
    assert "innerHTML" not in js and "eval(" not in js  # text only, never markup
    assert not re.search(r"https?://", js)
