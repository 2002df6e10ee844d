"""A circuit breaker around a flaky outbound HTTP call.

The "dependency" is a stdlib HTTP server on 127.0.0.1 in a thread; we switch
it between healthy, failing (503) and slow, and watch the breaker trip,
reject calls at once, probe with a trial call, re-open with a longer timeout,
and recover. A 503 counts as a failure without raising (``failure_predicate``);
connection errors and timeouts count through ``record_exceptions``.

With ``SENTIA_REDIS_URL`` set, a last part shows two breakers (two processes)
sharing one state through Redis.

Run: ``python examples/breaker_outbound_http.py``
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import os
import threading
import time
from typing import Any

from sentia_core.breaker import (
    BreakerState,
    BreakerStateChanged,
    CircuitBreaker,
    RedisStateStore,
)
from sentia_core.errors import CircuitOpenError

START = time.monotonic()


def stamp() -> str:
    return f"[{time.monotonic() - START:5.2f}s]"


class Dependency(http.server.BaseHTTPRequestHandler):
    """GET / answers according to the server's current mode."""

    mode = "healthy"
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        if self.mode == "down":
            self.send_response(503)
            body = b"service unavailable"
        else:
            if self.mode == "slow":
                time.sleep(0.3)
            self.send_response(200)
            body = b"ok"
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)  # (the client may have given up: its timeout)

    def log_message(self, *args: Any) -> None:  # keep the output readable
        return


def start_dependency() -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Dependency)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def get(port: int) -> http.client.HTTPResponse:
    """The outbound call: a plain GET with a short timeout."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        response.read()
        return response
    finally:
        conn.close()


def on_event(event: object) -> None:
    if isinstance(event, BreakerStateChanged):
        print(f"{stamp()}   transition {event.from_state} -> {event.to_state}: {event.reason}")


def attempt(breaker: CircuitBreaker, port: int, label: str) -> None:
    t0 = time.perf_counter()
    try:
        response = breaker.call(get, port)
        outcome = f"HTTP {response.status}"
    except CircuitOpenError as e:
        outcome = f"rejected at once ({e.state}, retry after {e.retry_after:.2f}s)"
    except (OSError, TimeoutError) as e:
        outcome = f"error {type(e).__name__}"
    took = (time.perf_counter() - t0) * 1000
    print(f"{stamp()} {label:<10} {outcome:<48} {took:7.2f} ms")


def main() -> int:
    server = start_dependency()
    port = server.server_address[1]
    breaker = CircuitBreaker(
        "partner-api",
        consecutive_failures=3,
        failure_rate_threshold=0.5,
        minimum_calls=4,
        window_size=10,
        slow_call_duration=0.25,
        slow_call_rate_threshold=0.5,
        reset_timeout=0.5,
        reset_timeout_multiplier=2.0,
        max_reset_timeout=2.0,
        record_exceptions=(OSError, TimeoutError),
        failure_predicate=lambda response: response.status >= 500,
    )
    breaker.add_listener(on_event)

    print("1. the dependency is healthy")
    for _ in range(4):
        attempt(breaker, port, "call")

    print("2. it starts answering 503: three failures in a row trip the breaker")
    Dependency.mode = "down"
    for _ in range(3):
        attempt(breaker, port, "call")
    hits = Dependency.hits
    print("3. while OPEN, calls are rejected without touching the dependency")
    for _ in range(3):
        attempt(breaker, port, "call")
    assert Dependency.hits == hits, "an open breaker must not call the dependency"

    print("4. after reset_timeout one trial call probes it; it still fails: open again, longer")
    time.sleep(0.55)
    attempt(breaker, port, "trial")
    attempt(breaker, port, "call")

    print("5. the dependency recovers; the next trial succeeds and the breaker closes")
    Dependency.mode = "healthy"
    time.sleep(1.05)
    attempt(breaker, port, "trial")
    for _ in range(2):
        attempt(breaker, port, "call")
    assert breaker.state is BreakerState.CLOSED

    print("6. slow answers count too: half the window slower than 0.25 s trips it")
    Dependency.mode = "slow"
    for _ in range(4):
        attempt(breaker, port, "call")
    Dependency.mode = "healthy"

    m = breaker.metrics()
    print(
        f"metrics: state={m.state} calls={m.calls} failures={m.failures} slow={m.slow_calls} "
        f"rejected={m.rejected} times_opened={m.times_opened}"
    )
    print("history:")
    for h in m.history:
        print(f"   {h.from_state:>9} -> {h.to_state:<9} {h.reason}")

    shared_state_demo(port)
    server.shutdown()
    server.server_close()
    return 0


def shared_state_demo(port: int) -> None:
    url = os.environ.get("SENTIA_REDIS_URL")
    print("7. two processes sharing one breaker state through Redis")
    if not url:
        print("   skipped: set SENTIA_REDIS_URL=redis://127.0.0.1:6379/0 to see it")
        return
    stores = [RedisStateStore(url, namespace="example", sync_interval=0.1) for _ in range(2)]
    a, b = (
        CircuitBreaker(
            "partner-api-shared",
            consecutive_failures=3,
            reset_timeout=5,
            state_store=store,
            failure_predicate=lambda response: response.status >= 500,
        )
        for store in stores
    )
    a.reset()  # start from a clean shared state on every run
    Dependency.mode = "down"
    for _ in range(3):
        attempt(a, port, "process A")
    time.sleep(0.15)  # process B refreshes its mirror every sync_interval
    attempt(b, port, "process B")
    attempt(b, port, "process B")
    print(f"   process B sees: {b.metrics().shared_state}, state {b.state}")
    a.reset()
    Dependency.mode = "healthy"
    for store in stores:
        store.close()


if __name__ == "__main__":
    raise SystemExit(main())
