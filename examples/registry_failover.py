"""Three HTTP instances behind a ServiceRegistry; one dies mid-run; no call fails.

Run: ``python examples/registry_failover.py``. With ``SENTIA_REDIS_URL`` set
(``redis://127.0.0.1:6379/0``) the provider and the consumer share the
registry through Redis, as two services on two machines would; without it
they share the in-process memory backend.

What happens:

1. three stdlib HTTP servers start on 127.0.0.1 (random ports);
2. a *provider* registry registers them with an HTTP health check on
   ``/health`` (probed every 0.1 s here; 30 s by default);
3. a *consumer* registry calls the service from four threads with
   ``registry.call(service, fn)``, which picks an instance (power of two
   choices), runs ``fn(instance)`` through that instance's circuit breaker, and
   on a failure retries on another instance;
4. after 100 calls one server is shut down: the calls that hit it fail over,
   the provider's health check marks it unhealthy, and the consumer stops
   sending it traffic;
5. per-instance statistics are printed.
"""

from __future__ import annotations

import http.client
import http.server
import os
import sys
import threading
import time

from sentia_core.registry import HealthStatus, HttpCheck, Instance, ServiceRegistry

CALLS = 400
THREADS = 4
KILL_AFTER = 100


class Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = f"hello from :{self.server.server_address[1]}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass  # quiet


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hung up: fine
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def start_server() -> http.server.ThreadingHTTPServer:
    server = QuietServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def get(instance: Instance) -> str:
    """The call we make to an instance: GET / over HTTP."""
    conn = http.client.HTTPConnection(instance.host, instance.port, timeout=2)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        body = response.read().decode()
        if response.status != 200:
            raise ConnectionError(f"HTTP {response.status} from {instance.address}")
        return body
    finally:
        conn.close()


def main() -> int:
    redis_url = os.environ.get("SENTIA_REDIS_URL")
    service = f"greeter-{os.getpid()}"
    print(f"registry backend: {'Redis at ' + redis_url if redis_url else 'in-process memory'}")

    servers = [start_server() for _ in range(3)]
    provider = ServiceRegistry(
        redis=redis_url,
        name="provider",
        health_check_interval=0.1,
        health_check_timeout=0.5,
        unhealthy_threshold=2,
        heartbeat_interval=1.0,
        ttl=3.0,
    ).start()
    consumer = ServiceRegistry(redis=redis_url, name="consumer", strategy="power_of_two").start()

    for server in servers:
        inst = provider.register(
            service,
            f"127.0.0.1:{server.server_address[1]}",
            health_check=HttpCheck("/health"),
            metadata={"version": "1.0"},
        )
        print(f"registered {inst.address} as {service}/{inst.id} (starting)")

    deadline = time.monotonic() + 10
    while len(consumer.instances(service)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    print(f"healthy and discovered: {[i.address for i in consumer.instances(service)]}")

    victim = servers[1]
    victim_address = f"127.0.0.1:{victim.server_address[1]}"
    done = {"ok": 0, "failed": 0}
    lock = threading.Lock()
    killed = threading.Event()

    def worker(n: int) -> None:
        for _ in range(n):
            try:
                consumer.call(service, get)
            except Exception as exc:
                print(f"  a call failed: {exc!r}")
                with lock:
                    done["failed"] += 1
                continue
            with lock:
                done["ok"] += 1
                total = done["ok"] + done["failed"]
            if total == KILL_AFTER and not killed.is_set():
                killed.set()
                victim.shutdown()
                victim.server_close()
                print(f"call {total}: shut down {victim_address} (no deregistration)")

    threads = [threading.Thread(target=worker, args=(CALLS // THREADS,)) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"{CALLS} calls from {THREADS} threads: {done['ok']} succeeded, {done['failed']} failed")

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        statuses = {i.address: i.status for i in consumer.instances(service, healthy_only=False)}
        if statuses.get(victim_address) is HealthStatus.UNHEALTHY:
            break
        time.sleep(0.05)
    print(f"health as the consumer sees it: { {a: str(s) for a, s in statuses.items()} }")

    stats = consumer.stats().services[service]
    print(f"\nper-instance stats ({stats.requests} requests, {stats.failures} failed attempts):")
    print(
        f"  {'address':<18} {'status':<10} {'req':>5} {'fail':>5} {'rej':>4} {'eject':>5}"
        f" {'mean ms':>8} {'p95 ms':>8}"
    )
    for s in stats.per_instance.values():
        print(
            f"  {s.address:<18} {s.status!s:<10} {s.requests:>5} {s.failures:>5}"
            f" {s.rejections:>4} {s.ejections:>5} {s.latency_mean * 1000:>8.2f}"
            f" {s.latency_p95 * 1000:>8.2f}"
        )

    consumer.close()
    provider.close()  # deregisters the instances it owns
    for server in servers:
        if server is not victim:
            server.shutdown()
            server.server_close()
    return 0 if done["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
