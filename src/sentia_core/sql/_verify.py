"""Verify index suggestions against the real planner, then leave no trace.

Theory of operation
-------------------
For each suggestion, every query shape it claims to serve is turned into a
read-only probe (:func:`~._probe.probe`: a SELECT stays a SELECT; an
UPDATE/DELETE becomes ``SELECT 1 FROM <target> WHERE <its WHERE>``; INSERT
... VALUES and DDL are skipped). The probe is EXPLAINed (never EXPLAIN
ANALYZE, never executed) *before* and *with* the index, and the two plans are
compared:

* **PostgreSQL**: inside one transaction that is always rolled back. With
  HypoPG (``CREATE EXTENSION hypopg`` is tried inside that transaction, so even
  the extension disappears afterwards) the index is hypothetical: no build, no
  lock. Without it, a real ``CREATE INDEX`` inside a savepoint that is rolled
  back (this builds the index and holds a SHARE lock on the table for the
  duration; ``lock_timeout`` bounds the wait). A shape *improves* when the
  plan uses the index and the planner's total cost falls by at least
  ``min_cost_reduction`` (Dexter's 50% by default).
* **SQLite** exposes no costs. The index is created inside a SAVEPOINT that
  is rolled back, and ``EXPLAIN QUERY PLAN`` rows are compared: a shape
  improves when the plan uses the index and the access to that table got
  better (SCAN or AUTOMATIC index → SEARCH; a SEARCH with more constrained
  columns, or covering), or a ``USE TEMP B-TREE`` sort disappeared, and no
  other table became a full scan.

A suggestion is *accepted* when at least one of its shapes improves.

Fingerprints carry ``?`` slots, so values must be bound. They are never the
workload's literals: each slot is bound a value sampled from the column it
is compared with (see :class:`~._analysis.ParameterSlot`): on PostgreSQL from
``pg_stats`` (a histogram bound, or a most-common value), else from a
``TABLESAMPLE`` of the table; on SQLite from rows picked at random by rowid.
Equality slots get a typical value (the middle of the sample); a lower bound
(``col > ?``) the ``1 - range_fraction`` quantile and an upper bound the
``range_fraction`` quantile, so a range keeps about ``range_fraction`` of the
rows, which is what range predicates in OLTP queries are written for;
``BETWEEN`` brackets the median by the same fraction; ``LIMIT`` gets 20,
``OFFSET`` 0, ``INTERVAL`` '1 day', anything else NULL. The rng is seeded, so
a verification run is reproducible.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sentia_core._validate import check_choice, check_fraction, check_positive
from sentia_core.errors import BackendError, ConfigError, UnsafeStatementError

from ._advisor import IndexSuggestion, ShapeWorkload, _normalize_workload
from ._analysis import ParameterSlot
from ._catalog import ansi_quote as quote_ident
from ._catalog import ansi_quote_table as quote_table
from ._catalog import unwrap_connection
from ._dialect import dialect_for, read_schema
from ._probe import Probe, probe
from ._sqlite import table_columns as sqlite_columns

__all__ = ["PlanCheck", "VerifiedSuggestion", "explain", "verify"]

_SAMPLE_ROWS = 128
_LIMIT_VALUE = 20


@dataclass(frozen=True, slots=True)
class PlanCheck:
    """The before/after plans of one shape a suggestion claims to serve.

    Attributes:
        fingerprint: the shape.
        outcome: ``"improved"``, ``"unchanged"`` (index used, not enough
            gain), ``"not-used"``, ``"worse"``, ``"skipped"`` (not explainable,
            e.g. INSERT ... VALUES) or ``"error"`` (the database refused the
            probe).
        uses_index: the plan with the index uses it.
        cost_before, cost_after: PostgreSQL total plan cost; None on SQLite.
        plan_before, plan_after: one-line plan summaries.
        note: details for people.
    """

    fingerprint: str
    outcome: str
    uses_index: bool = False
    cost_before: float | None = None
    cost_after: float | None = None
    plan_before: str = ""
    plan_after: str = ""
    note: str = ""

    @property
    def cost_reduction(self) -> float | None:
        """``1 - after/before`` (PostgreSQL only)."""
        if self.cost_before is None or self.cost_after is None or self.cost_before <= 0:
            return None
        return 1.0 - self.cost_after / self.cost_before


@dataclass(frozen=True, slots=True)
class VerifiedSuggestion:
    """A suggestion with the planner's verdict.

    Attributes:
        suggestion: the suggestion checked.
        accepted: at least one shape improved (see the module doc).
        method: ``"hypopg"``, ``"rolled-back-index"`` (PostgreSQL) or
            ``"sqlite-savepoint"``.
        verdict: one sentence for people.
        checks: one :class:`PlanCheck` per shape.
        calls, total_time: of the shapes that improved.
        savings: ``(fingerprint, seconds)`` per improved shape: the time the
            workload spent in it times the estimated cost reduction
            (PostgreSQL), or the whole time (SQLite, which has no costs: an
            upper bound). :func:`~._apply.apply` ranks by these.
        depends_on: names of other accepted suggestions this one pays off
            only together with (found by the second pass: with every
            accepted index in place, a rejected one is tried again; SQLite
            and PostgreSQL often need the index on both sides of a join).
    """

    suggestion: IndexSuggestion
    accepted: bool
    method: str
    verdict: str
    checks: tuple[PlanCheck, ...]
    calls: int = 0
    total_time: float = 0.0
    savings: tuple[tuple[str, float], ...] = ()
    depends_on: tuple[str, ...] = ()

    @property
    def benefit(self) -> float:
        """Estimated seconds saved over the captured workload (sum of :attr:`savings`)."""
        return sum(s for _, s in self.savings)

    @property
    def improved(self) -> tuple[str, ...]:
        """Fingerprints whose plan improved."""
        return tuple(c.fingerprint for c in self.checks if c.outcome == "improved")

    @property
    def cost_reduction(self) -> float | None:
        """The best cost reduction among improved shapes (PostgreSQL)."""
        values = [
            c.cost_reduction
            for c in self.checks
            if c.outcome == "improved" and c.cost_reduction is not None
        ]
        return max(values) if values else None

    @property
    def table(self) -> str:
        return self.suggestion.table

    @property
    def columns(self) -> tuple[str, ...]:
        return self.suggestion.columns

    @property
    def ddl(self) -> str:
        return self.suggestion.ddl


# --------------------------------------------------------------------------- #
# Plans
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class _Plan:
    cost: float | None
    summary: str
    indexes: frozenset[str]
    rows: tuple[str, ...] = ()


_SQLITE_ROW = re.compile(r"(SCAN|SEARCH) (\S+)(?: AS \S+)?(.*)\Z")


def _sqlite_rank(detail: str) -> tuple[int, int, int] | None:
    """How good one EXPLAIN QUERY PLAN access row is (higher is better)."""
    m = _SQLITE_ROW.match(detail)
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


def _sqlite_alias(detail: str) -> str | None:
    m = _SQLITE_ROW.match(detail)
    return m.group(2).lower() if m else None


def _pg_walk(node: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield node
    for child in node.get("Plans", ()) or ():
        if isinstance(child, Mapping):
            yield from _pg_walk(child)


def _pg_summary(root: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for node in _pg_walk(root):
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


# --------------------------------------------------------------------------- #
# Value sampling
# --------------------------------------------------------------------------- #


def _sqlite_key(value: object) -> tuple[int, Any]:
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


def _quantile(values: Sequence[object], q: float) -> object:
    if not values:
        return None
    i = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return values[i]


class _Sampler:
    """Representative values per (table, column); see the module doc."""

    def __init__(self, backend: _Backend, range_fraction: float) -> None:
        self.backend = backend
        self.f = range_fraction
        self.cache: dict[tuple[str, str], tuple[list[object], object]] = {}
        self._schema: Mapping[str, Sequence[str]] | None = None

    def schema(self) -> Mapping[str, Sequence[str]]:
        if self._schema is None:
            try:
                self._schema = read_schema(self.backend.conn)
            except BackendError:
                self._schema = {}
        return self._schema

    def column_of(self, slot: ParameterSlot) -> tuple[str, str] | None:
        col = slot.column
        if col is None:
            return None
        if col.table is not None:
            return (col.table, col.column)
        schema = self.schema()
        hits = [
            t
            for t in slot.candidates
            if col.column.lower() in {c.lower() for c in schema.get(t, schema.get(t.lower(), ()))}
        ]
        return (hits[0], col.column) if len(hits) == 1 else None

    def value(self, slot: ParameterSlot) -> object:
        role = slot.role
        if role == "limit":
            return self.backend.scalar(_LIMIT_VALUE)
        if role == "offset":
            return self.backend.scalar(0)
        if role == "interval":
            return "1 day"
        target = self.column_of(slot)
        if target is None:
            return None
        key = (target[0].lower(), target[1].lower())
        if key not in self.cache:
            self.cache[key] = self.backend.sample(target[0], target[1])
        values, typical = self.cache[key]
        if role == "range-low":
            picked = _quantile(values, 1.0 - self.f)
        elif role == "range-high":
            picked = _quantile(values, self.f)
        elif role == "between-low":
            picked = _quantile(values, 0.5 - self.f / 2)
        elif role == "between-high":
            picked = _quantile(values, 0.5 + self.f / 2)
        else:
            picked = typical
        if role == "any":
            return self.backend.array_of(picked)
        return picked


# --------------------------------------------------------------------------- #
# Backends
# --------------------------------------------------------------------------- #


class _Backend:
    method = ""

    def __init__(self, conn: Any, rng: random.Random) -> None:
        self.conn = conn
        self.rng = rng

    def scalar(self, value: int) -> object:
        return value

    def array_of(self, value: object) -> object:
        return value

    def sample(self, table: str, column: str) -> tuple[list[object], object]:
        raise NotImplementedError

    def session(self) -> contextlib.AbstractContextManager[None]:
        raise NotImplementedError

    def with_index(self, s: IndexSuggestion) -> contextlib.AbstractContextManager[str]:
        raise NotImplementedError

    def explain(self, text: str, params: list[object]) -> _Plan:
        raise NotImplementedError

    def render(self, p: Probe, sampler: _Sampler) -> tuple[str, list[object]]:
        marker = self.marker
        out: list[str] = []
        params: list[object] = []
        for part in p.parts:
            if isinstance(part, str):
                out.append(self.escape(part))
            else:
                out.append(marker)
                params.append(sampler.value(part))
        text = " ".join(out)
        if ";" in text:
            raise UnsafeStatementError("statement text contains ';'")
        return text, params

    marker = "?"

    def escape(self, text: str) -> str:
        return text

    def judge(self, before: _Plan, after: _Plan, index: str, margin: float) -> tuple[str, str]:
        raise NotImplementedError


class _SqliteBackend(_Backend):
    method = "sqlite-savepoint"

    def __init__(self, conn: Any, rng: random.Random) -> None:
        super().__init__(conn, rng)
        self.columns: dict[str, set[str]] = {}

    def has_column(self, table: str, column: str) -> bool:
        key = table.lower()
        if key not in self.columns:
            self.columns[key] = sqlite_columns(self.conn, table)
        return column.lower() in self.columns[key]

    def sample(self, table: str, column: str) -> tuple[list[object], object]:
        if not self.has_column(table, column):
            return [], None
        qt, qc = quote_table(table), quote_ident(column)
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
        values.sort(key=_sqlite_key)
        return values, _quantile(values, 0.5)

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        yield

    @contextlib.contextmanager
    def with_index(self, s: IndexSuggestion) -> Iterator[str]:
        name = "sentia_probe_" + hashlib.sha1(s.ddl.encode()).hexdigest()[:12]
        missing = [c for c in s.columns if not self.has_column(s.table, c)]
        if missing:
            raise _ExplainError(f"no such column: {s.table}.{missing[0]}")
        cols = ", ".join(quote_ident(c) + (" DESC" if d else "") for c, d in _directions(s))
        self.conn.execute("SAVEPOINT sentia_verify")
        try:
            self.conn.execute(f"CREATE INDEX {name} ON {quote_table(s.table)} ({cols})")
            yield name
        finally:
            self.conn.execute("ROLLBACK TO sentia_verify")
            self.conn.execute("RELEASE sentia_verify")

    def explain(self, text: str, params: list[object]) -> _Plan:
        try:
            rows = self.conn.execute("EXPLAIN QUERY PLAN " + text, params).fetchall()
        except sqlite3.Error as exc:
            raise _ExplainError(str(exc)) from exc
        details = tuple(str(r[3]) for r in rows)
        used = frozenset(m.group(1) for d in details for m in re.finditer(r"INDEX (\S+)", d))
        return _Plan(None, " | ".join(details), used, details)

    def judge(self, before: _Plan, after: _Plan, index: str, margin: float) -> tuple[str, str]:
        del margin  # SQLite exposes no costs to compare
        if index not in after.indexes:
            return "not-used", "SQLite chose another plan"

        def ranks(plan: _Plan) -> dict[str, tuple[int, int, int]]:
            out: dict[str, tuple[int, int, int]] = {}
            for d in plan.rows:
                alias, rank = _sqlite_alias(d), _sqlite_rank(d)
                if alias is not None and rank is not None:
                    out[alias] = min(out.get(alias, rank), rank)
            return out

        def full_scans(plan: _Plan) -> int:
            return sum(1 for d in plan.rows if (r := _sqlite_rank(d)) is not None and r[0] == 0)

        def temp_trees(plan: _Plan) -> int:
            return sum(1 for d in plan.rows if "USE TEMP B-TREE" in d)

        rb, ra = ranks(before), ranks(after)
        using = {
            a for d in after.rows if f"INDEX {index}" in d and (a := _sqlite_alias(d)) is not None
        }
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


class _PostgresBackend(_Backend):
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

        qt, qc = quote_table(table), quote_ident(column)
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
            return hist, _quantile(hist, 0.5)
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
        typical = _quantile(mcv, 0.5) if mcv else _quantile(values, 0.5)
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
    def with_index(self, s: IndexSuggestion) -> Iterator[str]:
        import psycopg

        cols = ", ".join(quote_ident(c) + (" DESC" if d else "") for c, d in _directions(s))
        target = quote_table(s.table)
        if self.method == "hypopg":
            try:
                oid, name = self.rows(
                    "SELECT indexrelid, indexname FROM hypopg_create_index(%s)",
                    [f"CREATE INDEX ON {target} ({cols})"],
                )[0]
            except psycopg.Error as exc:
                raise _ExplainError(str(exc).strip()) from exc
            try:
                yield str(name)
            finally:
                self.rows("SELECT hypopg_drop_index(%s)", [oid])
            return
        name = "sentia_probe_" + hashlib.sha1(s.ddl.encode()).hexdigest()[:12]
        try:
            with self.conn.transaction():
                try:
                    with self.conn.cursor() as cur:
                        cur.execute(f"CREATE INDEX {name} ON {target} ({cols})")
                except psycopg.Error as exc:
                    raise _ExplainError(str(exc).strip()) from exc
                yield name
                raise psycopg.Rollback()
        except psycopg.Error as exc:  # pragma: no cover - savepoint bookkeeping failed
            raise _ExplainError(str(exc).strip()) from exc

    def explain(self, text: str, params: list[object]) -> _Plan:
        import psycopg

        try:
            rows = self.rows("EXPLAIN (FORMAT JSON) " + text, params, extended=True)
        except psycopg.Error as exc:
            raise _ExplainError(str(exc).strip().splitlines()[0]) from exc
        doc = rows[0][0]
        if isinstance(doc, str):
            doc = json.loads(doc)
        root = doc[0]["Plan"]
        used = frozenset(
            str(n["Index Name"]) for n in _pg_walk(root) if n.get("Index Name") is not None
        )
        return _Plan(float(root.get("Total Cost", 0.0)), _pg_summary(root), used)

    def judge(self, before: _Plan, after: _Plan, index: str, margin: float) -> tuple[str, str]:
        if index not in after.indexes:
            return "not-used", "the planner preferred another plan"
        if before.cost is None or after.cost is None or before.cost <= 0:
            return "unchanged", "no cost to compare"
        reduction = 1.0 - after.cost / before.cost
        text = f"cost {before.cost:.1f} → {after.cost:.1f} ({-reduction:+.0%})"
        if reduction >= margin:
            return "improved", text
        return "unchanged", f"{text}; needs at least -{margin:.0%}"


def _directions(s: IndexSuggestion) -> list[tuple[str, bool]]:
    desc = s.descending or tuple(False for _ in s.columns)
    return list(zip(s.columns, desc, strict=True))


class _ExplainError(Exception):
    pass


def _backend(
    connection: object,
    rng: random.Random,
    method: str,
    lock_timeout: float,
    timeout: float,
) -> _Backend:
    conn = unwrap_connection(connection)
    if dialect_for(conn).name == "sqlite":
        if method == "hypopg":
            raise ConfigError("method", method, "HypoPG exists only for PostgreSQL")
        return _SqliteBackend(conn, rng)
    return _PostgresBackend(conn, rng, method, lock_timeout, timeout)


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #


def explain(
    connection: object,
    sql: str,
    *,
    range_fraction: float = 0.05,
    rng: random.Random | None = None,
) -> str:
    """EXPLAIN one read-only statement with representative values bound.

    Args:
        connection: a sqlite3 or psycopg 3 connection.
        sql: a SELECT (raw or a fingerprint with ``?`` slots).
        range_fraction: see :func:`verify`.
        rng: the random source for sampling (default: seeded, reproducible).

    Returns:
        A one-line plan summary (PostgreSQL: node types, tables, indexes and
        the total cost; SQLite: the EXPLAIN QUERY PLAN rows).

    Raises:
        UnsafeStatementError: ``sql`` is not a single read-only query (INSERT,
            UPDATE, DELETE, DDL, ``SELECT ... INTO`` and the like are refused;
            nothing is sent to the database).
        BackendError: the database could not plan it.
    """
    check_fraction("range_fraction", range_fraction)
    p = probe(sql, rewrite_writes=False)
    backend = _backend(connection, rng or random.Random(0), "none", 5.0, 60.0)
    sampler = _Sampler(backend, range_fraction)
    with backend.session():
        text, params = backend.render(p, sampler)
        try:
            plan = backend.explain(text, params)
        except _ExplainError as exc:
            raise BackendError(f"EXPLAIN failed: {exc}") from exc
    if plan.cost is not None:
        return f"{plan.summary} (total cost {plan.cost:.1f})"
    return plan.summary


def verify(
    suggestions: Iterable[IndexSuggestion],
    connection: object,
    workload: Iterable[ShapeWorkload | str] = (),
    *,
    min_cost_reduction: float = 0.5,
    range_fraction: float = 0.05,
    method: str = "auto",
    rewrite_writes: bool = True,
    interactions: bool = True,
    lock_timeout: float = 5.0,
    statement_timeout: float = 60.0,
    rng: random.Random | None = None,
) -> list[VerifiedSuggestion]:
    """Check each suggestion against the real planner (see the module doc).

    Nothing persists: HypoPG indexes are dropped, real indexes and even the
    ``CREATE EXTENSION hypopg`` are rolled back, SQLite savepoints are rolled
    back. Statements are only EXPLAINed, never executed, and a data-changing
    statement is never explained (an UPDATE/DELETE is checked through the
    SELECT of its WHERE clause when ``rewrite_writes``).

    Args:
        suggestions: from :func:`~._advisor.suggest_indexes`.
        connection: a sqlite3 or psycopg 3 connection (or a SQLAlchemy
            connection wrapping one). On PostgreSQL it must not be in a
            failed transaction; an open transaction is left as it was
            (everything happens inside a savepoint).
        workload: the shapes, to find each fingerprint's sample text and to
            sum the calls/time of the shapes that improved. Fingerprints not
            in it are explained from the fingerprint text itself.
        min_cost_reduction: PostgreSQL: the fraction of the estimated cost a
            shape must lose (0.5 = Dexter's 50%). Ignored on SQLite.
        range_fraction: the fraction of rows a bound range slot keeps.
        method: PostgreSQL ``"auto"`` (HypoPG if it can be created, else a
            rolled-back real index), ``"hypopg"`` (fail without it) or
            ``"index"`` (always a rolled-back real index).
        rewrite_writes: explain UPDATE/DELETE through an equivalent SELECT.
        interactions: a second pass: with every accepted index in place,
            retry the rejected ones (an index on one side of a join often
            helps only once the other side has one); a suggestion accepted
            then names the indexes it needs in ``depends_on``.
        lock_timeout: seconds to wait for a lock (PostgreSQL real indexes).
        statement_timeout: seconds any one statement may take (PostgreSQL).
        rng: random source for value sampling (default ``Random(0)``).

    Returns:
        One :class:`VerifiedSuggestion` per suggestion, in the same order;
        ``accepted`` tells which to keep.

    Raises:
        ConfigError: an invalid parameter or connection.
        BackendError: the connection is unusable (failed transaction) or
            ``method="hypopg"`` without HypoPG.
    """
    check_fraction("min_cost_reduction", min_cost_reduction)
    check_fraction("range_fraction", range_fraction)
    check_choice("method", method, ("auto", "hypopg", "index"))
    check_positive("lock_timeout", lock_timeout)
    check_positive("statement_timeout", statement_timeout)
    if rng is not None and not isinstance(rng, random.Random):
        raise ConfigError("rng", rng, "must be a random.Random")
    items = list(suggestions)
    for s in items:
        if not isinstance(s, IndexSuggestion):
            raise ConfigError("suggestions", s, "must hold IndexSuggestion values")
    shapes = {w.fingerprint: w for w in _normalize_workload(workload)}
    backend = _backend(connection, rng or random.Random(0), method, lock_timeout, statement_timeout)
    sampler = _Sampler(backend, range_fraction)

    with backend.session():
        run = _Run(backend, sampler, shapes, min_cost_reduction, rewrite_writes)
        for s in items:
            for fp in s.fingerprints:
                run.prepare(fp)
        results = [run.one(s) for s in items]
        if interactions:
            results = run.second_pass(results)
        return results


class _Run:
    """One verification pass: probes and 'before' plans are shared by suggestions."""

    def __init__(
        self,
        backend: _Backend,
        sampler: _Sampler,
        shapes: Mapping[str, ShapeWorkload],
        margin: float,
        rewrite_writes: bool,
    ) -> None:
        self.backend = backend
        self.sampler = sampler
        self.shapes = shapes
        self.margin = margin
        self.rewrite_writes = rewrite_writes
        self.prepared: dict[str, tuple[str, list[object]] | str] = {}
        self.before: dict[str, _Plan | str] = {}

    def prepare(self, fp: str) -> None:
        if fp in self.prepared:
            return
        shape = self.shapes.get(fp)
        texts = [fp] + ([shape.sample] if shape is not None and shape.sample else [])
        reason = "not explainable"
        for text in texts:
            try:
                p = probe(text, rewrite_writes=self.rewrite_writes)
                rendered, params = self.backend.render(p, self.sampler)
            except UnsafeStatementError as exc:
                reason = str(exc)
                continue
            self.prepared[fp] = (rendered, params)
            try:
                self.before[fp] = self.backend.explain(rendered, params)
            except _ExplainError as exc:
                self.before[fp] = str(exc)
            return
        self.prepared[fp] = reason

    def one(
        self,
        s: IndexSuggestion,
        before: Mapping[str, _Plan | str] | None = None,
        others: Mapping[str, str] | None = None,
    ) -> VerifiedSuggestion:
        """Check ``s`` against ``before`` plans (default: no index added).

        ``others`` maps the names of indexes already in place (second pass)
        to the suggestions they come from.
        """
        base = self.before if before is None else before
        checks: list[PlanCheck] = []
        used: set[str] = set()
        runnable: list[tuple[str, tuple[str, list[object]], _Plan]] = []
        for fp in s.fingerprints:
            entry, plan = self.prepared.get(fp), base.get(fp)
            if not isinstance(entry, tuple):
                checks.append(PlanCheck(fp, "skipped", note=entry or "not explainable"))
            elif not isinstance(plan, _Plan):
                checks.append(PlanCheck(fp, "error", note=f"EXPLAIN failed: {plan}"))
            else:
                runnable.append((fp, entry, plan))
        if runnable:
            try:
                with self.backend.with_index(s) as index:
                    for fp, entry, plan in runnable:
                        check, after = self.check(fp, entry, plan, index, s, others=others)
                        checks.append(check)
                        if check.outcome == "improved" and others:
                            used |= {others[n] for n in after if n in others}
            except _ExplainError as exc:
                checks.append(PlanCheck(runnable[0][0], "error", note=f"index not created: {exc}"))
        order = {fp: i for i, fp in enumerate(s.fingerprints)}
        checks.sort(key=lambda c: order.get(c.fingerprint, len(order)))
        improved = [c for c in checks if c.outcome == "improved"]
        shapes = [self.shapes.get(c.fingerprint) for c in improved]
        savings = tuple(
            (c.fingerprint, w.total_time * min(1.0, max(0.0, c.cost_reduction or 1.0)))
            for c, w in zip(improved, shapes, strict=True)
            if w is not None
        )
        verdict = _verdict(checks, self.margin, self.backend.method)
        if improved and used:
            verdict += " (with " + ", ".join(sorted(used)) + " in place)"
        return VerifiedSuggestion(
            suggestion=s,
            accepted=bool(improved),
            method=self.backend.method,
            verdict=verdict,
            checks=tuple(checks),
            calls=sum(w.calls for w in shapes if w is not None),
            total_time=sum(w.total_time for w in shapes if w is not None),
            savings=savings,
            depends_on=tuple(sorted(used)),
        )

    def second_pass(self, results: list[VerifiedSuggestion]) -> list[VerifiedSuggestion]:
        """Retry rejected suggestions with every accepted index in place."""
        accepted = [v.suggestion for v in results if v.accepted]
        retry = [
            i
            for i, v in enumerate(results)
            if not v.accepted
            and any(c.outcome in ("not-used", "unchanged", "worse") for c in v.checks)
        ]
        if not accepted or not retry:
            return results
        out = list(results)
        try:
            with contextlib.ExitStack() as stack:
                others = {stack.enter_context(self.backend.with_index(s)): s.name for s in accepted}
                base: dict[str, _Plan | str] = {}
                for i in retry:
                    for fp in results[i].suggestion.fingerprints:
                        entry = self.prepared.get(fp)
                        if fp in base or not isinstance(entry, tuple):
                            continue
                        try:
                            base[fp] = self.backend.explain(entry[0], entry[1])
                        except _ExplainError as exc:
                            base[fp] = str(exc)
                for i in retry:
                    again = self.one(results[i].suggestion, base, others)
                    if again.accepted:
                        out[i] = again
        except _ExplainError:
            return results
        return out

    def check(
        self,
        fp: str,
        entry: tuple[str, list[object]],
        plan: _Plan,
        index: str,
        s: IndexSuggestion,
        *,
        others: Mapping[str, str] | None = None,
    ) -> tuple[PlanCheck, frozenset[str]]:
        text, params = entry
        try:
            after = self.backend.explain(text, params)
        except _ExplainError as exc:
            return PlanCheck(fp, "error", note=f"EXPLAIN with the index failed: {exc}"), frozenset()
        outcome, note = self.backend.judge(plan, after, index, self.margin)
        before_text, after_text = plan.summary, after.summary.replace(index, "<index>")
        for real, name in (others or {}).items():
            before_text = before_text.replace(real, name)
            after_text = after_text.replace(real, name)
        check = PlanCheck(
            fp,
            outcome,
            uses_index=index in after.indexes,
            cost_before=plan.cost,
            cost_after=after.cost,
            plan_before=before_text,
            plan_after=after_text,
            note=note,
        )
        return check, after.indexes


def _verdict(checks: Sequence[PlanCheck], margin: float, method: str) -> str:
    improved = [c for c in checks if c.outcome == "improved"]
    n = len(checks)
    if improved:
        best = max(
            (c.cost_reduction for c in improved if c.cost_reduction is not None), default=None
        )
        gain = f"; estimated cost up to {-best:+.0%}" if best is not None else ""
        return f"kept: improves {len(improved)} of {n} shape(s){gain} ({method})"
    if not checks:
        return "rejected: no shape to check"
    if all(c.outcome in ("skipped", "error") for c in checks):
        return "rejected: no shape could be explained (" + checks[0].note + ")"
    if any(c.outcome == "unchanged" for c in checks):
        if method == "sqlite-savepoint":
            return "rejected: the index is used but the plan is no better"
        return f"rejected: the index is used but the cost falls by less than {margin:.0%}"
    if any(c.outcome == "worse" for c in checks):
        return "rejected: the plan gets worse"
    return "rejected: the planner does not use the index"
