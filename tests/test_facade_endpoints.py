"""The application's own monitor over HTTP: ``app.serve()`` and ``app.asgi()``
(issue 15 item 10), configured from ``[monitor]`` (issue 20), and health that
sees shared state (issue 15 item 9)."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import pytest

from sentia_core import BreakerState, Sentia
from sentia_core.errors import ConfigError
from sentia_core.testing import ManualClock

from .monitor.test_http_security import TOKEN, _certificate, basic, fetch

QUIET = {"monitor": {"system_metrics": False}}


def test_serve_answers_with_the_applications_own_metrics() -> None:
    with Sentia(QUIET) as app:
        app.monitor.counter("orders_total").inc(7)
        server = app.serve(port=0)
        assert server.address[0] == "127.0.0.1" and server.address[1] > 0
        status, _, body = fetch(server.url + "/metrics")
        assert status == 200 and b"orders_total 7" in body
        assert fetch(server.url + "/health/live")[0] == 200
        status, _, body = fetch(server.url + "/health")
        assert status == 200 and "breakers" in json.loads(body)["components"]
    assert not server.running  # app.close() stopped it
    server.close()  # idempotent


def test_credentials_come_from_the_environment_and_the_config() -> None:
    env = {
        "SENTIA_MONITOR__SYSTEM_METRICS": "false",
        "SENTIA_MONITOR__AUTH__TOKEN": TOKEN,
        "SENTIA_MONITOR__AUTH__METRICS_USERNAME": "prometheus",
        "SENTIA_MONITOR__AUTH__METRICS_PASSWORD": "scrape-pw",
        "SENTIA_MONITOR__AUTH__OPEN_LIVENESS": "true",
    }
    with Sentia.from_env(env) as app, app.serve(port=0) as server:
        assert TOKEN not in repr(app.config) and "scrape-pw" not in repr(app.config)
        assert fetch(server.url + "/metrics")[0] == 401
        assert fetch(server.url + "/health")[0] == 401
        assert fetch(server.url + "/health/live")[0] == 200
        scrape = basic("prometheus", "scrape-pw")
        assert fetch(server.url + "/metrics", Authorization=scrape)[0] == 200
        assert fetch(server.url + "/health", Authorization=f"Bearer {TOKEN}")[0] == 200
        # an explicit auth argument replaces the configured one
    with Sentia.from_env(env) as app, app.serve(port=0, auth=("ops", "pw")) as server:
        assert fetch(server.url + "/health", Authorization=basic("ops", "pw"))[0] == 200
        assert fetch(server.url + "/health", Authorization=f"Bearer {TOKEN}")[0] == 401


def test_a_public_address_needs_auth_or_an_explicit_opt_out() -> None:
    with Sentia(QUIET) as app:
        with pytest.raises(ConfigError, match="allow_unauthenticated"):
            app.serve(host="0.0.0.0", port=0)
        with app.serve(host="0.0.0.0", port=0, auth=TOKEN) as server:
            assert fetch(f"http://127.0.0.1:{server.address[1]}/metrics")[0] == 401
    cfg = {"monitor": {"system_metrics": False, "allow_unauthenticated": True, "http_port": 0}}
    with Sentia(cfg) as app, app.serve(host="0.0.0.0") as server:
        assert fetch(f"http://127.0.0.1:{server.address[1]}/health/live")[0] == 200


def test_tls_and_limits_from_the_config(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    certfile, keyfile = _certificate(tmp_path)
    cfg = {
        "monitor": {
            "system_metrics": False,
            "tls_certfile": certfile,
            "tls_keyfile": keyfile,
            "auth": {"token": TOKEN},
            "http_max_connections": 3,
            "http_header_timeout": "2s",
        }
    }
    client = ssl.create_default_context(cafile=certfile)
    with Sentia(cfg) as app, app.serve(port=0) as server:
        assert server.url.startswith("https://")
        assert fetch(server.url + "/metrics", context=client)[0] == 401
        ok = fetch(server.url + "/metrics", context=client, Authorization=f"Bearer {TOKEN}")
        assert ok[0] == 200
    with pytest.raises(ConfigError, match="monitor.tls_keyfile"):
        Sentia({"monitor": {"tls_certfile": certfile}})
    with pytest.raises(ConfigError, match="monitor.http_max_connections"):
        Sentia({"monitor": {"http_max_connections": 0}})


async def test_asgi_mounts_under_fastapi_with_the_configured_auth() -> None:
    fastapi = pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    with Sentia({**QUIET, "monitor": {"system_metrics": False, "auth": {"token": TOKEN}}}) as app:
        api = fastapi.FastAPI()
        api.mount("/monitor", app.asgi())
        app.monitor.counter("orders_total").inc()
        transport = httpx.ASGITransport(app=api)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
            assert (await client.get("/monitor/metrics")).status_code == 401
            r = await client.get("/monitor/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            assert r.status_code == 200 and "orders_total 1" in r.text


@pytest.mark.redis
def test_a_shared_breaker_opened_by_another_process_shows_in_health(
    redis_url: str, clock: ManualClock
) -> None:
    cfg: dict[str, Any] = {
        "redis_url": redis_url,
        "monitor": {"system_metrics": False},
        "breakers": {"partner": {"shared": True, "consecutive_failures": 2}},
    }
    with Sentia(cfg, clock=clock) as a, Sentia(cfg, clock=clock) as b:
        b.breaker("partner")  # built, never called
        assert b.health().components["breakers"].status.value == "healthy"
        for _ in range(2):
            with pytest.raises(ConnectionError):
                a.breaker("partner").call(_unreachable)
        assert a.breaker("partner").state is BreakerState.OPEN
        # b makes no call: its health reads the shared state, at most once per
        # sync_interval (1 s), so its mirror is still fresh at first
        assert b.health().components["breakers"].status.value == "healthy"
        clock.advance(1.0)
        assert b.health().components["breakers"].status.value == "degraded"
        assert b.breaker("partner").metrics().state is BreakerState.OPEN
        report = b.health()
        assert report.status.value == "degraded" and report.healthy


def _unreachable() -> None:
    raise ConnectionError("partner down")


def test_an_invalid_secret_is_named_but_never_printed() -> None:
    planted = 12345678901234
    with pytest.raises(ConfigError) as info:
        Sentia({"monitor": {"auth": {"token": planted}}})
    assert "monitor.auth.token" in str(info.value) and str(planted) not in str(info.value)
    with pytest.raises(ConfigError) as info:
        Sentia({"monitor": {"auth": {"token": "has spaces PLANTED"}}})
    assert "monitor.auth.token" in str(info.value) and "PLANTED" not in str(info.value)
    with pytest.raises(ConfigError, match="monitor.auth.username"):
        Sentia({"monitor": {"auth": {"username": "ops"}}})
    with pytest.raises(ConfigError, match=r"invalid monitor\.auth=.*no credentials for health"):
        Sentia({"monitor": {"auth": {"metrics_token": "only-metrics"}}})


def test_asgi_under_a_real_uvicorn_server() -> None:
    uvicorn = pytest.importorskip("uvicorn")
    import socket
    import threading

    with Sentia(QUIET) as app:
        app.monitor.counter("orders_total").inc(3)
        sock = socket.create_server(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app.asgi(), log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(200):  # until uvicorn answers (bounded)
                if server.started:
                    break
                threading.Event().wait(0.02)
            status, headers, body = fetch(url + "/metrics")
            assert status == 200 and b"orders_total 3" in body
            assert {k.lower(): v for k, v in headers.items()}["x-content-type-options"] == "nosniff"
            assert fetch(url + "/health/ready")[0] == 200
            assert fetch(url + "/metrics.json", Origin="https://evil.example")[0] == 403
        finally:
            server.should_exit = True
            thread.join(10)
            sock.close()
        assert not thread.is_alive()
