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
from typing import TYPE_CHECKING, Any

from ._routing import Request, Response, Route

if TYPE_CHECKING:
    from ._monitor import PerformanceMonitor

__all__ = ["PROMETHEUS_CONTENT_TYPE", "monitor_routes"]

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_INDEX = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    "<title>sentia_core monitor</title></head><body><h1>sentia_core monitor</h1><ul>"
    '<li><a href="metrics">/metrics</a></li>'
    '<li><a href="metrics.json">/metrics.json</a></li>'
    '<li><a href="health">/health</a></li>'
    '<li><a href="health/ready">/health/ready</a></li>'
    '<li><a href="health/live">/health/live</a></li>'
    "</ul></body></html>"
)


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


def monitor_routes(monitor: PerformanceMonitor) -> list[Route]:
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

    def index(_: Request) -> Response:
        return Response.html(_INDEX)

    return [
        Route("/metrics", metrics, kind="data", scope="metrics"),
        Route("/metrics.json", metrics_json, kind="data", scope="metrics"),
        Route("/health", health, kind="data", scope="health"),
        Route("/health/ready", ready, kind="data", scope="health"),
        Route("/health/live", live, kind="data", scope="live", blocking=False),
        Route("/", index, kind="page", scope="pages"),
    ]
