"""The service benchmark's gateway: the original deployment's routes, in miniature.

    python benchmarks/service/gateway.py --stack none|peers|sentia --port P --db PATH
        --auth URL --analytics URL,URL,URL [--redis URL]

One ASGI app (Starlette, served by uvicorn on 127.0.0.1) whose routes are the
same for every stack; only the resilience, caching, rate-limiting and metrics
layer under them changes:

==========================  ==================================================
``GET /products/{id}``      the catalog, read through a cache (tag ``catalog``)
``GET /customers/{id}/orders``  order history: one query for the orders, one
                            per order for its items (an N+1)
``GET /auth/check``         a call to the auth partner
``GET /analytics``          a call to one of the analytics partner's instances
``POST /admin/invalidate/{tag}``  tag invalidation
==========================  ==================================================

The stacks:

``none``
    plain httpx and direct database calls; no cache, retry, breaker or limit.
``peers``
    what a Python engineer assembles today: tenacity (retry) + aiobreaker
    (breaker) + ``asyncio.timeout`` around httpx, cashews on Redis with its
    client-side L1 and tags, limits' fixed window on Redis, prometheus_client
    histograms per route.
``sentia``
    sentia_core through its facade: ``app.protect`` (retry, breaker, timeout),
    ``app.async_cache`` (L1 + Redis L2, tags), the registry for the analytics
    instances (failover, outlier ejection), ``SentiaASGIMiddleware`` (rate
    limit, request metrics, units of work for N+1 detection).

Every stack gets the same settings where they have one: 2 retries with
jittered exponential back-off from 50 ms on connection errors and 5xx, a 2 s
per-attempt timeout, a breaker opening after 5 consecutive failures with a
5 s reset timeout, a 300 s cache TTL, and a limit far above the offered load
(so the limiter's cost is measured, not its denials).

The rig reads ``GET /_bench/stats`` (request and loader counts, whatever the
stack) and ``GET /_bench/series`` (every request's end time, duration and
status, recorded by an outer middleware that is the same for all stacks), and
asks the sentia stack for verified index advice at ``POST /_bench/advice``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

RETRIES = 2
ATTEMPT_TIMEOUT = 2.0
FAILURES_TO_OPEN = 5
RESET_TIMEOUT = 5.0
CACHE_TTL = 300
LIMIT = "1000000/minute"


class PartnerError(Exception):
    """A partner answered 5xx (retried, and counted by breakers).

    It carries ``status_code`` as an HTTP client's error would, which is how
    sentia_core's default ``retry_on`` ("transient") recognises a 503.
    """

    def __init__(self, status_code: int) -> None:
        super().__init__(f"partner answered {status_code}")
        self.status_code = status_code


def category(pid: int) -> str:
    """A product's category, as the database has it (tags are per category)."""
    return f"c{pid % 40}"


def check(response: httpx.Response) -> Any:
    if response.status_code >= 500:
        raise PartnerError(response.status_code)
    return response.json()


# --------------------------------------------------------------------------- data


class Store:
    """The database calls every stack makes, on one sqlite3 connection."""

    def __init__(self, path: str, wrap: Callable[[sqlite3.Connection], Any] | None = None) -> None:
        self.raw = sqlite3.connect(path, check_same_thread=False, timeout=30)
        self.db = wrap(self.raw) if wrap else self.raw
        self.loads = 0

    def product(self, pid: int) -> dict[str, Any]:
        self.loads += 1
        row = self.db.execute(
            "SELECT p.id, p.name, p.price, p.category,"
            " (SELECT count(*) FROM order_items i WHERE i.product_id = p.id) AS sold"
            " FROM products p WHERE p.id = ?",
            (pid,),
        ).fetchone()
        if row is None:
            return {"id": pid, "missing": True}
        return {"id": row[0], "name": row[1], "price": row[2], "category": row[3], "sold": row[4]}

    def orders(self, cid: int) -> list[dict[str, Any]]:
        orders = self.db.execute(
            "SELECT id, placed_at FROM orders WHERE customer_id = ? ORDER BY id", (cid,)
        ).fetchall()
        result = []
        for oid, placed in orders:  # the N+1: one query per order
            items = self.db.execute(
                "SELECT product_id, quantity FROM order_items WHERE order_id = ?", (oid,)
            ).fetchall()
            result.append({"id": oid, "placed_at": placed, "items": [list(i) for i in items]})
        return result


# --------------------------------------------------------------------------- stacks


class Stack:
    """What each stack provides to the routes."""

    name = "base"

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(ATTEMPT_TIMEOUT * 2),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=100),
        )
        self.analytics_urls = args.analytics.split(",")
        self.rng = random.Random(7)
        self.store = Store(args.db)

    def middleware(self, app: Any) -> Any:
        return app

    async def startup(self) -> None:
        return None

    async def product(self, pid: int) -> Any:
        return self.store.product(pid)

    async def orders(self, cid: int) -> Any:
        return self.store.orders(cid)

    async def auth(self) -> Any:
        return check(await self.client.get(self.args.auth + "/check"))

    async def analytics(self) -> Any:
        url = self.rng.choice(self.analytics_urls)
        return check(await self.client.get(url + "/report"))

    async def invalidate(self, tag: str) -> int:
        return 0

    def extra_stats(self) -> dict[str, Any]:
        return {}


class NoneStack(Stack):
    name = "none"


class PeersStack(Stack):
    """tenacity + aiobreaker + cashews + limits + prometheus_client."""

    name = "peers"

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        from datetime import timedelta

        import aiobreaker
        import tenacity
        from cashews import cache
        from limits import parse
        from limits.aio.storage import RedisStorage
        from limits.aio.strategies import FixedWindowRateLimiter
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.cache = cache
        cache.setup(args.redis, client_side=True)
        cache.register_tag("catalog", "product:{cat}:{pid}")
        cache.register_tag("category:{cat}", "product:{cat}:{pid}")
        self._cached_product = cache(
            ttl=CACHE_TTL, key="product:{cat}:{pid}", tags=("catalog", "category:{cat}")
        )(self._load_product)
        self.breakers = {
            name: aiobreaker.CircuitBreaker(
                fail_max=FAILURES_TO_OPEN, timeout_duration=timedelta(seconds=RESET_TIMEOUT)
            )
            for name in ["auth", *self.analytics_urls]
        }
        self.retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(RETRIES + 1),
            wait=tenacity.wait_exponential_jitter(multiplier=0.05, max=1.0),
            retry=tenacity.retry_if_exception_type((httpx.TransportError, PartnerError)),
            reraise=True,
        )
        storage_url = args.redis.replace("redis://", "async+redis://", 1)
        self.limiter = FixedWindowRateLimiter(RedisStorage(storage_url, implementation="redispy"))
        self.limit = parse(LIMIT)
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Request latency.",
            ["route", "method"],
            registry=self.registry,
        )
        self.requests = Counter(
            "http_requests_total",
            "Requests.",
            ["route", "method", "status"],
            registry=self.registry,
        )

    async def _load_product(self, cat: str, pid: int) -> Any:
        return self.store.product(pid)

    async def product(self, pid: int) -> Any:
        return await self._cached_product(cat=category(pid), pid=pid)

    async def _guarded(self, breaker_name: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        breaker = self.breakers[breaker_name]

        async def attempt() -> Any:
            async with asyncio.timeout(ATTEMPT_TIMEOUT):
                return await fn()

        return await breaker.call_async(attempt)

    async def auth(self) -> Any:
        async def once() -> Any:
            return check(await self.client.get(self.args.auth + "/check"))

        async for attempt in self.retrying:
            with attempt:
                return await self._guarded("auth", once)
        raise AssertionError("unreachable")

    async def analytics(self) -> Any:
        async for attempt in self.retrying:
            with attempt:
                url = self.rng.choice(self.analytics_urls)  # another instance on each attempt

                async def once(url: str = url) -> Any:
                    return check(await self.client.get(url + "/report"))

                return await self._guarded(url, once)
        raise AssertionError("unreachable")

    async def invalidate(self, tag: str) -> int:
        await self.cache.delete_tags(tag)
        return 1

    def middleware(self, app: Any) -> Any:
        stack = self

        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http" or scope["path"].startswith("/_bench"):
                await app(scope, receive, send)
                return
            client = (scope.get("client") or ("unknown", 0))[0]
            if not await stack.limiter.hit(stack.limit, "api", client):
                await JSONResponse({"error": "rate limited"}, status_code=429)(scope, receive, send)
                return
            started = time.perf_counter()
            status = 500

            async def send_wrapper(message: Any) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_wrapper)
            finally:
                route = scope.get("route")
                name = getattr(route, "path", scope["path"])
                stack.latency.labels(name, scope["method"]).observe(time.perf_counter() - started)
                stack.requests.labels(name, scope["method"], str(status)).inc()

        return asgi


class SentiaStack(Stack):
    """sentia_core through the facade."""

    name = "sentia"

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        from sentia_core import Sentia
        from sentia_core.integrations import wrap_connection

        retry = {"timeout": ATTEMPT_TIMEOUT, "retries": RETRIES}
        self.app = Sentia(
            {
                "redis_url": args.redis,
                "namespace": f"bench{args.port}",
                "breaker": {
                    "consecutive_failures": FAILURES_TO_OPEN,
                    "reset_timeout": RESET_TIMEOUT,
                },
                "services": {"auth": retry, "analytics": retry},
                "rate_limits": {"api": LIMIT},
                "cache": {"ttl": CACHE_TTL},
                "sql": {"slow_query_threshold": 0.05},
            }
        )
        self.store = Store(args.db, wrap=lambda raw: wrap_connection(raw, self.app.queries))
        self.cache = self.app.async_cache
        self._auth = self.app.protect("auth")(self._auth_once)
        registry = self.app.registry
        for url in self.analytics_urls:
            registry.register("analytics", url)
        self.registry = registry

    async def _auth_once(self) -> Any:
        return check(await self.client.get(self.args.auth + "/check"))

    async def product(self, pid: int) -> Any:
        cat = category(pid)
        return await self.cache.get_or_set(
            f"product:{cat}:{pid}",
            lambda: self.store.product(pid),
            tags=("catalog", f"category:{cat}"),
        )

    async def auth(self) -> Any:
        return await self._auth()

    async def analytics(self) -> Any:
        async def once(instance: Any) -> Any:
            return check(await self.client.get(instance.address + "/report"))

        return await self.registry.acall("analytics", once, retries=RETRIES)

    async def invalidate(self, tag: str) -> int:
        return int(await self.cache.invalidate_tags(tag))

    def middleware(self, app: Any) -> Any:
        from sentia_core.integrations import SentiaASGIMiddleware

        return SentiaASGIMiddleware.from_sentia(app, self.app, rate_limit="api")

    def advice(self) -> list[str]:
        """Suggest, verify and create indexes (in a worker thread, on its own connection)."""
        queries = self.app.queries
        conn = sqlite3.connect(self.args.db, timeout=30)
        try:
            suggestions = queries.suggest_indexes(connection=conn)
            verified = queries.verify(suggestions, conn)
            applied = queries.apply(verified, conn, dry_run=False, min_calls_per_hour=1)
        finally:
            conn.close()
        return [a.ddl for a in applied if a.status == "created"]

    def extra_stats(self) -> dict[str, Any]:
        s = self.cache.stats()
        return {"nplusone": len(self.app.queries.nplusone_reports()), "cache": repr(s)[:400]}


STACKS: dict[str, type[Stack]] = {"none": NoneStack, "peers": PeersStack, "sentia": SentiaStack}


# --------------------------------------------------------------------------- recording


class Recorder:
    """Every request's (end, duration, status), the same for every stack."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.ends: list[float] = []
        self.durations: list[float] = []
        self.statuses: list[int] = []
        self.routes: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_bench"):
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 500

        async def send_wrapper(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            end = time.monotonic()
            self.ends.append(end)
            self.durations.append(end - started)
            self.statuses.append(status)
            self.routes.append(scope["path"].split("/")[1])

    def since(self, start: float) -> dict[str, list[Any]]:
        import bisect

        i = bisect.bisect_left(self.ends, start)
        return {
            "end": self.ends[i:],
            "duration": self.durations[i:],
            "status": self.statuses[i:],
            "route": self.routes[i:],
        }


def build(args: argparse.Namespace) -> Any:
    stack = STACKS[args.stack](args)

    async def guarded(fn: Callable[[], Awaitable[Any]]) -> Response:
        try:
            return JSONResponse(await fn())
        except Exception as exc:  # a failed dependency is a 503, whatever the stack
            return JSONResponse({"error": type(exc).__name__}, status_code=503)

    async def product(request: Request) -> Response:
        pid = int(request.path_params["pid"])
        return await guarded(lambda: stack.product(pid))

    async def orders(request: Request) -> Response:
        cid = int(request.path_params["cid"])
        return await guarded(lambda: stack.orders(cid))

    async def auth(request: Request) -> Response:
        return await guarded(stack.auth)

    async def analytics(request: Request) -> Response:
        return await guarded(stack.analytics)

    async def invalidate(request: Request) -> Response:
        tag = request.path_params["tag"]
        return await guarded(lambda: stack.invalidate(tag))

    async def stats(request: Request) -> Response:
        return JSONResponse(
            {"stack": stack.name, "loads": stack.store.loads, **stack.extra_stats()}
        )

    async def series(request: Request) -> Response:
        start = float(request.query_params.get("since", "0"))
        return Response(json.dumps(recorder.since(start)), media_type="application/json")

    async def advice(request: Request) -> Response:
        if not isinstance(stack, SentiaStack):
            return JSONResponse({"error": "only the sentia stack advises"}, status_code=404)
        return JSONResponse({"applied": await asyncio.to_thread(stack.advice)})

    async def apply(request: Request) -> Response:
        ddl = (await request.json())["ddl"]
        for statement in ddl:
            stack.store.raw.execute(statement)
        stack.store.raw.commit()
        return JSONResponse({"applied": ddl})

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        await stack.startup()
        yield

    app = Starlette(
        routes=[
            Route("/products/{pid:int}", product),
            Route("/customers/{cid:int}/orders", orders),
            Route("/auth/check", auth),
            Route("/analytics", analytics),
            Route("/admin/invalidate/{tag}", invalidate, methods=["POST"]),
            Route("/_bench/stats", stats),
            Route("/_bench/series", series),
            Route("/_bench/advice", advice, methods=["POST"]),
            Route("/_bench/apply", apply, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    recorder = Recorder(stack.middleware(app))
    return recorder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--stack", choices=sorted(STACKS), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--auth", required=True)
    parser.add_argument("--analytics", required=True)
    parser.add_argument("--redis", default=None)
    args = parser.parse_args()
    uvicorn.run(
        build(args),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        backlog=2048,
    )


if __name__ == "__main__":
    main()
