"""ASGI and WSGI middleware: one query unit of work per request, request timing, rate limits.

Theory of operation: both middlewares drive one :class:`_RequestCore`. Per
request it (0) lets ``exclude_paths`` through untouched (by default the
monitor's own endpoints: a scrape of ``/metrics`` or a probe of ``/health``
is never throttled, timed or counted), (1) optionally asks the rate limiter
for the client's tier and answers ``429 Too Many Requests`` with
``Retry-After`` and the IETF ``RateLimit-Policy`` / ``RateLimit`` fields
(draft-ietf-httpapi-ratelimit-headers-10) when denied, (2) opens a
QueryOptimizer unit of work (so N+1 detection is per request, async-safe
through contextvars), (3) times the request into the monitor's response-time
and error-rate metrics — the series the default alert rules read — labelled
by method, **route template** and status class. A response with status >=
500, or an exception, counts as an error; a 429 is not an error, and the ones
the middleware answers itself are also counted in ``app_requests_limited_total``.

The route template (``/orders/{order_id}``, never the raw path, which would
make one series per order) is read after the application ran: Starlette and
FastAPI leave the matched route in ``scope["route"]``; a WSGI application (or
a framework hook) may set ``environ["sentia.route"]``; ``route=`` supplies it
for anything else. The unit of work is renamed to ``"GET /orders/{order_id}"``
before it closes. A request whose route is unknown (no route matched, or the
middleware refused it before routing) is labelled ``route=""``.

The middlewares take the components they use, not the facade, so they work
with a :class:`~sentia_core.Sentia` (``SentiaASGIMiddleware.from_sentia``) or
with components built by hand.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

__all__ = ["DEFAULT_EXCLUDE_PATHS", "SentiaASGIMiddleware", "SentiaWSGIMiddleware"]

#: Paths the middlewares pass straight through by default: the monitor's
#: endpoints (an entry ending in ``*`` matches every path under it).
DEFAULT_EXCLUDE_PATHS: tuple[str, ...] = (
    "/",
    "/dashboard",
    "/dashboard/*",
    "/health",
    "/health/live",
    "/health/ready",
    "/metrics",
    "/metrics.json",
)
LIMITED_METRIC = "app_requests_limited_total"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Monitor(Protocol):
    def record_request(self, seconds: float, *, error: bool = False, **labels: object) -> None: ...
    def counter(self, name: str, /, **labels: Any) -> Any: ...


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


def _status_class(status: int, raised: bool) -> str:
    if raised or not 100 <= status <= 599:
        return "5xx"
    return f"{status // 100}xx"


class _Unit:
    """The unit of work of one request (a no-op without an optimizer)."""

    __slots__ = ("_method", "_uow")

    def __init__(self, queries: _Queries | None, method: str, path: str) -> None:
        self._method = method
        self._uow = None if queries is None else queries.unit_of_work(f"{method} {path}")

    def __enter__(self) -> _Unit:
        if self._uow is not None:
            self._uow.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._uow is not None:
            self._uow.__exit__(*exc)

    def route(self, template: str | None) -> None:
        """Name the unit after the route template, once routing found it."""
        rename = getattr(self._uow, "rename", None)
        if template and rename is not None:
            rename(f"{self._method} {template}")


class _RequestCore:
    """What both middlewares decide per request; they only do the I/O."""

    __slots__ = (
        "client_key",
        "exclude_exact",
        "exclude_prefixes",
        "limiter",
        "monitor",
        "queries",
        "route",
        "tier",
    )

    def __init__(
        self,
        monitor: _Monitor | None,
        queries: _Queries | None,
        limiter: _Limiter | None,
        tier: str | None,
        client_key: Callable[[Any], str] | None,
        *,
        exclude_paths: Iterable[str] = DEFAULT_EXCLUDE_PATHS,
        route: Callable[[Any], str | None] | None = None,
    ) -> None:
        from sentia_core.errors import ConfigError

        if tier is not None and limiter is None:
            raise ConfigError("rate_limit", tier, "a rate-limit tier needs a limiter")
        if isinstance(exclude_paths, str):
            raise ConfigError("exclude_paths", exclude_paths, "a sequence of paths, not one string")
        paths = tuple(exclude_paths)
        for p in paths:
            if not isinstance(p, str) or not p.startswith("/"):
                raise ConfigError("exclude_paths", p, "every entry is a path starting with '/'")
        self.exclude_exact = frozenset(p for p in paths if not p.endswith("*"))
        self.exclude_prefixes = tuple(p[:-1] for p in paths if p.endswith("*"))
        self.monitor = monitor
        self.queries = queries
        self.limiter = limiter
        self.tier = tier
        self.client_key = client_key
        self.route = route

    def excluded(self, path: str) -> bool:
        return path in self.exclude_exact or (
            bool(self.exclude_prefixes) and path.startswith(self.exclude_prefixes)
        )

    def route_of(self, request: Any, default: Callable[[Any], str | None]) -> str:
        """The route template of a finished request (``""`` when unknown)."""
        try:
            found = (self.route or default)(request)
        except Exception:  # a user's route function failed: record the request anyway
            return ""
        return found if isinstance(found, str) else ""

    def unit(self, method: str, path: str) -> _Unit:
        return _Unit(self.queries, method, path)

    def finish(
        self, started: float, status: int, raised: bool, method: str, route: str | None
    ) -> None:
        if self.monitor is not None:
            self.monitor.record_request(
                time.perf_counter() - started,
                error=raised or status >= 500,
                method=method,
                route=route or "",
                status=_status_class(status, raised),
            )

    def limited(self, started: float, method: str) -> None:
        """The middleware answered 429 itself: counted apart (and not as an error)."""
        if self.monitor is not None:
            self.finish(started, 429, False, method, "")
            self.monitor.counter(LIMITED_METRIC, method=method).inc()

    def too_many(self, decision: _Decision) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        retry_after = decision.retry_after
        seconds = 3600 if math.isinf(retry_after) else max(1, math.ceil(retry_after))
        headers = [
            (b"content-type", b"text/plain"),
            (b"retry-after", str(seconds).encode()),
        ]
        rate = None
        tier = self.tier
        tiers = getattr(self.limiter, "tiers", None)
        if tier is not None and isinstance(tiers, Mapping):
            rate = tiers.get(tier)
        if tier is not None and rate is not None:
            # draft-ietf-httpapi-ratelimit-headers-10: the policy (quota q per
            # window w seconds) and the current state (r remaining, t seconds).
            name = tier.replace("\\", "").replace('"', "")  # a structured-field string
            window = max(1, math.ceil(rate.period))
            remaining = max(0, int(getattr(decision, "remaining", 0)))
            headers += [
                (b"ratelimit-policy", f'"{name}";q={rate.limit};w={window}'.encode()),
                (b"ratelimit", f'"{name}";r={remaining};t={seconds}'.encode()),
            ]
        return 429, headers, b"Too Many Requests\n"


def _asgi_route(scope: Scope) -> str | None:
    route = scope.get("route")  # Starlette / FastAPI set it when a route matched
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else None


def _wsgi_route(environ: Any) -> str | None:
    route = environ.get("sentia.route")  # an application (or a framework hook) may set it
    return route if isinstance(route, str) else None


def _asgi_client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _wsgi_client(environ: Any) -> str:
    return str(environ.get("REMOTE_ADDR") or "unknown")


class SentiaASGIMiddleware:
    """ASGI middleware: rate limit (optional), query unit of work, request timing.

    Args:
        app: the ASGI application.
        monitor: a PerformanceMonitor (or None to skip timing).
        queries: a QueryOptimizer (or None to skip units of work).
        limiter: a RateLimiter, needed when ``rate_limit`` is set.
        rate_limit: the tier applied to every request, keyed by ``client_key``.
        client_key: ``fn(scope) -> str``; default the client's IP address.
        exclude_paths: paths passed straight through (no limit, no timing, no
            unit of work); an entry ending in ``*`` is a prefix. Default
            :data:`DEFAULT_EXCLUDE_PATHS`, the monitor's own endpoints.
        route: ``fn(scope) -> str | None``, called after the app ran: the route
            template for the ``route`` label (default: ``scope["route"]``'s path).
    """

    #: The default ``exclude_paths``: the monitor's own endpoints.
    DEFAULT_EXCLUDE_PATHS = DEFAULT_EXCLUDE_PATHS

    def __init__(
        self,
        app: ASGIApp,
        *,
        monitor: _Monitor | None = None,
        queries: _Queries | None = None,
        limiter: _Limiter | None = None,
        rate_limit: str | None = None,
        client_key: Callable[[Scope], str] | None = None,
        exclude_paths: Iterable[str] = DEFAULT_EXCLUDE_PATHS,
        route: Callable[[Scope], str | None] | None = None,
    ) -> None:
        self.app = app
        self._core = _RequestCore(
            monitor, queries, limiter, rate_limit, client_key,
            exclude_paths=exclude_paths, route=route,
        )  # fmt: skip

    @classmethod
    def from_sentia(cls, app: ASGIApp, sentia: Any, **kwargs: Any) -> SentiaASGIMiddleware:
        """Use the facade's monitor, query optimizer and rate limiter."""
        return cls(
            app, monitor=sentia.monitor, queries=sentia.queries, limiter=sentia.limiter, **kwargs
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        core = self._core
        if scope.get("type") != "http" or core.excluded(str(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", "GET"))
        started = time.perf_counter()
        if core.tier is not None and core.limiter is not None:
            key = (core.client_key or _asgi_client)(scope)
            decision = await core.limiter.ahit(core.tier, key=key)
            if not decision.allowed:
                status, headers, body = core.too_many(decision)
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                core.limited(started, method)
                return
        status = 500
        raised = True

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 500))
            await send(message)

        route = ""
        try:
            with core.unit(method, str(scope.get("path", ""))) as unit:
                try:
                    await self.app(scope, receive, send_wrapper)
                finally:
                    route = core.route_of(scope, _asgi_route)
                    unit.route(route)
            raised = False
        finally:
            core.finish(started, status, raised, method, route)


class SentiaWSGIMiddleware:
    """WSGI middleware with the same behaviour as :class:`SentiaASGIMiddleware`.

    ``client_key`` receives the WSGI environ (default: ``REMOTE_ADDR``);
    ``route`` too (default: ``environ["sentia.route"]``, which the application
    may set to the matched route template; unknown routes are labelled ``""``
    and their units of work named by the raw path).
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
        exclude_paths: Iterable[str] = DEFAULT_EXCLUDE_PATHS,
        route: Callable[[Any], str | None] | None = None,
    ) -> None:
        self.app = app
        self._core = _RequestCore(
            monitor, queries, limiter, rate_limit, client_key,
            exclude_paths=exclude_paths, route=route,
        )  # fmt: skip

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
        if core.excluded(str(environ.get("PATH_INFO", ""))):
            return self.app(environ, start_response)
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
                core.limited(started, method)
                return [body]
        status = 500

        def start_wrapper(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            nonlocal status
            try:
                status = int(status_line.split(" ", 1)[0])
            except ValueError:
                status = 500
            return start_response(status_line, headers, exc_info)

        def route() -> str:
            return core.route_of(environ, _wsgi_route)

        # The unit of work stays open until the server closes the response: a
        # WSGI app may run its queries lazily while the body is iterated, and a
        # streamed body must not be buffered.
        unit = core.unit(method, str(environ.get("PATH_INFO", "")))
        unit.__enter__()
        try:
            app_body = self.app(environ, start_wrapper)
        except BaseException as exc:
            template = route()
            unit.route(template)
            unit.__exit__(type(exc), exc, exc.__traceback__)
            core.finish(started, status, True, method, template)
            raise

        def done(raised: bool) -> None:
            template = route()
            unit.route(template)
            unit.__exit__(None, None, None)
            core.finish(started, status, raised, method, template)

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
