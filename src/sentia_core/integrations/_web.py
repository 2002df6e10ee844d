"""ASGI and WSGI middleware: one query unit of work per request, request timing, rate limits.

Theory of operation: both middlewares drive one :class:`_RequestCore`. Per
request it (1) optionally asks the rate limiter for the client's tier and
answers ``429 Too Many Requests`` with ``Retry-After`` when denied, (2) opens a
QueryOptimizer unit of work (so N+1 detection is per request, async-safe
through contextvars), (3) times the request into the monitor's response-time
and error-rate metrics — the series the default alert rules read and the
dashboard charts, labelled ``method`` and ``route`` (the route *template*,
such as ``/items/{id}``: Starlette and FastAPI put it in ``scope["route"]``;
``route=`` supplies it for other frameworks; ``""`` when unknown, never the
raw path, so label sets stay bounded). A response with status >= 500, or an
exception, counts as an error.

The middlewares take the components they use, not the facade, so they work
with a :class:`~sentia_core.Sentia` (``SentiaASGIMiddleware.from_sentia``) or
with components built by hand.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

__all__ = ["SentiaASGIMiddleware", "SentiaWSGIMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Monitor(Protocol):
    def record_request(self, seconds: float, *, error: bool = False, **labels: object) -> None: ...


class _Queries(Protocol):
    def unit_of_work(self, name: str = ...) -> AbstractContextManager[Any]: ...


class _Decision(Protocol):
    @property
    def allowed(self) -> bool: ...
    @property
    def retry_after(self) -> float: ...


class _Limiter(Protocol):
    def hit(self, tier: str, key: str = ..., cost: int = ...) -> Any: ...
    async def ahit(self, tier: str, key: str = ..., cost: int = ...) -> Any: ...


class _RequestCore:
    """What both middlewares decide per request; they only do the I/O."""

    __slots__ = ("client_key", "limiter", "monitor", "queries", "route", "tier")

    def __init__(
        self,
        monitor: _Monitor | None,
        queries: _Queries | None,
        limiter: _Limiter | None,
        tier: str | None,
        client_key: Callable[[Any], str] | None,
        *,
        route: Callable[[Any], str | None] | None = None,
    ) -> None:
        if tier is not None and limiter is None:
            from sentia_core.errors import ConfigError

            raise ConfigError("rate_limit", tier, "a rate-limit tier needs a limiter")
        self.monitor = monitor
        self.queries = queries
        self.limiter = limiter
        self.tier = tier
        self.client_key = client_key
        self.route = route

    def unit(self, method: str, path: str) -> AbstractContextManager[Any]:
        if self.queries is None:
            return nullcontext()
        return self.queries.unit_of_work(f"{method} {path}")

    def finish(
        self, started: float, status: int, raised: bool, method: str, route: str = ""
    ) -> None:
        if self.monitor is not None:
            self.monitor.record_request(
                time.perf_counter() - started,
                error=raised or status >= 500,
                method=method,
                route=route,
            )

    def route_of(self, request: Any, default: Callable[[Any], str | None]) -> str:
        """The route template of a finished request (``""`` when unknown)."""
        try:
            found = (self.route or default)(request)
        except Exception:  # a user's route function failed: record the request anyway
            return ""
        return found if isinstance(found, str) else ""

    @staticmethod
    def too_many(decision: _Decision) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        retry_after = decision.retry_after
        seconds = "3600" if math.isinf(retry_after) else str(max(1, math.ceil(retry_after)))
        headers = [(b"content-type", b"text/plain"), (b"retry-after", seconds.encode())]
        return 429, headers, b"Too Many Requests\n"


def _asgi_client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _wsgi_client(environ: Any) -> str:
    return str(environ.get("REMOTE_ADDR") or "unknown")


def _asgi_route(scope: Scope) -> str | None:
    route = scope.get("route")  # Starlette / FastAPI set it when a route matched
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else None


def _wsgi_route(environ: Any) -> str | None:
    route = environ.get("sentia.route")  # an application (or a framework hook) may set it
    return route if isinstance(route, str) else None


class SentiaASGIMiddleware:
    """ASGI middleware: rate limit (optional), query unit of work, request timing.

    Args:
        app: the ASGI application.
        monitor: a PerformanceMonitor (or None to skip timing).
        queries: a QueryOptimizer (or None to skip units of work).
        limiter: a RateLimiter, needed when ``rate_limit`` is set.
        rate_limit: the tier applied to every request, keyed by ``client_key``.
        client_key: ``fn(scope) -> str``; default the client's IP address.
        route: ``fn(scope) -> str | None``, called after the app ran: the route
            template for the ``route`` label (default: ``scope["route"]``'s path).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        monitor: _Monitor | None = None,
        queries: _Queries | None = None,
        limiter: _Limiter | None = None,
        rate_limit: str | None = None,
        client_key: Callable[[Scope], str] | None = None,
        route: Callable[[Scope], str | None] | None = None,
    ) -> None:
        self.app = app
        self._core = _RequestCore(monitor, queries, limiter, rate_limit, client_key, route=route)

    @classmethod
    def from_sentia(cls, app: ASGIApp, sentia: Any, **kwargs: Any) -> SentiaASGIMiddleware:
        """Use the facade's monitor, query optimizer and rate limiter."""
        return cls(
            app, monitor=sentia.monitor, queries=sentia.queries, limiter=sentia.limiter, **kwargs
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        core = self._core
        method = str(scope.get("method", "GET"))
        started = time.perf_counter()
        if core.tier is not None and core.limiter is not None:
            key = (core.client_key or _asgi_client)(scope)
            decision = await core.limiter.ahit(core.tier, key=key)
            if not decision.allowed:
                status, headers, body = core.too_many(decision)
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                core.finish(started, status, False, method)
                return
        status = 500
        raised = True

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 500))
            await send(message)

        try:
            with core.unit(method, str(scope.get("path", ""))):
                await self.app(scope, receive, send_wrapper)
            raised = False
        finally:
            core.finish(started, status, raised, method, core.route_of(scope, _asgi_route))


class SentiaWSGIMiddleware:
    """WSGI middleware with the same behaviour as :class:`SentiaASGIMiddleware`.

    ``client_key`` receives the WSGI environ (default: ``REMOTE_ADDR``);
    ``route`` too (default: ``environ["sentia.route"]``, which the application
    may set to the matched route template).
    """

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        *,
        monitor: _Monitor | None = None,
        queries: _Queries | None = None,
        limiter: _Limiter | None = None,
        rate_limit: str | None = None,
        client_key: Callable[[Any], str] | None = None,
        route: Callable[[Any], str | None] | None = None,
    ) -> None:
        self.app = app
        self._core = _RequestCore(monitor, queries, limiter, rate_limit, client_key, route=route)

    @classmethod
    def from_sentia(
        cls, app: Callable[..., Iterable[bytes]], sentia: Any, **kwargs: Any
    ) -> SentiaWSGIMiddleware:
        """Use the facade's monitor, query optimizer and rate limiter."""
        return cls(
            app, monitor=sentia.monitor, queries=sentia.queries, limiter=sentia.limiter, **kwargs
        )

    def __call__(self, environ: Any, start_response: Callable[..., Any]) -> Iterable[bytes]:
        core = self._core
        method = str(environ.get("REQUEST_METHOD", "GET"))
        started = time.perf_counter()
        if core.tier is not None and core.limiter is not None:
            key = (core.client_key or _wsgi_client)(environ)
            decision = core.limiter.hit(core.tier, key=key)
            if not decision.allowed:
                status, headers, body = core.too_many(decision)
                start_response(
                    "429 Too Many Requests", [(k.decode(), v.decode()) for k, v in headers]
                )
                core.finish(started, status, False, method, core.route_of(environ, _wsgi_route))
                return [body]
        status = 500

        def start_wrapper(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            nonlocal status
            try:
                status = int(status_line.split(" ", 1)[0])
            except ValueError:
                status = 500
            return start_response(status_line, headers, exc_info)

        # The unit of work stays open until the server closes the response: a
        # WSGI app may run its queries lazily while the body is iterated, and a
        # streamed body must not be buffered.
        unit = core.unit(method, str(environ.get("PATH_INFO", "")))
        unit.__enter__()
        try:
            app_body = self.app(environ, start_wrapper)
        except BaseException as exc:
            unit.__exit__(type(exc), exc, exc.__traceback__)
            core.finish(started, status, True, method, core.route_of(environ, _wsgi_route))
            raise

        def done(raised: bool) -> None:
            unit.__exit__(None, None, None)
            core.finish(started, status, raised, method, core.route_of(environ, _wsgi_route))

        return _ClosingBody(app_body, done)


class _ClosingBody:
    """Iterates a WSGI body and reports once, when the server closes it."""

    __slots__ = ("_body", "_done", "_failed", "_iter")

    def __init__(self, body: Iterable[bytes], done: Callable[[bool], None]) -> None:
        self._body = body
        self._iter = iter(body)
        self._done: Callable[[bool], None] | None = done
        self._failed = False

    def __iter__(self) -> _ClosingBody:
        return self

    def __next__(self) -> bytes:
        try:
            return next(self._iter)
        except StopIteration:
            raise
        except BaseException:
            self._failed = True
            raise

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            done, self._done = self._done, None
            if done is not None:
                done(self._failed)
