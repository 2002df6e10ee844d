"""The monitor's endpoints as an ASGI application (no web framework needed).

Theory of operation: the adapter turns an ASGI ``http`` scope into a
:class:`~._routing.Request`, hands it to the same :class:`~._routing.Router`
the stdlib server uses (in a small bounded worker pool: renderers and health
checks may block, the event loop must not), and sends the
:class:`~._routing.Response` back. Mounted under a prefix (Starlette's
``Mount("/monitor", app)``, FastAPI's ``app.mount``), the prefix in
``root_path`` is stripped from the path. Bodies are read up to ``max_body``
bytes (the endpoints read none); a larger one answers 413.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from sentia_core._validate import check_int

from ._routing import Request, Response, Router

__all__ = ["MonitorApp"]

ASGIMessage = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[ASGIMessage]]
Send = Callable[[ASGIMessage], Awaitable[None]]


class MonitorApp:
    """An ASGI 3 application serving a :class:`Router` (``/metrics``, ``/health*``, pages).

    Args:
        router: the route table and its rules (auth, headers).
        max_body: bytes of request body read at most (more: 413).
        workers: threads that render answers.
    """

    def __init__(self, router: Router, *, max_body: int = 4096, workers: int = 4) -> None:
        self.router = router
        self._max_body = check_int("max_body", max_body, minimum=0)
        self._workers = check_int("workers", workers, minimum=1)
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self._workers, thread_name_prefix="sentia-monitor-asgi"
                )
            return self._pool

    def close(self) -> None:
        """Stop the worker pool (a new one starts if another request arrives)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1003})
            return
        response, method = await self._answer(scope, receive)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [
                    *(
                        (k.lower().encode("latin-1"), v.encode("latin-1"))
                        for k, v in response.headers
                    ),
                    (b"content-length", str(len(response.body)).encode()),
                ],
            }
        )
        body = b"" if method == "HEAD" else response.body
        await send({"type": "http.response.body", "body": body})

    async def _answer(
        self, scope: MutableMapping[str, Any], receive: Receive
    ) -> tuple[Response, str]:
        method = str(scope.get("method", "GET")).upper()
        headers: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            key = bytes(name).decode("latin-1").lower()
            text = bytes(value).decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        size = 0
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                break
            size += len(message.get("body", b""))
            if size > self._max_body:
                return Router.finish(
                    _NO_REQUEST, Response(413, b"request body too large\n")
                ), method
            if not message.get("more_body", False):
                break
        path = str(scope.get("path", "/")) or "/"
        root = str(scope.get("root_path", "") or "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        request = Request(method, path, query, headers)
        if not self.router.blocking(request):
            return self.router.handle(request), method
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor(), self.router.handle, request), method

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message.get("type") == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message.get("type") == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def __repr__(self) -> str:
        return f"MonitorApp(paths={self.router.paths()!r})"


_NO_REQUEST = Request("GET", "/")
