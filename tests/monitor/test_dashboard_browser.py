"""The dashboard in a real headless chromium against a live monitor with activity.

Skips without chromium / chromedriver / selenium unless SENTIA_REQUIRE_BROWSER=1
(.ci/run sets it). One browser session, bounded: the app's history is made on
a ManualClock (an hour of 10 s ticks in a few seconds), the page polls every
second, and every wait has a timeout.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from ._browser import LiveApp, browser_missing, chrome, wait_for

#: Chart id -> series labels it must show (a subset) once the app has run.
EXPECTED_SERIES = {
    "http.rps": {"GET /products/{id}", "GET /customers/{id}/orders", "GET /checkout"},
    "http.errors": {"GET /partner/orders/{id}"},
    "http.latency": {"p50 GET /products/{id}", "p95 GET /products/{id}", "p99 GET /products/{id}"},
    "cache.hit_rate": {"catalog L1"},
    "cache.evictions": {"catalog size"},
    "cache.degraded": {"catalog"},
    "breakers.state": {"partner"},
    "ratelimit.denied": {"api"},
    "registry.instances": {"inventory healthy", "inventory total"},
    "registry.ejected": {"inventory"},
    "registry.outstanding": {"inventory"},
    "alerts.count": {"firing", "pending"},
    "system.cpu": {"machine", "this process"},
    "system.memory": {"machine"},
    "system.rss": {"this process"},
    "sql.qps": {"all queries", "all slow"},
    "sql.time": {"all"},
}
#: Tables that must have rows.
EXPECTED_TABLES = (
    "breakers.transitions", "breakers.now", "registry.instances", "alerts.rules", "alerts.log",
    "sql.top", "sql.slow", "sql.nplusone", "sql.indexes",
)  # fmt: skip


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[LiveApp, str]]:
    reason = browser_missing()
    if reason is not None:
        if os.environ.get("SENTIA_REQUIRE_BROWSER") == "1":
            pytest.fail(f"a browser is required (SENTIA_REQUIRE_BROWSER=1): {reason}")
        pytest.skip(f"{reason} (set SENTIA_REQUIRE_BROWSER=1 to make this a failure)")
    logging.getLogger("sentia_core.sql").setLevel(logging.ERROR)  # the demo's N+1 warnings
    app = LiveApp(hours=1.0)
    server = app.app.monitor.serve("127.0.0.1", 0)
    try:
        yield app, server.url
    finally:
        server.stop()
        app.close()


def _charts(driver: Any) -> dict[str, dict[str, Any]]:
    return driver.execute_script(
        """
        const out = {};
        for (const node of document.querySelectorAll('.chart')) {
          const canvas = node.querySelector('canvas');
          out[node.dataset.chart] = {
            series: JSON.parse(node.dataset.series || '[]'),
            points: Number(node.dataset.points),
            empty: node.dataset.empty,
            canvas: canvas ? [canvas.width, canvas.height] : null,
            right: node.getBoundingClientRect().right,
          };
        }
        return out;
        """
    )


def _requests(driver: Any, origin: str) -> tuple[list[str], list[str]]:
    """Every URL the page requested, and those not on ``origin``."""
    seen, bad = [], []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") != "Network.requestWillBeSent":
            continue
        url = message["params"]["request"]["url"]
        seen.append(url)
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            bad.append(url)  # the page must not need them either (CSP default-src 'self')
        elif f"{parts.scheme}://{parts.netloc}" != origin:
            bad.append(url)
    return seen, bad


def _overflow(driver: Any) -> int:
    return driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


def test_every_panel_renders_live_and_stays_on_loopback(live: tuple[LiveApp, str]) -> None:
    app, url = live
    origin = url
    assert urlsplit(origin).hostname == "127.0.0.1"
    with chrome(1280, 800) as driver:
        driver.get(url + "/?refresh=1")
        wait_for(driver, "document.body.dataset.updates >= 1")
        driver.execute_script("window.__sameDocument = 'yes'")

        # Every panel, every chart: drawn by uPlot, with data, with the expected series.
        panels = driver.execute_script(
            "return [...document.querySelectorAll('section.panel')].map(p => p.dataset.panel)"
        )
        assert panels == ["http", "cache", "breakers", "registry", "alerts", "system", "sql"]
        charts = _charts(driver)
        assert set(charts) == set(EXPECTED_SERIES)
        for cid, want in EXPECTED_SERIES.items():
            chart = charts[cid]
            assert chart["empty"] == "false", cid
            assert chart["points"] > 0, cid
            assert want <= set(chart["series"]), (cid, chart["series"])
            assert chart["canvas"] is not None and chart["canvas"][0] > 100, cid
        rows = driver.execute_script(
            "const o = {}; for (const t of document.querySelectorAll('[data-table]'))"
            " o[t.dataset.table] = Number(t.dataset.rows); return o"
        )
        for tid in EXPECTED_TABLES:
            assert rows.get(tid, 0) > 0, (tid, rows)
        # Labels are text, never markup: a fingerprint with '<' shows as typed.
        text = driver.execute_script("return document.getElementById('panel-sql').innerText")
        assert "SELECT product_id, qty FROM order_lines WHERE order_id = ?" in text
        assert "'open'" not in text  # literals never reach the page
        assert _overflow(driver) <= 0

        # A live update changes the charts without a reload.
        before = driver.execute_script(
            "const p = window.sentiaDashboard.charts.get('http.rps').plot;"
            " return [window.sentiaDashboard.updates, p.data[0].length,"
            " p.data[0][p.data[0].length - 1]]"
        )
        app.run(6)
        wait_for(
            driver,
            "(() => { const p = window.sentiaDashboard.charts.get('http.rps').plot;"
            f" return p.data[0][p.data[0].length - 1] > {before[2]}; }})()",
        )
        after = driver.execute_script(
            "return [window.__sameDocument, window.sentiaDashboard.updates]"
        )
        assert after[0] == "yes"
        assert after[1] > before[0]

        # The window switch: 24 h comes from the 1-minute tier.
        driver.find_element("css selector", 'nav button[data-window="24h"]').click()
        wait_for(driver, "window.sentiaDashboard.last.window === '24h'")
        assert driver.execute_script("return window.sentiaDashboard.last.resolution") == 60
        assert (
            driver.execute_script(
                "return document.querySelector('nav button[data-window=\"24h\"]')"
                ".getAttribute('aria-pressed')"
            )
            == "true"
        )
        charts = _charts(driver)
        assert all(c["empty"] == "false" for c in charts.values()), charts

        # A narrow screen: one column, nothing wider than the viewport.
        driver.set_window_size(390, 844)
        wait_for(driver, "document.documentElement.clientWidth <= 400")
        wait_for(
            driver,
            "[...document.querySelectorAll('.chart canvas')].every("
            "c => c.getBoundingClientRect().right <= document.documentElement.clientWidth + 1)",
        )
        assert _overflow(driver) <= 0
        width = driver.execute_script("return document.documentElement.clientWidth")
        for cid, chart in _charts(driver).items():
            assert chart["right"] <= width + 1, cid

        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        seen, bad = _requests(driver, origin)
        assert bad == []
        paths = {urlsplit(u).path for u in seen}
        assert {"/", "/static/uPlot.iife.min.js", "/static/dashboard.js"} <= paths
        assert "/dashboard.json" in paths


def test_the_browser_log_would_show_a_csp_violation(live: tuple[LiveApp, str]) -> None:
    """The no-console-error check above can fail: an inline script is refused and logged."""
    _, url = live
    with chrome(800, 600) as driver:
        driver.get(url + "/?refresh=60")
        wait_for(driver, "document.body.dataset.updates >= 1")
        driver.execute_script(
            "const s = document.createElement('script'); s.textContent = 'window.__inline = 1';"
            " document.body.appendChild(s);"
        )
        assert driver.execute_script("return window.__inline === undefined")
        wait_for(driver, "true")
        errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert any("Content Security Policy" in m for m in errors), errors
