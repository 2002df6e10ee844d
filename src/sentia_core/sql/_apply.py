"""Creating verified indexes (opt-in) and keeping planner statistics fresh.

:func:`apply` is dry-run by default: it returns the DDL it would run. When
asked to act, it creates only suggestions the planner accepted
(:func:`~._verify.verify`), only past a usage threshold (calls per hour of the
shapes that improved, 100 by default as in the original spec) and never more
than ``max_per_table`` indexes on a table (counting the ones it has). On
PostgreSQL it uses ``CREATE INDEX CONCURRENTLY IF NOT EXISTS`` outside any
transaction, bounded by ``SET lock_timeout``, under a session advisory lock so
two processes never build at once; a build that fails leaves an INVALID index
behind, which is dropped. Each table that got an index is then ANALYZEd.

:func:`maintenance` runs ANALYZE where statistics are stale (SQLite: tables
with indexes but no ``sqlite_stat1`` rows, or whose row count moved by more
than ``stale_fraction`` since; then ``PRAGMA optimize``. PostgreSQL:
``pg_stat_user_tables.n_mod_since_analyze`` above ``stale_fraction`` of the
live rows, or never analyzed) and lists indexes never scanned according to
``pg_stat_user_indexes`` (constraint indexes excluded; SQLite keeps no usage
counters).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sentia_core._clock import SYSTEM_CLOCK, Clock
from sentia_core._validate import check_fraction, check_int, check_non_negative, check_positive
from sentia_core.errors import BackendError, ConfigError

from ._catalog import ansi_quote as quote_ident
from ._catalog import ansi_quote_table as quote_table
from ._catalog import unwrap_connection
from ._dialect import dialect_for, read_existing_indexes
from ._sqlite import table_columns as sqlite_columns
from ._verify import VerifiedSuggestion

__all__ = ["AppliedIndex", "MaintenanceReport", "UnusedIndex", "apply", "maintenance"]

#: pg_try_advisory_lock key: the first 8 bytes of sha1("sentia_core.sql.apply").
ADVISORY_LOCK_KEY = 0x4F1B_62C0_2D0E_7A11


@dataclass(frozen=True, slots=True)
class AppliedIndex:
    """What :func:`apply` did (or would do) with one verified suggestion.

    Attributes:
        table, name, columns: the index.
        ddl: the statement run, or that would run.
        status: ``"dry-run"``, ``"created"``, ``"exists"``, ``"skipped"`` or
            ``"failed"``.
        reason: why it was skipped or failed.
        calls_per_hour: usage of the shapes it improves.
        seconds: build time (0 when not built).
    """

    table: str
    name: str
    columns: tuple[str, ...]
    ddl: str
    status: str
    reason: str = ""
    calls_per_hour: float = 0.0
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class UnusedIndex:
    """An index the statistics say was never scanned."""

    schema: str | None
    table: str
    name: str
    scans: int
    size_bytes: int
    drop_ddl: str


@dataclass(frozen=True, slots=True)
class MaintenanceReport:
    """What :func:`maintenance` found and did.

    Attributes:
        analyzed: tables whose statistics were (or, dry-run, would be)
            refreshed.
        statements: the statements run (or that would run).
        unused_indexes: never-scanned, non-constraint indexes (PostgreSQL).
        notes: remarks for people (what could not be checked, and why).
        stats_since: when the usage counters were last reset (epoch seconds),
            or None when unknown.
        dry_run: nothing was executed.
    """

    analyzed: tuple[str, ...]
    statements: tuple[str, ...]
    unused_indexes: tuple[UnusedIndex, ...] = ()
    notes: tuple[str, ...] = ()
    stats_since: float | None = None
    dry_run: bool = False


# --------------------------------------------------------------------------- #
# apply
# --------------------------------------------------------------------------- #


def _columns_sql(v: VerifiedSuggestion) -> str:
    s = v.suggestion
    desc = s.descending or tuple(False for _ in s.columns)
    return ", ".join(
        quote_ident(c) + (" DESC" if d else "") for c, d in zip(s.columns, desc, strict=True)
    )


def apply(
    verified: Iterable[VerifiedSuggestion],
    connection: object,
    *,
    dry_run: bool = True,
    min_calls_per_hour: float = 100.0,
    max_per_table: int = 10,
    window: float = 3600.0,
    coverage: float = 0.95,
    lock_timeout: float = 5.0,
    concurrently: bool = True,
    analyze: bool = True,
    clock: Clock = SYSTEM_CLOCK,
) -> list[AppliedIndex]:
    """Create the verified indexes worth creating (opt-in; dry-run by default).

    Which ones: the ``accepted`` suggestions used at least
    ``min_calls_per_hour``, taken greedily by *marginal* estimated benefit
    (:attr:`~._verify.VerifiedSuggestion.savings`, each shape counted once,
    for the best index that improves it) until they cover ``coverage`` of the
    benefit all of them together could bring. The long tail after that, and
    any index whose shapes are already served, is skipped: every index costs
    writes and storage. Then ``max_per_table`` applies.

    Args:
        verified: from :func:`~._verify.verify`.
        connection: a sqlite3 or psycopg 3 connection. It must not be inside
            an open transaction when ``dry_run`` is False (CONCURRENTLY cannot
            run in one, and a SQLite index would ride on your transaction).
        dry_run: only report the DDL.
        min_calls_per_hour: minimum usage of the shapes an index improves
            (``calls * 3600 / window``).
        max_per_table: never let a table exceed this many non-primary indexes.
        window: the seconds over which the workload's calls were counted.
        coverage: the share (0..1] of the estimated benefit to reach; 1.0
            creates every useful index, 0.95 (the default) drops the tail.
        lock_timeout: PostgreSQL ``lock_timeout`` for each build, seconds.
        concurrently: PostgreSQL ``CREATE INDEX CONCURRENTLY`` (recommended).
        analyze: ANALYZE each table that got an index.
        clock: measures build times.

    Returns:
        One :class:`AppliedIndex` per suggestion, in the order considered.

    Raises:
        ConfigError: an invalid parameter or connection.
        BackendError: the catalog could not be read.
    """
    min_rate = check_non_negative("min_calls_per_hour", min_calls_per_hour)
    check_int("max_per_table", max_per_table, minimum=1)
    span = check_positive("window", window)
    share = check_fraction("coverage", coverage)
    if share == 0.0:
        raise ConfigError("coverage", coverage, "must be greater than 0")
    wait = check_positive("lock_timeout", lock_timeout)
    items = list(verified)
    for v in items:
        if not isinstance(v, VerifiedSuggestion):
            raise ConfigError("verified", v, "must hold VerifiedSuggestion values (see verify)")
    conn = unwrap_connection(connection)
    dialect = dialect_for(conn).name
    existing = read_existing_indexes(conn)
    counts: dict[str, int] = {}
    names: set[str] = set()
    shapes: dict[str, set[tuple[str, ...]]] = {}
    for ix in existing:
        key = ix.table.lower()
        if not ix.valid:
            continue  # a failed CONCURRENTLY build: dropped and rebuilt below
        names.add(ix.name.lower())
        shapes.setdefault(key, set()).add(ix.plain_prefix)
        if not ix.primary:
            counts[key] = counts.get(key, 0) + 1

    plan: list[tuple[VerifiedSuggestion, str, float]] = []
    out: list[AppliedIndex | None] = []
    eligible = [v for v in items if v.accepted and v.calls * 3600.0 / span >= min_rate]
    verdicts = _select(eligible, share)
    rest = sorted(
        (v for v in items if not any(v is e for e in eligible)),
        key=lambda v: (-v.total_time, -v.calls, v.table, v.columns),
    )
    for v, selection in [*verdicts, *((v, "") for v in rest)]:
        s = v.suggestion
        rate = v.calls * 3600.0 / span
        target = quote_table(s.table)
        if dialect == "postgres":
            how = "CREATE INDEX CONCURRENTLY" if concurrently else "CREATE INDEX"
        else:
            how = "CREATE INDEX"
        ddl = f"{how} IF NOT EXISTS {quote_ident(s.name)} ON {target} ({_columns_sql(v)})"
        key = s.table.split(".")[-1].lower()

        def note(
            status: str,
            reason: str,
            *,
            v: VerifiedSuggestion = v,
            ddl: str = ddl,
            rate: float = rate,
        ) -> None:
            out.append(
                AppliedIndex(v.table, v.suggestion.name, v.columns, ddl, status, reason, rate)
            )

        if not v.accepted:
            note("skipped", f"not verified ({v.verdict})")
        elif rate < min_rate:
            note("skipped", f"{rate:.1f} calls/hour is below min_calls_per_hour={min_rate:g}")
        elif selection:
            note("skipped", selection)
        elif s.name.lower() in names or tuple(c.lower() for c in s.columns) in shapes.get(
            key, set()
        ):
            note("exists", "an index with this name or these columns exists")
        elif counts.get(key, 0) >= max_per_table:
            note("skipped", f"{s.table} already has {counts[key]} indexes (max {max_per_table})")
        else:
            counts[key] = counts.get(key, 0) + 1
            names.add(s.name.lower())
            shapes.setdefault(key, set()).add(tuple(c.lower() for c in s.columns))
            if dry_run:
                note("dry-run", "")
            else:
                plan.append((v, ddl, rate))
                out.append(None)  # filled in below
    if plan:
        done = iter(
            _create_postgres(conn, plan, wait, analyze, clock)
            if dialect == "postgres"
            else _create_sqlite(conn, plan, analyze, clock)
        )
        return [r if r is not None else next(done) for r in out]
    return [r for r in out if r is not None]


def _select(
    items: list[VerifiedSuggestion], coverage: float
) -> list[tuple[VerifiedSuggestion, str]]:
    """Greedy by marginal benefit; returns (suggestion, why skipped or "") in order."""
    best: dict[str, float] = {}
    for v in items:
        for fp, saved in v.savings:
            best[fp] = max(best.get(fp, 0.0), saved)
    total = sum(best.values())
    if total <= 0.0:  # no savings known (verified without a workload): keep them all
        ordered = sorted(items, key=lambda v: (-v.total_time, -v.calls, v.table, v.columns))
        return [(v, "") for v in ordered]
    covered: dict[str, float] = {}
    remaining = list(items)
    gained = 0.0
    out: list[tuple[VerifiedSuggestion, str]] = []

    def marginal(v: VerifiedSuggestion) -> float:
        return sum(max(0.0, saved - covered.get(fp, 0.0)) for fp, saved in v.savings)

    chosen: set[str] = set()
    while remaining:
        ready = [v for v in remaining if set(v.depends_on) <= chosen]
        if not ready:
            for v in remaining:
                missing = ", ".join(sorted(set(v.depends_on) - chosen))
                out.append((v, f"it pays off only together with {missing}, which is not created"))
            break
        pick = max(ready, key=lambda v: (marginal(v), v.total_time, v.calls, v.table, v.columns))
        remaining.remove(pick)
        gain = marginal(pick)
        if gain <= 0.0:
            out.append((pick, "redundant: the indexes before it already serve its shapes"))
        elif gained >= coverage * total * (1 - 1e-9):
            out.append(
                (
                    pick,
                    f"long tail: the indexes before it cover {gained / total:.0%} of the "
                    f"estimated benefit (coverage={coverage:g}); it would add "
                    f"{gain / total:.1%}",
                )
            )
        else:
            out.append((pick, ""))
            chosen.add(pick.suggestion.name)
            gained += gain
            for fp, saved in pick.savings:
                covered[fp] = max(covered.get(fp, 0.0), saved)
    return out


def _create_sqlite(
    conn: sqlite3.Connection,
    plan: list[tuple[VerifiedSuggestion, str, float]],
    analyze: bool,
    clock: Clock,
) -> list[AppliedIndex]:
    results: list[AppliedIndex] = []
    if conn.in_transaction:
        return [
            AppliedIndex(
                v.table,
                v.suggestion.name,
                v.columns,
                ddl,
                "failed",
                "the connection has an open transaction; commit or roll back first",
                rate,
            )
            for v, ddl, rate in plan
        ]
    tables: list[str] = []
    now = clock.monotonic
    for v, ddl, rate in plan:
        known = sqlite_columns(conn, v.table)
        missing = [c for c in v.columns if c.lower() not in known]
        if missing:
            reason = f"no such column: {v.table}.{missing[0]}"
            results.append(
                AppliedIndex(v.table, v.suggestion.name, v.columns, ddl, "failed", reason, rate)
            )
            continue
        start = now()
        try:
            conn.execute(ddl)
            if conn.in_transaction:
                conn.commit()
        except sqlite3.Error as exc:
            results.append(
                AppliedIndex(v.table, v.suggestion.name, v.columns, ddl, "failed", str(exc), rate)
            )
            continue
        results.append(
            AppliedIndex(
                v.table, v.suggestion.name, v.columns, ddl, "created", "", rate, now() - start
            )
        )
        if v.table not in tables:
            tables.append(v.table)
    if analyze:
        for table in tables:
            try:
                conn.execute(f"ANALYZE {quote_table(table)}")
                if conn.in_transaction:
                    conn.commit()
            except sqlite3.Error as exc:  # pragma: no cover - ANALYZE of a table just indexed
                raise BackendError(f"ANALYZE {table} failed: {exc}") from exc
    return results


def _create_postgres(
    conn: Any,
    plan: list[tuple[VerifiedSuggestion, str, float]],
    lock_timeout: float,
    analyze: bool,
    clock: Clock,
) -> list[AppliedIndex]:
    import psycopg
    from psycopg.pq import TransactionStatus

    def fail(reason: str) -> list[AppliedIndex]:
        return [
            AppliedIndex(v.table, v.suggestion.name, v.columns, ddl, "failed", reason, rate)
            for v, ddl, rate in plan
        ]

    if conn.info.transaction_status != TransactionStatus.IDLE:
        return fail("the connection has an open transaction; commit or roll back first")
    was_autocommit = conn.autocommit
    conn.autocommit = True
    results: list[AppliedIndex] = []
    try:
        previous = conn.execute("SHOW lock_timeout").fetchone()[0]
        locked = conn.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY]).fetchone()
        if not locked or not locked[0]:
            return [
                AppliedIndex(
                    v.table,
                    v.suggestion.name,
                    v.columns,
                    ddl,
                    "skipped",
                    "another apply holds the advisory lock",
                    rate,
                )
                for v, ddl, rate in plan
            ]
        try:
            conn.execute(f"SET lock_timeout = '{int(lock_timeout * 1000)}ms'")
            tables: list[str] = []
            now = clock.monotonic
            for v, ddl, rate in plan:
                start = now()
                try:
                    leftover = _drop_invalid(conn, v)  # from an earlier failed build
                    if leftover:
                        raise psycopg.errors.ObjectInUse(leftover.lstrip("; "))
                    conn.execute(ddl)
                except psycopg.Error as exc:
                    reason = str(exc).strip().splitlines()[0] + _drop_invalid(conn, v)
                    results.append(
                        AppliedIndex(
                            v.table, v.suggestion.name, v.columns, ddl, "failed", reason, rate
                        )
                    )
                    continue
                results.append(
                    AppliedIndex(
                        v.table,
                        v.suggestion.name,
                        v.columns,
                        ddl,
                        "created",
                        "",
                        rate,
                        now() - start,
                    )
                )
                if v.table not in tables:
                    tables.append(v.table)
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


def _drop_invalid(conn: Any, v: VerifiedSuggestion) -> str:
    """Drop an INVALID index left by a failed CONCURRENTLY build, if any.

    Returns an empty string when there is none (or it was dropped), else a
    sentence saying it remains (the drop waits for the same transactions the
    build waited for, so it can time out too).
    """
    import psycopg

    schema = quote_ident(v.table.split(".")[0]) + "." if "." in v.table else ""
    qualified = schema + quote_ident(v.suggestion.name)
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
            f"; an INVALID index {v.suggestion.name} remains (the next apply drops it, "
            f"or run DROP INDEX CONCURRENTLY {qualified})"
        )
    return ""


# --------------------------------------------------------------------------- #
# maintenance
# --------------------------------------------------------------------------- #


def maintenance(
    connection: object,
    *,
    dry_run: bool = False,
    stale_fraction: float = 0.1,
    min_index_size: int = 0,
) -> MaintenanceReport:
    """Refresh stale planner statistics and list indexes nobody uses.

    Args:
        connection: a sqlite3 or psycopg 3 connection.
        dry_run: only report what would run.
        stale_fraction: statistics are stale when this fraction of the rows
            changed since the last ANALYZE (PostgreSQL's autovacuum default
            is 0.1).
        min_index_size: list unused indexes of at least this many bytes.

    Returns:
        A :class:`MaintenanceReport`.

    Raises:
        ConfigError: an invalid parameter or connection.
        BackendError: a catalog query or ANALYZE failed.
    """
    check_fraction("stale_fraction", stale_fraction)
    check_int("min_index_size", min_index_size, minimum=0)
    conn = unwrap_connection(connection)
    if dialect_for(conn).name == "sqlite":
        return _sqlite_maintenance(conn, dry_run, stale_fraction)
    return _pg_maintenance(conn, dry_run, stale_fraction, min_index_size)


def _sqlite_maintenance(
    conn: sqlite3.Connection, dry_run: bool, stale_fraction: float
) -> MaintenanceReport:
    try:
        indexed = sorted({ix.table for ix in read_existing_indexes(conn) if ix.name != "<rowid>"})
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
            count = int(conn.execute(f"SELECT count(*) FROM {quote_ident(table)}").fetchone()[0])
            before = stat_rows[table]
            if before < 0 or abs(count - before) > stale_fraction * max(before, 1):
                stale.append(table)
        statements = [f"ANALYZE {quote_ident(t)}" for t in stale] + ["PRAGMA optimize"]
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


def _pg_maintenance(
    conn: Any, dry_run: bool, stale_fraction: float, min_index_size: int
) -> MaintenanceReport:
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
                drop_ddl=f"DROP INDEX CONCURRENTLY {quote_ident(schema)}.{quote_ident(name)}",
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
