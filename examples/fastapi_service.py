"""A FastAPI service wired with the facade, as the README describes it.

    python examples/fastapi_service.py

One ``Sentia()`` (embedded; with ``SENTIA_REDIS_URL`` set, the same code
shares limits and cache through Redis) gives the service:

* ``@app.protect("partner", ...)`` around an outbound call to a flaky partner
  (retry on transient errors only, breaker, per-attempt deadline, fallback);
* ``app.async_cache.cached(...)`` on a catalog lookup, invalidated by tag;
* ``app.queries`` recording a SQLite repository (an N+1 gets reported at the
  handler's line, under the route template ``GET /customers/{customer_id}``);
* ``SentiaASGIMiddleware``: a rate limit per client, request metrics by route
  template, and ``/metrics`` / ``/health`` never throttled.

The script then plays a short client session against the app in-process
(httpx's ASGI transport: no socket) and prints what the monitor saw. Run it
under uvicorn instead with ``uvicorn examples.fastapi_service:api``.
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import threading
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException
from fastapi.responses import PlainTextResponse

from sentia_core import Sentia
from sentia_core.integrations import SentiaASGIMiddleware, wrap_connection

config: dict[str, Any] = {
    "rate_limits": {"api": "20/hour"},
    "services": {"partner": {"timeout": "2s", "retries": 2}},
    "sql": {"nplusone_threshold": 3},
    "monitor": {"sample_interval": 0.2},
}
if os.environ.get("SENTIA_REDIS_URL"):
    # Every worker process of the service must use the same namespace to share.
    config["redis_url"] = os.environ["SENTIA_REDIS_URL"]
    config["namespace"] = os.environ.get("SENTIA_NAMESPACE", "fastapi-example")

app = Sentia(config)  # the monitor samples in the background from here on

# -- a partner that fails now and then ------------------------------------------------

_rng = random.Random(5)


@app.protect("partner", fallback=lambda exc, sku: {"sku": sku, "stock": None})
async def partner_stock(sku: str) -> dict[str, Any]:
    await asyncio.sleep(0)  # the HTTP call would be here
    if _rng.random() < 0.3:
        raise ConnectionError("partner reset the connection")  # transient: retried
    return {"sku": sku, "stock": _rng.randint(0, 9)}


# -- a cached catalog ------------------------------------------------------------------


loads = 0  # catalog loads in this process (the cache spares the others)


@app.async_cache.cached(ttl=300, tags=("catalog",))
async def product(sku: str) -> dict[str, Any]:
    global loads
    loads += 1
    return {"sku": sku, "name": f"Widget {sku}"}


# -- a SQLite repository with an N+1 ---------------------------------------------------

_raw = sqlite3.connect(":memory:", check_same_thread=False)
_raw.executescript(
    """
    CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);
    CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, total REAL);
    """
)
_raw.executemany("INSERT INTO customers VALUES (?, ?)", [(i, f"c{i}") for i in range(1, 6)])
_raw.executemany(
    "INSERT INTO orders (customer_id, total) VALUES (?, ?)",
    [(c, 10.0 * n) for c in range(1, 6) for n in range(4)],
)
db = wrap_connection(_raw, app.queries)
_db_lock = threading.Lock()  # one sqlite3 connection shared by the event loop's tasks


def customer_orders(customer_id: int) -> dict[str, Any]:
    with _db_lock:
        ids = [r[0] for r in db.execute("SELECT id FROM orders WHERE customer_id = ?",
                                        (customer_id,)).fetchall()]  # fmt: skip
        totals = [db.execute("SELECT total FROM orders WHERE id = ?", (i,)).fetchone()[0]
                  for i in ids]  # an N+1: one query per order  # fmt: skip
    return {"customer": customer_id, "totals": totals}


# -- the web app -----------------------------------------------------------------------

api = FastAPI()


@api.get("/products/{sku}")
async def get_product(sku: str) -> dict[str, Any]:
    return {**(await product(sku)), **(await partner_stock(sku))}


@api.post("/products/invalidate")
async def invalidate() -> dict[str, int]:
    return {"dropped": await app.async_cache.invalidate_tags("catalog")}


@api.get("/customers/{customer_id}")
async def get_customer(customer_id: int) -> dict[str, Any]:
    if customer_id > 5:
        raise HTTPException(404)
    return customer_orders(customer_id)


@api.get("/metrics")
async def metrics() -> PlainTextResponse:
    return PlainTextResponse(app.monitor.prometheus_text())


@api.get("/health")
async def health() -> dict[str, Any]:
    return app.health().to_dict()


@api.get("/worker")
async def worker() -> dict[str, int]:
    """Which worker process answered, and how often its catalog loader ran."""
    return {"pid": os.getpid(), "loads": loads}


api.add_middleware(
    SentiaASGIMiddleware,
    monitor=app.monitor,
    queries=app.queries,
    limiter=app.limiter,
    rate_limit="api",
    exclude_paths=(*SentiaASGIMiddleware.DEFAULT_EXCLUDE_PATHS, "/worker"),
)


# -- a short client session ------------------------------------------------------------


async def main() -> None:
    transport = httpx.ASGITransport(app=api, client=("192.0.2.10", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        for i in range(4):  # warm the cache, then drop it by tag
            await client.get(f"/products/sku-{i}")
        dropped = (await client.post("/products/invalidate")).json()["dropped"]
        codes: dict[int, int] = {}
        for i in range(20):  # with the 5 above, more than the 20/hour the tier allows
            path = f"/products/sku-{i % 4}" if i % 3 else f"/customers/{1 + i % 7}"
            status = (await client.get(path)).status_code
            codes[status] = codes.get(status, 0) + 1
        scrapes = [(await client.get("/metrics")).status_code for _ in range(5)]
        health = (await client.get("/health")).json()
    print(f"invalidate_tags('catalog') dropped {dropped} cached products")
    print(f"20 more requests: {dict(sorted(codes.items()))} (429 = over the per-client limit)")
    print(f"/metrics scraped 5 times, never limited: {scrapes}")
    print(f"health: {health['status']}")

    # The monitor's sampler runs on its own: wait (bounded) for the rules' first evaluation.
    waited = threading.Event()
    for _ in range(100):
        if all(s.evaluated_at is not None for s in app.monitor.alerts()):
            break
        waited.wait(0.05)
    evaluated = sum(1 for s in app.monitor.alerts() if s.evaluated_at is not None)
    print(f"alert rules evaluated: {evaluated} of {len(app.monitor.alerts())}")
    print("requests by route template:")
    for line in app.monitor.prometheus_text().splitlines():
        if line.startswith(("app_requests_total{", "app_requests_limited_total{")):
            print(f"  {line}")
    text = app.monitor.prometheus_text()
    for metric in ("breaker_open", "cache_hits_total", "policy_fallbacks_total"):
        found = [line for line in text.splitlines() if line.startswith(metric + "{")]
        print(f"  {found[0] if found else metric + ': (none yet)'}")
    for report in app.queries.nplusone_reports():
        print(
            f"N+1 in {report.unit!r} at {report.call_site}: {report.count} x {report.fingerprint}"
        )
    await app.aclose()
    _raw.close()


if __name__ == "__main__":
    asyncio.run(main())
