"""The public value objects of a statement's analysis (frozen, slotted, no literals)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Analysis",
    "ColumnRef",
    "JoinKey",
    "OrderColumn",
    "ParameterSlot",
    "Predicate",
    "QueryBlock",
    "Unindexable",
]


# --------------------------------------------------------------------------- #
# Public value objects
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class ColumnRef:
    """A column, qualified by the base table it resolved to.

    Attributes:
        table: the base table name as the database folds it (``"orders"``,
            ``"sales.orders"``), or ``None`` when the column could not be
            attributed (an unqualified column in a multi-table block).
        column: the column name.
    """

    table: str | None
    column: str

    def __str__(self) -> str:
        return f"{self.table}.{self.column}" if self.table else self.column


@dataclass(frozen=True, slots=True)
class Predicate:
    """A predicate a btree index can serve.

    Attributes:
        column: the filtered column.
        op: ``"="``, ``"in"``, ``"is null"`` (equality kinds) or ``"<"``,
            ``">"``, ``"<="``, ``">="``, ``"between"``, ``"prefix"`` (range
            kinds; ``prefix`` is ``LIKE 'abc%'`` with a constant pattern).
        alias: the table instance (alias) inside its query block.
    """

    column: ColumnRef
    op: str
    alias: str | None = None

    @property
    def is_equality(self) -> bool:
        """True for ``=``, ``IN`` and ``IS NULL``."""
        return self.op in _EQ_OPS


@dataclass(frozen=True, slots=True)
class JoinKey:
    """Two columns compared with ``=`` across table instances.

    Attributes:
        left, right: the two columns, in the order written.
        kind: ``"join"`` (ON/WHERE/USING), ``"correlated"`` (a subquery
            column equal to an outer one) or ``"semi-join"`` (``x IN (SELECT
            y ...)`` / ``x = ANY (SELECT y ...)``).
        left_alias, right_alias: the table instances of each side.
    """

    left: ColumnRef
    right: ColumnRef
    kind: str = "join"
    left_alias: str | None = None
    right_alias: str | None = None


@dataclass(frozen=True, slots=True)
class OrderColumn:
    """One ORDER BY item that is a plain column."""

    column: ColumnRef
    descending: bool = False
    alias: str | None = None


@dataclass(frozen=True, slots=True)
class Unindexable:
    """A predicate that no plain btree index can serve, and why.

    Attributes:
        kind: ``"or"``, ``"function"``, ``"negation"``, ``"inequality"``,
            ``"not-in"``, ``"leading-wildcard"``, ``"like-parameter"``,
            ``"case-insensitive"``, ``"pattern"`` or ``"distinct-from"``.
        columns: the columns involved.
        text: the predicate, re-rendered with every literal as ``?``.
        reason: a sentence for people.
    """

    kind: str
    columns: tuple[ColumnRef, ...]
    text: str
    reason: str


@dataclass(frozen=True, slots=True)
class ParameterSlot:
    """What one literal or placeholder is compared with.

    Slots are numbered in text order over every literal and placeholder token
    (ORDER BY / GROUP BY ordinals excepted). :mod:`._verify` binds each slot a
    value sampled from the column named here, never the workload's literal.

    Attributes:
        index: the slot's ordinal.
        role: ``"eq"``, ``"in"``, ``"any"`` (``= ANY(?)``: an array),
            ``"range-low"`` (a lower bound, ``col > ?``), ``"range-high"``,
            ``"between-low"``, ``"between-high"``, ``"like"``, ``"limit"``,
            ``"offset"``, ``"interval"`` (``INTERVAL ?``) or ``"other"``.
        column: the compared column, when known.
        candidates: for an unattributed column, the tables of its block.
        typed: the type word of a typed literal (``INTERVAL``, ``DATE``...).
    """

    index: int
    role: str = "other"
    column: ColumnRef | None = None
    candidates: tuple[str, ...] = ()
    typed: str | None = None


@dataclass(frozen=True, slots=True)
class QueryBlock:
    """One query block (a SELECT core, or the WHERE of an UPDATE/DELETE).

    Index candidates are built per block: predicates from two arms of a UNION
    or from a subquery never end up in one index.

    Attributes:
        sources: ``(alias, base table)`` for every base table in the block.
        equality, ranges, joins, order_by, group_by: as in :class:`Analysis`,
            restricted to this block.
        has_limit: the block has a LIMIT / FETCH FIRST.
    """

    sources: tuple[tuple[str, str], ...]
    equality: tuple[Predicate, ...] = ()
    ranges: tuple[Predicate, ...] = ()
    joins: tuple[JoinKey, ...] = ()
    order_by: tuple[OrderColumn, ...] = ()
    group_by: tuple[ColumnRef, ...] = ()
    has_limit: bool = False


@dataclass(frozen=True, slots=True)
class Analysis:
    """What one statement reads and filters on.

    Attributes:
        kind: ``"select"``, ``"insert"``, ``"update"``, ``"delete"``, another
            leading verb in lower case (``"create"``, ``"pragma"``...) or
            ``"unknown"``.
        tables: every base table read or written, in order of appearance.
        aliases: ``(alias, table)`` pairs where an alias differs from the name.
        equality: ``=`` / ``IN`` / ``IS NULL`` predicates.
        ranges: ``<``, ``>``, ``BETWEEN`` and constant-prefix ``LIKE``.
        joins: join keys, both sides qualified.
        order_by, group_by: plain-column ORDER BY / GROUP BY items.
        unindexable: predicates no btree index can serve.
        blocks: the same facts per query block.
        parameters: one :class:`ParameterSlot` per literal/placeholder.
        ctes: names of the CTEs.
        subqueries: how many subqueries (derived tables included).
        has_limit: the outermost block has LIMIT / FETCH FIRST.
        read_only: a single SELECT/VALUES statement with no data-modifying
            part: safe to EXPLAIN.
        parsed: False when the text could not be analyzed at all.
        partial: True when parts were skipped as not understood.
        error: why ``parsed`` is False (or what was skipped).
    """

    kind: str
    tables: tuple[str, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()
    equality: tuple[Predicate, ...] = ()
    ranges: tuple[Predicate, ...] = ()
    joins: tuple[JoinKey, ...] = ()
    order_by: tuple[OrderColumn, ...] = ()
    group_by: tuple[ColumnRef, ...] = ()
    unindexable: tuple[Unindexable, ...] = ()
    blocks: tuple[QueryBlock, ...] = ()
    parameters: tuple[ParameterSlot, ...] = ()
    ctes: tuple[str, ...] = ()
    subqueries: int = 0
    has_limit: bool = False
    read_only: bool = False
    parsed: bool = True
    partial: bool = False
    error: str | None = None

    @property
    def equality_columns(self) -> tuple[ColumnRef, ...]:
        """The distinct columns of :attr:`equality`, in order."""
        return tuple(dict.fromkeys(p.column for p in self.equality))

    @property
    def range_columns(self) -> tuple[ColumnRef, ...]:
        """The distinct columns of :attr:`ranges`, in order."""
        return tuple(dict.fromkeys(p.column for p in self.ranges))

    @property
    def filtered_columns(self) -> tuple[ColumnRef, ...]:
        """Every column filtered on: equality, range and join keys."""
        cols = [p.column for p in self.equality]
        cols += [p.column for p in self.ranges]
        for j in self.joins:
            cols += [j.left, j.right]
        return tuple(c for c in dict.fromkeys(cols) if c.table is not None)


_EQ_OPS = frozenset({"=", "in", "is null"})
