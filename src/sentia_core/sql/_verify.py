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
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sentia_core._validate import check_choice, check_fraction, check_positive
from sentia_core.errors import BackendError, ConfigError, UnsafeStatementError

from ._advisor import IndexSuggestion, ShapeWorkload, _normalize_workload
from ._analysis import ParameterSlot
from ._catalog import unwrap_connection
from ._dialect import dialect_for, read_schema
from ._planner import ExplainError, Plan, Planner, quantile
from ._probe import probe

__all__ = ["PlanCheck", "VerifiedSuggestion", "explain", "verify"]

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
# Value sampling
# --------------------------------------------------------------------------- #


class _Sampler:
    """Representative values per (table, column); see the module doc."""

    def __init__(self, backend: Planner, range_fraction: float) -> None:
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
            picked = quantile(values, 1.0 - self.f)
        elif role == "range-high":
            picked = quantile(values, self.f)
        elif role == "between-low":
            picked = quantile(values, 0.5 - self.f / 2)
        elif role == "between-high":
            picked = quantile(values, 0.5 + self.f / 2)
        else:
            picked = typical
        if role == "any":
            return self.backend.array_of(picked)
        return picked


def _backend(
    connection: object,
    rng: random.Random,
    method: str,
    lock_timeout: float,
    timeout: float,
) -> Planner:
    conn = unwrap_connection(connection)
    return dialect_for(conn).planner(conn, rng, method, lock_timeout, timeout)


def _directions(s: IndexSuggestion) -> list[tuple[str, bool]]:
    desc = s.descending or tuple(False for _ in s.columns)
    return list(zip(s.columns, desc, strict=True))


def _with_index(backend: Planner, s: IndexSuggestion) -> contextlib.AbstractContextManager[str]:
    return backend.with_index(s.table, _directions(s), s.ddl)


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
        text, params = backend.render(p, sampler.value)
        try:
            plan = backend.explain(text, params)
        except ExplainError as exc:
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
    lock_timeout = check_positive("lock_timeout", lock_timeout)
    statement_timeout = check_positive("statement_timeout", statement_timeout)
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
        backend: Planner,
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
        self.before: dict[str, Plan | str] = {}

    def prepare(self, fp: str) -> None:
        if fp in self.prepared:
            return
        shape = self.shapes.get(fp)
        texts = [fp] + ([shape.sample] if shape is not None and shape.sample else [])
        reason = "not explainable"
        for text in texts:
            try:
                p = probe(text, rewrite_writes=self.rewrite_writes)
                rendered, params = self.backend.render(p, self.sampler.value)
            except UnsafeStatementError as exc:
                reason = str(exc)
                continue
            self.prepared[fp] = (rendered, params)
            try:
                self.before[fp] = self.backend.explain(rendered, params)
            except ExplainError as exc:
                self.before[fp] = str(exc)
            return
        self.prepared[fp] = reason

    def one(
        self,
        s: IndexSuggestion,
        before: Mapping[str, Plan | str] | None = None,
        others: Mapping[str, str] | None = None,
    ) -> VerifiedSuggestion:
        """Check ``s`` against ``before`` plans (default: no index added).

        ``others`` maps the names of indexes already in place (second pass)
        to the suggestions they come from.
        """
        base = self.before if before is None else before
        checks: list[PlanCheck] = []
        used: set[str] = set()
        runnable: list[tuple[str, tuple[str, list[object]], Plan]] = []
        for fp in s.fingerprints:
            entry, plan = self.prepared.get(fp), base.get(fp)
            if not isinstance(entry, tuple):
                checks.append(PlanCheck(fp, "skipped", note=entry or "not explainable"))
            elif not isinstance(plan, Plan):
                checks.append(PlanCheck(fp, "error", note=f"EXPLAIN failed: {plan}"))
            else:
                runnable.append((fp, entry, plan))
        if runnable:
            try:
                with _with_index(self.backend, s) as index:
                    for fp, entry, plan in runnable:
                        check, after = self.check(fp, entry, plan, index, s, others=others)
                        checks.append(check)
                        if check.outcome == "improved" and others:
                            used |= {others[n] for n in after if n in others}
            except ExplainError as exc:
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
        verdict = _verdict(checks, self.margin, self.backend.method, self.backend.has_costs)
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
                others = {
                    stack.enter_context(_with_index(self.backend, s)): s.name for s in accepted
                }
                base: dict[str, Plan | str] = {}
                for i in retry:
                    for fp in results[i].suggestion.fingerprints:
                        entry = self.prepared.get(fp)
                        if fp in base or not isinstance(entry, tuple):
                            continue
                        try:
                            base[fp] = self.backend.explain(entry[0], entry[1])
                        except ExplainError as exc:
                            base[fp] = str(exc)
                for i in retry:
                    again = self.one(results[i].suggestion, base, others)
                    if again.accepted:
                        out[i] = again
        except ExplainError:
            return results
        return out

    def check(
        self,
        fp: str,
        entry: tuple[str, list[object]],
        plan: Plan,
        index: str,
        s: IndexSuggestion,
        *,
        others: Mapping[str, str] | None = None,
    ) -> tuple[PlanCheck, frozenset[str]]:
        text, params = entry
        try:
            after = self.backend.explain(text, params)
        except ExplainError as exc:
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


def _verdict(checks: Sequence[PlanCheck], margin: float, method: str, has_costs: bool) -> str:
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
        if not has_costs:
            return "rejected: the index is used but the plan is no better"
        return f"rejected: the index is used but the cost falls by less than {margin:.0%}"
    if any(c.outcome == "worse" for c in checks):
        return "rejected: the plan gets worse"
    return "rejected: the planner does not use the index"
