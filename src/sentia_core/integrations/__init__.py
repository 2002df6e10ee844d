"""Optional glue between sentia_core and other libraries, imported lazily.

* :func:`wrap_connection` / :func:`wrap_async_connection`: a DB-API 2
  connection (sqlite3, psycopg 3) whose statements are recorded in a
  :class:`~sentia_core.sql.QueryOptimizer`.
* :func:`instrument_sqlalchemy`: the same for a SQLAlchemy engine, through its
  cursor events.
* :func:`instrument_django` and :class:`QueryUnitMiddleware`: the same for
  Django (an ``execute_wrapper`` on every connection; a unit of work per
  request).
* :class:`SentiaASGIMiddleware` / :class:`SentiaWSGIMiddleware`: a query unit of
  work per request, request timing into the monitor, an optional rate-limit tier.

Importing this package imports neither SQLAlchemy nor a driver; each name
loads its module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._dbapi import (
        AsyncInstrumentedConnection,
        AsyncInstrumentedCursor,
        InstrumentedConnection,
        InstrumentedCursor,
        wrap_async_connection,
        wrap_connection,
    )
    from ._django import QueryUnitMiddleware, instrument_django
    from ._sqlalchemy import instrument_sqlalchemy
    from ._web import SentiaASGIMiddleware, SentiaWSGIMiddleware

__all__ = [
    "AsyncInstrumentedConnection",
    "AsyncInstrumentedCursor",
    "InstrumentedConnection",
    "InstrumentedCursor",
    "QueryUnitMiddleware",
    "SentiaASGIMiddleware",
    "SentiaWSGIMiddleware",
    "instrument_django",
    "instrument_sqlalchemy",
    "wrap_async_connection",
    "wrap_connection",
]

_WHERE = {
    "AsyncInstrumentedConnection": "._dbapi",
    "AsyncInstrumentedCursor": "._dbapi",
    "InstrumentedConnection": "._dbapi",
    "InstrumentedCursor": "._dbapi",
    "SentiaASGIMiddleware": "._web",
    "SentiaWSGIMiddleware": "._web",
    "wrap_async_connection": "._dbapi",
    "wrap_connection": "._dbapi",
    "instrument_sqlalchemy": "._sqlalchemy",
    "instrument_django": "._django",
    "QueryUnitMiddleware": "._django",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
