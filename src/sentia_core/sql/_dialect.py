"""One place per database: the :class:`Dialect` protocol, its registry, the catalog reads.

Everything sentia_core.sql knows about one database lives in one module
that implements :class:`Dialect` (:mod:`._sqlite`, :mod:`._postgres`);
:func:`dialect_for` picks it from the kind of connection. The generic logic
(:mod:`._verify`, :mod:`._apply`, :mod:`._advisor`) asks the dialect and
never which database it talks to. The dialect modules import only
dialect-free modules (:mod:`._catalog`, :mod:`._planner`), so no import
cycle can form: adding a database is one new module and one line in
:data:`DIALECTS`.

The public catalog reads (:func:`read_existing_indexes`, :func:`read_schema`,
:func:`read_column_stats`) only read catalogs. A SQLAlchemy ``Connection``
or pooled DB-API connection is unwrapped to the driver connection underneath.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from sentia_core._clock import Clock
from sentia_core.errors import ConfigError

from . import _postgres, _sqlite
from ._catalog import (
    BuildOutcome,
    ExistingIndex,
    IndexBuild,
    MaintenanceReport,
    unwrap_connection,
)
from ._planner import Planner

__all__ = [
    "DIALECTS",
    "Dialect",
    "dialect_for",
    "read_column_stats",
    "read_existing_indexes",
    "read_schema",
]


class Dialect(Protocol):
    """What sentia_core.sql needs from one database.

    ``conn`` is always the driver connection (already unwrapped). Names are
    returned as the database stores them (SQLite folds them to lower case).
    """

    #: a short name (``"sqlite"``, ``"postgres"``).
    name: str

    def accepts(self, conn: object) -> bool:
        """Identify: ``conn`` is a connection of this database's driver."""
        ...

    def quote(self, name: str) -> str:
        """Quote one identifier."""
        ...

    def quote_table(self, table: str) -> str:
        """Quote ``table`` or ``schema.table``."""
        ...

    def read_indexes(self, conn: Any) -> list[ExistingIndex]:
        """Every index on every user table (see :func:`read_existing_indexes`)."""
        ...

    def read_schema(self, conn: Any) -> dict[str, tuple[str, ...]]:
        """Every user table's column names (see :func:`read_schema`)."""
        ...

    def read_column_stats(
        self, conn: Any, wanted: set[str] | None, sample_rows: int
    ) -> dict[tuple[str, str], float]:
        """Distinct values per column of the ``wanted`` (lower-cased) tables, or all."""
        ...

    def planner(
        self, conn: Any, rng: random.Random, method: str, lock_timeout: float, timeout: float
    ) -> Planner:
        """A verification session: sampling, a hypothetical or rolled-back index,
        EXPLAIN and the judgement of two plans.

        Raises:
            ConfigError: ``method`` is not available on this database.
        """
        ...

    def create_index_ddl(
        self, name: str, table: str, columns: Sequence[tuple[str, bool]], concurrently: bool
    ) -> str:
        """The ``CREATE INDEX ... IF NOT EXISTS`` statement for ``(column, descending)``."""
        ...

    def create_indexes(
        self,
        conn: Any,
        builds: Sequence[IndexBuild],
        lock_timeout: float,
        analyze: bool,
        clock: Clock,
    ) -> list[BuildOutcome]:
        """Run the builds (outside any transaction), one outcome per build, in order."""
        ...

    def maintenance(
        self, conn: Any, dry_run: bool, stale_fraction: float, min_index_size: int
    ) -> MaintenanceReport:
        """Refresh stale statistics and list unused indexes (see :func:`~._apply.maintenance`)."""
        ...


#: The supported databases, asked in order.
DIALECTS: tuple[Dialect, ...] = (_sqlite, _postgres)


def dialect_for(conn: object) -> Dialect:
    """The dialect of a driver connection (unwrap a SQLAlchemy one first).

    Raises:
        ConfigError: (parameter ``connection``) for an unsupported connection.
    """
    for dialect in DIALECTS:
        if dialect.accepts(conn):
            return dialect
    raise ConfigError(
        "connection",
        type(conn).__name__,
        "must be a sqlite3 or psycopg 3 connection (or a SQLAlchemy connection to one)",
    )


def read_existing_indexes(
    connection: object | Iterable[ExistingIndex],
) -> list[ExistingIndex]:
    """List the indexes that exist, to merge suggestions against them.

    Args:
        connection: a :mod:`sqlite3` connection, a psycopg 3 connection (or a
            SQLAlchemy connection wrapping one), or an iterable of
            :class:`ExistingIndex` you describe yourself (returned as a list).

    Returns:
        Every index on every user table: SQLite's implicit rowid key and
        ``sqlite_autoindex_*`` constraint indexes included; on PostgreSQL the
        indexes of every non-system schema.

    Raises:
        ConfigError: ``connection`` is of an unsupported kind, or the iterable
            holds something other than :class:`ExistingIndex`.
        BackendError: the catalog query failed.
    """
    if isinstance(connection, (list, tuple, set, frozenset)):
        items = list(connection)
        for item in items:
            if not isinstance(item, ExistingIndex):
                raise ConfigError("existing", item, "must hold ExistingIndex values")
        return items
    conn = unwrap_connection(connection)
    return dialect_for(conn).read_indexes(conn)


def read_schema(connection: object) -> dict[str, tuple[str, ...]]:
    """Map every user table to its column names.

    PostgreSQL tables appear twice: as ``table`` and as ``schema.table``.
    Used to attribute unqualified columns in multi-table queries.

    Raises:
        ConfigError: unsupported connection. BackendError: the query failed.
    """
    conn = unwrap_connection(connection)
    return dialect_for(conn).read_schema(conn)


def read_column_stats(
    connection: object,
    tables: Iterable[str] | None = None,
    *,
    sample_rows: int = 10_000,
) -> dict[tuple[str, str], float]:
    """Estimate the number of distinct values of each column.

    PostgreSQL: from ``pg_stats.n_distinct`` (a negative value is a fraction
    of ``pg_class.reltuples``); run ANALYZE first. SQLite: the distinct count
    in the first ``sample_rows`` rows of each table (an estimate meant for
    ranking columns of one table against each other).

    Args:
        connection: a sqlite3 or psycopg 3 connection.
        tables: restrict to these tables (default: all user tables).
        sample_rows: SQLite rows sampled per table.

    Returns:
        ``{(table, column): distinct}``, the mapping
        :func:`~sentia_core.sql._advisor.suggest_indexes` takes as
        ``column_stats``.

    Raises:
        ConfigError: unsupported connection. BackendError: the query failed.
    """
    conn = unwrap_connection(connection)
    wanted = None if tables is None else {t.lower() for t in tables}
    return dialect_for(conn).read_column_stats(conn, wanted, sample_rows)
