"""Everything sentia_core.sql knows about PostgreSQL (a :class:`~._dialect.Dialect`).

Works on a psycopg 3 connection.

* Catalog: ``pg_index``, ``pg_attribute``, ``pg_stats`` over every
  non-system schema; tables appear as ``table`` and as ``schema.table``.
* Verification (:class:`PostgresPlanner`): inside one transaction that is
  always rolled back; values sampled from ``pg_stats`` (a histogram bound or
  a most-common value), else a ``TABLESAMPLE``; the index hypothetical with
  HypoPG (``CREATE EXTENSION hypopg`` is tried inside that transaction), else
  real inside a savepoint that is rolled back; ``EXPLAIN (FORMAT JSON)``
  costs compared.
* Creation: ``CREATE INDEX CONCURRENTLY IF NOT EXISTS`` outside any
  transaction, bounded by ``lock_timeout``, under a session advisory lock;
  an INVALID leftover of a failed build is dropped. Maintenance: ANALYZE
  where ``n_mod_since_analyze`` is high, and indexes
  ``pg_stat_user_indexes`` says were never scanned.

psycopg is imported only when a PostgreSQL connection is used.
"""

from __future__ import annotations

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

#: pg_try_advisory_lock key: the first 8 bytes of sha1("sentia_core.sql.apply").
ADVISORY_LOCK_KEY = 0x4F1B_62C0_2D0E_7A11

#: this module is the dialect: see :class:`~._dialect.Dialect`.
name = "postgres"
quote = ansi_quote
quote_table = ansi_quote_table


def accepts(conn: object) -> bool:
    """A psycopg 3 connection (told by its module, so psycopg is not imported)."""
    module = type(conn).__module__
    return module == "psycopg" or module.startswith("psycopg.")


def _rows(conn: Any, query: str, params: Iterable[object] = ()) -> list[tuple[Any, ...]]:
    try:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(query, list(params) or None)
            return list(cur.fetchall())
    except Exception as exc:
        raise BackendError(f"reading the PostgreSQL catalog failed: {exc}") from exc


_INDEXES = """
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


def _unquote(name: str) -> str:
    if len(name) >= 2 and name[0] == '"' and name[-1] == '"':
        return name[1:-1].replace('""', '"')
    return name


def read_indexes(conn: Any) -> list[ExistingIndex]:
    """The indexes of every non-system schema."""
    out: list[ExistingIndex] = []
    for row in _rows(conn, _INDEXES):
        schema, table, name, unique, primary, partial, method, valid, defs, keys, constr = row
        cols = tuple(
            f"({d})" if int(k) == 0 else _unquote(str(d))
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


def read_schema(conn: Any) -> dict[str, tuple[str, ...]]:
    """``table`` and ``schema.table`` -> column names."""
    out: dict[str, tuple[str, ...]] = {}
    rows = _rows(
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
    conn: Any, wanted: set[str] | None, sample_rows: int
) -> dict[tuple[str, str], float]:
    """From ``pg_stats.n_distinct`` (negative: a fraction of ``reltuples``)."""
    del sample_rows  # PostgreSQL keeps its own statistics
    out: dict[tuple[str, str], float] = {}
    rows = _rows(
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
