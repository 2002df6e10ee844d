"""The monitor's HTTP server against prometheus_client's, side by side.

Run: ``python benchmarks/monitor_http.py`` (``--quick`` for a smoke run,
``--json PATH``).

Sections:

1. one ``GET /metrics`` on a new connection (50 counters, 10 histograms),
   timed from Python with ``http.client``: sentia_core's ``monitor.serve()``
   (an asyncio loop thread) against prometheus_client's ``start_http_server``
   (a ``ThreadingHTTPServer``) in the same process, alternating.
2. the same under load from ``wrk`` (8 connections; skipped without wrk),
   reported as ns per request (1e9 / requests per second).
3. figures: with 200 slowloris clients (partial request heads) connected,
   the threads and descriptors each server holds, and whether ``/metrics``
   still answers. sentia_core's server is bounded by ``max_connections``
   (64): it evicts the longest-waiting partial connection.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import prometheus_client
from _harness import Section, Suite, parse_args

from sentia_core.monitor import PerformanceMonitor

SLOW_CLIENTS = 200
PARTIAL = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: "


def build() -> tuple[PerformanceMonitor, prometheus_client.CollectorRegistry]:
    monitor = PerformanceMonitor(system_metrics=False)
    registry = prometheus_client.CollectorRegistry()
    for i in range(50):
        monitor.counter(f"bench_counter_{i}_total", help="A counter.").inc(i)
        prometheus_client.Counter(f"bench_counter_{i}", "A counter.", registry=registry).inc(i)
    for i in range(10):
        h = monitor.histogram(f"bench_latency_{i}_seconds", help="A histogram.")
        p = prometheus_client.Histogram(
            f"bench_latency_{i}_seconds", "A histogram.", registry=registry
        )
        for v in range(100):
            h.observe(v / 1000)
            p.observe(v / 1000)
    return monitor, registry


def getter(port: int) -> Callable[[], None]:
    def get() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        response.read()
        conn.close()
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")

    return get


def wrk(port: int, seconds: int) -> float:
    """Requests per second reported by wrk."""
    out = subprocess.run(
        ["wrk", "-t1", "-c8", f"-d{seconds}s", f"http://127.0.0.1:{port}/metrics"],
        capture_output=True, text=True, timeout=seconds + 30, check=True,
    ).stdout  # fmt: skip
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if m is None:
        raise RuntimeError(f"no Requests/sec in wrk output: {out!r}")
    return float(m.group(1))


def fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else -1


def slowloris(port: int) -> tuple[int, int, bool]:
    """Threads and descriptors the server gains from SLOW_CLIENTS partial requests,
    and whether /metrics still answers meanwhile."""
    threads, descriptors = threading.active_count(), fds()
    socks = []
    try:
        for _ in range(SLOW_CLIENTS):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(PARTIAL)
            socks.append(s)
        time.sleep(0.5)  # let the server accept them all (a benchmark may wait)
        gained_threads = max(0, threading.active_count() - threads)
        gained_fds = fds() - descriptors - len(socks)  # minus the clients' ends
        try:
            getter(port)()
            answers = True
        except Exception:
            answers = False
        return gained_threads, gained_fds, answers
    finally:
        for s in socks:
            s.close()
        time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__ or "", argv)
    suite = Suite.from_args("monitor_http", args)
    monitor, registry = build()
    server = monitor.serve()
    peer, _thread = prometheus_client.start_http_server(0, addr="127.0.0.1", registry=registry)
    ours_port, peer_port = server.address[1], peer.server_address[1]
    try:
        med = suite.compare(
            "GET /metrics on a new connection (50 counters, 10 histograms)",
            {"sentia_core": getter(ours_port), "prometheus_client": getter(peer_port)},
            number=200,
            rounds=9,
        )
        suite.ratio("sentia/prometheus_client", med["sentia_core"], med["prometheus_client"])

        if shutil.which("wrk"):
            seconds = 1 if suite.quick else 3
            rounds = 1 if suite.quick else 5
            samples: dict[str, list[float]] = {"sentia_core": [], "prometheus_client": []}
            for r in range(rounds):
                pairs = [("sentia_core", ours_port), ("prometheus_client", peer_port)]
                for name, port in pairs if r % 2 == 0 else pairs[::-1]:
                    samples[name].append(1e9 / wrk(port, seconds))
            medians = {n: sorted(v)[len(v) // 2] for n, v in samples.items()}
            title = "GET /metrics under wrk, 8 connections"
            suite.sections.append(Section(title=title, unit="ns/req", medians=medians))
            suite.ratio(
                "sentia/prometheus_client", medians["sentia_core"], medians["prometheus_client"]
            )
        else:
            suite.note("wrk", "not installed: load section skipped")

        for name, port in (("sentia_core", ours_port), ("prometheus_client", peer_port)):
            t, d, ok = slowloris(port)
            suite.note(f"{SLOW_CLIENTS} slow clients: threads held by {name}", t)
            suite.note(f"{SLOW_CLIENTS} slow clients: descriptors held by {name}", d)
            suite.note(f"{SLOW_CLIENTS} slow clients: /metrics answers ({name})", ok)
        stats = server.stats()
        suite.note("sentia_core connections evicted to make room", stats.evicted)
    finally:
        server.close()
        peer.shutdown()
        peer.server_close()
        monitor.close()
    suite.finish(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
