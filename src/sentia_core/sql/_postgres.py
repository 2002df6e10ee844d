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

import contextlib
import json
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sentia_core._clock import Clock
from sentia_core.errors import BackendError

from ._catalog import (
    BuildOutcome,
    ExistingIndex,
    IndexBuild,
    MaintenanceReport,
    UnusedIndex,
    ansi_quote,
    ansi_quote_table,
    columns_sql,
)
from ._planner import ExplainError, Plan, Planner, probe_index_name, quantile

__all__ = [
    "ADVISORY_LOCK_KEY",
    "PostgresPlanner",
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


# --------------------------------------------------------------------------- #
# Verification
# --------------------------------------------------------------------------- #


def _walk(node: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield node
    for child in node.get("Plans", ()) or ():
        if isinstance(child, Mapping):
            yield from _walk(child)


def _summary(root: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for node in _walk(root):
        kind = str(node.get("Node Type", "?"))
        rel = node.get("Relation Name")
        ix = node.get("Index Name")
        piece = kind
        if rel:
            piece += f" on {rel}"
        if ix:
            piece += f" using {ix}"
        parts.append(piece)
        if len(parts) >= 8:
            parts.append("...")
            break
    return " > ".join(parts)


class PostgresPlanner(Planner):
    """HypoPG or rolled-back real indexes, costs from ``EXPLAIN (FORMAT JSON)``."""

    marker = "%s"

    def __init__(
        self, conn: Any, rng: random.Random, method: str, lock_timeout: float, timeout: float
    ) -> None:
        super().__init__(conn, rng)
        self.requested = method
        self.lock_timeout = lock_timeout
        self.timeout = timeout
        self.method = "rolled-back-index"

    def escape(self, text: str) -> str:
        return text.replace("%", "%%")

    def scalar(self, value: int) -> object:
        return str(value)

    def array_of(self, value: object) -> object:
        if value is None:
            return None
        text = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return '{"' + text + '"}'

    def rows(
        self, query: str, params: Sequence[object] = (), *, extended: bool = False
    ) -> list[tuple[Any, ...]]:
        """Run ``query`` in a savepoint; ``extended`` forces the extended protocol.

        psycopg sends a statement without parameters as a simple query, which
        would run several ``;``-separated statements; a prepared statement
        cannot hold more than one. (The text was already checked to hold no
        ``;``: this is a second, independent guard.)
        """
        with self.conn.transaction(), self.conn.cursor() as cur:
            cur.execute(query, list(params), prepare=True if extended and not params else None)
            return list(cur.fetchall())

    def sample(self, table: str, column: str) -> tuple[list[object], object]:
        import psycopg

        qt, qc = quote_table(table), quote(column)
        try:
            stats = self.rows(
                "SELECT s.most_common_vals::text::text[], s.histogram_bounds::text::text[] "
                "FROM pg_stats s JOIN pg_namespace n ON n.nspname = s.schemaname "
                "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename "
                "WHERE c.oid = to_regclass(%s) AND s.attname = %s",
                [qt, column],
            )
        except psycopg.Error:
            stats = []
        mcv: list[object] = list(stats[0][0] or []) if stats else []
        hist: list[object] = list(stats[0][1] or []) if stats else []
        if len(hist) >= 3:
            return hist, quantile(hist, 0.5)
        try:
            rel = self.rows("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", [qt])
            tuples = float(rel[0][0]) if rel and rel[0][0] is not None else -1.0
            pct = 100.0 if tuples <= 0 else min(100.0, max(0.01, 100.0 * 2000 / tuples))
            seed = self.rng.randint(0, 2**31 - 1)
            values: list[object] = [
                r[0]
                for r in self.rows(
                    f"SELECT s.o::text AS v FROM (SELECT {qc} AS o FROM {qt} "
                    f"TABLESAMPLE SYSTEM ({pct:.4f}) REPEATABLE ({seed}) "
                    f"WHERE {qc} IS NOT NULL LIMIT 1000) s ORDER BY s.o"
                )
            ]
        except psycopg.Error:
            values = []
        typical = quantile(mcv, 0.5) if mcv else quantile(values, 0.5)
        return values or mcv, typical

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        import psycopg
        from psycopg.pq import TransactionStatus

        if self.conn.info.transaction_status == TransactionStatus.INERROR:
            raise BackendError("the connection is in a failed transaction; roll it back first")
        with self.conn.transaction():
            with self.conn.cursor() as cur:
                cur.execute(f"SET LOCAL lock_timeout = '{int(self.lock_timeout * 1000)}ms'")
                cur.execute(f"SET LOCAL statement_timeout = '{int(self.timeout * 1000)}ms'")
            if self.requested in ("auto", "hypopg"):
                if self._hypopg():
                    self.method = "hypopg"
                elif self.requested == "hypopg":
                    raise BackendError("HypoPG is not available (CREATE EXTENSION hypopg failed)")
            yield
            raise psycopg.Rollback()

    def _hypopg(self) -> bool:
        import psycopg

        try:
            if self.rows("SELECT 1 FROM pg_extension WHERE extname = 'hypopg'"):
                return True
            with self.conn.transaction(), self.conn.cursor() as cur:
                cur.execute("CREATE EXTENSION hypopg")  # rolled back with the session
            return True
        except psycopg.Error:
            return False

    @contextlib.contextmanager
    def with_index(
        self, table: str, columns: Sequence[tuple[str, bool]], key: str
    ) -> Iterator[str]:
        import psycopg

        cols = columns_sql(columns, quote)
        target = quote_table(table)
        if self.method == "hypopg":
            try:
                oid, name = self.rows(
                    "SELECT indexrelid, indexname FROM hypopg_create_index(%s)",
                    [f"CREATE INDEX ON {target} ({cols})"],
                )[0]
            except psycopg.Error as exc:
                raise ExplainError(str(exc).strip()) from exc
            try:
                yield str(name)
            finally:
                self.rows("SELECT hypopg_drop_index(%s)", [oid])
            return
        name = probe_index_name(key)
        try:
            with self.conn.transaction():
                try:
                    with self.conn.cursor() as cur:
                        cur.execute(f"CREATE INDEX {name} ON {target} ({cols})")
                except psycopg.Error as exc:
                    raise ExplainError(str(exc).strip()) from exc
                yield name
                raise psycopg.Rollback()
        except psycopg.Error as exc:  # pragma: no cover - savepoint bookkeeping failed
            raise ExplainError(str(exc).strip()) from exc

    def explain(self, text: str, params: list[object]) -> Plan:
        import psycopg

        try:
            rows = self.rows("EXPLAIN (FORMAT JSON) " + text, params, extended=True)
        except psycopg.Error as exc:
            raise ExplainError(str(exc).strip().splitlines()[0]) from exc
        doc = rows[0][0]
        if isinstance(doc, str):
            doc = json.loads(doc)
        root = doc[0]["Plan"]
        used = frozenset(
            str(n["Index Name"]) for n in _walk(root) if n.get("Index Name") is not None
        )
        return Plan(float(root.get("Total Cost", 0.0)), _summary(root), used)

    def judge(self, before: Plan, after: Plan, index: str, margin: float) -> tuple[str, str]:
        if index not in after.indexes:
            return "not-used", "the planner preferred another plan"
        if before.cost is None or after.cost is None or before.cost <= 0:
            return "unchanged", "no cost to compare"
        reduction = 1.0 - after.cost / before.cost
        text = f"cost {before.cost:.1f} → {after.cost:.1f} ({-reduction:+.0%})"
        if reduction >= margin:
            return "improved", text
        return "unchanged", f"{text}; needs at least -{margin:.0%}"


def planner(
    conn: Any, rng: random.Random, method: str, lock_timeout: float, timeout: float
) -> Planner:
    """A :class:`PostgresPlanner` (``method`` ``"auto"``, ``"hypopg"`` or ``"index"``)."""
    return PostgresPlanner(conn, rng, method, lock_timeout, timeout)


# --------------------------------------------------------------------------- #
# Creation and maintenance
# --------------------------------------------------------------------------- #


def create_index_ddl(
    name: str, table: str, columns: Sequence[tuple[str, bool]], concurrently: bool
) -> str:
    """``CREATE INDEX [CONCURRENTLY] IF NOT EXISTS``."""
    how = "CREATE INDEX CONCURRENTLY" if concurrently else "CREATE INDEX"
    return (
        f"{how} IF NOT EXISTS {quote(name)} ON {quote_table(table)} ({columns_sql(columns, quote)})"
    )


def create_indexes(
    conn: Any,
    builds: Sequence[IndexBuild],
    lock_timeout: float,
    analyze: bool,
    clock: Clock,
) -> list[BuildOutcome]:
    """Run each build's DDL in autocommit under the advisory lock, then ANALYZE."""
    import psycopg
    from psycopg.pq import TransactionStatus

    if conn.info.transaction_status != TransactionStatus.IDLE:
        reason = "the connection has an open transaction; commit or roll back first"
        return [BuildOutcome("failed", reason) for _ in builds]
    was_autocommit = conn.autocommit
    conn.autocommit = True
    results: list[BuildOutcome] = []
    try:
        previous = conn.execute("SHOW lock_timeout").fetchone()[0]
        locked = conn.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY]).fetchone()
        if not locked or not locked[0]:
            return [
                BuildOutcome("skipped", "another apply holds the advisory lock") for _ in builds
            ]
        try:
            conn.execute(f"SET lock_timeout = '{int(lock_timeout * 1000)}ms'")
            tables: list[str] = []
            now = clock.monotonic
            for b in builds:
                start = now()
                try:
                    leftover = _drop_invalid(conn, b)  # from an earlier failed build
                    if leftover:
                        raise psycopg.errors.ObjectInUse(leftover.lstrip("; "))
                    conn.execute(b.ddl)
                except psycopg.Error as exc:
                    reason = str(exc).strip().splitlines()[0] + _drop_invalid(conn, b)
                    results.append(BuildOutcome("failed", reason))
                    continue
                results.append(BuildOutcome("created", "", now() - start))
                if b.table not in tables:
                    tables.append(b.table)
            if analyze:
                for table in tables:
                    conn.execute(f"ANALYZE {quote_table(table)}")
        finally:
            conn.execute("SELECT set_config('lock_timeout', %s, false)", [previous])
            conn.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
    except psycopg.Error as exc:
        raise BackendError(f"creating indexes failed: {exc}") from exc
    finally:
        conn.autocommit = was_autocommit
    return results


def _drop_invalid(conn: Any, b: IndexBuild) -> str:
    """Drop an INVALID index left by a failed CONCURRENTLY build, if any.

    Returns an empty string when there is none (or it was dropped), else a
    sentence saying it remains (the drop waits for the same transactions the
    build waited for, so it can time out too).
    """
    import psycopg

    schema = quote(b.table.split(".")[0]) + "." if "." in b.table else ""
    qualified = schema + quote(b.name)
    try:
        row = conn.execute(
            "SELECT NOT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)",
            [qualified],
        ).fetchone()
        if row is None or not row[0]:
            return ""
        conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {qualified}")
    except psycopg.Error:
        return (
            f"; an INVALID index {b.name} remains (the next apply drops it, "
            f"or run DROP INDEX CONCURRENTLY {qualified})"
        )
    return ""


def maintenance(
    conn: Any, dry_run: bool, stale_fraction: float, min_index_size: int
) -> MaintenanceReport:
    """ANALYZE where many rows changed; list never-scanned, non-constraint indexes."""
    import psycopg

    def rows(query: str, params: list[object] | None = None) -> list[tuple[Any, ...]]:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(query, params)
            return list(cur.fetchall())

    try:
        tables = rows(
            "SELECT schemaname, relname, n_live_tup, n_mod_since_analyze, "
            "last_analyze IS NULL AND last_autoanalyze IS NULL "
            "FROM pg_stat_user_tables ORDER BY schemaname, relname"
        )
        stale: list[str] = []
        for schema, table, live_rows, mods, never in tables:
            live, modified = int(live_rows or 0), int(mods or 0)
            if (never and live + modified > 0) or (
                modified > 0 and modified > stale_fraction * max(live, 1)
            ):
                stale.append(f"{schema}.{table}")
        statements = [f"ANALYZE {quote_table(t)}" for t in stale]
        if not dry_run:
            for stmt in statements:
                with conn.transaction():
                    conn.execute(stmt)
        unused = [
            UnusedIndex(
                schema=str(schema),
                table=str(table),
                name=str(name),
                scans=int(scans),
                size_bytes=int(size),
                drop_ddl=f"DROP INDEX CONCURRENTLY {quote(schema)}.{quote(name)}",
            )
            for schema, table, name, scans, size in rows(
                "SELECT s.schemaname, s.relname, s.indexrelname, s.idx_scan, "
                "pg_relation_size(s.indexrelid) FROM pg_stat_user_indexes s "
                "JOIN pg_index i ON i.indexrelid = s.indexrelid "
                "WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = s.indexrelid) "
                "AND pg_relation_size(s.indexrelid) >= %s "
                "ORDER BY pg_relation_size(s.indexrelid) DESC, s.indexrelname",
                [min_index_size],
            )
        ]
        reset = rows(
            "SELECT extract(epoch FROM stats_reset)::float8 FROM pg_stat_database "
            "WHERE datname = current_database()"
        )
    except psycopg.Error as exc:
        raise BackendError(f"PostgreSQL maintenance failed: {exc}") from exc
    since = float(reset[0][0]) if reset and reset[0][0] is not None else None
    notes = [
        "usage counters count scans since "
        + ("the last statistics reset" if since is not None else "the server started")
        + "; an index used only by rare jobs (month-end reports) may look unused",
    ]
    return MaintenanceReport(
        analyzed=tuple(stale),
        statements=tuple(statements),
        unused_indexes=tuple(unused),
        notes=tuple(notes),
        stats_since=since,
        dry_run=dry_run,
    )
