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

from collections.abc import Iterable
from dataclasses import dataclass

from sentia_core._clock import SYSTEM_CLOCK, Clock
from sentia_core._validate import check_fraction, check_int, check_non_negative, check_positive
from sentia_core.errors import ConfigError

from ._catalog import IndexBuild, MaintenanceReport, UnusedIndex, unwrap_connection
from ._dialect import dialect_for, read_existing_indexes
from ._verify import VerifiedSuggestion

__all__ = ["AppliedIndex", "MaintenanceReport", "UnusedIndex", "apply", "maintenance"]


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


# --------------------------------------------------------------------------- #
# apply
# --------------------------------------------------------------------------- #


def _directions(v: VerifiedSuggestion) -> list[tuple[str, bool]]:
    s = v.suggestion
    desc = s.descending or tuple(False for _ in s.columns)
    return list(zip(s.columns, desc, strict=True))


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
    dialect = dialect_for(conn)
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
        ddl = dialect.create_index_ddl(s.name, s.table, _directions(v), concurrently)
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
        builds = [IndexBuild(v.table, v.suggestion.name, v.columns, ddl) for v, ddl, _ in plan]
        outcomes = dialect.create_indexes(conn, builds, wait, analyze, clock)
        done = iter(
            AppliedIndex(
                v.table, v.suggestion.name, v.columns, ddl, o.status, o.reason, rate, o.seconds
            )
            for (v, ddl, rate), o in zip(plan, outcomes, strict=True)
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
    return dialect_for(conn).maintenance(conn, dry_run, stale_fraction, min_index_size)
