"""What a live database already has: indexes, columns and column statistics.

Works on a :mod:`sqlite3` connection (``PRAGMA index_list`` / ``index_xinfo`` /
``table_info``, including the implicit rowid key of an ``INTEGER PRIMARY KEY``
and the ``sqlite_autoindex_*`` indexes behind UNIQUE/PRIMARY KEY constraints)
and on a psycopg 3 connection (``pg_index``, ``pg_attribute``, ``pg_stats``).
The kind of connection is detected from its type; a SQLAlchemy ``Connection``
or pooled DB-API connection is unwrapped to the driver connection underneath.

Everything here only reads catalogs. Names are returned as the database
stores them; SQLite names are folded to lower case because SQLite compares
identifiers case-insensitively.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sentia_core.errors import BackendError, ConfigError

__all__ = [
    "ExistingIndex",
    "read_column_stats",
    "read_existing_indexes",
    "read_schema",
]


@dataclass(frozen=True, slots=True)
class ExistingIndex:
    """An index that already exists (or that you describe by hand).

    Attributes:
        name: the index name (``"<rowid>"`` for SQLite's implicit rowid key).
        table: the table name, without schema.
        columns: the key columns in order; an expression key appears in
            parentheses, e.g. ``"(lower(email))"``.
        unique: the index enforces uniqueness.
        primary: it is the primary key (or SQLite's rowid).
        partial: it has a WHERE predicate (so it serves only some rows).
        method: the access method (``"btree"``, ``"hash"``, ``"gin"``...).
        schema: the schema (PostgreSQL), or ``None``.
        valid: False for a PostgreSQL index left invalid by a failed
            ``CREATE INDEX CONCURRENTLY``.
        implicit: created by the database for a constraint or the rowid.
    """

    name: str
    table: str
    columns: tuple[str, ...]
    unique: bool = False
    primary: bool = False
    partial: bool = False
    method: str = "btree"
    schema: str | None = None
    valid: bool = True
    implicit: bool = False

    @property
    def plain_prefix(self) -> tuple[str, ...]:
        """The leading plain columns (up to the first expression), lower-cased.

        Only these can serve a predicate on a column; a partial, invalid or
        non-btree index serves none.
        """
        if self.partial or not self.valid or self.method != "btree":
            return ()
        out: list[str] = []
        for col in self.columns:
            if col.startswith("("):
                break
            out.append(col.lower())
        return tuple(out)

    @property
    def qualified_table(self) -> str:
        """``schema.table`` when a schema is known, else ``table``."""
        return f"{self.schema}.{self.table}" if self.schema else self.table


# --------------------------------------------------------------------------- #
# Connections
# --------------------------------------------------------------------------- #


def unwrap_connection(connection: object) -> Any:
    """The driver connection under a SQLAlchemy connection or pool proxy."""
    inner = getattr(connection, "driver_connection", None)  # pool proxy (SQLAlchemy 2)
    if inner is not None:
        return inner
    pooled = getattr(connection, "connection", None)  # sqlalchemy.engine.Connection
    if pooled is not None and type(connection).__module__.startswith("sqlalchemy"):
        inner = getattr(pooled, "driver_connection", None)
        if inner is not None:
            return inner
    return connection


def dialect_of(connection: object) -> str:
    """``"sqlite"`` or ``"postgres"`` for a supported connection.

    Raises:
        ConfigError: (parameter ``connection``) for anything else.
    """
    if isinstance(connection, sqlite3.Connection):
        return "sqlite"
    module = type(connection).__module__
    if module == "psycopg" or module.startswith("psycopg."):
        return "postgres"
    raise ConfigError(
        "connection",
        type(connection).__name__,
        "must be a sqlite3 or psycopg 3 connection (or a SQLAlchemy connection to one)",
    )


def quote_ident(name: str) -> str:
    """Quote one identifier for SQLite and PostgreSQL alike."""
    return '"' + name.replace('"', '""') + '"'


def quote_table(table: str) -> str:
    """Quote ``table`` or ``schema.table``."""
    return ".".join(quote_ident(p) for p in table.split(".", 1))


def _pg_rows(conn: Any, query: str, params: Iterable[object] = ()) -> list[tuple[Any, ...]]:
    try:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(query, list(params) or None)
            return list(cur.fetchall())
    except Exception as exc:
        raise BackendError(f"reading the PostgreSQL catalog failed: {exc}") from exc


def _sqlite_rows(
    conn: sqlite3.Connection, query: str, params: Iterable[object] = ()
) -> list[tuple[Any, ...]]:
    try:
        return list(conn.execute(query, list(params)).fetchall())
    except sqlite3.Error as exc:
        raise BackendError(f"reading the SQLite catalog failed: {exc}") from exc


def sqlite_columns(conn: sqlite3.Connection, table: str) -> set[str]:
    """Lower-cased column names of ``table`` (empty when it does not exist).

    Needed before quoting a column in SQLite: a double-quoted name that
    matches no column silently becomes a string literal there.
    """
    schema, _, name = table.rpartition(".")
    prefix = f"{quote_ident(schema)}." if schema else ""
    try:
        rows = conn.execute(f"PRAGMA {prefix}table_info({quote_ident(name)})").fetchall()
    except sqlite3.Error:
        return set()
    return {str(r[1]).lower() for r in rows}


# --------------------------------------------------------------------------- #
# Indexes
# --------------------------------------------------------------------------- #

_WITHOUT_ROWID = re.compile(r"\bWITHOUT\s+ROWID\b", re.IGNORECASE)


def _sqlite_tables(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return [
        (str(name), str(sql or ""))
        for name, sql in _sqlite_rows(
            conn,
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )
    ]


def _sqlite_indexes(conn: sqlite3.Connection) -> list[ExistingIndex]:
    out: list[ExistingIndex] = []
    for table, ddl in _sqlite_tables(conn):
        qt = quote_ident(table)
        pk = [
            (int(r[5]), str(r[1]), str(r[2] or ""))
            for r in _sqlite_rows(conn, f"PRAGMA table_info({qt})")
            if int(r[5] or 0) > 0
        ]
        if (
            len(pk) == 1
            and pk[0][2].strip().upper() == "INTEGER"
            and not _WITHOUT_ROWID.search(ddl)
        ):
            out.append(
                ExistingIndex(
                    "<rowid>", table.lower(), (pk[0][1].lower(),), True, True, implicit=True
                )
            )
        for _seq, name, unique, origin, partial in _sqlite_rows(conn, f"PRAGMA index_list({qt})"):
            cols: list[str] = []
            for row in _sqlite_rows(conn, f"PRAGMA index_xinfo({quote_ident(str(name))})"):
                if not int(row[5]):  # auxiliary (non-key) column
                    continue
                cid, colname = int(row[1]), row[2]
                if cid == -2 or colname is None:
                    cols.append("(expression)")
                elif cid == -1:
                    cols.append("rowid")
                else:
                    cols.append(str(colname).lower())
            out.append(
                ExistingIndex(
                    name=str(name),
                    table=table.lower(),
                    columns=tuple(cols),
                    unique=bool(unique),
                    primary=origin == "pk",
                    partial=bool(partial),
                    implicit=origin in ("pk", "u"),
                )
            )
    return out


_PG_INDEXES = """
SELECT n.nspname, t.relname, i.relname, ix.indisunique, ix.indisprimary,
       ix.indpred IS NOT NULL, am.amname, ix.indisvalid,
       ARRAY(SELECT pg_get_indexdef(ix.indexrelid, k, true)
             FROM generate_series(1, ix.indnkeyatts) AS k ORDER BY k),
       ARRAY(SELECT ix.indkey[k - 1] FROM generate_series(1, ix.indnkeyatts) AS k ORDER BY k),
       EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = ix.indexrelid)
FROM pg_index ix
JOIN pg_class i ON i.oid = ix.indexrelid
JOIN pg_class t ON t.oid = ix.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_am am ON am.oid = i.relam
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
ORDER BY n.nspname, t.relname, i.relname
"""


def _pg_unquote(name: str) -> str:
    if len(name) >= 2 and name[0] == '"' and name[-1] == '"':
        return name[1:-1].replace('""', '"')
    return name


def _pg_indexes(conn: Any) -> list[ExistingIndex]:
    out: list[ExistingIndex] = []
    for row in _pg_rows(conn, _PG_INDEXES):
        schema, table, name, unique, primary, partial, method, valid, defs, keys, constr = row
        cols = tuple(
            f"({d})" if int(k) == 0 else _pg_unquote(str(d))
            for d, k in zip(defs or [], keys or [], strict=False)
        )
        out.append(
            ExistingIndex(
                name=str(name),
                table=str(table),
                columns=cols,
                unique=bool(unique),
                primary=bool(primary),
                partial=bool(partial),
                method=str(method),
                schema=str(schema),
                valid=bool(valid),
                implicit=bool(constr),
            )
        )
    return out


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
    if dialect_of(conn) == "sqlite":
        return _sqlite_indexes(conn)
    return _pg_indexes(conn)


# --------------------------------------------------------------------------- #
# Columns and statistics
# --------------------------------------------------------------------------- #


def read_schema(connection: object) -> dict[str, tuple[str, ...]]:
    """Map every user table to its column names.

    PostgreSQL tables appear twice: as ``table`` and as ``schema.table``.
    Used to attribute unqualified columns in multi-table queries.

    Raises:
        ConfigError: unsupported connection. BackendError: the query failed.
    """
    conn = unwrap_connection(connection)
    out: dict[str, tuple[str, ...]] = {}
    if dialect_of(conn) == "sqlite":
        for table, _ddl in _sqlite_tables(conn):
            rows = _sqlite_rows(conn, f"PRAGMA table_info({quote_ident(table)})")
            out[table.lower()] = tuple(str(r[1]).lower() for r in rows)
        return out
    rows = _pg_rows(
        conn,
        "SELECT n.nspname, c.relname, a.attname FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p', 'm', 'v', 'f') AND a.attnum > 0 AND NOT a.attisdropped "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY n.nspname, c.relname, a.attnum",
    )
    grouped: dict[tuple[str, str], list[str]] = {}
    for schema, table, col in rows:
        grouped.setdefault((str(schema), str(table)), []).append(str(col))
    for (schema, table), cols in grouped.items():
        out.setdefault(table, tuple(cols))
        out[f"{schema}.{table}"] = tuple(cols)
    return out


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
    out: dict[tuple[str, str], float] = {}
    if dialect_of(conn) == "sqlite":
        for table, _ddl in _sqlite_tables(conn):
            if wanted is not None and table.lower() not in wanted:
                continue
            cur = conn.execute(f"SELECT * FROM {quote_ident(table)} LIMIT ?", [sample_rows])
            names = [str(d[0]).lower() for d in cur.description or ()]
            seen: list[set[object]] = [set() for _ in names]
            for row in cur:
                for i, value in enumerate(row):
                    if value is not None:
                        seen[i].add(value)
            for name, values in zip(names, seen, strict=True):
                out[(table.lower(), name)] = float(len(values))
        return out
    rows = _pg_rows(
        conn,
        "SELECT s.schemaname, s.tablename, s.attname, s.n_distinct, c.reltuples "
        "FROM pg_stats s JOIN pg_namespace n ON n.nspname = s.schemaname "
        "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename "
        "WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema')",
    )
    for schema, table, col, n_distinct, reltuples in rows:
        if wanted is not None and str(table) not in wanted and f"{schema}.{table}" not in wanted:
            continue
        nd = float(n_distinct or 0.0)
        distinct = nd if nd > 0 else -nd * max(float(reltuples or 0.0), 0.0)
        out[(str(table), str(col))] = distinct
        out[(f"{schema}.{table}", str(col))] = distinct
    return out


def indexes_by_table(indexes: Iterable[ExistingIndex]) -> Mapping[str, list[ExistingIndex]]:
    """Group indexes by lower-cased table name (and ``schema.table``)."""
    grouped: dict[str, list[ExistingIndex]] = {}
    for ix in indexes:
        grouped.setdefault(ix.table.lower(), []).append(ix)
        if ix.schema:
            grouped.setdefault(ix.qualified_table.lower(), []).append(ix)
    return grouped
