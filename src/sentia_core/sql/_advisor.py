"""Index suggestions for a workload of query shapes.

Theory of operation
-------------------
1. **One candidate per table instance per query block** (see
   :class:`~._analysis.QueryBlock`): the equality columns (``=`` before ``IN``
   before ``IS NULL``; most selective first when ``column_stats`` is given),
   then either one range column or the ORDER BY columns (ORDER BY wins when
   there is no range, when its first column *is* the range column, so one
   index serves both), or failing both the GROUP BY columns; at most three
   columns. A join adds a candidate on the *referencing* side (the side that
   is not a primary key / unique column, or not named ``id``): the join
   column, then that table's equality columns.
2. **Merge.** A candidate is a sequence of *blocks*: its equality columns form
   one block whose order is still free; each range/ORDER BY column is a block
   of its own. Candidates are processed widest first; a candidate is
   *absorbed* by an index that can serve it as a prefix, splitting a free
   block when needed (``{a, b}`` absorbs ``(a)`` by fixing ``a`` first). A
   candidate an existing btree index already serves as a prefix is dropped.
3. **Rank** each surviving index by the total time of the distinct shapes it
   serves, keep at most ``max_per_table`` per table (counting the indexes the
   table already has), fix the order inside each free block (most selective,
   then most used, then by name) and write a deterministic name and DDL.

Nothing here touches a database: :mod:`._verify` checks the suggestions
against real plans and :mod:`._apply` creates them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sentia_core._validate import check_int, check_non_negative
from sentia_core.errors import ConfigError

from ._analysis import Analysis, JoinKey, Predicate, QueryBlock
from ._analyze import analyze
from ._catalog import ExistingIndex
from ._dialect import read_existing_indexes, read_schema

__all__ = ["IndexSuggestion", "ShapeWorkload", "suggest_indexes"]

MAX_WIDTH = 3
_NAME_LIMIT = 63  # PostgreSQL's NAMEDATALEN - 1
_PLAIN = re.compile(r"[a-z_][a-z0-9_]*\Z")
_RESERVED = frozenset(
    {
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "column",
        "constraint",
        "create",
        "default",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "for",
        "foreign",
        "from",
        "grant",
        "group",
        "having",
        "in",
        "index",
        "into",
        "is",
        "join",
        "key",
        "limit",
        "not",
        "null",
        "offset",
        "on",
        "or",
        "order",
        "primary",
        "references",
        "select",
        "table",
        "then",
        "to",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "when",
        "where",
        "with",
    }
)


@dataclass(frozen=True, slots=True)
class ShapeWorkload:
    """One query shape of a workload, as the capture side measured it.

    Attributes:
        fingerprint: the shape's text (a fingerprint with ``?`` slots, or raw
            SQL).
        calls: how many times it ran.
        total_time: seconds spent in it, summed over the calls.
        sample: an optional redacted sample of the statement.

    Raises:
        ConfigError: a negative ``calls``/``total_time`` or a non-string text.
    """

    fingerprint: str
    calls: int = 1
    total_time: float = 0.0
    sample: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.fingerprint, str):
            raise ConfigError("fingerprint", self.fingerprint, "must be a string")
        check_int("calls", self.calls, minimum=0)
        check_non_negative("total_time", self.total_time, duration=False)


@dataclass(frozen=True, slots=True)
class IndexSuggestion:
    """An index worth creating, with the shapes it serves and why.

    Attributes:
        table: the table (``schema.table`` when the queries qualify it).
        columns: the key columns, in order.
        name: a deterministic index name (at most 63 characters).
        ddl: ``CREATE INDEX <name> ON <table> (<columns>)``.
        fingerprints: the shapes it serves, most expensive first.
        calls: calls of those shapes, summed.
        total_time: seconds spent in those shapes, summed (the ranking key).
        why: a sentence for people.
        descending: per column, whether it is indexed DESC (only when an
            ORDER BY mixes directions).
        supersedes: existing indexes this one makes redundant (a prefix of it).
    """

    table: str
    columns: tuple[str, ...]
    name: str
    ddl: str
    fingerprints: tuple[str, ...]
    calls: int
    total_time: float
    why: str
    descending: tuple[bool, ...] = ()
    supersedes: tuple[str, ...] = ()


# --------------------------------------------------------------------------- #
# Candidates
# --------------------------------------------------------------------------- #


@dataclass(slots=True)
class _Candidate:
    table: str
    eq: tuple[str, ...]
    tail: tuple[str, ...]
    desc: dict[str, bool]
    shape: ShapeWorkload
    reasons: tuple[str, ...]

    @property
    def width(self) -> int:
        return len(self.eq) + len(self.tail)


_EQ_RANK = {"=": 0, "in": 1, "is null": 2}


def _ordered_eq(
    preds: Sequence[Predicate], table: str, stats: Mapping[tuple[str, str], float] | None
) -> list[str]:
    seen: dict[str, tuple[int, int]] = {}
    for i, p in enumerate(preds):
        col = p.column.column
        rank = (_EQ_RANK.get(p.op, 3), i)
        if col not in seen or rank < seen[col]:
            seen[col] = rank
    cols = list(seen)
    if stats:
        return sorted(cols, key=lambda c: (seen[c][0], -_distinct(stats, table, c), seen[c][1]))
    return sorted(cols, key=lambda c: seen[c])


def _distinct(stats: Mapping[tuple[str, str], float], table: str, column: str) -> float:
    for key in ((table, column), (table.lower(), column.lower())):
        if key in stats:
            return float(stats[key])
    short = table.rsplit(".", 1)[-1].lower()
    return float(stats.get((short, column.lower()), -1.0))


class _Block:
    """One query block with unattributed columns resolved through ``schema``."""

    def __init__(self, block: QueryBlock, schema: Mapping[str, Sequence[str]] | None) -> None:
        self.block = block
        self.sources = block.sources
        self.schema = schema

    def attribute(self, table: str | None, column: str, alias: str | None) -> tuple[str, str]:
        """(alias, table) of a column, or ``("", "")`` when it stays unknown."""
        if table is not None:
            return (alias or "", table)
        if not self.schema:
            return ("", "")
        hits = [
            (a, t)
            for a, t in self.sources
            if column.lower()
            in {c.lower() for c in self.schema.get(t, self.schema.get(t.lower(), ()))}
        ]
        return hits[0] if len(hits) == 1 else ("", "")


def _referencing(
    left: tuple[str, str], right: tuple[str, str], unique: set[tuple[str, str]]
) -> list[int]:
    """Which sides of a join key (0, 1) reference the other (get an index)."""
    lu = (left[0].lower(), left[1].lower()) in unique or left[1].lower() in ("id", "rowid")
    ru = (right[0].lower(), right[1].lower()) in unique or right[1].lower() in ("id", "rowid")
    if lu and not ru:
        return [1]
    if ru and not lu:
        return [0]
    if lu and ru:
        return []
    return [0, 1]


def _unique_columns(existing: Iterable[ExistingIndex]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for ix in existing:
        prefix = ix.plain_prefix
        if (ix.unique or ix.primary) and len(prefix) == 1:
            out.add((ix.table.lower(), prefix[0]))
            if ix.schema:
                out.add((ix.qualified_table.lower(), prefix[0]))
    return out


def _shape_candidates(
    analysis: Analysis,
    shape: ShapeWorkload,
    schema: Mapping[str, Sequence[str]] | None,
    stats: Mapping[tuple[str, str], float] | None,
    unique: set[tuple[str, str]],
) -> list[_Candidate]:
    out: list[_Candidate] = []
    for qb in analysis.blocks:
        blk = _Block(qb, schema)
        eq: dict[str, list[Predicate]] = {}
        rng: dict[str, list[Predicate]] = {}
        for bucket, preds in ((eq, qb.equality), (rng, qb.ranges)):
            for p in preds:
                alias, _table = blk.attribute(p.column.table, p.column.column, p.alias)
                if alias:
                    bucket.setdefault(alias, []).append(p)
        order_aliases = {o.alias for o in qb.order_by}
        group_tables = {g.table for g in qb.group_by}
        for alias, table in qb.sources:
            e_preds = eq.get(alias, [])
            r_preds = rng.get(alias, [])
            eq_cols = _ordered_eq(e_preds, table, stats)
            reasons: list[str] = []
            if eq_cols:
                reasons.append("equality on " + ", ".join(eq_cols))
            tail: list[str] = []
            desc: dict[str, bool] = {}
            ranges = list(dict.fromkeys(p.column.column for p in r_preds))
            ranges = [c for c in ranges if c not in eq_cols]
            if stats and ranges:
                ranges.sort(key=lambda c: -_distinct(stats, table, c))
            order = (
                [o for o in qb.order_by if o.column.column not in eq_cols]
                if qb.order_by and order_aliases == {alias}
                else []
            )
            if order and (not ranges or order[0].column.column == ranges[0]):
                tail = [o.column.column for o in order]
                directions = {o.descending for o in order}
                for o in order:
                    desc[o.column.column] = o.descending and len(directions) > 1
                if ranges:
                    reasons.append(f"range on {ranges[0]}")
                reasons.append(
                    "ORDER BY "
                    + ", ".join(o.column.column + (" DESC" if o.descending else "") for o in order)
                )
            elif ranges:
                tail = [ranges[0]]
                reasons.append(f"range on {ranges[0]}")
            elif (
                qb.group_by
                and group_tables == {table}
                and sum(1 for _, t in qb.sources if t == table) == 1
            ):
                tail = [g.column for g in qb.group_by if g.column not in eq_cols]
                if tail:
                    reasons.append("GROUP BY " + ", ".join(tail))
            eq_part = eq_cols[:MAX_WIDTH]
            tail = list(dict.fromkeys(tail))[: MAX_WIDTH - len(eq_part)]
            if eq_part or tail:
                out.append(
                    _Candidate(table, tuple(eq_part), tuple(tail), desc, shape, tuple(reasons))
                )
        for jk in qb.joins:
            out.extend(
                _join_candidates(jk, qb=qb, blk=blk, eq=eq, shape=shape, stats=stats, unique=unique)
            )
    return out


def _join_candidates(
    jk: JoinKey,
    *,
    qb: QueryBlock,
    blk: _Block,
    eq: Mapping[str, list[Predicate]],
    shape: ShapeWorkload,
    stats: Mapping[tuple[str, str], float] | None,
    unique: set[tuple[str, str]],
) -> list[_Candidate]:
    if jk.kind == "correlated":
        return []  # already an equality inside the subquery's own block
    resolved: list[tuple[str, str, str]] = []
    for alias, ref in ((jk.left_alias, jk.left), (jk.right_alias, jk.right)):
        a, t = blk.attribute(ref.table, ref.column, alias)
        if not t:
            return []
        resolved.append((a, t, ref.column))
    left, right = resolved
    out: list[_Candidate] = []
    text = f"{jk.left} = {jk.right}"
    for side in _referencing((left[1], left[2]), (right[1], right[2]), unique):
        alias, table, column = resolved[side]
        in_block = any(a == alias for a, _ in qb.sources)
        extra = _ordered_eq(eq.get(alias, []), table, stats) if in_block else []
        cols = [column, *[c for c in extra if c != column]][:MAX_WIDTH]
        reason = f"join key {text} (referencing side {table}.{column})"
        out.append(_Candidate(table, tuple(cols), (), {}, shape, (reason,)))
    return out


# --------------------------------------------------------------------------- #
# Merging
# --------------------------------------------------------------------------- #


@dataclass(slots=True)
class _Plan:
    table: str
    blocks: list[set[str]]
    desc: dict[str, bool] = field(default_factory=dict)
    shapes: dict[str, ShapeWorkload] = field(default_factory=dict)
    reasons: dict[str, None] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, cand: _Candidate) -> _Plan:
        blocks = ([set(cand.eq)] if cand.eq else []) + [{c} for c in cand.tail]
        plan = cls(cand.table, blocks)
        plan.add(cand)
        return plan

    def add(self, cand: _Candidate) -> None:
        self.shapes.setdefault(cand.shape.fingerprint, cand.shape)
        for r in cand.reasons:
            self.reasons.setdefault(r, None)
        for c in cand.eq:
            self.weights[c] = self.weights.get(c, 0.0) + cand.shape.total_time
        for c, d in cand.desc.items():
            self.desc[c] = self.desc.get(c, False) or d

    def absorb(self, cand: _Candidate) -> bool:
        """Serve ``cand`` as a prefix (splitting free blocks); False if impossible."""
        blocks = [set(b) for b in self.blocks]
        need_blocks = ([set(cand.eq)] if cand.eq else []) + [{c} for c in cand.tail]
        i = 0
        for wanted in need_blocks:
            need = set(wanted)
            while need:
                if i >= len(blocks):
                    return False
                g = blocks[i]
                if g <= need:
                    need -= g
                    i += 1
                elif need < g:
                    blocks[i : i + 1] = [need, g - need]
                    need = set()
                    i += 1
                else:
                    return False
        # the tail of a candidate must keep its direction pattern
        for c, d in cand.desc.items():
            if d and not self.desc.get(c, d):
                return False
        self.blocks = blocks
        self.add(cand)
        return True


def _served_by_existing(cand: _Candidate, prefix: tuple[str, ...]) -> bool:
    """``prefix`` (lower-cased) serves ``cand`` with its columns in some allowed order."""
    if not prefix or cand.width > len(prefix):
        return False
    n = len(cand.eq)
    if set(prefix[:n]) != {c.lower() for c in cand.eq}:
        return False
    return tuple(prefix[n : n + len(cand.tail)]) == tuple(c.lower() for c in cand.tail)


def _order_blocks(plan: _Plan, stats: Mapping[tuple[str, str], float] | None) -> list[str]:
    cols: list[str] = []
    for block in plan.blocks:
        cols.extend(
            sorted(
                block,
                key=lambda c: (
                    -_distinct(stats, plan.table, c) if stats else 0.0,
                    -plan.weights.get(c, 0.0),
                    c,
                ),
            )
        )
    return cols


def _ident(name: str) -> str:
    if _PLAIN.match(name) and name not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def index_name(table: str, columns: Sequence[str]) -> str:
    """``ix_<table>_<col>_<col>``, cut to 63 characters with a hash when longer."""
    base = table.rsplit(".", 1)[-1]
    raw = "ix_" + "_".join([base, *columns])
    name = re.sub(r"[^a-z0-9_]+", "_", raw.lower()).strip("_")
    if len(name) > _NAME_LIMIT or name != raw.lower():
        digest = hashlib.sha1("\0".join([table, *columns]).encode()).hexdigest()[:8]
        name = name[: _NAME_LIMIT - 9].rstrip("_") + "_" + digest
    return name


def index_ddl(table: str, columns: Sequence[str], descending: Sequence[bool], name: str) -> str:
    """A portable ``CREATE INDEX`` statement."""
    parts = [
        _ident(c) + (" DESC" if d else "")
        for c, d in zip(columns, descending or [False] * len(columns), strict=True)
    ]
    target = ".".join(_ident(p) for p in table.split(".", 1))
    return f"CREATE INDEX {_ident(name)} ON {target} ({', '.join(parts)})"


def _why(plan: _Plan, shapes: list[ShapeWorkload], supersedes: list[ExistingIndex]) -> str:
    calls = sum(s.calls for s in shapes)
    total = sum(s.total_time for s in shapes)
    n = len(shapes)
    text = (
        f"serves {n} query shape{'s' if n != 1 else ''} ({calls} calls, {total:.3f} s): "
        + "; ".join(plan.reasons)
    )
    if supersedes:
        text += (
            "; makes "
            + ", ".join(f"{ix.name} ({', '.join(ix.columns)})" for ix in supersedes)
            + " redundant"
        )
    return text


def _normalize_workload(workload: Iterable[ShapeWorkload | str]) -> list[ShapeWorkload]:
    merged: dict[str, ShapeWorkload] = {}
    for item in workload:
        shape = ShapeWorkload(item) if isinstance(item, str) else item
        if not isinstance(shape, ShapeWorkload):
            raise ConfigError("workload", item, "must hold ShapeWorkload values or strings")
        prev = merged.get(shape.fingerprint)
        if prev is not None:
            shape = ShapeWorkload(
                shape.fingerprint,
                prev.calls + shape.calls,
                prev.total_time + shape.total_time,
                prev.sample or shape.sample,
            )
        merged[shape.fingerprint] = shape
    return list(merged.values())


def suggest_indexes(
    workload: Iterable[ShapeWorkload | str],
    existing: Iterable[ExistingIndex] | object | None = None,
    *,
    max_per_table: int = 10,
    min_calls: int = 1,
    min_total_time: float = 0.0,
    column_stats: Mapping[tuple[str, str], float] | None = None,
    schema: Mapping[str, Sequence[str]] | None = None,
) -> list[IndexSuggestion]:
    """Suggest btree indexes that serve a workload of query shapes.

    Args:
        workload: the shapes (:class:`ShapeWorkload`; a bare string counts as
            one call of zero seconds). Repeated fingerprints are summed.
        existing: indexes that already exist: a list of
            :class:`~._catalog.ExistingIndex`, or a sqlite3 / psycopg 3
            connection to read them (and the schema) from. A candidate that an
            existing btree index serves as a prefix is dropped.
        max_per_table: at most this many indexes per table, counting the
            table's existing non-primary indexes.
        min_calls: ignore shapes called fewer times.
        min_total_time: ignore shapes with less total time (seconds).
        column_stats: ``{(table, column): distinct values}`` (see
            :func:`~._dialect.read_column_stats`); puts the most selective
            equality column first and picks the most selective range column.
        schema: ``{table: columns}`` to attribute unqualified columns in
            multi-table queries (read from ``existing`` when it is a
            connection).

    Returns:
        Suggestions ranked by the total time of the shapes they serve (ties:
        calls, then table and columns), at most ``max_per_table`` per table.

    Raises:
        ConfigError: an invalid parameter or workload item.
    """
    check_int("max_per_table", max_per_table, minimum=1)
    check_int("min_calls", min_calls, minimum=0)
    check_non_negative("min_total_time", min_total_time, duration=False)
    if column_stats is not None and not isinstance(column_stats, Mapping):
        raise ConfigError("column_stats", column_stats, "must be a mapping")
    shapes = _normalize_workload(workload)
    if existing is None:
        current: list[ExistingIndex] = []
    else:
        if schema is None and not isinstance(existing, (list, tuple, set, frozenset)):
            schema = read_schema(existing)
        current = read_existing_indexes(existing)
    by_table: dict[str, list[ExistingIndex]] = {}
    for ix in current:
        by_table.setdefault(ix.table.lower(), []).append(ix)
        if ix.schema:
            by_table.setdefault(ix.qualified_table.lower(), []).append(ix)
    unique = _unique_columns(current)

    candidates: list[_Candidate] = []
    for shape in shapes:
        if shape.calls < min_calls or shape.total_time < min_total_time:
            continue
        analysis = analyze(shape.fingerprint)
        if not analysis.parsed:
            continue
        candidates.extend(_shape_candidates(analysis, shape, schema, column_stats, unique))

    candidates.sort(
        key=lambda c: (-c.width, -c.shape.total_time, c.table, c.eq, c.tail, c.shape.fingerprint)
    )
    plans: dict[str, list[_Plan]] = {}
    for cand in candidates:
        key = cand.table.lower()
        prefixes = [ix.plain_prefix for ix in by_table.get(key, [])]
        if any(_served_by_existing(cand, p) for p in prefixes):
            continue
        table_plans = plans.setdefault(key, [])
        if not any(plan.absorb(cand) for plan in table_plans):
            table_plans.append(_Plan.of(cand))

    out: list[IndexSuggestion] = []
    for key, table_plans in plans.items():
        room = max_per_table - sum(1 for ix in by_table.get(key, []) if not ix.primary)
        ranked = sorted(
            _fold_prefixes(table_plans, column_stats),
            key=lambda pc: (
                -sum(s.total_time for s in pc[0].shapes.values()),
                -sum(s.calls for s in pc[0].shapes.values()),
                pc[1],
            ),
        )
        for plan, columns in ranked[: max(room, 0)]:
            out.append(_finish(plan, columns, by_table.get(key, [])))
    out.sort(key=lambda s: (-s.total_time, -s.calls, s.table, s.columns))
    return out


def _fold_prefixes(
    plans: list[_Plan], stats: Mapping[tuple[str, str], float] | None
) -> list[tuple[_Plan, tuple[str, ...]]]:
    """Fix each index's column order, then fold one that is a prefix of another into it."""
    ordered = sorted(
        ((plan, tuple(_order_blocks(plan, stats))) for plan in plans), key=lambda pc: -len(pc[1])
    )
    kept: list[tuple[_Plan, tuple[str, ...]]] = []
    for plan, columns in ordered:
        host = next(
            (
                k
                for k in kept
                if k[1][: len(columns)] == columns
                and all(k[0].desc.get(c, False) == plan.desc.get(c, False) for c in columns)
            ),
            None,
        )
        if host is None:
            kept.append((plan, columns))
            continue
        for fp, shape in plan.shapes.items():
            host[0].shapes.setdefault(fp, shape)
        for reason in plan.reasons:
            host[0].reasons.setdefault(reason, None)
    return kept


def _finish(
    plan: _Plan, columns: tuple[str, ...], existing: Sequence[ExistingIndex]
) -> IndexSuggestion:
    descending = tuple(plan.desc.get(c, False) for c in columns)
    if not any(descending):
        descending = ()
    shapes = sorted(plan.shapes.values(), key=lambda s: (-s.total_time, -s.calls, s.fingerprint))
    supersedes = [
        ix
        for ix in existing
        if not ix.unique
        and not ix.primary
        and ix.plain_prefix
        and len(ix.plain_prefix) == len(ix.columns)
        and tuple(c.lower() for c in columns[: len(ix.plain_prefix)]) == ix.plain_prefix
    ]
    name = index_name(plan.table, columns)
    return IndexSuggestion(
        table=plan.table,
        columns=columns,
        name=name,
        ddl=index_ddl(plan.table, columns, descending, name),
        fingerprints=tuple(s.fingerprint for s in shapes),
        calls=sum(s.calls for s in shapes),
        total_time=sum(s.total_time for s in shapes),
        why=_why(plan, shapes, supersedes),
        descending=descending,
        supersedes=tuple(ix.name for ix in supersedes),
    )
