"""One request-routing core for the monitor's HTTP server and its ASGI app.

Theory of operation: a request arrives as a small frozen :class:`Request`
(method, path, query, lower-cased headers); :meth:`Router.handle` decides
everything about it — which route, whether the credentials pass, whether a
cross-origin read is refused, gzip, the security headers — and returns a
:class:`Response`. The stdlib server (``_http.py``) and the ASGI adapter
(``_asgi.py``) only move bytes in and out, so the two cannot drift apart.
Handlers may block (``/health`` runs the health checks), so both adapters
call :meth:`Router.handle` from a small bounded worker pool, never from
their event loop.

Routes come from one table (``_endpoints.py``); :meth:`Router.add` registers
more. Each route has a *kind* and a *scope*:

* kind ``"page"``: HTML, reachable by a navigation from anywhere;
  ``"data"``: JSON or text, refused (403) when the browser says the read is
  cross-origin (``Sec-Fetch-Site`` other than ``same-origin``/``none``, or
  an ``Origin`` that is not this host); ``"static"``: same-origin assets.
* scope ``"metrics"``, ``"pages"``, ``"health"`` or ``"live"``: which
  credentials of :class:`EndpointAuth` the route asks for.

Every response carries ``Content-Security-Policy: default-src 'self';
frame-ancestors 'none'``, ``X-Content-Type-Options: nosniff``,
``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store``, and never a
CORS header. Only GET and HEAD exist: nothing is state-changing.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hmac
import ipaddress
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from sentia_core.errors import ConfigError

__all__ = [
    "EndpointAuth",
    "Request",
    "Response",
    "Route",
    "Router",
    "as_auth",
    "check_bind",
    "is_loopback",
]

_log = logging.getLogger("sentia_core.monitor")

RouteKind = Literal["page", "data", "static"]
Scope = Literal["metrics", "pages", "health", "live"]

#: Same-origin resources only, no inline script or style, no <base>, no form
#: posts, no framing: the dashboard is written to run under exactly this.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

#: Sent on every response (HTML or not): no inline script, no framing.
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
)
METHODS = ("GET", "HEAD")
_GZIP_MIN = 1024
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")  # RFC 6750 b64token


@dataclass(frozen=True, slots=True)
class Request:
    """One request, as both adapters see it.

    Attributes:
        method: upper-case method.
        path: the path without the query string (percent-encoding kept).
        query: the query string ('' when absent).
        headers: header names lower-cased; a repeated header's values are
            joined with ``", "``.
    """

    method: str
    path: str
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)

    def params(self) -> dict[str, str]:
        """The query string's parameters (the last value of a repeated one;
        only the first 100 are read)."""
        fields = self.query.split("&", 100)[:100]
        return dict(parse_qsl("&".join(fields), keep_blank_values=True))


@dataclass(frozen=True, slots=True)
class Response:
    """What a handler (or the router) answers; the adapters add Content-Length."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, text: str, status: int = 200) -> Response:
        """A JSON response from already-serialized ``text``."""
        return cls(status, text.encode(), "application/json")

    @classmethod
    def html(cls, text: str, status: int = 200) -> Response:
        """An HTML page (it must carry no inline script: the CSP forbids it)."""
        return cls(status, text.encode(), "text/html; charset=utf-8")

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        """A plain-text response."""
        return cls(status, text.encode())


Handler = Callable[[Request], Response]


@dataclass(frozen=True, slots=True)
class Route:
    """One entry of the route table.

    Attributes:
        path: the exact path, or a prefix when it ends with ``/`` (``"/static/"``).
        handler: called with the :class:`Request`; may block.
        kind: ``"page"``, ``"data"`` or ``"static"`` (see the module docstring).
        scope: which credentials it asks for: ``"metrics"``, ``"pages"``,
            ``"health"`` or ``"live"``.
        blocking: whether the handler may block (then the adapters run it in
            their worker pool). A non-blocking handler runs on the event loop,
            so it answers even while every worker is busy (``/health/live``).
    """

    path: str
    handler: Handler
    kind: RouteKind = "data"
    scope: Scope = "pages"
    blocking: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path.startswith("/"):
            raise ConfigError("path", self.path, "must start with '/'")
        if self.kind not in ("page", "data", "static"):
            raise ConfigError("kind", self.kind, "must be 'page', 'data' or 'static'")
        if self.scope not in ("metrics", "pages", "health", "live"):
            raise ConfigError("scope", self.scope, "must be 'metrics', 'pages', 'health' or 'live'")


# ---------------------------------------------------------------------------- auth


@dataclass(frozen=True, slots=True)
class _Credentials:
    token: bytes | None
    basic: tuple[bytes, bytes] | None

    def accepts(self, authorization: str | None) -> bool:
        if not authorization:
            return False
        scheme, _, value = authorization.strip().partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "bearer" and self.token is not None:
            return hmac.compare_digest(value.encode("utf-8", "surrogateescape"), self.token)
        if scheme == "basic" and self.basic is not None:
            try:
                raw = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                return False
            user, sep, password = raw.partition(b":")
            if not sep:
                return False
            # Both compared, always: no short-circuit on the user name.
            ok_user = hmac.compare_digest(user, self.basic[0])
            ok_password = hmac.compare_digest(password, self.basic[1])
            return ok_user & ok_password
        return False

    def challenges(self) -> list[str]:
        out = []
        if self.token is not None:
            out.append('Bearer realm="sentia"')
        if self.basic is not None:
            out.append('Basic realm="sentia", charset="UTF-8"')
        return out


def _credentials(
    where: str, token: str | None, username: str | None, password: str | None
) -> _Credentials | None:
    if token is None and username is None and password is None:
        return None
    if token is not None and (not isinstance(token, str) or not _TOKEN_CHARS.match(token)):
        # The value itself is a secret: never put it in the message.
        raise ConfigError(f"{where}token", "***", "must be a non-empty RFC 6750 token")
    if (username is None) != (password is None):
        raise ConfigError(
            f"{where}username", username, "username and password go together (HTTP basic)"
        )
    basic = None
    if username is not None and password is not None:
        if not isinstance(username, str) or not username or ":" in username:
            raise ConfigError(f"{where}username", username, "must be non-empty, without ':'")
        if not isinstance(password, str) or not password:
            raise ConfigError(f"{where}password", "***", "must be a non-empty string")
        basic = (username.encode(), password.encode())
    return _Credentials(None if token is None else token.encode(), basic)


class EndpointAuth:
    """Credentials the monitor's endpoints ask for (bearer token and/or HTTP basic).

    Args:
        token: a bearer token (``Authorization: Bearer TOKEN``, what
            Prometheus' ``authorization`` scrape setting sends).
        username, password: HTTP basic credentials (Prometheus' ``basic_auth``).
        metrics_token, metrics_username, metrics_password: separate credentials
            for ``/metrics`` and ``/metrics.json`` (default: the ones above).
        pages_token, pages_username, pages_password: separate credentials for
            the HTML pages, their JSON and assets (default: the ones above).
        open_liveness: leave ``/health/live`` open (for orchestrator probes).
            Everything else asks for credentials.

    Each scope accepts its token or its basic credentials, compared in
    constant time (:func:`hmac.compare_digest`). Secrets never appear in the
    repr or in error messages.

    Raises:
        ConfigError: a malformed token, a username without a password, or a
            scope left with no credentials at all.
    """

    __slots__ = ("_scopes", "open_liveness")

    def __init__(
        self,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        *,
        metrics_token: str | None = None,
        metrics_username: str | None = None,
        metrics_password: str | None = None,
        pages_token: str | None = None,
        pages_username: str | None = None,
        pages_password: str | None = None,
        open_liveness: bool = False,
    ) -> None:
        if not isinstance(open_liveness, bool):
            raise ConfigError("open_liveness", open_liveness, "must be True or False")
        base = _credentials("", token, username, password)
        metrics = _credentials("metrics_", metrics_token, metrics_username, metrics_password)
        pages = _credentials("pages_", pages_token, pages_username, pages_password)
        scopes: dict[str, _Credentials | None] = {
            "health": base,
            "metrics": metrics or base,
            "pages": pages or base,
            "live": base,
        }
        for name in ("health", "metrics", "pages"):
            if scopes[name] is None:
                raise ConfigError(
                    "auth",
                    "***",
                    f"no credentials for {name}: give token or username/password "
                    "(the default for every endpoint)",
                )
        self._scopes = scopes
        self.open_liveness = open_liveness

    def allows(self, scope: Scope, authorization: str | None) -> bool:
        """Whether ``authorization`` (the header's value) passes for ``scope``."""
        if scope == "live" and self.open_liveness:
            return True
        creds = self._scopes[scope]
        return creds is not None and creds.accepts(authorization)

    def challenges(self, scope: Scope) -> list[str]:
        """The ``WWW-Authenticate`` challenges for ``scope``."""
        creds = self._scopes[scope]
        return [] if creds is None else creds.challenges()

    def __repr__(self) -> str:
        kinds = sorted(
            {
                kind
                for c in self._scopes.values()
                if c is not None
                for kind, present in (("bearer", c.token), ("basic", c.basic))
                if present is not None
            }
        )
        return f"EndpointAuth(schemes={kinds!r}, open_liveness={self.open_liveness})"


AuthSpec = EndpointAuth | str | tuple[str, str] | None


def as_auth(auth: object) -> EndpointAuth | None:
    """``auth`` as an :class:`EndpointAuth`: a token string means bearer, a
    ``(username, password)`` pair means HTTP basic, None means none.

    Raises:
        ConfigError: anything else.
    """
    if auth is None or isinstance(auth, EndpointAuth):
        return auth
    if isinstance(auth, str):
        return EndpointAuth(token=auth)
    if isinstance(auth, tuple) and len(auth) == 2 and all(isinstance(p, str) for p in auth):
        return EndpointAuth(username=auth[0], password=auth[1])
    raise ConfigError(
        "auth", type(auth).__name__, "must be an EndpointAuth, a token or (username, password)"
    )


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is a loopback address."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, auth: EndpointAuth | None, allow_unauthenticated: bool) -> None:
    """Refuse to expose the endpoints beyond loopback without credentials.

    Raises:
        ConfigError: ``host`` is not loopback, ``auth`` is None and
            ``allow_unauthenticated`` is False.
    """
    if not isinstance(allow_unauthenticated, bool):
        raise ConfigError("allow_unauthenticated", allow_unauthenticated, "must be True or False")
    if auth is None and not allow_unauthenticated and not is_loopback(host):
        raise ConfigError(
            "host",
            host,
            "binding a non-loopback address exposes /metrics, /metrics.json, the health "
            "report and the pages to anyone who can reach it: give auth=EndpointAuth(...) "
            "(config: [monitor.auth]) or allow_unauthenticated=True",
        )


# ---------------------------------------------------------------------------- routing


def _cross_origin(headers: Mapping[str, str]) -> bool:
    """Whether the browser says this read comes from another origin."""
    site = headers.get("sec-fetch-site")
    if site is not None and site.strip().lower() not in ("same-origin", "none"):
        return True
    origin = headers.get("origin")
    if origin is None:
        return False
    host = headers.get("host", "").strip().lower()
    try:
        netloc = urlsplit(origin.strip()).netloc.lower()
    except ValueError:
        return True
    return not netloc or netloc != host


def _error(status: int, message: str) -> Response:
    return Response(status, json.dumps({"error": message}).encode(), "application/json")


class Router:
    """The route table plus the rules every request goes through (see the module doc).

    Args:
        routes: the initial routes.
        auth: credentials to ask for (None: every route is open).
    """

    def __init__(
        self, routes: list[Route] | tuple[Route, ...] = (), auth: EndpointAuth | None = None
    ):
        if auth is not None and not isinstance(auth, EndpointAuth):
            raise ConfigError("auth", type(auth).__name__, "must be an EndpointAuth or None")
        self.auth = auth
        self._exact: dict[str, Route] = {}
        self._prefixes: list[Route] = []
        for route in routes:
            self.add(route)

    def add(self, route: Route) -> None:
        """Register ``route`` (replacing one with the same path)."""
        if not isinstance(route, Route):
            raise ConfigError("route", route, "must be a Route")
        if route.path.endswith("/") and route.path != "/":
            self._prefixes = [r for r in self._prefixes if r.path != route.path]
            self._prefixes.append(route)
            self._prefixes.sort(key=lambda r: -len(r.path))
        else:
            self._exact[route.path] = route

    def paths(self) -> list[str]:
        """Every registered path (prefixes end with ``/``)."""
        return sorted([*self._exact, *(r.path for r in self._prefixes)])

    def match(self, path: str) -> Route | None:
        """The route for ``path`` (exact first, then the longest prefix)."""
        route = self._exact.get(path)
        if route is not None:
            return route
        for r in self._prefixes:
            if path.startswith(r.path):
                return r
        return None

    def blocking(self, request: Request) -> bool:
        """Whether answering ``request`` may block (see :attr:`Route.blocking`)."""
        route = self.match(request.path)
        return route is None or route.blocking or request.method not in METHODS

    def handle(self, request: Request) -> Response:
        """Answer ``request``: never raises (a failing handler answers 500)."""
        return self.finish(request, self._dispatch(request))

    def _dispatch(self, request: Request) -> Response:
        if request.method not in METHODS:
            return Response(405, b"method not allowed\n", headers=(("Allow", ", ".join(METHODS)),))
        route = self.match(request.path)
        scope: Scope = "pages" if route is None else route.scope
        auth = self.auth
        if auth is not None and not auth.allows(scope, request.headers.get("authorization")):
            challenges = tuple(("WWW-Authenticate", c) for c in auth.challenges(scope))
            return Response(401, b"authentication required\n", headers=challenges)
        if route is None:
            return Response(404, b"not found\n")
        if route.kind == "data" and _cross_origin(request.headers):
            return _error(403, "cross-origin reads are refused")
        try:
            return route.handler(request)
        except Exception as exc:  # a renderer failed: report it, keep serving
            _log.exception("monitor endpoint %s failed", request.path)
            return _error(500, f"{type(exc).__name__}: {exc}")

    @staticmethod
    def finish(request: Request, response: Response) -> Response:
        """``response`` with its final headers (security headers, gzip when accepted)."""
        body = response.body
        headers = [("Content-Type", response.content_type), *SECURITY_HEADERS]
        headers.extend(response.headers)
        if (
            response.status == 200
            and len(body) > _GZIP_MIN
            and "gzip" in request.headers.get("accept-encoding", "")
        ):
            body = gzip.compress(body, compresslevel=5)
            headers.append(("Content-Encoding", "gzip"))
            headers.append(("Vary", "Accept-Encoding"))
        return Response(response.status, body, response.content_type, tuple(headers))
