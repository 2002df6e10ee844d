"""Everything sentia_core.sql knows about SQLite (a :class:`~._dialect.Dialect`).

* Catalog: ``PRAGMA index_list`` / ``index_xinfo`` / ``table_info``,
  including the implicit rowid key of an ``INTEGER PRIMARY KEY`` and the
  ``sqlite_autoindex_*`` indexes behind UNIQUE/PRIMARY KEY constraints.
  Names are folded to lower case: SQLite compares identifiers
  case-insensitively.
* Column statistics: the distinct count in the first rows of each table.
* Verification (:class:`SqlitePlanner`): values sampled from rows picked at
  random by rowid; the index created inside a SAVEPOINT that is rolled
  back; ``EXPLAIN QUERY PLAN`` rows compared (SQLite exposes no costs).
* Creation: ``CREATE INDEX IF NOT EXISTS`` outside any transaction, then
  ANALYZE; maintenance: ANALYZE where ``sqlite_stat1`` is missing or stale,
  then ``PRAGMA optimize``.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from typing import Any

from sentia_core.errors import BackendError

from ._catalog import (
    ExistingIndex,
    ansi_quote,
    ansi_quote_table,
)

__all__ = [
    "accepts",
    "name",
    "quote",
    "quote_table",
    "read_column_stats",
    "read_indexes",
    "read_schema",
]

_SAMPLE_ROWS = 128

#: this module is the dialect: see :class:`~._dialect.Dialect`.
name = "sqlite"
quote = ansi_quote
quote_table = ansi_quote_table


def accepts(conn: object) -> bool:
    """A :mod:`sqlite3` connection."""
    return isinstance(conn, sqlite3.Connection)


def _rows(
    conn: sqlite3.Connection, query: str, params: Iterable[object] = ()
) -> list[tuple[Any, ...]]:
    try:
        return list(conn.execute(query, list(params)).fetchall())
    except sqlite3.Error as exc:
        raise BackendError(f"reading the SQLite catalog failed: {exc}") from exc


def table_columns(conn: sqlite3.Connection, table: str) -> set[str]:
    """Lower-cased column names of ``table`` (empty when it does not exist).

    Needed before quoting a column in SQLite: a double-quoted name that
    matches no column silently becomes a string literal there.
    """
    schema, _, name = table.rpartition(".")
    prefix = f"{quote(schema)}." if schema else ""
    try:
        rows = conn.execute(f"PRAGMA {prefix}table_info({quote(name)})").fetchall()
    except sqlite3.Error:
        return set()
    return {str(r[1]).lower() for r in rows}


# --------------------------------------------------------------------------- #
# Catalog
# --------------------------------------------------------------------------- #

_WITHOUT_ROWID = re.compile(r"\bWITHOUT\s+ROWID\b", re.IGNORECASE)


def _tables(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return [
        (str(name), str(sql or ""))
        for name, sql in _rows(
            conn,
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )
    ]


def read_indexes(conn: sqlite3.Connection) -> list[ExistingIndex]:
    """Every index on every user table, the rowid key and constraint indexes included."""
    out: list[ExistingIndex] = []
    for table, ddl in _tables(conn):
        qt = quote(table)
        pk = [
            (int(r[5]), str(r[1]), str(r[2] or ""))
            for r in _rows(conn, f"PRAGMA table_info({qt})")
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
        for _seq, name, unique, origin, partial in _rows(conn, f"PRAGMA index_list({qt})"):
            cols: list[str] = []
            for row in _rows(conn, f"PRAGMA index_xinfo({quote(str(name))})"):
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


def read_schema(conn: sqlite3.Connection) -> dict[str, tuple[str, ...]]:
    """Lower-cased table name -> lower-cased column names."""
    out: dict[str, tuple[str, ...]] = {}
    for table, _ddl in _tables(conn):
        rows = _rows(conn, f"PRAGMA table_info({quote(table)})")
        out[table.lower()] = tuple(str(r[1]).lower() for r in rows)
    return out


def read_column_stats(
    conn: sqlite3.Connection, wanted: set[str] | None, sample_rows: int
) -> dict[tuple[str, str], float]:
    """The distinct count of each column in the first ``sample_rows`` rows."""
    out: dict[tuple[str, str], float] = {}
    for table, _ddl in _tables(conn):
        if wanted is not None and table.lower() not in wanted:
            continue
        cur = conn.execute(f"SELECT * FROM {quote(table)} LIMIT ?", [sample_rows])
        names = [str(d[0]).lower() for d in cur.description or ()]
        seen: list[set[object]] = [set() for _ in names]
        for row in cur:
            for i, value in enumerate(row):
                if value is not None:
                    seen[i].add(value)
        for name, values in zip(names, seen, strict=True):
            out[(table.lower(), name)] = float(len(values))
    return out
