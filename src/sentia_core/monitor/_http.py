"""The monitor's HTTP server: one asyncio event loop in one daemon thread.

Theory of operation: a connection costs a coroutine and a socket, never a
thread, so slow or hostile clients cannot exhaust threads. The loop reads
and checks each request head itself (bounded request line, header bytes and
header count; Content-Length bodies up to ``max_body``; no chunked bodies),
under one deadline per request (``header_timeout``, counted from the moment
the connection starts waiting for it, so a keep-alive connection that stays
idle is closed too). The parsed :class:`~._routing.Request` goes to the
shared :class:`~._routing.Router` in a small worker pool (``workers``
threads: renderers and health checks may block), and the loop writes the
answer under ``write_timeout``.

Connections are bounded by ``max_connections``. When a new one arrives at
the bound, the connection that has waited longest for its request head (idle
or partial: a slowloris) is closed to make room; only when every connection
is busy being answered is the newcomer refused with 503. That is what keeps
``/health`` answering while slow clients hold connections: they can occupy
descriptors for at most ``header_timeout`` and never push out a request
being served. The server runs its own accept loop, so a connection is
admitted before anything else happens on it: TLS handshakes count against
the bound and run under the same deadline.

Errors: 400 malformed, 408 request head or body not complete in time, 413
body too large, 414 request line too long, 431 header too large or too many
headers, 501 ``Transfer-Encoding``, 505 an HTTP version other than 1.0/1.1.
Each of those closes the connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import re
import socket
import ssl
import threading
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any

from sentia_core._validate import check_int, check_positive
from sentia_core.errors import ConfigError

from ._routing import Request, Response, Router

__all__ = ["MetricsServer", "ServerLimits", "ServerStats", "start_server", "tls_context"]

_log = logging.getLogger("sentia_core.monitor")

_METHOD = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_HEADER_NAME = _METHOD
_TARGET = re.compile(rb"^[\x21-\x7e]+$")
_NO_REQUEST = Request("GET", "/")
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 5\r\nConnection: close\r\nRetry-After: 1\r\n\r\nbusy\n"
)


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Bounds of the monitor's HTTP server.

    Attributes:
        max_connections: open connections at most (TLS handshakes included).
        header_timeout: seconds a client has to send a complete request (head
            and body), counted from the connection's start or the end of the
            previous answer; an idle keep-alive connection is closed after it.
        write_timeout: seconds to deliver an answer to a client that reads slowly.
        max_request_line: bytes of the request line (longer: 414).
        max_header_bytes: bytes of all header lines together (more: 431).
        max_headers: header lines (more: 431).
        max_body: bytes of a request body (more: 413); the endpoints read none.
        workers: threads that render answers (renderers and health checks may block).
    """

    max_connections: int = 64
    header_timeout: float = 10.0
    write_timeout: float = 30.0
    max_request_line: int = 8192
    max_header_bytes: int = 16384
    max_headers: int = 100
    max_body: int = 4096
    workers: int = 4

    def __post_init__(self) -> None:
        check_int("max_connections", self.max_connections, minimum=1)
        check_positive("header_timeout", self.header_timeout)
        check_positive("write_timeout", self.write_timeout)
        check_int("max_request_line", self.max_request_line, minimum=64)
        check_int("max_header_bytes", self.max_header_bytes, minimum=256)
        check_int("max_headers", self.max_headers, minimum=1)
        check_int("max_body", self.max_body, minimum=0)
        check_int("workers", self.workers, minimum=1)


@dataclass(frozen=True, slots=True)
class ServerStats:
    """Counters of one server since it started.

    Attributes:
        connections: open now.
        peak_connections: the most open at once.
        accepted: connections admitted.
        requests: requests answered by the router.
        evicted: idle or partial connections closed to make room for a new one.
        refused: connections turned away with 503 (every slot busy answering).
        timed_out: requests not complete within ``header_timeout`` (408 sent).
        bad_requests: malformed or oversized requests (400/413/414/431/501/505)
            and failed TLS handshakes.
    """

    connections: int
    peak_connections: int
    accepted: int
    requests: int
    evicted: int
    refused: int
    timed_out: int
    bad_requests: int


class _Rejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Conn:
    __slots__ = ("busy", "closed", "partial", "since", "sock", "task", "transport")

    def __init__(self, sock: socket.socket, since: float) -> None:
        self.sock = sock
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[Any] | None = asyncio.current_task()
        self.busy = False
        self.closed = False
        self.partial = False
        self.since = since

    def close(self) -> None:
        """Drop the connection now (its task notices and ends)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()
        elif self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()  # still handshaking: cancelling closes the socket
        else:
            self.sock.close()


def tls_context(tls: object) -> ssl.SSLContext:
    """An SSLContext from ``tls``: a context, or ``(certfile, keyfile)``.

    Raises:
        ConfigError: anything else, or files that cannot be loaded.
    """
    if isinstance(tls, ssl.SSLContext):
        return tls
    if (
        isinstance(tls, (tuple, list))
        and len(tls) == 2
        and all(isinstance(p, str) and p for p in tls)
    ):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(tls[0], tls[1])
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError("tls", tuple(tls), f"cannot load the certificate: {exc}") from None
        return context
    raise ConfigError("tls", type(tls).__name__, "must be (certfile, keyfile) or an ssl.SSLContext")


class _Server:
    """The loop side: admission, parsing, writing (everything runs in the loop thread)."""

    def __init__(self, router: Router, limits: ServerLimits, context: ssl.SSLContext | None):
        self.router = router
        self.limits = limits
        self.context = context
        self.conns: dict[_Conn, None] = {}  # insertion-ordered set
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=limits.workers, thread_name_prefix="sentia-monitor-render"
        )
        self.stop_event: asyncio.Event | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.peak = self.accepted = self.requests = 0
        self.evicted = self.refused = self.timed_out = self.bad = 0

    # -- lifecycle ---------------------------------------------------------

    async def main(self, sock: socket.socket, started: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _, ctx: _log.debug("monitor http: %s", ctx["message"]))
        self.loop = loop
        self.stop_event = asyncio.Event()
        sock.setblocking(False)
        accepting = loop.create_task(self._accept(sock))
        started.set()
        try:
            await self.stop_event.wait()
        finally:
            accepting.cancel()
            tasks = [accepting, *self.tasks]
            for conn in list(self.conns):
                conn.close()  # flags it too: a cancellation wait_for swallows still ends it
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.pool.shutdown(wait=False, cancel_futures=True)

    async def _accept(self, sock: socket.socket) -> None:
        # Our own accept loop: a connection is admitted (and counted) before
        # anything else happens on it, its TLS handshake included.
        loop = asyncio.get_running_loop()
        while True:
            try:
                client, _ = await loop.sock_accept(sock)
            except OSError as exc:  # EMFILE and the like: back off, keep serving
                _log.debug("monitor http accept failed: %s", exc)
                await asyncio.sleep(0.05)
                continue
            task = loop.create_task(self.client(client))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def stop(self) -> None:
        loop, event = self.loop, self.stop_event
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(event.set)

    def stats(self) -> ServerStats:
        return ServerStats(
            connections=len(self.conns),
            peak_connections=self.peak,
            accepted=self.accepted,
            requests=self.requests,
            evicted=self.evicted,
            refused=self.refused,
            timed_out=self.timed_out,
            bad_requests=self.bad,
        )

    # -- admission ---------------------------------------------------------

    def _admit(self, conn: _Conn) -> bool:
        if len(self.conns) >= self.limits.max_connections:
            waiting = [c for c in self.conns if not c.busy]
            if not waiting:
                return False
            victim = min(waiting, key=lambda c: c.since)
            del self.conns[victim]
            victim.close()
            self.evicted += 1
        self.conns[conn] = None
        self.accepted += 1
        self.peak = max(self.peak, len(self.conns))
        return True

    async def client(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        conn = _Conn(sock, loop.time())
        try:
            if not self._admit(conn):
                self.refused += 1
                if self.context is None:  # a TLS client could not read a plain answer
                    await self._refuse(sock)
                return
            limit = max(self.limits.max_request_line, self.limits.max_header_bytes) + 2
            reader = asyncio.StreamReader(limit=limit)
            protocol = asyncio.StreamReaderProtocol(reader)
            try:
                transport, _ = await asyncio.wait_for(
                    loop.connect_accepted_socket(
                        lambda: protocol,
                        sock,
                        ssl=self.context,
                        ssl_handshake_timeout=None
                        if self.context is None
                        else self.limits.header_timeout,
                    ),
                    self.limits.header_timeout,
                )
            except (asyncio.TimeoutError, ssl.SSLError, OSError):
                self.bad += 1  # a failed or abandoned TLS handshake
                return
            conn.transport = transport
            if conn.closed:  # evicted as the handshake ended (wait_for kept the result)
                transport.abort()
                return
            writer = asyncio.StreamWriter(transport, protocol, reader, loop)
            await self._serve(conn, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except Exception as exc:  # never let one connection take the loop down
            _log.debug("monitor http connection failed: %s", exc)
        finally:
            self.conns.pop(conn, None)
            conn.close()

    async def _refuse(self, sock: socket.socket) -> None:
        """Answer 503 on a raw socket; read what the client sent so that closing
        does not reset the connection before it reads the answer."""
        loop = asyncio.get_running_loop()
        sock.setblocking(False)
        with contextlib.suppress(OSError, asyncio.TimeoutError):
            await asyncio.wait_for(loop.sock_sendall(sock, _BUSY), 1.0)
            sock.shutdown(socket.SHUT_WR)
            await asyncio.wait_for(loop.sock_recv(sock, 65536), 1.0)

    # -- one connection ----------------------------------------------------

    async def _serve(
        self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        loop = asyncio.get_running_loop()
        limits = self.limits
        while not conn.closed:
            conn.busy = False
            conn.partial = False
            conn.since = loop.time()
            try:
                request, keep = await asyncio.wait_for(
                    self._read(conn, reader), limits.header_timeout
                )
            except asyncio.TimeoutError:
                if conn.partial:
                    self.timed_out += 1
                    await self._send(writer, _status(408, "request timeout"), False, True)
                return
            except _Rejected as exc:
                self.bad += 1
                await self._send(writer, _status(exc.status, str(exc)), False, True)
                return
            conn.busy = True
            if self.router.blocking(request):
                response = await loop.run_in_executor(self.pool, self.router.handle, request)
            else:  # cheap and non-blocking: answers even while every worker is busy
                response = self.router.handle(request)
            self.requests += 1
            await self._send(writer, response, request.method == "HEAD", not keep)
            if not keep:
                return

    async def _line(self, reader: asyncio.StreamReader, limit: int, status: int) -> bytes:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise _Rejected(status, "too large") from None
        if len(line) > limit:
            raise _Rejected(status, "too large")
        return line

    async def _read(self, conn: _Conn, reader: asyncio.StreamReader) -> tuple[Request, bool]:
        limits = self.limits
        first = await reader.readexactly(1)
        conn.partial = True
        line = first + await self._line(reader, limits.max_request_line, 414)
        if line in (b"\r\n", b"\n"):  # one stray CRLF before a request is allowed
            line = await self._line(reader, limits.max_request_line, 414)
        method, path, query, version = _request_line(line)
        headers: dict[str, str] = {}
        total = count = 0
        while True:
            raw = await self._line(reader, limits.max_header_bytes, 431)
            if raw in (b"\r\n", b"\n"):
                break
            total += len(raw)
            count += 1
            if total > limits.max_header_bytes or count > limits.max_headers:
                raise _Rejected(431, "request header too large")
            name, value = _header(raw)
            if name in headers:
                if name in ("content-length", "host") and headers[name] != value:
                    raise _Rejected(400, f"conflicting {name} headers")
                headers[name] = f"{headers[name]}, {value}"
            else:
                headers[name] = value
        if "transfer-encoding" in headers:
            raise _Rejected(501, "Transfer-Encoding is not supported")
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit() or len(length) > 18:
                raise _Rejected(400, "bad Content-Length")
            size = int(length)
            if size > limits.max_body:
                raise _Rejected(413, "request body too large")
            if size:
                await reader.readexactly(size)
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        keep = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
        return Request(method, path, query, headers), keep

    async def _send(
        self, writer: asyncio.StreamWriter, response: Response, head: bool, close: bool
    ) -> None:
        try:
            phrase = HTTPStatus(response.status).phrase
        except ValueError:
            phrase = ""
        lines = [f"HTTP/1.1 {response.status} {phrase}"]
        lines.extend(f"{k}: {v}" for k, v in response.headers)
        lines.append(f"Content-Length: {len(response.body)}")
        lines.append("Connection: close" if close else "Connection: keep-alive")
        lines.append("Server: sentia-monitor")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        writer.write(data if head else data + response.body)
        try:
            await asyncio.wait_for(writer.drain(), self.limits.write_timeout)
        except (asyncio.TimeoutError, ConnectionError):
            writer.transport.abort()
            raise ConnectionResetError("client did not read the answer") from None


def _status(status: int, message: str) -> Response:
    return Router.finish(_NO_REQUEST, Response(status, f"{message}\n".encode()))


def _request_line(line: bytes) -> tuple[str, str, str, str]:
    parts = line.rstrip(b"\r\n").split(b" ")
    if len(parts) != 3:
        raise _Rejected(400, "malformed request line")
    method, target, version = parts
    if not _METHOD.match(method) or not _TARGET.match(target):
        raise _Rejected(400, "malformed request line")
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        if version.startswith(b"HTTP/"):
            raise _Rejected(505, "HTTP version not supported")
        raise _Rejected(400, "malformed request line")
    text = target.decode("ascii")
    path, _, query = text.partition("?")
    return method.decode("ascii"), path, query, version.decode("ascii")


def _header(raw: bytes) -> tuple[str, str]:
    line = raw.rstrip(b"\r\n")
    name, sep, value = line.partition(b":")
    if not sep or not _HEADER_NAME.match(name):
        raise _Rejected(400, "malformed header line")
    if b"\r" in value or b"\x00" in value:
        raise _Rejected(400, "malformed header value")
    return name.decode("ascii").lower(), value.strip(b" \t").decode("latin-1")


class MetricsServer:
    """A running endpoint server: :attr:`address`, :attr:`url`, :meth:`stop` / :meth:`close`.

    Also a context manager that stops the server on exit.
    """

    def __init__(
        self, server: _Server, thread: threading.Thread, address: tuple[str, int], tls: bool
    ) -> None:
        self._server = server
        self._thread = thread
        #: (host, port) the server listens on.
        self.address: tuple[str, int] = address
        self._tls = tls
        self._stopped = False
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """``http://host:port`` (``https`` with TLS; IPv6 hosts in brackets)."""
        host, port = self.address
        if ":" in host:
            host = f"[{host}]"
        return f"{'https' if self._tls else 'http'}://{host}:{port}"

    @property
    def running(self) -> bool:
        """False once stopped."""
        return not self._stopped

    @property
    def router(self) -> Router:
        """The route table this server answers from."""
        return self._server.router

    def stats(self) -> ServerStats:
        """Connection and request counters."""
        return self._server.stats()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, close every connection and the socket (idempotent)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._server.stop()
        self._thread.join(timeout)

    close = stop

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


def start_server(
    router: Router,
    host: str,
    port: int,
    *,
    limits: ServerLimits | None = None,
    tls: object = None,
) -> MetricsServer:
    """Bind ``host:port`` (0: any free port) and serve ``router`` from a daemon thread.

    Raises:
        ConfigError: bad limits or TLS settings.
        OSError: the address cannot be bound.
    """
    limits = ServerLimits() if limits is None else limits
    if not isinstance(limits, ServerLimits):
        raise ConfigError("limits", type(limits).__name__, "must be a ServerLimits")
    context = None if tls is None else tls_context(tls)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=128)
    bound = sock.getsockname()
    server = _Server(router, limits, context)
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.main(sock, started))
        except BaseException as exc:  # reported to start_server's caller if early
            failure.append(exc)
            started.set()
        finally:
            sock.close()

    thread = threading.Thread(target=run, name=f"sentia-monitor-http-{bound[1]}", daemon=True)
    thread.start()
    started.wait()
    if failure:
        raise failure[0]
    return MetricsServer(server, thread, (str(bound[0]), int(bound[1])), context is not None)
