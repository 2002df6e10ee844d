"""Fixtures for the monitor tests: a ManualClock monitor, a webhook receiver, an SMTP sink."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sentia_core.monitor import PerformanceMonitor
from sentia_core.testing import ManualClock


@pytest.fixture
def monitor(clock: ManualClock) -> Iterator[PerformanceMonitor]:
    """A monitor on a ManualClock, without system sampling (fast, deterministic)."""
    m = PerformanceMonitor(clock=clock, system_metrics=False)
    yield m
    m.close()


class Receiver:
    """A loopback HTTP server recording JSON POSTs; answers ``status`` (changeable)."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self.paths: list[str] = []
        self.status = 200
        self.received = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                receiver.paths.append(self.path)
                receiver.bodies.append(json.loads(raw))
                status = receiver.status
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                receiver.received.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        host, port = self.httpd.server_address[:2]
        self.url = f"http://{host}:{port}/hook/secret-token"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1 (a free port)."""
    r = Receiver()
    yield r
    r.stop()


class SmtpSink:
    """An aiosmtpd server on loopback keeping every message it accepts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        from tests._servers import free_port

        self.messages: list[Any] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                sink.messages.append(envelope)
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A local SMTP server (aiosmtpd) on 127.0.0.1."""
    s = SmtpSink()
    yield s
    s.stop()
