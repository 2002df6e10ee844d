"""A small stdlib HTTP server for ``/metrics``, ``/metrics.json`` and ``/health``.

One ``ThreadingHTTPServer`` in a daemon thread; each request renders from the
monitor at request time. It binds 127.0.0.1 unless told otherwise (DESIGN.md,
rule 7), answers GET and HEAD only, and gzips ``/metrics`` when the scraper
accepts it. ``/health`` returns 503 when the report is unhealthy, so load
balancers and orchestrators can use it directly.
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["MetricsServer", "Routes", "start_server"]

_log = logging.getLogger("sentia_core.monitor")

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Routes:
    """What the server renders; the monitor supplies these callables."""

    def __init__(
        self,
        metrics: Callable[[], str],
        metrics_json: Callable[[], str],
        health: Callable[[], tuple[bool, str]],
        dashboard: Callable[[str, str], tuple[int, dict[str, str], bytes] | None] | None = None,
    ) -> None:
        self.metrics = metrics
        self.metrics_json = metrics_json
        self.health = health
        #: ``(path, query) -> (status, headers, body)`` or None: the dashboard's pages.
        self.dashboard = dashboard


class _Handler(BaseHTTPRequestHandler):
    server_version = "sentia-monitor"
    sys_version = ""
    routes: Routes  # set on a per-server subclass

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("http %s - " + format, self.address_string(), *args)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, *, head: bool) -> None:
        path, _, query = self.path.partition("?")
        extra: dict[str, str] = {}
        try:
            if path == "/metrics":
                status, ctype, body = 200, PROMETHEUS_CONTENT_TYPE, self.routes.metrics().encode()
            elif path == "/metrics.json":
                status, ctype = 200, "application/json"
                body = self.routes.metrics_json().encode()
            elif path == "/health":
                ok, text = self.routes.health()
                status, ctype, body = (200 if ok else 503), "application/json", text.encode()
            elif self.routes.dashboard is not None and (page := self.routes.dashboard(path, query)):
                status, extra, body = page
                ctype = extra["Content-Type"]
            elif path == "/":
                status, ctype = 200, "text/html; charset=utf-8"
                body = (
                    b"<html><body><h1>sentia_core monitor</h1><ul>"
                    b'<li><a href="/metrics">/metrics</a></li>'
                    b'<li><a href="/metrics.json">/metrics.json</a></li>'
                    b'<li><a href="/health">/health</a></li></ul></body></html>'
                )
            else:
                status, ctype, body = 404, "text/plain; charset=utf-8", b"not found\n"
        except Exception as exc:  # a renderer failed: report it, keep serving
            _log.exception("monitor endpoint %s failed", path)
            status, ctype = 500, "application/json"
            body = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()
        headers = {"Content-Type": ctype, "Cache-Control": "no-store", **extra}
        if (
            status == 200
            and len(body) > 1024
            and "gzip" in (self.headers.get("Accept-Encoding") or "")
        ):
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _refuse(self) -> None:
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse


class MetricsServer:
    """A running endpoint server: :attr:`address`, :attr:`url`, :meth:`stop`.

    Also a context manager that stops the server on exit.
    """

    def __init__(self, httpd: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread
        host, port = httpd.server_address[:2]
        #: (host, port) the server listens on.
        self.address: tuple[str, int] = (str(host), int(port))
        self._stopped = False
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """``http://host:port`` (IPv6 hosts in brackets)."""
        host, port = self.address
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    @property
    def running(self) -> bool:
        """False once stopped."""
        return not self._stopped

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the socket (idempotent)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"MetricsServer({self.url!r}, running={self.running})"


def start_server(routes: Routes, host: str, port: int) -> MetricsServer:
    """Bind ``host:port`` (0: any free port) and serve ``routes`` from a daemon thread."""
    handler = type("_BoundHandler", (_Handler,), {"routes": routes})
    server_cls: type[ThreadingHTTPServer] = ThreadingHTTPServer
    if ":" in host:
        import socket

        server_cls = type("_V6Server", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
    httpd = server_cls((host, port), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(
        target=httpd.serve_forever,
        kwargs={"poll_interval": 0.2},
        name=f"sentia-monitor-http-{httpd.server_address[1]}",
        daemon=True,
    )
    thread.start()
    return MetricsServer(httpd, thread)
