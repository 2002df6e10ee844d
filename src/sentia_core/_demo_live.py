"""``sentia demo --dashboard``: the demo's simulated service, kept running behind the dashboard.

:class:`LiveService` drives every component a little on each :meth:`LiveService.step`:
HTTP requests through :class:`~sentia_core.integrations.SentiaWSGIMiddleware`
(route templates, a rate-limited tier, a flaky route), a partner API that
goes down and comes back (its breaker opens, probes and closes), a catalog
cache with evictions, a SQLite repository with an N+1, and a service
registry with a misbehaving instance that outlier detection ejects. The
browser test and the screenshot script drive the same class on a ManualClock.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from ._demo_service import CUSTOMERS, PRODUCTS
from ._demo_service import build_db as _build_db
from ._demo_service import orders_page as _orders_page

__all__ = ["LiveService", "live_config", "serve_dashboard"]

#: Requests per step, per route template.
_ROUTES = (("/products/{id}", 12), ("/customers/{id}/orders", 3), ("/partner/orders/{id}", 4),
           ("/checkout", 2))  # fmt: skip


def live_config(namespace: str) -> dict[str, Any]:
    """The facade configuration the live service expects."""
    return {
        "namespace": namespace,
        "monitor": {"system_metrics": True},
        "breakers": {"partner": {"consecutive_failures": 3, "reset_timeout": 5.0}},
        "services": {"partner": {"timeout": 1.0}},
        "rate_limits": {"api": "30/minute"},
        "sql": {"slow_query_threshold": 0.002, "nplusone_threshold": 5},
    }


class LiveService:
    """A small simulated service on a :class:`~sentia_core.Sentia` (see the module docstring).

    Args:
        app: a Sentia built from :func:`live_config`.
        seed: the simulation's random seed.
    """

    def __init__(self, app: Any, seed: int = 5) -> None:
        from .integrations import SentiaWSGIMiddleware, wrap_connection

        self.app = app
        self.steps = 0
        #: the DDL of the verified indexes created.
        self.applied: list[str] = []
        self._rng = random.Random(seed)
        self._raw = _build_db()
        self._db = wrap_connection(self._raw, app.queries)
        self.catalog = app.named_cache("catalog", max_items=150)
        self._weights = [1 / (i + 1) for i in range(PRODUCTS)]
        self._partner_down = False
        self._partner = app.protect("partner", fallback=lambda exc, oid: None)(self._fetch)
        registry = app.registry
        for i in range(3):
            registry.register("inventory", f"10.0.0.{i + 1}:8080", instance_id=f"inv-{i + 1}")
        registry.register("payments", "10.0.1.1:8443", instance_id="pay-1")
        self._wsgi = SentiaWSGIMiddleware.from_sentia(self._handle, app, rate_limit="api")

    def close(self) -> None:
        """Close the demo's database."""
        self._raw.close()

    # ------------------------------------------------------------------ the "service"

    def _fetch(self, order_id: int) -> dict[str, Any]:
        if self._partner_down:
            raise ConnectionError("partner unavailable")
        return {"order": order_id, "status": "shipped"}

    def _inventory(self, instance: Any) -> int:
        if instance.id == "inv-3" and self._rng.random() < 0.7:
            raise ConnectionError(f"{instance.address} reset the connection")
        return self._rng.randint(0, 50)

    def _handle(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        route = environ["sentia.route"]
        status = "200 OK"
        if route == "/products/{id}":
            pid = self._rng.choices(range(PRODUCTS), self._weights)[0]
            self.catalog.get_or_set(f"p{pid}", lambda: {"id": pid, "price": pid * 1.07}, ttl=120)
        elif route == "/customers/{id}/orders":
            _orders_page(self._db, self._rng.randint(1, CUSTOMERS))
        elif route == "/partner/orders/{id}":
            if self._partner(self._rng.randint(1, 10_000)) is None:
                status = "502 Bad Gateway"
        else:
            try:
                self.app.registry.call("inventory", self._inventory)
            except Exception:
                status = "503 Service Unavailable"
        start_response(status, [("Content-Type", "text/plain")])
        return [b"ok"]

    def _request(self, route: str, client: str) -> None:
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": route, "REMOTE_ADDR": client,
                   "sentia.route": route}  # fmt: skip
        body = self._wsgi(environ, lambda status, headers, exc_info=None: None)
        close = getattr(body, "close", None)
        if close is not None:
            close()

    def step(self) -> None:
        """One round of traffic on every component (call ``monitor.tick()`` between steps)."""
        self.steps += 1
        phase = self.steps % 40
        self._partner_down = 12 <= phase < 20  # an outage every 40 steps
        self.app.queries.record(
            "SELECT * FROM orders WHERE status = 'open' ORDER BY created_at",
            0.004 + self._rng.random() * 0.01,
        )
        for route, count in _ROUTES:
            for _ in range(count + self._rng.randint(0, 2)):
                self._request(route, f"192.0.2.{self._rng.randint(1, 4)}")
        self.app.registry.run_once()
        if self.steps == 3:  # ask the planner about the advisor's indexes, create the good ones
            for v in self.app.verify_indexes(self._raw):
                if v.accepted:
                    self._raw.execute(v.suggestion.ddl)
                    self.applied.append(v.suggestion.ddl)


def serve_dashboard(
    app: Any, *, host: str, port: int, out: TextIO, interval: float = 2.0,
    stop: threading.Event | None = None,
) -> int:  # fmt: skip
    """Run :class:`LiveService` and serve the dashboard until SIGINT/SIGTERM (or ``stop``)."""
    service = LiveService(app)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    service.step()  # the page has something to show from the first request
    app.monitor.tick()
    server = app.monitor.serve(host=host, port=port)
    out.write(f"\ndashboard: {server.url}/  (Ctrl-C to stop)\n")
    out.flush()
    try:
        while not stop.is_set():
            started = time.monotonic()
            service.step()
            app.monitor.tick()
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
    finally:
        server.stop()
        service.close()
    return 0
