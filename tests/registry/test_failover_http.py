"""End to end: three real HTTP instances, health-checked over HTTP, one shut down mid-load."""

from __future__ import annotations

import http.client
import http.server
import threading
from collections.abc import Iterator

import pytest

from sentia_core.registry import HealthStatus, HttpCheck, Instance, ServiceRegistry

from .conftest import wait_for


class _Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = f"hello from {self.server.server_address[1]}".encode()  # type: ignore[index]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Node:
    def __init__(self) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.alive = True

    def shut_down(self) -> None:
        if self.alive:
            self.alive = False
            self.server.shutdown()
            self.server.server_close()
            self.thread.join()


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    made = [Node() for _ in range(3)]
    yield made
    for n in made:
        n.shut_down()


def get(inst: Instance) -> str:
    conn = http.client.HTTPConnection(inst.host, inst.port, timeout=2)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        body = resp.read().decode()
        if resp.status != 200:
            raise ConnectionError(f"HTTP {resp.status}")
        return body
    finally:
        conn.close()


@pytest.mark.redis
def test_calls_keep_succeeding_when_an_instance_dies(redis_url: str, nodes: list[Node]) -> None:
    with (
        ServiceRegistry(
            redis=redis_url,
            health_check_interval=0.05,
            health_check_timeout=0.5,
            unhealthy_threshold=2,
            heartbeat_interval=0.5,
            ttl=3,
            name="provider",
        ) as provider,
        ServiceRegistry(redis=redis_url, strategy="power_of_two", name="consumer") as consumer,
    ):
        for n in nodes:
            provider.register("greeter", f"127.0.0.1:{n.port}", health_check=HttpCheck("/"))
        wait_for(lambda: len(consumer.instances("greeter")) == 3, what="three healthy")
        victim = nodes[1]
        errors: list[BaseException] = []
        bodies: list[str] = []
        lock = threading.Lock()
        progress = threading.Semaphore(0)

        def worker() -> None:
            for k in range(60):
                try:
                    body = consumer.call("greeter", get)
                except BaseException as exc:
                    errors.append(exc)
                else:
                    with lock:
                        bodies.append(body)
                if k == 20:
                    progress.release()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for _ in threads:
            progress.acquire()  # every worker is a third of the way through
        victim.shut_down()
        for t in threads:
            t.join()
        assert errors == []
        assert len(bodies) == 240
        # the provider's health check notices, and the consumer stops routing there
        dead = f"127.0.0.1:{victim.port}"

        def marked_unhealthy() -> bool:
            return any(
                i.address == dead and i.status is HealthStatus.UNHEALTHY
                for i in consumer.instances("greeter", healthy_only=False)
            )

        wait_for(marked_unhealthy, what="health check marks the dead node")
        assert {consumer.call("greeter", get) for _ in range(30)} <= {
            f"hello from {n.port}" for n in nodes if n.alive
        }
        per = consumer.stats().services["greeter"].per_instance
        assert all(s.outstanding == 0 for s in per.values())
        assert sum(s.requests for s in per.values()) >= 270
