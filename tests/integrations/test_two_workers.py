"""Two uvicorn workers of one FastAPI service, switched to Redis by configuration alone.

``examples/fastapi_service.py`` runs under ``uvicorn --workers 2`` with
``SENTIA_REDIS_URL`` pointing at a real redis-server on loopback. The two
processes must share the rate limit (20/hour per client: exactly 20 of 40
requests pass, whichever worker takes them) and the cache (a product loaded
by one worker is served to the other from Redis: one load in total).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests._servers import _wait_for_port, free_port
from tests.test_cli import ENV, ROOT

pytestmark = pytest.mark.redis


def _get(port: int, path: str) -> tuple[int, Any]:
    # a new connection per request, so the kernel spreads them over both workers
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, json.loads(body) if body.startswith(b"{") else body
    finally:
        conn.close()


@pytest.fixture
def service(redis_url: str) -> Iterator[int]:
    port = free_port()
    env = {**ENV, "SENTIA_REDIS_URL": redis_url, "SENTIA_NAMESPACE": f"two-{uuid.uuid4().hex}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "examples.fastapi_service:api", "--workers", "2",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        _wait_for_port(port, proc=proc)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung worker
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _both_workers(port: int) -> dict[int, int]:
    """pid -> catalog loads, once both workers have answered (bounded: 400 requests)."""
    seen: dict[int, int] = {}
    for _ in range(400):
        status, doc = _get(port, "/worker")
        assert status == 200
        seen[doc["pid"]] = doc["loads"]
        if len(seen) == 2:
            return seen
    pytest.fail(f"only {len(seen)} worker answered 400 requests")


def test_two_workers_share_the_cache_and_the_rate_limit(service: int) -> None:
    port = service
    assert len(_both_workers(port)) == 2
    statuses = [_get(port, "/products/sku-7")[0] for _ in range(40)]
    assert statuses.count(200) == 20, statuses  # one 20/hour budget for both workers
    assert set(statuses) == {200, 429}
    loads = _both_workers(port)  # every process's catalog loads, both counted
    assert sum(loads.values()) == 1, loads  # loaded once, then served from Redis
    status, text = _get(port, "/metrics")  # never throttled, though the client is over budget
    assert status == 200
