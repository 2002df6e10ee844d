"""A DB-API 2 connection wrapper that records every statement in a QueryOptimizer.

Works with :mod:`sqlite3` and psycopg 3 (sync and async connections); any
DB-API 2 driver whose cursors have ``execute``/``executemany`` works the same
way. The wrapper times each ``execute`` with the optimizer's clock and calls
:meth:`~sentia_core.sql.QueryOptimizer.record` with the statement text, the
duration and the cursor's ``rowcount``; parameters are passed through to the
driver and never looked at. Everything else is delegated untouched.

The timing and recording logic lives in :class:`_Recorder`; the sync and
async classes only differ in ``await``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sentia_core.sql import QueryOptimizer, UnitOfWork

__all__ = [
    "AsyncInstrumentedConnection",
    "AsyncInstrumentedCursor",
    "InstrumentedConnection",
    "InstrumentedCursor",
    "wrap_async_connection",
    "wrap_connection",
]


class _Recorder:
    """What the sync and async wrappers share: timing, text, rows, units."""

    __slots__ = ("_conn", "_monotonic", "_unit", "optimizer", "unit_name", "unit_per_transaction")

    def __init__(
        self,
        optimizer: QueryOptimizer,
        conn: object,
        unit_per_transaction: bool,
        unit_name: str,
    ) -> None:
        if not isinstance(optimizer, QueryOptimizer):
            from sentia_core.errors import ConfigError

            raise ConfigError("optimizer", optimizer, "must be a QueryOptimizer")
        self.optimizer = optimizer
        self._monotonic = optimizer.clock.monotonic
        self._conn = conn
        self.unit_per_transaction = unit_per_transaction
        self.unit_name = unit_name
        self._unit: UnitOfWork | None = None

    def start(self) -> float:
        if self.unit_per_transaction and self._unit is None:
            unit = self.optimizer.unit_of_work(self.unit_name)
            unit.__enter__()
            self._unit = unit
        return self._monotonic()

    def done(self, query: object, start: float, cursor: object) -> None:
        duration = self._monotonic() - start
        rows = getattr(cursor, "rowcount", -1)
        self.optimizer.record(
            self.text(query),
            duration,
            rows=rows if type(rows) is int and rows >= 0 else None,
        )

    def text(self, query: object) -> str:
        if isinstance(query, str):
            return query
        if isinstance(query, (bytes, bytearray, memoryview)):
            return bytes(query).decode("utf-8", "replace")
        as_string = getattr(query, "as_string", None)  # psycopg.sql.Composable
        if as_string is not None:
            try:
                return str(as_string(self._conn))
            except Exception:  # rendering failed: record the shape we can see
                return repr(query)
        return str(query)

    def end_transaction(self) -> None:
        unit = self._unit
        if unit is not None:
            self._unit = None
            unit.__exit__(None, None, None)


class InstrumentedCursor:
    """A cursor whose ``execute``/``executemany`` are recorded; the rest is the driver's."""

    __slots__ = ("_cursor", "_recorder")

    def __init__(self, cursor: Any, recorder: _Recorder) -> None:
        self._cursor = cursor
        self._recorder = recorder

    def execute(self, query: Any, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        """Run ``query`` on the driver cursor and record it; returns what the driver does."""
        rec = self._recorder
        start = rec.start()
        if params is None and not args:
            result = self._cursor.execute(query, **kwargs)
        else:
            result = self._cursor.execute(query, params, *args, **kwargs)
        rec.done(query, start, self._cursor)
        return self if result is self._cursor else result

    def executemany(self, query: Any, params_seq: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``query`` for every parameter set; recorded as one execution."""
        rec = self._recorder
        start = rec.start()
        result = self._cursor.executemany(query, params_seq, *args, **kwargs)
        rec.done(query, start, self._cursor)
        return self if result is self._cursor else result

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor)

    def __enter__(self) -> InstrumentedCursor:
        self._cursor.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._cursor.__exit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __repr__(self) -> str:
        return f"InstrumentedCursor({self._cursor!r})"


class InstrumentedConnection:
    """A DB-API connection whose statements are recorded in a QueryOptimizer.

    Made by :func:`wrap_connection`. ``cursor()`` returns an
    :class:`InstrumentedCursor`; the ``execute``/``executemany`` shortcuts of
    sqlite3 and psycopg are recorded too; ``commit``/``rollback``/``close``
    end the unit of work when ``unit_per_transaction`` is on.
    """

    __slots__ = ("_conn", "_recorder")

    def __init__(self, connection: Any, recorder: _Recorder) -> None:
        self._conn = connection
        self._recorder = recorder

    @property
    def wrapped(self) -> Any:
        """The driver connection underneath."""
        return self._conn

    def cursor(self, *args: Any, **kwargs: Any) -> InstrumentedCursor:
        """A recorded cursor (same arguments as the driver's ``cursor()``)."""
        return InstrumentedCursor(self._conn.cursor(*args, **kwargs), self._recorder)

    def execute(self, query: Any, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        """The driver's ``connection.execute`` shortcut, recorded; returns a recorded cursor."""
        rec = self._recorder
        start = rec.start()
        if params is None and not args:
            cursor = self._conn.execute(query, **kwargs)
        else:
            cursor = self._conn.execute(query, params, *args, **kwargs)
        rec.done(query, start, cursor)
        return InstrumentedCursor(cursor, rec)

    def executemany(self, query: Any, params_seq: Any, *args: Any, **kwargs: Any) -> Any:
        """The driver's ``connection.executemany`` shortcut (sqlite3), recorded."""
        rec = self._recorder
        start = rec.start()
        cursor = self._conn.executemany(query, params_seq, *args, **kwargs)
        rec.done(query, start, cursor)
        return InstrumentedCursor(cursor, rec)

    def commit(self) -> None:
        """Commit, then close the transaction's unit of work (if any)."""
        try:
            self._conn.commit()
        finally:
            self._recorder.end_transaction()

    def rollback(self) -> None:
        """Roll back, then close the transaction's unit of work (if any)."""
        try:
            self._conn.rollback()
        finally:
            self._recorder.end_transaction()

    def close(self) -> None:
        """Close the connection and any unit of work still open."""
        try:
            self._conn.close()
        finally:
            self._recorder.end_transaction()

    def __enter__(self) -> InstrumentedConnection:
        self._conn.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        try:
            return self._conn.__exit__(*exc)
        finally:
            self._recorder.end_transaction()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def __repr__(self) -> str:
        return f"InstrumentedConnection({self._conn!r})"


class AsyncInstrumentedCursor:
    """The async twin of :class:`InstrumentedCursor` (psycopg ``AsyncCursor``)."""

    __slots__ = ("_cursor", "_recorder")

    def __init__(self, cursor: Any, recorder: _Recorder) -> None:
        self._cursor = cursor
        self._recorder = recorder

    async def execute(self, query: Any, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        """Run ``query`` and record it; returns this cursor (or what the driver returns)."""
        rec = self._recorder
        start = rec.start()
        if params is None and not args:
            result = await self._cursor.execute(query, **kwargs)
        else:
            result = await self._cursor.execute(query, params, *args, **kwargs)
        rec.done(query, start, self._cursor)
        return self if result is self._cursor else result

    async def executemany(self, query: Any, params_seq: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``query`` for every parameter set; recorded as one execution."""
        rec = self._recorder
        start = rec.start()
        result = await self._cursor.executemany(query, params_seq, *args, **kwargs)
        rec.done(query, start, self._cursor)
        return self if result is self._cursor else result

    def __aiter__(self) -> Any:
        return self._cursor.__aiter__()

    async def __aenter__(self) -> AsyncInstrumentedCursor:
        await self._cursor.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._cursor.__aexit__(*exc)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class AsyncInstrumentedConnection:
    """The async twin of :class:`InstrumentedConnection` (psycopg ``AsyncConnection``)."""

    __slots__ = ("_conn", "_recorder")

    def __init__(self, connection: Any, recorder: _Recorder) -> None:
        self._conn = connection
        self._recorder = recorder

    @property
    def wrapped(self) -> Any:
        """The driver connection underneath."""
        return self._conn

    def cursor(self, *args: Any, **kwargs: Any) -> AsyncInstrumentedCursor:
        """A recorded async cursor."""
        return AsyncInstrumentedCursor(self._conn.cursor(*args, **kwargs), self._recorder)

    async def execute(self, query: Any, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        """``await connection.execute(...)``, recorded; returns a recorded cursor."""
        rec = self._recorder
        start = rec.start()
        if params is None and not args:
            cursor = await self._conn.execute(query, **kwargs)
        else:
            cursor = await self._conn.execute(query, params, *args, **kwargs)
        rec.done(query, start, cursor)
        return AsyncInstrumentedCursor(cursor, rec)

    async def commit(self) -> None:
        """Commit, then close the transaction's unit of work (if any)."""
        try:
            await self._conn.commit()
        finally:
            self._recorder.end_transaction()

    async def rollback(self) -> None:
        """Roll back, then close the transaction's unit of work (if any)."""
        try:
            await self._conn.rollback()
        finally:
            self._recorder.end_transaction()

    async def close(self) -> None:
        """Close the connection and any unit of work still open."""
        try:
            await self._conn.close()
        finally:
            self._recorder.end_transaction()

    async def __aenter__(self) -> AsyncInstrumentedConnection:
        await self._conn.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        try:
            return await self._conn.__aexit__(*exc)
        finally:
            self._recorder.end_transaction()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _recorder(
    connection: Any,
    optimizer: QueryOptimizer,
    unit_per_transaction: bool,
    unit_name: str,
    read_indexes: bool,
) -> _Recorder:
    from sentia_core._validate import check_name
    from sentia_core.errors import ConfigError

    if not isinstance(unit_per_transaction, bool):
        raise ConfigError("unit_per_transaction", unit_per_transaction, "must be a bool")
    if not isinstance(read_indexes, bool):
        raise ConfigError("read_indexes", read_indexes, "must be a bool")
    check_name("unit_name", unit_name)
    rec = _Recorder(optimizer, connection, unit_per_transaction, unit_name)
    if read_indexes and optimizer.existing_indexes() is None:
        _register_index_reader(connection, optimizer)
    return rec


def _register_index_reader(connection: Any, optimizer: QueryOptimizer) -> None:
    """Let N+1 reports say whether the filtered column is indexed (read lazily)."""
    import sqlite3

    if isinstance(connection, sqlite3.Connection):
        optimizer.set_existing_indexes(lambda: connection)
        return
    if type(connection).__module__.startswith("psycopg") and not hasattr(connection, "__aenter__"):

        def read() -> object:
            # Only between transactions, so that reading the catalog never
            # joins (or opens and leaves open) a transaction of the application.
            from psycopg.pq import TransactionStatus

            if connection.closed or connection.info.transaction_status != TransactionStatus.IDLE:
                return None
            from sentia_core.sql import read_existing_indexes

            try:
                return read_existing_indexes(connection)
            finally:
                if (
                    not connection.autocommit
                    and connection.info.transaction_status == TransactionStatus.INTRANS
                ):
                    connection.rollback()

        optimizer.set_existing_indexes(read)


def wrap_connection(
    connection: Any,
    optimizer: QueryOptimizer,
    *,
    unit_per_transaction: bool = False,
    unit_name: str = "transaction",
    read_indexes: bool = True,
) -> InstrumentedConnection:
    """Wrap a DB-API 2 connection so every statement is recorded in ``optimizer``.

    Args:
        connection: a :mod:`sqlite3` or psycopg 3 connection (or another DB-API 2
            connection).
        optimizer: where statements are recorded.
        unit_per_transaction: open a unit of work at the first statement of a
            transaction and close it at ``commit``/``rollback``/``close``, so N+1
            patterns are reported per transaction. Off by default: most
            applications open units per request instead. A unit already open
            (a request) is joined, not replaced.
        unit_name: the name those units carry in reports.
        read_indexes: let N+1 reports tell whether the filtered column is
            indexed, reading the catalog of this connection lazily, once, and
            only between transactions (sqlite3, psycopg).

    Returns:
        An :class:`InstrumentedConnection` that behaves like ``connection``.

    Raises:
        ConfigError: ``optimizer`` is not a QueryOptimizer, or a bad option.
    """
    return InstrumentedConnection(
        connection, _recorder(connection, optimizer, unit_per_transaction, unit_name, read_indexes)
    )


def wrap_async_connection(
    connection: Any,
    optimizer: QueryOptimizer,
    *,
    unit_per_transaction: bool = False,
    unit_name: str = "transaction",
) -> AsyncInstrumentedConnection:
    """Wrap an async DB-API-style connection (psycopg ``AsyncConnection``).

    Same behaviour as :func:`wrap_connection`; catalogs are not read from an
    async connection (pass indexes to ``optimizer.set_existing_indexes``).
    """
    return AsyncInstrumentedConnection(
        connection, _recorder(connection, optimizer, unit_per_transaction, unit_name, False)
    )
