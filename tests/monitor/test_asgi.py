"""The monitor's ASGI app: the same routes and rules as the HTTP server, mounted
under real Starlette and FastAPI applications."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sentia_core.monitor import EndpointAuth, MonitorApp, PerformanceMonitor

from .test_http_security import TOKEN, fetch

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")

from starlette.applications import Starlette  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Mount, Route  # noqa: E402


def client_for(asgi_app: Any) -> Any:
    transport = httpx.ASGITransport(app=asgi_app)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def mounted(app: MonitorApp) -> Any:
    async def home(_: Any) -> PlainTextResponse:
        return PlainTextResponse("the service")

    return client_for(Starlette(routes=[Route("/", home), Mount("/monitor", app=app)]))


async def test_mounted_under_starlette_every_endpoint_answers(
    monitor: PerformanceMonitor,
) -> None:
    monitor.counter("orders_total").inc(2)
    monitor.add_health_check("db", lambda: True)
    async with mounted(monitor.asgi()) as client:
        assert (await client.get("/")).text == "the service"
        r = await client.get("/monitor/metrics")
        assert r.status_code == 200 and "orders_total 2" in r.text
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert (await client.get("/monitor/metrics.json")).json()["metrics"]
        health = (await client.get("/monitor/health")).json()
        assert health["components"]["db"]["status"] == "healthy"
        assert (await client.get("/monitor/health/ready")).json()["ready"] is True
        assert (await client.get("/monitor/health/live")).json() == {"status": "alive"}
        page = await client.get("/monitor/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.headers["content-security-policy"] == (
            "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
        assert (await client.get("/monitor/nope")).status_code == 404
        assert (await client.post("/monitor/metrics")).status_code == 405
        assert (await client.head("/monitor/metrics")).content == b""


async def test_the_asgi_app_and_the_server_answer_alike(monitor: PerformanceMonitor) -> None:
    monitor.add_health_check("db", lambda: False, critical=True)
    volatile = ("checked_at", "response_time", "response_time_ms", "uptime", "consecutive_failures")
    async with mounted(monitor.asgi()) as client:
        with monitor.serve() as server:
            for path in ("/health", "/health/ready", "/health/live", "/nope"):
                status, headers, body = fetch(server.url + path)
                r = await client.get("/monitor" + path)
                assert r.status_code == status, path
                for name in ("Content-Security-Policy", "X-Content-Type-Options"):
                    assert r.headers[name] == headers[name]
                if path == "/nope":
                    continue
                docs = [json.loads(body), r.json()]
                for doc in docs:
                    doc.pop("checked_at", None)
                    for row in doc.get("components", {}).values():
                        for key in volatile if isinstance(row, dict) else ():
                            row.pop(key, None)
                assert docs[0] == docs[1]


async def test_auth_and_cross_origin_rules_hold_under_asgi(monitor: PerformanceMonitor) -> None:
    app = monitor.asgi(auth=EndpointAuth(token=TOKEN, open_liveness=True))
    async with mounted(app) as client:
        assert (await client.get("/monitor/metrics")).status_code == 401
        assert "Bearer" in (await client.get("/monitor/metrics")).headers["www-authenticate"]
        ok = {"Authorization": f"Bearer {TOKEN}"}
        assert (await client.get("/monitor/metrics", headers=ok)).status_code == 200
        assert (await client.get("/monitor/health/live")).status_code == 200
        cross = {**ok, "Origin": "https://evil.example"}
        assert (await client.get("/monitor/metrics.json", headers=cross)).status_code == 403
        assert not [h for h in (await client.get("/monitor/metrics", headers=cross)).headers
                    if h.startswith("access-control-")]  # fmt: skip


async def test_mounted_under_fastapi(monitor: PerformanceMonitor) -> None:
    fastapi = pytest.importorskip("fastapi")
    api = fastapi.FastAPI()

    @api.get("/orders")
    def orders() -> dict[str, int]:
        return {"orders": 1}

    api.mount("/ops", monitor.asgi())
    async with client_for(api) as client:
        assert (await client.get("/orders")).json() == {"orders": 1}
        assert (await client.get("/ops/health/live")).json() == {"status": "alive"}
        assert (await client.get("/ops/metrics")).status_code == 200


async def test_lifespan_body_limit_and_other_scopes(monitor: PerformanceMonitor) -> None:
    app = monitor.asgi()
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    await app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]

    sent.clear()
    chunks = iter([{"type": "http.request", "body": b"x" * 5000, "more_body": False}])

    async def big_body() -> dict[str, Any]:
        return next(chunks)

    scope = {"type": "http", "method": "GET", "path": "/metrics", "headers": []}
    await app(scope, big_body, send)
    assert sent[0]["status"] == 413

    sent.clear()
    await app({"type": "websocket", "path": "/metrics"}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1003}]
    app.close()
