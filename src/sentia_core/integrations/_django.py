"""Django: every query through a database wrapper, one unit of work per request.

:func:`instrument_django` installs an ``execute_wrapper`` on every database
connection Django opens (and on those already open), so each query is timed
with the optimizer's clock and recorded with its SQL text (placeholders, not
parameters) and the cursor's ``rowcount``. :class:`QueryUnitMiddleware` opens
a unit of work per request, so N+1 patterns (a related object loaded per row
in a template loop) are reported with the line that touched the relation.

Settings::

    MIDDLEWARE = [..., "sentia_core.integrations.QueryUnitMiddleware"]

and, once at startup (``AppConfig.ready``)::

    instrument_django(optimizer)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sentia_core.errors import ConfigError
from sentia_core.sql import QueryOptimizer

__all__ = ["QueryUnitMiddleware", "instrument_django"]

_state: dict[str, Any] = {"optimizer": None, "wrapper": None}


class _Wrapper:
    """The execute wrapper: times the query and records it."""

    __slots__ = ("_monotonic", "_record")

    def __init__(self, optimizer: QueryOptimizer) -> None:
        self._monotonic = optimizer.clock.monotonic
        self._record = optimizer.record

    def __call__(  # the signature Django calls
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        start = self._monotonic()
        result = execute(sql, params, many, context)
        duration = self._monotonic() - start
        cursor = context.get("cursor") if isinstance(context, dict) else None
        rows = getattr(cursor, "rowcount", -1)
        self._record(sql, duration, rows=rows if type(rows) is int and rows >= 0 else None)
        return result


def instrument_django(optimizer: QueryOptimizer) -> Callable[[], None]:
    """Record every query Django runs in ``optimizer``.

    Installs the wrapper on the connections already open and, through the
    ``connection_created`` signal, on every connection opened later. Call it
    once (``AppConfig.ready``); calling it again replaces the optimizer.

    Returns:
        A function that uninstalls the wrapper.

    Raises:
        ConfigError: ``optimizer`` is not a QueryOptimizer.
    """
    from django.db import connections  # type: ignore[import-untyped, import-not-found, unused-ignore]
    from django.db.backends.signals import connection_created  # type: ignore[import-untyped, import-not-found, unused-ignore]

    if not isinstance(optimizer, QueryOptimizer):
        raise ConfigError("optimizer", optimizer, "must be a QueryOptimizer")
    _uninstall()
    wrapper = _Wrapper(optimizer)
    _state["optimizer"] = optimizer
    _state["wrapper"] = wrapper

    def on_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
        if wrapper not in connection.execute_wrappers:
            connection.execute_wrappers.append(wrapper)

    connection_created.connect(on_connection, weak=False, dispatch_uid="sentia_core.sql")
    for conn in connections.all(initialized_only=True):
        on_connection(None, conn)
    return _uninstall


def _uninstall() -> None:
    from django.db import connections  # type: ignore[import-untyped, import-not-found, unused-ignore]
    from django.db.backends.signals import connection_created  # type: ignore[import-untyped, import-not-found, unused-ignore]

    wrapper = _state["wrapper"]
    connection_created.disconnect(dispatch_uid="sentia_core.sql")
    if wrapper is not None:
        for conn in connections.all(initialized_only=True):
            while wrapper in conn.execute_wrappers:
                conn.execute_wrappers.remove(wrapper)
    _state["wrapper"] = None
    _state["optimizer"] = None


class QueryUnitMiddleware:
    """Django middleware: each request is one unit of work, named by its route
    template (``"GET /orders/<int:pk>/"``, from ``request.resolver_match.route``;
    the raw path when no URL pattern matched).

    Uses the optimizer given to :func:`instrument_django`; without one it only
    passes requests through.
    """

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        optimizer: QueryOptimizer | None = _state["optimizer"]
        if optimizer is None:
            return self.get_response(request)
        with optimizer.unit_of_work(f"{request.method} {request.path}") as unit:
            try:
                return self.get_response(request)
            finally:
                # After URL resolution: name the unit by the route template
                # ("orders/<int:pk>/"), so reports group requests, not paths.
                match = getattr(request, "resolver_match", None)
                route = getattr(match, "route", None)
                if isinstance(route, str) and route:
                    unit.rename(f"{request.method} /{route.lstrip('/')}")
