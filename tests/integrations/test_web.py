"""ASGI and WSGI middleware: units of work per request, timing, errors, 429 with Retry-After."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from sentia_core.errors import ConfigError
from sentia_core.integrations import SentiaASGIMiddleware, SentiaWSGIMiddleware
from sentia_core.monitor import PerformanceMonitor
from sentia_core.policies import RateLimiter
from sentia_core.sql import QueryOptimizer


@pytest.fixture
def parts(clock):  # type: ignore[no-untyped-def]
    monitor = PerformanceMonitor(clock=clock, system_metrics=False)
    queries = QueryOptimizer(nplusone_threshold=3, clock=clock)
    limiter = RateLimiter({"api": "2/minute"}, clock=clock)
    yield monitor, queries, limiter
    monitor.close()
    limiter.close()


def _requests(monitor: PerformanceMonitor) -> tuple[float, float]:
    text = monitor.prometheus_text()
    total = errors = 0.0
    for line in text.splitlines():
        if line.startswith("app_requests_total"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith("app_request_errors_total"):
            errors += float(line.rsplit(" ", 1)[1])
    return total, errors


def _starlette(queries: QueryOptimizer) -> Starlette:
    async def orders(request: Request) -> PlainTextResponse:
        for i in range(4):  # one shape, one call site, four times: an N+1
            queries.record(f"SELECT * FROM order_lines WHERE order_id = {i}", 0.001)
        return PlainTextResponse("ok")

    async def boom(request: Request) -> PlainTextResponse:
        raise RuntimeError("handler bug")

    async def unavailable(request: Request) -> PlainTextResponse:
        return PlainTextResponse("down", status_code=503)

    return Starlette(
        routes=[
            Route("/orders", orders),
            Route("/boom", boom),
            Route("/unavailable", unavailable),
        ]
    )


async def test_asgi_times_requests_and_opens_a_unit_of_work(parts) -> None:  # type: ignore[no-untyped-def]
    monitor, queries, _ = parts
    app = SentiaASGIMiddleware(_starlette(queries), monitor=monitor, queries=queries)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/orders")).status_code == 200
        assert (await client.get("/unavailable")).status_code == 503
        assert (await client.get("/boom")).status_code == 500
    assert _requests(monitor) == (3.0, 2.0)
    reports = queries.nplusone_reports()
    assert len(reports) == 1
    assert reports[0].count >= 3
    assert "GET /orders" in str(reports[0])


async def test_asgi_rate_limit_answers_429_with_retry_after(parts) -> None:  # type: ignore[no-untyped-def]
    monitor, queries, limiter = parts
    app = SentiaASGIMiddleware(
        _starlette(queries), monitor=monitor, queries=queries, limiter=limiter, rate_limit="api"
    )
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        codes = [(await client.get("/orders")).status_code for _ in range(3)]
        denied = await client.get("/orders")
    assert codes == [200, 200, 429]
    assert denied.status_code == 429
    assert int(denied.headers["retry-after"]) >= 1
    assert limiter.stats().denied >= 2


async def test_asgi_passes_other_scopes_through(parts) -> None:  # type: ignore[no-untyped-def]
    monitor, queries, _ = parts
    seen = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        seen.append(scope["type"])

    mw = SentiaASGIMiddleware(app, monitor=monitor, queries=queries)
    await mw({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]
    assert _requests(monitor) == (0.0, 0.0)


def test_a_tier_without_a_limiter_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        SentiaASGIMiddleware(lambda *a: None, rate_limit="api")  # type: ignore[arg-type,return-value]
    assert info.value.parameter == "rate_limit"


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def wsgi_server(parts) -> Iterator[tuple[str, PerformanceMonitor, QueryOptimizer]]:  # type: ignore[no-untyped-def]
    monitor, queries, limiter = parts

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        path = environ["PATH_INFO"]
        if path == "/boom":
            raise RuntimeError("handler bug")
        start_response("200 OK" if path != "/unavailable" else "503 Service Unavailable", [])

        def body() -> Iterator[bytes]:  # queries run lazily, while the body streams
            for i in range(4):
                queries.record(f"SELECT * FROM customers WHERE id = {i}", 0.001)
                yield b"chunk\n"

        return body()

    wrapped = SentiaWSGIMiddleware(
        app, monitor=monitor, queries=queries, limiter=limiter, rate_limit="api"
    )
    server = make_server("127.0.0.1", 0, wrapped, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", monitor, queries
    server.shutdown()
    server.server_close()
    thread.join(5)


def _get(url: str) -> tuple[int, Any, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def test_wsgi_streams_times_and_rate_limits(wsgi_server) -> None:  # type: ignore[no-untyped-def]
    base, monitor, queries = wsgi_server
    status, _, body = _get(base + "/orders")
    assert (status, body) == (200, b"chunk\n" * 4)
    status, _, _ = _get(base + "/unavailable")
    assert status == 503
    status, headers, _ = _get(base + "/orders")
    assert status == 429
    assert int(headers["Retry-After"]) >= 1
    assert _requests(monitor) == (3.0, 1.0)
    reports = queries.nplusone_reports()
    assert [r.count for r in reports] == [4]


def _route_labels(monitor: PerformanceMonitor) -> dict[str, float]:
    fam = monitor.metric("app_requests_total")
    assert fam is not None
    return {f"{s.labels['method']} {s.labels['route']}": s.value for s in fam.all_series()}


async def test_asgi_labels_requests_with_the_route_template(parts) -> None:  # type: ignore[no-untyped-def]
    monitor, queries, _ = parts

    async def item(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(request.path_params["id"]))

    app = SentiaASGIMiddleware(
        Starlette(routes=[Route("/items/{id:int}", item)]), monitor=monitor, queries=queries
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for i in range(3):
            assert (await client.get(f"/items/{i}")).status_code == 200
        assert (await client.get("/nowhere/7")).status_code == 404
    # The template, never the raw path: label sets stay bounded.
    assert _route_labels(monitor) == {"GET /items/{id}": 3.0, "GET ": 1.0}


def test_wsgi_route_comes_from_the_environ_or_a_function(parts) -> None:  # type: ignore[no-untyped-def]
    monitor, _, _ = parts

    def app(environ, start_response):  # type: ignore[no-untyped-def]
        if environ["PATH_INFO"].startswith("/users/"):
            environ["sentia.route"] = "/users/{id}"
        start_response("200 OK", [])
        return [b"ok"]

    def call(mw: SentiaWSGIMiddleware, path: str) -> None:
        body = mw({"REQUEST_METHOD": "GET", "PATH_INFO": path}, lambda *a: None)
        b"".join(body)
        body.close()  # type: ignore[attr-defined]

    plain = SentiaWSGIMiddleware(app, monitor=monitor)
    call(plain, "/users/1")
    call(plain, "/users/2")
    call(plain, "/other")

    def broken(environ: Any) -> str:
        raise KeyError("no route")

    call(SentiaWSGIMiddleware(app, monitor=monitor, route=broken), "/users/3")
    call(SentiaWSGIMiddleware(app, monitor=monitor, route=lambda e: "/fixed"), "/x")
    assert _route_labels(monitor) == {"GET /users/{id}": 2.0, "GET ": 2.0, "GET /fixed": 1.0}
