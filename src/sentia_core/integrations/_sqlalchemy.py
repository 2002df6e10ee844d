"""SQLAlchemy engine events that record every statement in a QueryOptimizer.

``before_cursor_execute`` pushes the start time on the connection's ``info``;
``after_cursor_execute`` pops it and records the compiled statement (with its
driver placeholders, so the optimizer's cache hits on every execution after
the first), the duration and the cursor's ``rowcount``; ``handle_error``
drops the start time of a statement that failed. Works with an ``Engine`` or
an ``AsyncEngine`` (its ``sync_engine`` carries the events).

With ``unit_per_transaction`` a unit of work opens when a connection begins a
transaction and closes at its commit or rollback, so an ORM ``Session`` that
lazy-loads in a loop gets its N+1 reported at the end of the transaction.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any

from sentia_core._validate import check_name
from sentia_core.errors import ConfigError
from sentia_core.sql import QueryOptimizer, UnitOfWork

__all__ = ["instrument_sqlalchemy"]

_START = "sentia_core.start"
_UNIT = "sentia_core.unit"
_ENDING: contextvars.ContextVar[Any] = contextvars.ContextVar("sentia_sa_ending", default=None)


def instrument_sqlalchemy(
    engine: Any,
    optimizer: QueryOptimizer,
    *,
    unit_per_transaction: bool = True,
    unit_name: str = "transaction",
    read_indexes: bool = True,
) -> Callable[[], None]:
    """Record every statement ``engine`` runs in ``optimizer``.

    Args:
        engine: a SQLAlchemy ``Engine`` or ``AsyncEngine``.
        optimizer: where statements are recorded.
        unit_per_transaction: open a unit of work per database transaction for
            N+1 detection (a unit already open, say per request, is joined).
        unit_name: the name those units carry in reports.
        read_indexes: let N+1 reports tell whether the filtered column is
            indexed: when a transaction's unit closes with a report, the
            catalog is read through that transaction's connection (SQLite and
            PostgreSQL; catalog reads only).

    Returns:
        A function that removes the listeners again.

    Raises:
        ConfigError: not an engine, not a QueryOptimizer, or a bad option.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    sync_engine = getattr(engine, "sync_engine", engine)
    if not isinstance(sync_engine, Engine):
        raise ConfigError("engine", engine, "must be a SQLAlchemy Engine or AsyncEngine")
    if not isinstance(optimizer, QueryOptimizer):
        raise ConfigError("optimizer", optimizer, "must be a QueryOptimizer")
    for name, value in (
        ("unit_per_transaction", unit_per_transaction),
        ("read_indexes", read_indexes),
    ):
        if not isinstance(value, bool):
            raise ConfigError(name, value, "must be a bool")
    check_name("unit_name", unit_name)

    monotonic = optimizer.clock.monotonic
    record = optimizer.record

    # SQLAlchemy passes (conn, cursor, statement, parameters, context, executemany).
    def before(conn: Any, *_: Any) -> None:
        info = conn.info
        starts = info.get(_START)
        if starts is None:
            starts = info[_START] = []
        starts.append(monotonic())

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        starts = conn.info.get(_START)
        if not starts:
            return
        duration = monotonic() - starts.pop()
        rows = getattr(cursor, "rowcount", -1)
        record(statement, duration, rows=rows if type(rows) is int and rows >= 0 else None)

    def on_error(ctx: Any) -> None:
        conn = ctx.connection
        if conn is not None:
            starts = conn.info.get(_START)
            if starts:
                starts.pop()

    def on_begin(conn: Any) -> None:
        unit = optimizer.unit_of_work(unit_name)
        unit.__enter__()
        conn.info[_UNIT] = unit

    def on_end(conn: Any) -> None:
        unit: UnitOfWork | None = conn.info.pop(_UNIT, None)
        if unit is not None:
            # Reports made while this unit closes may read the catalog through
            # the very connection that ran the statements (see _read_indexes).
            token = _ENDING.set(conn)
            try:
                if read_indexes and unit.joined and optimizer.pending_nplusone():
                    # The report comes later, when the outer unit ends and no
                    # connection is at hand: read the catalog now.
                    optimizer.existing_indexes()
                unit.__exit__(None, None, None)
            finally:
                _ENDING.reset(token)

    listeners: list[tuple[str, Callable[..., None]]] = [
        ("before_cursor_execute", before),
        ("after_cursor_execute", after),
        ("handle_error", on_error),
    ]
    if unit_per_transaction:
        listeners += [("begin", on_begin), ("commit", on_end), ("rollback", on_end)]
    for name, fn in listeners:
        event.listen(sync_engine, name, fn)

    if read_indexes and sync_engine.dialect.name in ("sqlite", "postgresql"):
        optimizer.set_existing_indexes(_read_indexes)

    def remove() -> None:
        for name, fn in listeners:
            if event.contains(sync_engine, name, fn):
                event.remove(sync_engine, name, fn)

    return remove


def _read_indexes() -> object:
    """The indexes, read through the connection whose transaction is ending.

    Returns None (the optimizer then uses what it knew before) outside of a
    transaction's end: a fresh pooled connection could share the DB-API
    connection of a transaction in progress (SQLite's thread pool) and roll
    it back when returned.
    """
    conn = _ENDING.get()
    if conn is None:
        return None
    from sentia_core.sql import read_existing_indexes

    return read_existing_indexes(conn.connection.driver_connection)
