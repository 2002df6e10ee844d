"""The monitor's route table: every path ``serve()`` and ``asgi()`` answer.

This is the one place routes are listed. A new page, JSON endpoint or
static asset is one :class:`~._routing.Route` added to :func:`monitor_routes`
(kind ``"page"`` for HTML, ``"data"`` for JSON, ``"static"`` for same-origin
assets; scope ``"pages"`` unless it is metrics or health).

Health has three paths: ``/health/live`` (the process answers; runs no
check), ``/health/ready`` (ready to serve: 503 only when a critical check
fails, 200 when healthy or degraded) and ``/health`` (the full report in the
original deployment's shape, with the same status code as readiness).
"""

from __future__ import annotations

import json
import math
from typing import Any, Protocol

from ._dashboard import dashboard_response
from ._health import HealthReport
from ._routing import Request, Response, Route


class Monitored(Protocol):
    """What the routes read from a monitor (a PerformanceMonitor is one)."""

    def prometheus_text(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...

    def health(self) -> HealthReport: ...

    def dashboard(self, window: str = ...) -> dict[str, Any]: ...


__all__ = ["PROMETHEUS_CONTENT_TYPE", "monitor_routes"]

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def clean(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def _dumps(doc: Any) -> str:
    return json.dumps(clean(doc), allow_nan=False, default=str)


def monitor_routes(monitor: Monitored) -> list[Route]:
    """The standard routes of ``monitor`` (renderers are looked up per request)."""

    def metrics(_: Request) -> Response:
        return Response(200, monitor.prometheus_text().encode(), PROMETHEUS_CONTENT_TYPE)

    def metrics_json(_: Request) -> Response:
        return Response.json(_dumps(monitor.to_dict()))

    def health(_: Request) -> Response:
        report = monitor.health()
        return Response.json(_dumps(report.to_dict()), 200 if report.healthy else 503)

    def ready(_: Request) -> Response:
        report = monitor.health()
        doc = {
            "status": report.status.value,
            "ready": report.healthy,
            "checked_at": report.checked_at,
            "components": {n: c.status.value for n, c in report.components.items()},
        }
        return Response.json(_dumps(doc), 200 if report.healthy else 503)

    def live(_: Request) -> Response:
        return Response.json('{"status": "alive"}')

    def dashboard(req: Request) -> Response:
        # the page, its JSON and its static assets (monitor/_dashboard.py); the
        # router adds the security headers every response carries
        found = dashboard_response(req.path, req.query, monitor.dashboard)
        if found is None:
            return Response.text("not found", 404)
        status, headers, body = found
        return Response(status, body, headers["Content-Type"])

    return [
        Route("/metrics", metrics, kind="data", scope="metrics"),
        Route("/metrics.json", metrics_json, kind="data", scope="metrics"),
        Route("/health", health, kind="data", scope="health"),
        Route("/health/ready", ready, kind="data", scope="health"),
        Route("/health/live", live, kind="data", scope="live", blocking=False),
        Route("/", dashboard, kind="page", scope="pages"),
        Route("/dashboard", dashboard, kind="page", scope="pages"),
        Route("/dashboard.json", dashboard, kind="data", scope="pages"),
        Route("/static/", dashboard, kind="static", scope="pages"),
    ]
