"""The endpoints, fetched for real over loopback HTTP."""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sentia_core.errors import ConfigError
from sentia_core.monitor import PerformanceMonitor


def fetch(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def test_metrics_json_and_health_endpoints(monitor: PerformanceMonitor) -> None:
    monitor.counter("hits_total").inc(3)
    monitor.histogram("lat_seconds").observe(0.25)
    monitor.add_health_check("db", lambda: True)
    with monitor.serve() as server:
        host, port = server.address
        assert host == "127.0.0.1" and port > 0
        status, headers, body = fetch(server.url + "/metrics")
        assert status == 200
        assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        names = {f.name for f in text_string_to_metric_families(body.decode())}
        assert {"hits", "lat_seconds"} <= names
        status, headers, body = fetch(server.url + "/metrics.json")
        assert status == 200 and headers["Content-Type"] == "application/json"
        doc = json.loads(body)
        assert any(f["name"] == "hits_total" for f in doc["metrics"])
        status, _, body = fetch(server.url + "/health")
        assert status == 200
        assert json.loads(body)["components"]["db"]["status"] == "healthy"
    assert not server.running


def test_health_answers_503_when_unhealthy(monitor: PerformanceMonitor) -> None:
    monitor.add_health_check("db", lambda: False, critical=True)
    monitor.add_health_check("cache", lambda: False, critical=False)
    server = monitor.serve()
    try:
        status, _, body = fetch(server.url + "/health")
        assert status == 503
        doc = json.loads(body)
        assert doc["status"] == "unhealthy"
        assert doc["components"]["cache"]["critical"] is False
        monitor.remove_health_check("db")
        status, _, body = fetch(server.url + "/health")
        assert status == 200 and json.loads(body)["status"] == "degraded"
    finally:
        server.stop()


def test_gzip_when_the_scraper_accepts_it(monitor: PerformanceMonitor) -> None:
    for i in range(100):
        monitor.counter("c_total", k=str(i)).inc()
    with monitor.serve() as server:
        status, headers, body = fetch(server.url + "/metrics", **{"Accept-Encoding": "gzip"})
        assert status == 200 and headers["Content-Encoding"] == "gzip"
        assert b'c_total{k="99"} 1' in gzip.decompress(body)


def test_unknown_paths_and_methods(monitor: PerformanceMonitor) -> None:
    with monitor.serve() as server:
        assert fetch(server.url + "/nope")[0] == 404
        assert fetch(server.url + "/")[0] == 200
        request = urllib.request.Request(server.url + "/metrics", data=b"x", method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=10)
        with info.value as err:
            assert err.code == 405
        head = urllib.request.Request(server.url + "/metrics", method="HEAD")
        with urllib.request.urlopen(head, timeout=10) as response:
            assert response.status == 200 and response.read() == b""


def test_a_failing_renderer_answers_500_and_keeps_serving(
    monitor: PerformanceMonitor, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**kw: object) -> str:
        raise RuntimeError("renderer bug")

    monitor.prometheus_text = broken  # type: ignore[method-assign]
    with monitor.serve() as server:
        status, _, body = fetch(server.url + "/metrics")
        assert status == 500
        assert json.loads(body) == {"error": "RuntimeError: renderer bug"}
        assert fetch(server.url + "/health")[0] == 200
    assert "monitor endpoint /metrics failed" in caplog.text


def test_close_stops_every_server(monitor: PerformanceMonitor) -> None:
    a, b = monitor.serve(), monitor.serve()
    monitor.close()
    assert not a.running and not b.running
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(a.url + "/metrics", timeout=2)


def test_bind_arguments_are_validated(monitor: PerformanceMonitor) -> None:
    with pytest.raises(ConfigError):
        monitor.serve(port=70000)
    with pytest.raises(ConfigError):
        monitor.serve(host="")
