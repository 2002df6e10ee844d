"""The middleware in a real FastAPI app: route-template labels, excluded monitor
endpoints, IETF RateLimit fields on 429s, 429s counted apart from errors.

Driven through httpx's ASGI transport, and once through uvicorn on loopback.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

fastapi = pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from fastapi import FastAPI  # noqa: E402
from fastapi.responses import PlainTextResponse  # noqa: E402

from sentia_core import Sentia  # noqa: E402
from sentia_core.integrations import SentiaASGIMiddleware  # noqa: E402


@pytest.fixture
def sentia() -> Iterator[Sentia]:
    with Sentia(
        {"monitor": {"system_metrics": False}, "rate_limits": {"api": "3/minute"}},
        start_monitor=False,
    ) as app:
        yield app


def _service(sentia: Sentia, **middleware: Any) -> FastAPI:
    api = FastAPI()

    @api.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        for i in range(12):  # an N+1 inside the handler
            sentia.queries.record(f"SELECT * FROM tags WHERE item_id = {i}", 0.001)
        return {"id": item_id}

    @api.get("/broken")
    async def broken() -> PlainTextResponse:
        return PlainTextResponse("down", status_code=503)

    @api.get("/metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(sentia.monitor.prometheus_text())

    @api.get("/health")
    async def health() -> dict[str, Any]:
        return sentia.health().to_dict()

    api.add_middleware(
        SentiaASGIMiddleware,
        monitor=sentia.monitor,
        queries=sentia.queries,
        limiter=sentia.limiter,
        **middleware,
    )
    return api


def _series(sentia: Sentia, metric: str) -> dict[str, float]:
    out = {}
    for line in sentia.monitor.prometheus_text().splitlines():
        if line.startswith(metric + "{"):
            series, value = line.rsplit(" ", 1)
            out[series[len(metric) :]] = float(value)
    return out


async def _client(api: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=api, client=("198.51.100.7", 4321))
    return httpx.AsyncClient(transport=transport, base_url="http://service")


async def test_requests_are_labelled_by_route_template_method_and_status_class(
    sentia: Sentia,
) -> None:
    api = _service(sentia)
    async with await _client(api) as client:
        assert (await client.get("/items/1")).status_code == 200
        assert (await client.get("/items/2")).status_code == 200
        assert (await client.get("/broken")).status_code == 503
        assert (await client.get("/nowhere/42")).status_code == 404
    requests = _series(sentia, "app_requests_total")
    assert requests == {
        '{method="GET",route="/items/{item_id}",status="2xx"}': 2.0,
        '{method="GET",route="/broken",status="5xx"}': 1.0,
        '{method="GET",route="",status="4xx"}': 1.0,
    }
    errors = _series(sentia, "app_request_errors_total")
    assert errors['{method="GET",route="/broken",status="5xx"}'] == 1.0
    assert sum(errors.values()) == 1.0
    (report,) = sentia.queries.nplusone_reports()
    assert report.unit == "GET /items/{item_id}"


async def test_limited_requests_carry_ratelimit_fields_and_are_not_errors(
    sentia: Sentia,
) -> None:
    api = _service(sentia, rate_limit="api")
    async with await _client(api) as client:
        codes = [(await client.get(f"/items/{i}")).status_code for i in range(3)]
        denied = await client.get("/items/9")
        # The monitor's own endpoints are never throttled, timed or counted.
        for _ in range(5):
            assert (await client.get("/metrics")).status_code == 200
            assert (await client.get("/health")).status_code == 200
    assert codes == [200, 200, 200]
    assert denied.status_code == 429
    retry_after = int(denied.headers["retry-after"])
    assert retry_after >= 1
    assert denied.headers["ratelimit-policy"] == '"api";q=3;w=60'
    m = re.fullmatch(r'"api";r=(\d+);t=(\d+)', denied.headers["ratelimit"])
    assert m is not None and m.group(1) == "0" and int(m.group(2)) == retry_after
    requests = _series(sentia, "app_requests_total")
    assert requests == {
        '{method="GET",route="/items/{item_id}",status="2xx"}': 3.0,
        '{method="GET",route="",status="4xx"}': 1.0,
    }
    assert sum(_series(sentia, "app_request_errors_total").values()) == 0.0
    assert _series(sentia, "app_requests_limited_total") == {'{method="GET"}': 1.0}


async def test_exclude_paths_can_be_replaced(sentia: Sentia) -> None:
    api = _service(sentia, rate_limit="api", exclude_paths=("/items/*",))
    async with await _client(api) as client:
        codes = [(await client.get("/items/1")).status_code for _ in range(6)]
        metrics = [(await client.get("/metrics")).status_code for _ in range(4)]
    assert codes == [200] * 6  # excluded: never limited
    assert metrics == [200, 200, 200, 429]  # no longer excluded


def test_exclude_paths_are_validated() -> None:
    from sentia_core.errors import ConfigError

    with pytest.raises(ConfigError, match="exclude_paths"):
        SentiaASGIMiddleware(lambda *a: None, exclude_paths="/metrics")  # type: ignore[arg-type,return-value]
    with pytest.raises(ConfigError, match="exclude_paths"):
        SentiaASGIMiddleware(lambda *a: None, exclude_paths=("metrics",))  # type: ignore[arg-type,return-value]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_under_uvicorn_on_loopback(sentia: Sentia) -> None:
    api = _service(sentia, rate_limit="api")
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(api, host="127.0.0.1", port=port, log_level="error", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        started = threading.Event()
        for _ in range(500):
            if server.started:
                break
            started.wait(0.01)
        assert server.started
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            codes = [client.get(f"/items/{i}").status_code for i in range(4)]
            scrape = client.get("/metrics")
        assert codes == [200, 200, 200, 429]
        assert scrape.status_code == 200
        assert 'app_requests_total{method="GET",route="/items/{item_id}",status="2xx"} 3' in (
            scrape.text
        )
    finally:
        server.should_exit = True
        thread.join(10)
    assert not thread.is_alive()


def test_the_asgi_transport_and_the_event_loop_are_released() -> None:
    # A guard for the suite: nothing above leaves a loop running in this thread.
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


async def test_a_typed_path_parameter_is_labelled_by_its_template(sentia: Sentia) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route

    async def item(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = SentiaASGIMiddleware(
        Starlette(routes=[Route("/items/{id:int}", item)]), monitor=sentia.monitor
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/items/3")).status_code == 200
    assert _series(sentia, "app_requests_total") == {
        '{method="GET",route="/items/{id}",status="2xx"}': 1.0
    }


def test_wsgi_routes_from_the_environ_a_function_or_nothing(sentia: Sentia) -> None:
    from sentia_core.integrations import SentiaWSGIMiddleware

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"].startswith("/users/"):
            environ["sentia.route"] = "/users/{id}"
        start_response("200 OK", [])
        return [b"ok"]

    def call(mw: SentiaWSGIMiddleware, path: str) -> None:
        body = mw({"REQUEST_METHOD": "GET", "PATH_INFO": path}, lambda *a: None)
        b"".join(body)
        body.close()  # type: ignore[attr-defined]

    def broken(environ: Any) -> str:
        raise KeyError("no route")

    call(SentiaWSGIMiddleware(app, monitor=sentia.monitor), "/users/1")
    call(SentiaWSGIMiddleware(app, monitor=sentia.monitor), "/other")
    call(SentiaWSGIMiddleware(app, monitor=sentia.monitor, route=broken), "/users/2")
    call(SentiaWSGIMiddleware(app, monitor=sentia.monitor, route=lambda e: "/fixed"), "/x")
    assert _series(sentia, "app_requests_total") == {
        '{method="GET",route="/users/{id}",status="2xx"}': 1.0,
        '{method="GET",route="",status="2xx"}': 2.0,
        '{method="GET",route="/fixed",status="2xx"}': 1.0,
    }
