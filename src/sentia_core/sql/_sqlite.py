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

import contextlib
import random
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sentia_core._clock import Clock
from sentia_core.errors import BackendError, ConfigError

from ._catalog import (
    BuildOutcome,
    ExistingIndex,
    IndexBuild,
    MaintenanceReport,
    ansi_quote,
    ansi_quote_table,
    columns_sql,
)
from ._planner import ExplainError, Plan, Planner, probe_index_name, quantile

__all__ = [
    "SqlitePlanner",
    "accepts",
    "create_index_ddl",
    "create_indexes",
    "maintenance",
    "name",
    "planner",
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


# --------------------------------------------------------------------------- #
# Verification
# --------------------------------------------------------------------------- #

_ROW = re.compile(r"(SCAN|SEARCH) (\S+)(?: AS \S+)?(.*)\Z")


def _rank(detail: str) -> tuple[int, int, int] | None:
    """How good one EXPLAIN QUERY PLAN access row is (higher is better)."""
    m = _ROW.match(detail)
    if m is None:
        return None
    verb, rest = m.group(1), m.group(3)
    if "AUTOMATIC" in rest or not rest.strip():
        return (0, 0, 0)
    if "PRIMARY KEY" in rest:
        return (3, _terms(rest), 1)
    covering = 1 if "COVERING INDEX" in rest else 0
    if verb == "SCAN":
        return (1, 0, covering)
    return (2, _terms(rest), covering)


def _terms(rest: str) -> int:
    m = re.search(r"\((.*)\)\s*\Z", rest)
    if m is None:
        return 0
    score = 0
    for term in m.group(1).split(" AND "):
        score += 1 if ">" in term or "<" in term else 2
    return score


def _alias(detail: str) -> str | None:
    m = _ROW.match(detail)
    return m.group(2).lower() if m else None


def _sort_key(value: object) -> tuple[int, Any]:
    """SQLite's cross-type sort order: NULL < numbers < text < blobs."""
    if value is None:
        return (0, 0)
    if isinstance(value, (int, float)):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return (3, bytes(value))
    return (4, repr(value))


class SqlitePlanner(Planner):
    """Savepoint-rolled-back indexes and ``EXPLAIN QUERY PLAN`` rows."""

    method = "sqlite-savepoint"
    has_costs = False

    def __init__(self, conn: Any, rng: random.Random) -> None:
        super().__init__(conn, rng)
        self.columns: dict[str, set[str]] = {}

    def has_column(self, table: str, column: str) -> bool:
        key = table.lower()
        if key not in self.columns:
            self.columns[key] = table_columns(self.conn, table)
        return column.lower() in self.columns[key]

    def sample(self, table: str, column: str) -> tuple[list[object], object]:
        if not self.has_column(table, column):
            return [], None
        qt, qc = quote_table(table), quote(column)
        values: list[object] = []
        try:
            lo, hi = self.conn.execute(f"SELECT min(rowid), max(rowid) FROM {qt}").fetchone()
            if lo is not None and hi is not None:
                ids = sorted({self.rng.randint(int(lo), int(hi)) for _ in range(_SAMPLE_ROWS)})
                marks = ", ".join("?" * len(ids))
                values = [
                    r[0]
                    for r in self.conn.execute(
                        f"SELECT {qc} FROM {qt} WHERE rowid IN ({marks}) AND {qc} IS NOT NULL",
                        ids,
                    )
                ]
        except sqlite3.Error:
            values = []
        if len(values) < 16:
            try:
                values = [
                    r[0]
                    for r in self.conn.execute(
                        f"SELECT {qc} FROM {qt} WHERE {qc} IS NOT NULL LIMIT ?", [_SAMPLE_ROWS * 2]
                    )
                ]
            except sqlite3.Error:
                values = []
        values.sort(key=_sort_key)
        return values, quantile(values, 0.5)

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        yield

    @contextlib.contextmanager
    def with_index(
        self, table: str, columns: Sequence[tuple[str, bool]], key: str
    ) -> Iterator[str]:
        name = probe_index_name(key)
        missing = [c for c, _ in columns if not self.has_column(table, c)]
        if missing:
            raise ExplainError(f"no such column: {table}.{missing[0]}")
        self.conn.execute("SAVEPOINT sentia_verify")
        try:
            self.conn.execute(
                f"CREATE INDEX {name} ON {quote_table(table)} ({columns_sql(columns, quote)})"
            )
            yield name
        finally:
            self.conn.execute("ROLLBACK TO sentia_verify")
            self.conn.execute("RELEASE sentia_verify")

    def explain(self, text: str, params: list[object]) -> Plan:
        try:
            rows = self.conn.execute("EXPLAIN QUERY PLAN " + text, params).fetchall()
        except sqlite3.Error as exc:
            raise ExplainError(str(exc)) from exc
        details = tuple(str(r[3]) for r in rows)
        used = frozenset(m.group(1) for d in details for m in re.finditer(r"INDEX (\S+)", d))
        return Plan(None, " | ".join(details), used, details)

    def judge(self, before: Plan, after: Plan, index: str, margin: float) -> tuple[str, str]:
        del margin  # SQLite exposes no costs to compare
        if index not in after.indexes:
            return "not-used", "SQLite chose another plan"

        def ranks(plan: Plan) -> dict[str, tuple[int, int, int]]:
            out: dict[str, tuple[int, int, int]] = {}
            for d in plan.rows:
                alias, rank = _alias(d), _rank(d)
                if alias is not None and rank is not None:
                    out[alias] = min(out.get(alias, rank), rank)
            return out

        def full_scans(plan: Plan) -> int:
            return sum(1 for d in plan.rows if (r := _rank(d)) is not None and r[0] == 0)

        def temp_trees(plan: Plan) -> int:
            return sum(1 for d in plan.rows if "USE TEMP B-TREE" in d)

        rb, ra = ranks(before), ranks(after)
        using = {a for d in after.rows if f"INDEX {index}" in d and (a := _alias(d)) is not None}
        better_access = any(ra.get(a, (0, 0, 0)) > rb.get(a, (0, 0, 0)) for a in using)
        fewer_sorts = temp_trees(after) < temp_trees(before)
        if full_scans(after) > full_scans(before):
            return "worse", "another table became a full scan"
        if better_access or fewer_sorts:
            what = []
            if better_access:
                what.append("better access path")
            if fewer_sorts:
                what.append("sort removed")
            return "improved", " and ".join(what)
        return "unchanged", "the index is used but the access path is no better"


def planner(
    conn: Any, rng: random.Random, method: str, lock_timeout: float, timeout: float
) -> Planner:
    """A :class:`SqlitePlanner` (HypoPG, asked for by ``method``, is PostgreSQL's)."""
    del lock_timeout, timeout  # not bounded on SQLite
    if method == "hypopg":
        raise ConfigError("method", method, "HypoPG exists only for PostgreSQL")
    return SqlitePlanner(conn, rng)


# --------------------------------------------------------------------------- #
# Creation and maintenance
# --------------------------------------------------------------------------- #


def create_index_ddl(
    name: str, table: str, columns: Sequence[tuple[str, bool]], concurrently: bool
) -> str:
    """``CREATE INDEX IF NOT EXISTS`` (SQLite has no CONCURRENTLY)."""
    del concurrently
    return (
        f"CREATE INDEX IF NOT EXISTS {quote(name)} ON {quote_table(table)} "
        f"({columns_sql(columns, quote)})"
    )


def create_indexes(
    conn: Any,
    builds: Sequence[IndexBuild],
    lock_timeout: float,
    analyze: bool,
    clock: Clock,
) -> list[BuildOutcome]:
    """Run each build's DDL outside any transaction, then ANALYZE the tables."""
    del lock_timeout  # SQLite waits for locks with the connection's own timeout
    if conn.in_transaction:
        reason = "the connection has an open transaction; commit or roll back first"
        return [BuildOutcome("failed", reason) for _ in builds]
    results: list[BuildOutcome] = []
    tables: list[str] = []
    now = clock.monotonic
    for b in builds:
        known = table_columns(conn, b.table)
        missing = [c for c in b.columns if c.lower() not in known]
        if missing:
            results.append(BuildOutcome("failed", f"no such column: {b.table}.{missing[0]}"))
            continue
        start = now()
        try:
            conn.execute(b.ddl)
            if conn.in_transaction:
                conn.commit()
        except sqlite3.Error as exc:
            results.append(BuildOutcome("failed", str(exc)))
            continue
        results.append(BuildOutcome("created", "", now() - start))
        if b.table not in tables:
            tables.append(b.table)
    if analyze:
        for table in tables:
            try:
                conn.execute(f"ANALYZE {quote_table(table)}")
                if conn.in_transaction:
                    conn.commit()
            except sqlite3.Error as exc:  # pragma: no cover - ANALYZE of a table just indexed
                raise BackendError(f"ANALYZE {table} failed: {exc}") from exc
    return results


def maintenance(
    conn: Any, dry_run: bool, stale_fraction: float, min_index_size: int
) -> MaintenanceReport:
    """ANALYZE indexed tables with missing or stale ``sqlite_stat1`` rows; ``PRAGMA optimize``.

    SQLite keeps no index usage counters, so ``min_index_size`` is unused.
    """
    del min_index_size
    try:
        indexed = sorted({ix.table for ix in read_indexes(conn) if ix.name != "<rowid>"})
        has_stat = bool(
            conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
            ).fetchone()
        )
        stat_rows: dict[str, int] = {}
        if has_stat:
            for tbl, stat in conn.execute("SELECT tbl, stat FROM sqlite_stat1"):
                try:
                    stat_rows[str(tbl).lower()] = int(str(stat).split()[0])
                except (ValueError, IndexError):
                    stat_rows[str(tbl).lower()] = -1
        stale: list[str] = []
        for table in indexed:
            if table not in stat_rows:
                stale.append(table)
                continue
            count = int(conn.execute(f"SELECT count(*) FROM {quote(table)}").fetchone()[0])
            before = stat_rows[table]
            if before < 0 or abs(count - before) > stale_fraction * max(before, 1):
                stale.append(table)
        statements = [f"ANALYZE {quote(t)}" for t in stale] + ["PRAGMA optimize"]
        if not dry_run:
            if conn.in_transaction:
                raise BackendError("the connection has an open transaction; commit first")
            for stmt in statements:
                conn.execute(stmt).fetchall()
            if conn.in_transaction:
                conn.commit()
    except sqlite3.Error as exc:
        raise BackendError(f"SQLite maintenance failed: {exc}") from exc
    return MaintenanceReport(
        analyzed=tuple(stale),
        statements=tuple(statements),
        notes=("SQLite keeps no index usage counters; unused indexes cannot be listed",),
        dry_run=dry_run,
    )
