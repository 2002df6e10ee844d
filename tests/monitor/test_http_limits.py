"""Hostile and slow clients against the monitor's server, with real loopback sockets.

Every test counts (connections, threads, descriptors, answers); none asserts a
duration. Timeouts are injected short where a test needs one to fire.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentia_core.errors import ConfigError
from sentia_core.monitor import MetricsServer, PerformanceMonitor, ServerLimits


def wait_until(predicate: Callable[[], bool], what: str, limit: float = 20.0) -> None:
    """Poll ``predicate`` (a bounded wait for the server's loop; not a timing assertion)."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.005)


def connect(server: MetricsServer) -> socket.socket:
    return socket.create_connection(server.address, timeout=10)


def exchange(server: MetricsServer, data: bytes) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it."""
    with connect(server) as sock:
        sock.sendall(data)
        return read_all(sock)


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def status_of(raw: bytes) -> int:
    assert raw.startswith(b"HTTP/1.1 "), raw[:80]
    return int(raw[9:12])


def get(server: MetricsServer, path: str) -> tuple[int, bytes]:
    raw = exchange(server, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    return status_of(raw), raw.partition(b"\r\n\r\n")[2]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def served(monitor: PerformanceMonitor) -> Iterator[tuple[PerformanceMonitor, MetricsServer]]:
    monitor.add_health_check("db", lambda: True)
    limits = ServerLimits(max_connections=8, header_timeout=60.0, workers=2)
    with monitor.serve(limits=limits) as server:
        yield monitor, server


PARTIAL = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: "


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to count descriptors")
def test_slow_clients_cannot_exhaust_threads_or_descriptors_and_health_answers(
    served: tuple[PerformanceMonitor, MetricsServer],
) -> None:
    _, server = served
    assert get(server, "/health")[0] == 200  # warm: render pool started
    threads_before, fds_before = threading.active_count(), open_fds()
    slow = []
    try:
        for _ in range(60):  # the reproduction, scaled: 60 slowloris on an 8-slot server
            sock = connect(server)
            sock.sendall(PARTIAL)
            slow.append(sock)
        wait_until(lambda: server.stats().accepted >= 61, "every slow client admitted")
        stats = server.stats()
        assert stats.connections <= 8
        assert stats.evicted >= 60 - 8
        # the server's own descriptors (what is open minus the clients' ends) settle
        # at the bound: an evicted socket is released on the loop's next turn
        wait_until(lambda: open_fds() - fds_before - len(slow) <= 8, "descriptors bounded")
        assert threading.active_count() - threads_before <= 1  # at most one more render thread
        # /health (and readiness) keep answering while the slow clients hold slots
        for path in ("/health", "/health/ready", "/health/live", "/metrics"):
            assert get(server, path)[0] == 200
        assert server.stats().connections <= 8
    finally:
        for sock in slow:
            sock.close()
    wait_until(lambda: server.stats().connections == 0, "every connection closed")
    assert threading.active_count() - threads_before <= 1


def test_partial_requests_time_out_with_408_and_idle_connections_close(
    monitor: PerformanceMonitor,
) -> None:
    limits = ServerLimits(max_connections=16, header_timeout=0.2)
    with monitor.serve(limits=limits) as server:
        partial = [connect(server) for _ in range(5)]
        idle = [connect(server) for _ in range(3)]
        for sock in partial:
            sock.sendall(PARTIAL)
        answers = [read_all(s) for s in partial]
        silent = [read_all(s) for s in idle]
        for sock in partial + idle:
            sock.close()
        assert [status_of(a) for a in answers] == [408] * 5
        assert silent == [b""] * 3  # nothing was asked: closed without an answer
        wait_until(lambda: server.stats().connections == 0, "connections closed")
        assert server.stats().timed_out == 5


def test_a_trickled_request_is_bounded_by_one_deadline(monitor: PerformanceMonitor) -> None:
    # A byte at a time never resets the deadline (a per-read timeout would).
    limits = ServerLimits(header_timeout=0.3)
    with monitor.serve(limits=limits) as server, connect(server) as sock:
        sent = 0
        trickle = PARTIAL + b"a" * 5000
        try:
            for byte in trickle:
                sock.send(bytes([byte]))
                sent += 1
                time.sleep(0.002)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_all(sock)
        assert not answer or status_of(answer) == 408
        assert sent < len(trickle)  # the server hung up before the trickle ended
        assert server.stats().timed_out == 1


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n", 431),
        (b"GET / HTTP/1.1\r\nX-Big: " + b"b" * 17000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", 413),
        (b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
        (b"GET / HTTP/2.0\r\n\r\n", 505),
        (b"GET /\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n folded: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"\xff\xfe / HTTP/1.1\r\n\r\n", 400),
    ],
)
def test_oversized_and_malformed_requests_get_their_status(
    served: tuple[PerformanceMonitor, MetricsServer], request_bytes: bytes, status: int
) -> None:
    _, server = served
    answer = exchange(server, request_bytes)
    assert status_of(answer) == status
    assert b"Connection: close" in answer
    assert get(server, "/health")[0] == 200


def test_keep_alive_serves_several_requests_on_one_connection(
    served: tuple[PerformanceMonitor, MetricsServer],
) -> None:
    _, server = served
    with connect(server) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
        sock.sendall(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = read_all(sock)
    assert raw.count(b"HTTP/1.1 200 OK") == 3
    assert raw.count(b'{"status": "alive"}') == 2
    assert server.stats().accepted == 1


def test_when_every_slot_is_busy_answering_a_newcomer_gets_503(
    monitor: PerformanceMonitor,
) -> None:
    release, entered = threading.Event(), threading.Semaphore(0)

    def slow_check() -> bool:
        entered.release()
        return release.wait(30)

    monitor.add_health_check("slow", slow_check, timeout=None)
    limits = ServerLimits(max_connections=2, workers=2)
    with monitor.serve(limits=limits) as server:
        busy = [connect(server) for _ in range(2)]
        for sock in busy:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert entered.acquire(timeout=10) and entered.acquire(timeout=10)
        assert status_of(exchange(server, b"GET /health/live HTTP/1.1\r\n\r\n")) == 503
        release.set()
        assert [status_of(read_all(s)) for s in busy] == [200, 200]
        for sock in busy:
            sock.close()
        assert server.stats().refused == 1
        assert get(server, "/health/live")[0] == 200


def test_stop_closes_open_connections(monitor: PerformanceMonitor) -> None:
    server = monitor.serve(limits=ServerLimits(header_timeout=60.0))
    socks = [connect(server) for _ in range(4)]
    for sock in socks:
        sock.sendall(PARTIAL)
    wait_until(lambda: server.stats().connections == 4, "four connections")
    server.close()
    assert [read_all(s) for s in socks] == [b""] * 4
    for sock in socks:
        sock.close()
    assert not server.running


def test_limits_are_validated() -> None:
    with pytest.raises(ConfigError, match="max_connections"):
        ServerLimits(max_connections=0)
    with pytest.raises(ConfigError, match="header_timeout"):
        ServerLimits(header_timeout=float("nan"))
    with pytest.raises(ConfigError, match="workers"):
        ServerLimits(workers=0)


@pytest.fixture(scope="module")
def shared_server() -> Iterator[MetricsServer]:
    m = PerformanceMonitor(system_metrics=False)
    server = m.serve(limits=ServerLimits(header_timeout=0.5))
    yield server
    m.close()


_token = st.sampled_from([b"GET", b"HEAD", b"POST", b"/", b"/health", b" ", b"\r\n", b":", b"?"])
_noise = st.lists(st.one_of(_token, st.binary(max_size=40)), max_size=30).map(b"".join)


@settings(max_examples=60)
@given(noise=_noise)
def test_arbitrary_bytes_never_break_the_server(shared_server: MetricsServer, noise: bytes) -> None:
    with connect(shared_server) as sock:
        try:
            sock.sendall(noise + b"\r\n\r\n")
            answer = read_all(sock)
        except (BrokenPipeError, ConnectionResetError):
            answer = b""
    assert answer == b"" or answer.startswith(b"HTTP/1.1 ")
    assert get(shared_server, "/health/live")[0] == 200


def test_liveness_answers_while_every_render_worker_is_busy(monitor: PerformanceMonitor) -> None:
    release, entered = threading.Event(), threading.Semaphore(0)

    def hung_check() -> bool:
        entered.release()
        return release.wait(30)

    monitor.add_health_check("hung", hung_check, timeout=None)
    with monitor.serve(limits=ServerLimits(workers=1)) as server:
        stuck = connect(server)
        stuck.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert entered.acquire(timeout=10)  # the only worker is held
        for _ in range(3):
            assert get(server, "/health/live") == (200, b'{"status": "alive"}')
        release.set()
        assert status_of(read_all(stuck)) == 200
        stuck.close()
