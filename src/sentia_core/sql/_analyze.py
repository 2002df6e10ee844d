"""Static analysis of one SQL statement: which columns an index could serve.

Theory of operation
-------------------
sqlparse's lexer cuts the text into tokens (it is lossless and never
raises); everything after that is ours, because sqlparse's grouping layer
neither resolves aliases nor understands predicates. Three passes:

1. ``_tokens`` normalises the lexer output into :class:`_Tok` records: one
   word per keyword (``ORDER BY`` becomes two), identifiers folded as the
   database folds them (unquoted to lower case, quoted kept exact), string
   prefixes (``E'..'``, ``X'..'``, ``U&'..'``) and numbered placeholders
   (``?1``, ``@p``) merged. Every literal and placeholder token is a numbered
   *slot*; the analysis later says what each slot is compared with, which is
   how :mod:`._verify` binds representative values without ever seeing a
   literal from the workload.
2. ``_Parser`` is a tolerant recursive-descent parser over those tokens. It
   builds a small AST for SELECT (with CTEs, set operations, joins, derived
   tables, LATERAL), INSERT, UPDATE and DELETE, and an expression AST with SQL
   precedence (OR < AND < NOT < comparison < arithmetic < postfix). Anything
   it does not understand is skipped up to the next clause keyword and the
   analysis is flagged ``partial``; nesting deeper than ``_MAX_DEPTH`` gives up
   (``parsed=False``) instead of recursing without bound.
3. ``_Analyzer`` walks the AST with one scope per query block (a SELECT core,
   or the WHERE of an UPDATE/DELETE). Each scope maps aliases to base tables
   or to derived tables (subqueries and CTEs, whose output columns are traced
   back to base columns where they are plain column references). Correlated
   references resolve through the parent scopes. Each conjunct of WHERE/ON is
   classified: equality / IN / IS NULL, range, join key, or a predicate no
   btree index can serve (OR across columns, a function or cast on the
   column, ``<>``/``NOT IN``, leading-wildcard or parameter LIKE patterns,
   regular expressions), which is reported as such.

:func:`analyze` never raises on text: unparseable input yields an
:class:`Analysis` with ``parsed=False`` and an ``error``. Results are cached
per text (bounded LRU). Analyses carry no literal: predicate texts are
re-rendered from the AST with every literal shown as ``?``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlparse import lexer as _sqlparse_lexer
from sqlparse import tokens as _T

from sentia_core.errors import UnsafeStatementError

__all__ = [
    "Analysis",
    "ColumnRef",
    "JoinKey",
    "OrderColumn",
    "ParameterSlot",
    "Predicate",
    "QueryBlock",
    "Unindexable",
    "analyze",
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

# --------------------------------------------------------------------------- #
# Tokens
# --------------------------------------------------------------------------- #

# token kinds
_W = 1  # word: keyword or unquoted identifier
_Q = 2  # quoted identifier
_S = 3  # string literal (slot)
_N = 4  # number literal (slot)
_P = 5  # placeholder (slot)
_LP = 6
_RP = 7
_LB = 8
_RB = 9
_COMMA = 10
_DOT = 11
_SEMI = 12
_CAST = 13  # ::
_OP = 14  # an operator symbol
_STAR = 15
_ERR = 16  # something the lexer could not classify

_SLOT_KINDS = frozenset({_S, _N, _P})
_MAX_DEPTH = 48
_MAX_CHARS = 200_000
_CACHE_CHARS = 16_384

_CMP_SYMBOLS = frozenset({"=", "==", "<", ">", "<=", ">=", "<>", "!=", "<=>"})
_REGEX_SYMBOLS = frozenset({"~", "~*", "!~", "!~*"})
_PATTERN_WORDS = frozenset({"LIKE", "ILIKE", "GLOB", "REGEXP", "MATCH", "SIMILAR", "RLIKE"})
_TYPED_WORDS = frozenset({"INTERVAL", "DATE", "TIME", "TIMESTAMP", "TIMESTAMPTZ"})
_STRING_PREFIXES = frozenset({"E", "X", "B", "N"})
_PSEUDO_COLUMNS = frozenset({"rowid", "oid", "_rowid_", "ctid"})
_TYPE_TAILS = frozenset({"PRECISION", "VARYING", "CHARACTER", "WITH", "WITHOUT", "TIME", "ZONE"})

#: Words that structure a statement and are never identifiers here.
_RESERVED = frozenset(
    {
        "ALL",
        "AND",
        "ANY",
        "AS",
        "ASC",
        "BETWEEN",
        "BY",
        "CASE",
        "CAST",
        "CROSS",
        "DEFAULT",
        "DESC",
        "DISTINCT",
        "ELSE",
        "END",
        "ESCAPE",
        "EXCEPT",
        "EXISTS",
        "FALSE",
        "FETCH",
        "FOR",
        "FROM",
        "FULL",
        "GLOB",
        "GROUP",
        "HAVING",
        "ILIKE",
        "IN",
        "INDEXED",
        "INNER",
        "INTERSECT",
        "INTO",
        "IS",
        "ISNULL",
        "JOIN",
        "LATERAL",
        "LEFT",
        "LIKE",
        "LIMIT",
        "MINUS",
        "NATURAL",
        "NOT",
        "NOTNULL",
        "NULL",
        "NULLS",
        "OFFSET",
        "ON",
        "OR",
        "ORDER",
        "OUTER",
        "REGEXP",
        "RETURNING",
        "RIGHT",
        "SELECT",
        "SET",
        "SIMILAR",
        "SOME",
        "STRAIGHT_JOIN",
        "TABLESAMPLE",
        "THEN",
        "TRUE",
        "UNION",
        "USING",
        "VALUES",
        "WHEN",
        "WHERE",
        "WINDOW",
        "WITH",
        "INSERT",
        "UPDATE",
        "DELETE",
        "MERGE",
        "RLIKE",
    }
)
_QUERY_CONTINUES = frozenset(
    {"UNION", "INTERSECT", "EXCEPT", "MINUS", "ORDER", "LIMIT", "OFFSET", "FETCH"}
)
_JOIN_WORDS = frozenset({"JOIN", "INNER", "LEFT", "RIGHT", "FULL", "CROSS", "NATURAL", "OUTER"})
_CORE_END = frozenset(
    {"UNION", "INTERSECT", "EXCEPT", "MINUS", "ORDER", "LIMIT", "OFFSET", "FETCH", "FOR", "ON"}
    | {"RETURNING", "WINDOW"}
)
#: Words that must never appear in a statement sent to EXPLAIN.
_WRITE_WORDS = frozenset(
    {
        "INSERT",
        "UPDATE",
        "DELETE",
        "MERGE",
        "UPSERT",
        "TRUNCATE",
        "DROP",
        "ALTER",
        "CREATE",
        "GRANT",
        "REVOKE",
        "COPY",
        "VACUUM",
        "ANALYZE",
        "ANALYSE",
        "EXPLAIN",
        "CALL",
        "ATTACH",
        "DETACH",
        "PRAGMA",
        "REINDEX",
        "INTO",
        "PREPARE",
        "EXECUTE",
        "DEALLOCATE",
        "LOCK",
        "LISTEN",
        "NOTIFY",
        "UNLISTEN",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT",
        "RELEASE",
        "LOAD",
        "REFRESH",
        "CLUSTER",
        "DISCARD",
        "RESET",
    }
)
_WORD_RE = re.compile(r"\S+")
_SAFE_OP_RE = re.compile(r"[-+*/%<>=!~^&|#@?]+\Z")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")


class _Tok:
    __slots__ = ("adj", "ident", "kind", "slot", "text", "up")

    def __init__(self, kind: int, text: str, adj: bool) -> None:
        self.kind = kind
        self.text = text
        self.adj = adj  # no whitespace/comment before this token
        self.up = text.upper() if kind == _W else text
        if kind == _W:
            self.ident = text.lower()
        elif kind == _Q:
            self.ident = _unquote(text)
        else:
            self.ident = text
        self.slot = -1

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"_Tok({self.kind}, {self.text!r})"


def _unquote(text: str) -> str:
    if len(text) >= 2:
        if text[0] == '"' and text[-1] == '"':
            return text[1:-1].replace('""', '"')
        if text[0] == "`" and text[-1] == "`":
            return text[1:-1].replace("``", "`")
        if text[0] == "[" and text[-1] == "]":
            return text[1:-1]
    return text


# token-type families, resolved once per sqlparse token type (they are singletons)
_F_SKIP = 0
_F_PLACEHOLDER = 1
_F_SYMBOL = 2
_F_STRING = 3
_F_NUMBER = 4
_F_PUNCT = 5
_F_STAR = 6
_F_ERROR = 7
_F_OPERATOR = 8
_F_WORD = 9
_FAMILY: dict[object, int] = {}
_PUNCT = {"(": _LP, ")": _RP, "[": _LB, "]": _RB, ",": _COMMA, ".": _DOT, ";": _SEMI}
_PUNCT["::"] = _CAST


def _family(ttype: object) -> int:
    fam = _FAMILY.get(ttype)
    if fam is not None:
        return fam
    if ttype in _T.Text.Whitespace or ttype in _T.Newline or ttype in _T.Comment:
        fam = _F_SKIP
    elif ttype in _T.Name.Placeholder:
        fam = _F_PLACEHOLDER
    elif ttype in _T.Literal.String.Symbol:
        fam = _F_SYMBOL
    elif ttype in _T.Literal.Number:
        fam = _F_NUMBER
    elif ttype in _T.Literal.String or ttype is _T.Literal:
        fam = _F_STRING
    elif ttype in _T.Punctuation:
        fam = _F_PUNCT
    elif ttype in _T.Wildcard:
        fam = _F_STAR
    elif ttype in _T.Operator:
        fam = _F_OPERATOR
    elif ttype in _T.Name or ttype in _T.Keyword:
        fam = _F_WORD
    else:
        fam = _F_ERROR
    _FAMILY[ttype] = fam
    return fam


def _classify(fam: int, value: str) -> int:
    if fam == _F_WORD:
        first = value[:1]
        if first in "`[":
            return _Q
        return _N if first.isdigit() else _W  # 1_000 is a number
    if fam == _F_PUNCT:
        return _PUNCT.get(value, _OP)
    if fam == _F_OPERATOR:
        return _W if value[:1].isalpha() else _OP
    return (_ERR, _P, _Q, _S, _N, _ERR, _STAR, _ERR)[fam]


def _tokens(sql: str) -> list[_Tok]:
    """Lex ``sql`` with sqlparse and normalise the tokens (see module doc)."""
    out: list[_Tok] = []
    adj = True
    for ttype, value in _sqlparse_lexer.tokenize(sql):  # type: ignore[no-untyped-call]
        fam = _family(ttype)
        if fam == _F_SKIP:
            adj = False
            continue
        kind = _classify(fam, value)
        if kind == _W and any(ch.isspace() for ch in value):  # ORDER BY, NOT LIKE
            for i, m in enumerate(_WORD_RE.finditer(value)):
                out.append(_Tok(_W, m.group(), adj and i == 0))
            adj = True
            continue
        prev = out[-1] if out else None
        if prev is not None and adj:
            # E'..', X'..', B'..', N'..' literals
            if kind == _S and prev.kind == _W and prev.up in _STRING_PREFIXES:
                out[-1] = _Tok(_S, prev.text + value, prev.adj)
                adj = True
                continue
            # U&'..'
            if (
                kind == _S
                and prev.kind == _OP
                and prev.text == "&"
                and len(out) >= 2
                and out[-2].kind == _W
                and out[-2].up == "U"
                and prev.adj
            ):
                out[-2:] = [_Tok(_S, "U&" + value, out[-2].adj)]
                adj = True
                continue
            # ?1 numbered placeholders, @name placeholders
            if kind == _N and prev.kind == _P and prev.text == "?" and value.isdigit():
                out[-1] = _Tok(_P, "?" + value, prev.adj)
                adj = True
                continue
            if kind == _W and prev.kind == _OP and prev.text == "@":
                out[-1] = _Tok(_P, "@" + value, prev.adj)
                adj = True
                continue
        out.append(_Tok(kind, value, adj))
        adj = True
    return out


# --------------------------------------------------------------------------- #
# AST
# --------------------------------------------------------------------------- #


class _Node:
    __slots__ = ()


class _Col(_Node):
    __slots__ = ("parts",)

    def __init__(self, parts: tuple[str, ...]) -> None:
        self.parts = parts


class _Val(_Node):
    __slots__ = ("slots", "text", "typed")

    def __init__(self, slots: tuple[int, ...], text: str, typed: str | None = None) -> None:
        self.slots = slots
        self.text = text  # the raw literal (used only for LIKE-pattern checks)
        self.typed = typed


class _Const(_Node):
    __slots__ = ("word",)

    def __init__(self, word: str) -> None:
        self.word = word


class _Func(_Node):
    __slots__ = ("args", "name")

    def __init__(self, name: str, args: list[_Node]) -> None:
        self.name = name
        self.args = args


class _Cast(_Node):
    __slots__ = ("expr", "type")

    def __init__(self, expr: _Node, type_: str) -> None:
        self.expr = expr
        self.type = type_


class _Un(_Node):
    __slots__ = ("expr", "op")

    def __init__(self, op: str, expr: _Node) -> None:
        self.op = op
        self.expr = expr


class _Bin(_Node):
    __slots__ = ("left", "op", "right")

    def __init__(self, op: str, left: _Node, right: _Node) -> None:
        self.op = op
        self.left = left
        self.right = right


class _Cmp(_Node):
    __slots__ = ("left", "op", "right")

    def __init__(self, op: str, left: _Node, right: _Node) -> None:
        self.op = op
        self.left = left
        self.right = right


class _Quant(_Node):
    __slots__ = ("left", "op", "quant", "right")

    def __init__(self, op: str, left: _Node, quant: str, right: _Node) -> None:
        self.op = op
        self.left = left
        self.quant = quant
        self.right = right


class _And(_Node):
    __slots__ = ("items",)

    def __init__(self, items: list[_Node]) -> None:
        self.items = items


class _Or(_Node):
    __slots__ = ("items",)

    def __init__(self, items: list[_Node]) -> None:
        self.items = items


class _Not(_Node):
    __slots__ = ("expr",)

    def __init__(self, expr: _Node) -> None:
        self.expr = expr


class _In(_Node):
    __slots__ = ("expr", "items", "negated", "sub")

    def __init__(self, expr: _Node, items: list[_Node], sub: _Stmt | None, negated: bool) -> None:
        self.expr = expr
        self.items = items
        self.sub = sub
        self.negated = negated


class _Between(_Node):
    __slots__ = ("expr", "hi", "lo", "negated")

    def __init__(self, expr: _Node, lo: _Node, hi: _Node, negated: bool) -> None:
        self.expr = expr
        self.lo = lo
        self.hi = hi
        self.negated = negated


class _IsNull(_Node):
    __slots__ = ("expr", "negated")

    def __init__(self, expr: _Node, negated: bool) -> None:
        self.expr = expr
        self.negated = negated


class _Exists(_Node):
    __slots__ = ("negated", "sub")

    def __init__(self, sub: _Stmt, negated: bool) -> None:
        self.sub = sub
        self.negated = negated


class _Sub(_Node):
    __slots__ = ("stmt",)

    def __init__(self, stmt: _Stmt) -> None:
        self.stmt = stmt


class _Row(_Node):
    __slots__ = ("items",)

    def __init__(self, items: list[_Node]) -> None:
        self.items = items


class _Opaque(_Node):
    __slots__ = ("children", "label")

    def __init__(self, children: list[_Node], label: str = "...") -> None:
        self.children = children
        self.label = label


class _Star(_Node):
    __slots__ = ()


# statements ---------------------------------------------------------------- #


@dataclass(slots=True)
class _FromItem:
    kind: str  # "table" | "sub" | "func"
    parts: tuple[str, ...] = ()
    alias: str | None = None
    stmt: _Stmt | None = None
    func: _Node | None = None
    lateral: bool = False
    columns: tuple[str, ...] = ()


@dataclass(slots=True)
class _Core:
    items: list[tuple[_Node, str | None]] = field(default_factory=list)
    froms: list[_FromItem] = field(default_factory=list)
    conds: list[_Node] = field(default_factory=list)
    usings: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)
    where: _Node | None = None
    group: list[_Node] = field(default_factory=list)
    having: _Node | None = None
    values: list[list[_Node]] | None = None
    nested: _Stmt | None = None
    into: bool = False


@dataclass(slots=True)
class _Stmt:
    kind: str
    ctes: list[tuple[str, tuple[str, ...], _Stmt]] = field(default_factory=list)
    cores: list[_Core] = field(default_factory=list)
    order: list[tuple[_Node, bool]] = field(default_factory=list)
    limit: _Node | None = None
    offset: _Node | None = None
    # INSERT / UPDATE / DELETE
    target: _FromItem | None = None
    source: _Stmt | None = None
    sets: list[_Node] = field(default_factory=list)
    where: _Node | None = None
    extra: list[_Node] = field(default_factory=list)
    # token spans (start, end) for EXPLAIN probes of UPDATE / DELETE / INSERT
    target_span: tuple[int, int] = (0, 0)
    from_span: tuple[int, int] = (0, 0)
    where_span: tuple[int, int] = (0, 0)
    source_span: tuple[int, int] = (0, 0)
    writes_in_ctes: bool = False


class _TooDeep(Exception):
    pass


class _Parser:
    """Tolerant recursive descent over :class:`_Tok` (see the module doc)."""

    def __init__(self, toks: list[_Tok]) -> None:
        self.t = toks
        self.n = len(toks)
        self.i = 0
        self.depth = 0
        self.partial = False
        self.keep: set[int] = set()  # token indexes of ORDER/GROUP BY ordinals

    # -- cursor helpers -------------------------------------------------- #

    def peek(self, k: int = 0) -> _Tok | None:
        j = self.i + k
        return self.t[j] if j < self.n else None

    def kind(self, k: int = 0) -> int:
        j = self.i + k
        return self.t[j].kind if j < self.n else 0

    def word(self, k: int = 0) -> str:
        j = self.i + k
        if j < self.n and self.t[j].kind == _W:
            return self.t[j].up
        return ""

    def accept(self, *words: str) -> bool:
        if self.word() in words:
            self.i += 1
            return True
        return False

    def accept_kind(self, kind: int) -> bool:
        if self.kind() == kind:
            self.i += 1
            return True
        return False

    def is_ident(self, k: int = 0) -> bool:
        j = self.i + k
        if j >= self.n:
            return False
        tok = self.t[j]
        return tok.kind == _Q or (tok.kind == _W and tok.up not in _RESERVED)

    def enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise _TooDeep

    def skip_group(self) -> None:
        """At ``(``: skip to just after its matching ``)``."""
        level = 0
        while self.i < self.n:
            k = self.t[self.i].kind
            self.i += 1
            if k in (_LP, _LB):
                level += 1
            elif k in (_RP, _RB):
                level -= 1
                if level <= 0:
                    return

    def skip_until(self, stop: frozenset[str]) -> None:
        """Skip (balanced) to the next stop word, ``)``, ``;`` or the end."""
        if self.i < self.n:
            k = self.kind()
            if not (k in (_RP, _SEMI) or self.word() in stop):
                self.partial = True
        while self.i < self.n:
            k = self.kind()
            if k in (_RP, _SEMI) or self.word() in stop:
                return
            if k in (_LP, _LB):
                self.skip_group()
            else:
                self.i += 1

    # -- statements ------------------------------------------------------- #

    def statement(self) -> _Stmt:
        ctes: list[tuple[str, tuple[str, ...], _Stmt]] = []
        writes = False
        if self.accept("WITH"):
            self.accept("RECURSIVE")
            while True:
                if not self.is_ident() and self.kind() != _W:
                    break
                name = self.t[self.i].ident
                self.i += 1
                cols: tuple[str, ...] = ()
                if self.kind() == _LP:
                    cols = self.ident_list()
                self.accept("AS")
                self.accept("NOT")
                self.accept("MATERIALIZED")
                if self.kind() != _LP:
                    self.partial = True
                    break
                self.i += 1
                self.enter()
                body = self.statement()
                self.depth -= 1
                if body.kind not in ("select", "values"):
                    writes = True
                self.accept_kind(_RP)
                ctes.append((name, cols, body))
                if not self.accept_kind(_COMMA):
                    break
        w = self.word()
        if w in ("SELECT", "VALUES", "TABLE") or (self.kind() == _LP and self.starts_query(1)):
            stmt = self.select_body()
        elif w in ("INSERT", "REPLACE"):
            stmt = self.insert()
        elif w == "UPDATE":
            stmt = self.update()
        elif w == "DELETE":
            stmt = self.delete()
        else:
            stmt = _Stmt(kind=w.lower() if w else "unknown")
            self.skip_rest_of_statement()
        stmt.ctes = ctes
        stmt.writes_in_ctes = writes
        return stmt

    def starts_query(self, k: int) -> bool:
        """Does the parenthesised group whose content starts at ``i + k`` hold a query?

        ``(SELECT ...)`` and ``((SELECT ...) UNION (SELECT ...))`` do;
        ``((SELECT ...)) IS NULL`` does not: there the inner group is an
        operand of an expression.
        """
        return self._query_at(self.i + k, 0)

    def _query_at(self, j: int, depth: int) -> bool:
        if j >= self.n or depth > _MAX_DEPTH:
            return False
        tok = self.t[j]
        if tok.kind == _W:
            return tok.up in ("SELECT", "WITH", "VALUES")
        if tok.kind != _LP or not self._query_at(j + 1, depth + 1):
            return False
        level = 0
        for close in range(j, self.n):
            kind = self.t[close].kind
            if kind == _LP:
                level += 1
            elif kind == _RP:
                level -= 1
                if level == 0:
                    after = self.t[close + 1] if close + 1 < self.n else None
                    return (
                        after is None
                        or after.kind == _RP
                        or (after.kind == _W and after.up in _QUERY_CONTINUES)
                    )
        return True  # unterminated: let the statement parser cope

    def skip_rest_of_statement(self) -> None:
        while self.i < self.n and self.kind() not in (_RP, _SEMI):
            if self.kind() in (_LP, _LB):
                self.skip_group()
            else:
                self.i += 1

    def ident_list(self) -> tuple[str, ...]:
        """``( a, b, c )`` -> names; skips anything odd inside."""
        names: list[str] = []
        self.i += 1  # (
        while self.i < self.n and self.kind() != _RP:
            tok = self.t[self.i]
            if tok.kind in (_W, _Q):
                names.append(tok.ident)
                self.i += 1
            elif tok.kind in (_LP, _LB):
                self.skip_group()
            else:
                self.i += 1
        self.accept_kind(_RP)
        return tuple(names)

    def select_body(self) -> _Stmt:
        stmt = _Stmt(kind="select")
        stmt.cores.append(self.core())
        while self.word() in ("UNION", "INTERSECT", "EXCEPT", "MINUS"):
            self.i += 1
            self.accept("ALL", "DISTINCT")
            stmt.cores.append(self.core())
        if stmt.cores and stmt.cores[0].values is not None and len(stmt.cores) == 1:
            stmt.kind = "values"
        self.tail(stmt)
        return stmt

    def tail(self, stmt: _Stmt) -> None:
        while True:
            w = self.word()
            if w == "ORDER" and self.word(1) == "BY":
                self.i += 2
                stmt.order = self.order_items()
            elif w == "LIMIT":
                self.i += 1
                if self.accept("ALL"):
                    continue
                first = self.expr()
                if self.accept_kind(_COMMA):  # LIMIT offset, count
                    stmt.offset = first
                    stmt.limit = self.expr()
                else:
                    stmt.limit = first
            elif w == "OFFSET":
                self.i += 1
                stmt.offset = self.expr()
                self.accept("ROW", "ROWS")
            elif w == "FETCH":
                self.i += 1
                self.accept("FIRST", "NEXT")
                if self.word() not in ("ROW", "ROWS"):
                    stmt.limit = self.expr()
                else:
                    stmt.limit = _Const("1")
                self.accept("ROW", "ROWS")
                self.accept("ONLY")
                if self.accept("WITH"):
                    self.accept("TIES")
            elif w == "FOR":  # FOR UPDATE / SHARE / NO KEY UPDATE / KEY SHARE
                self.i += 1
                while self.word() in ("UPDATE", "SHARE", "NO", "KEY", "OF", "NOWAIT", "SKIP"):
                    if self.accept("OF"):
                        while self.is_ident() or self.kind() in (_DOT, _COMMA):
                            self.i += 1
                    elif self.accept("SKIP"):
                        self.accept("LOCKED")
                    else:
                        self.i += 1
            else:
                return

    def order_items(self) -> list[tuple[_Node, bool]]:
        items: list[tuple[_Node, bool]] = []
        while True:
            start = self.i
            if self.kind() == _N and (
                self.kind(1) in (_COMMA, _RP, _SEMI, 0)
                or self.word(1) in ("ASC", "DESC", "NULLS", "LIMIT", "OFFSET", "COLLATE")
            ):
                self.keep.add(self.i)
            node = self.expr()
            desc = False
            if self.accept("DESC"):
                desc = True
            else:
                self.accept("ASC")
            if self.accept("NULLS"):
                self.accept("FIRST", "LAST")
            if self.accept("COLLATE"):
                self.i += 1
            if self.i == start:
                self.partial = True
                break
            items.append((node, desc))
            if not self.accept_kind(_COMMA):
                break
        return items

    def core(self) -> _Core:
        core = _Core()
        if self.kind() == _LP and self.starts_query(1):
            self.i += 1
            self.enter()
            core.nested = self.statement()
            self.depth -= 1
            self.accept_kind(_RP)
            return core
        if self.accept("VALUES"):
            core.values = []
            while self.kind() == _LP:
                self.i += 1
                self.enter()
                core.values.append(self.expr_list())
                self.depth -= 1
                self.accept_kind(_RP)
                if not self.accept_kind(_COMMA):
                    break
            return core
        if self.accept("TABLE"):
            if self.is_ident():
                core.froms.append(_FromItem(kind="table", parts=self.name()))
            return core
        if not self.accept("SELECT"):
            self.partial = True
            self.skip_until(_CORE_END)
            return core
        if self.accept("DISTINCT"):
            if self.accept("ON") and self.kind() == _LP:
                self.skip_group()
        else:
            self.accept("ALL")
        while True:
            start = self.i
            if self.word() in ("FROM", "INTO") or self.kind() in (_RP, _SEMI, 0):
                break
            node = self.expr()
            alias: str | None = None
            if self.accept("AS"):
                tok = self.peek()
                if tok is not None and tok.kind in (_W, _Q):
                    alias = tok.ident
                    self.i += 1
            elif self.is_ident():
                alias = self.t[self.i].ident
                self.i += 1
            if self.i == start:
                self.partial = True
                self.skip_until(frozenset({"FROM", "INTO", "WHERE"}) | _CORE_END)
                break
            core.items.append((node, alias))
            if not self.accept_kind(_COMMA):
                break
        if self.accept("INTO"):
            core.into = True
            self.accept("TEMP", "TEMPORARY", "UNLOGGED")
            self.accept("TABLE")
            if self.is_ident():
                self.name()
        if self.accept("FROM"):
            self.from_list(core)
        if self.accept("WHERE"):
            core.where = self.expr()
        if self.word() == "GROUP" and self.word(1) == "BY":
            self.i += 2
            self.accept("ALL", "DISTINCT")
            while True:
                if self.kind() == _N and self.kind(1) in (_COMMA, _RP, _SEMI, 0):
                    self.keep.add(self.i)
                start = self.i
                core.group.append(self.expr())
                if self.i == start or not self.accept_kind(_COMMA):
                    break
        if self.accept("HAVING"):
            core.having = self.expr()
        if self.accept("WINDOW"):
            while self.is_ident():
                self.i += 1
                self.accept("AS")
                if self.kind() == _LP:
                    self.skip_group()
                if not self.accept_kind(_COMMA):
                    break
        if not (self.i >= self.n or self.kind() in (_RP, _SEMI) or self.word() in _CORE_END):
            self.skip_until(_CORE_END)
        return core

    def name(self) -> tuple[str, ...]:
        parts = [self.t[self.i].ident]
        self.i += 1
        while self.kind() == _DOT and self.kind(1) in (_W, _Q):
            parts.append(self.t[self.i + 1].ident)
            self.i += 2
        return tuple(parts)

    def alias(self) -> tuple[str | None, tuple[str, ...]]:
        alias: str | None = None
        if self.accept("AS"):
            tok = self.peek()
            if tok is not None and tok.kind in (_W, _Q):
                alias = tok.ident
                self.i += 1
        elif self.is_ident():
            alias = self.t[self.i].ident
            self.i += 1
        cols: tuple[str, ...] = ()
        if alias is not None and self.kind() == _LP:
            cols = self.ident_list()
        return alias, cols

    def from_list(self, core: _Core) -> None:
        self.from_item(core)
        while True:
            if self.accept_kind(_COMMA):
                self.from_item(core)
                continue
            w = self.word()
            if w in _JOIN_WORDS or w == "STRAIGHT_JOIN":
                natural = False
                while self.word() in _JOIN_WORDS and self.word() != "JOIN":
                    natural = natural or self.word() == "NATURAL"
                    self.i += 1
                if not (self.accept("JOIN") or self.accept("STRAIGHT_JOIN")):
                    self.partial = True
                    return
                left_count = len(core.froms)
                self.from_item(core)
                if self.accept("ON"):
                    core.conds.append(self.expr())
                elif self.word() == "USING" and self.kind(1) == _LP:
                    self.i += 1
                    core.usings.append((left_count, self.ident_list()))
                elif natural:
                    pass
                continue
            return

    def from_item(self, core: _Core) -> None:
        lateral = self.accept("LATERAL")
        self.accept("ONLY")
        item: _FromItem
        if self.kind() == _LP:
            if self.starts_query(1):
                self.i += 1
                self.enter()
                stmt = self.statement()
                self.depth -= 1
                self.accept_kind(_RP)
                item = _FromItem(kind="sub", stmt=stmt, lateral=lateral)
            else:  # ( a JOIN b ON ... ) -- parenthesised join tree
                self.i += 1
                self.enter()
                self.from_list(core)
                self.depth -= 1
                self.accept_kind(_RP)
                self.alias()
                return
        elif self.kind() in (_W, _Q) and (self.is_ident() or self.kind() == _Q):
            parts = self.name()
            if self.kind() == _LP:  # table function: generate_series(...), unnest(...)
                self.i += 1
                self.enter()
                args = self.expr_list()
                self.depth -= 1
                self.accept_kind(_RP)
                item = _FromItem(kind="func", func=_Func(".".join(parts), args), lateral=lateral)
                if self.accept("WITH"):
                    self.accept("ORDINALITY")
            else:
                item = _FromItem(kind="table", parts=parts)
        else:
            self.partial = True
            return
        item.alias, item.columns = self.alias()
        # postfixes
        while True:
            if self.accept("TABLESAMPLE"):
                if self.kind() in (_W, _Q):
                    self.i += 1
                if self.kind() == _LP:
                    self.skip_group()
                if self.accept("REPEATABLE") and self.kind() == _LP:
                    self.skip_group()
            elif self.word() == "INDEXED" and self.word(1) == "BY":
                self.i += 2
                if self.kind() in (_W, _Q):
                    self.i += 1
            elif self.word() == "NOT" and self.word(1) == "INDEXED":
                self.i += 2
            elif self.word() == "WITH" and self.kind(1) == _LP:  # WITH (NOLOCK)
                self.i += 1
                self.skip_group()
            else:
                break
        core.froms.append(item)

    def target(self, stmt: _Stmt) -> None:
        """The target table of INSERT / UPDATE / DELETE, with its alias."""
        start = self.i
        self.accept("ONLY")
        if self.kind() in (_W, _Q):
            parts = self.name()
            alias: str | None = None
            if self.accept("AS"):
                tok = self.peek()
                if tok is not None and tok.kind in (_W, _Q):
                    alias = tok.ident
                    self.i += 1
            elif self.is_ident() and self.word() not in ("DEFAULT", "OVERRIDING"):
                alias = self.t[self.i].ident
                self.i += 1
            stmt.target = _FromItem(kind="table", parts=parts, alias=alias)
        else:
            self.partial = True
        stmt.target_span = (start, self.i)

    def insert(self) -> _Stmt:
        stmt = _Stmt(kind="insert")
        self.i += 1
        if self.accept("OR"):
            self.i += 1  # OR REPLACE / IGNORE / ...
        self.accept("IGNORE")
        self.accept("INTO")
        self.target(stmt)
        if self.kind() == _LP and not self.starts_query(1):
            self.ident_list()
        if self.accept("OVERRIDING"):
            self.i += 2
        if self.word() == "DEFAULT":
            self.i += 2
        elif self.word() in ("SELECT", "VALUES", "WITH") or self.kind() == _LP:
            start = self.i
            stmt.source = self.statement() if self.word() == "WITH" else self.select_body()
            stmt.source_span = (start, self.i)
        if self.accept("ON"):  # ON CONFLICT (...) DO UPDATE SET ... WHERE ...
            self.accept("CONFLICT")
            if self.kind() == _LP:
                self.skip_group()
            if self.accept("WHERE"):
                stmt.extra.append(self.expr())
            if self.accept("ON"):
                self.accept("CONSTRAINT")
                self.i += 1
            self.accept("DO")
            if self.accept("UPDATE"):
                self.accept("SET")
                stmt.sets = self.assignments()
                if self.accept("WHERE"):
                    stmt.extra.append(self.expr())
            else:
                self.accept("NOTHING")
        self.returning(stmt)
        return stmt

    def assignments(self) -> list[_Node]:
        out: list[_Node] = []
        while True:
            start = self.i
            if self.kind() == _LP:
                self.skip_group()
            elif self.kind() in (_W, _Q):
                self.name()
            if self.kind() == _OP and self.t[self.i].text == "=":
                self.i += 1
            out.append(self.expr())
            if self.i == start:
                self.partial = True
                break
            if not self.accept_kind(_COMMA):
                break
        return out

    def returning(self, stmt: _Stmt) -> None:
        if self.accept("RETURNING"):
            stmt.extra.extend(self.expr_list())
            self.skip_rest_of_statement()

    def update(self) -> _Stmt:
        stmt = _Stmt(kind="update")
        self.i += 1
        if self.accept("OR"):
            self.i += 1
        self.target(stmt)
        if self.accept("SET"):
            stmt.sets = self.assignments()
        if self.word() == "FROM":
            self.i += 1
            start = self.i
            holder = _Core()
            self.from_list(holder)
            stmt.from_span = (start, self.i)
            stmt.cores = [holder]
        if self.accept("WHERE"):
            start = self.i
            stmt.where = self.expr()
            stmt.where_span = (start, self.i)
        self.tail(stmt)
        self.returning(stmt)
        return stmt

    def delete(self) -> _Stmt:
        stmt = _Stmt(kind="delete")
        self.i += 1
        self.accept("FROM")
        self.target(stmt)
        if self.word() == "USING":
            self.i += 1
            start = self.i
            holder = _Core()
            self.from_list(holder)
            stmt.from_span = (start, self.i)
            stmt.cores = [holder]
        if self.accept("WHERE"):
            start = self.i
            stmt.where = self.expr()
            stmt.where_span = (start, self.i)
        self.tail(stmt)
        self.returning(stmt)
        return stmt

    # -- expressions ------------------------------------------------------ #

    def expr_list(self) -> list[_Node]:
        items: list[_Node] = []
        while self.i < self.n and self.kind() not in (_RP, _RB, _SEMI):
            start = self.i
            items.append(self.expr())
            if self.i == start:
                self.partial = True
                self.i += 1  # always make progress
            if not self.accept_kind(_COMMA):
                # tolerate junk up to the closing parenthesis
                if self.kind() not in (_RP, _RB, _SEMI, 0):
                    self.partial = True
                    while self.i < self.n and self.kind() not in (_RP, _RB, _SEMI, _COMMA):
                        if self.kind() in (_LP, _LB):
                            self.skip_group()
                        else:
                            self.i += 1
                    if self.accept_kind(_COMMA):
                        continue
                break
        return items

    def expr(self) -> _Node:
        items = [self.conj()]
        while self.accept("OR"):
            items.append(self.conj())
        return items[0] if len(items) == 1 else _Or(items)

    def conj(self) -> _Node:
        items = [self.negation()]
        while self.accept("AND"):
            items.append(self.negation())
        return items[0] if len(items) == 1 else _And(items)

    def negation(self) -> _Node:
        if self.word() == "NOT" and self.word(1) != "EXISTS":
            self.i += 1
            return _Not(self.negation())
        return self.predicate()

    def predicate(self) -> _Node:
        left = self.arith()
        while True:
            w = self.word()
            negated = False
            if w == "NOT" and self.word(1) in (
                "IN",
                "BETWEEN",
                "LIKE",
                "ILIKE",
                "GLOB",
                "REGEXP",
                "MATCH",
                "SIMILAR",
                "RLIKE",
                "NULL",
            ):
                negated = True
                self.i += 1
                w = self.word()
                if w == "NULL":  # SQLite: x NOT NULL
                    self.i += 1
                    left = _IsNull(left, True)
                    continue
            if w == "IS":
                self.i += 1
                neg = self.accept("NOT")
                if self.accept("NULL"):
                    left = _IsNull(left, neg)
                elif self.accept("DISTINCT"):
                    self.accept("FROM")
                    left = _Cmp("is not distinct" if neg else "is distinct", left, self.arith())
                elif self.word() in ("TRUE", "FALSE", "UNKNOWN"):
                    self.i += 1
                    left = _Opaque([left], "is")
                else:
                    left = _Cmp("is", left, self.arith())
            elif w in ("ISNULL", "NOTNULL"):
                self.i += 1
                left = _IsNull(left, w == "NOTNULL")
            elif w == "IN":
                self.i += 1
                left = self.in_rest(left, negated)
            elif w == "BETWEEN":
                self.i += 1
                self.accept("SYMMETRIC", "ASYMMETRIC")
                lo = self.arith()
                self.accept("AND")
                hi = self.arith()
                left = _Between(left, lo, hi, negated)
            elif w in _PATTERN_WORDS:
                self.i += 1
                if w == "SIMILAR":
                    self.accept("TO")
                op = ("NOT " if negated else "") + w
                right = self.arith()
                if self.accept("ESCAPE"):
                    self.arith()
                left = _Cmp(op, left, right)
            elif self.kind() == _OP and (
                self.t[self.i].text in _CMP_SYMBOLS or self.t[self.i].text in _REGEX_SYMBOLS
            ):
                op = self.t[self.i].text
                self.i += 1
                if self.word() in ("ANY", "SOME", "ALL") and self.kind(1) == _LP:
                    quant = self.word()
                    self.i += 2
                    self.enter()
                    operand = _Sub(self.statement()) if self.starts_query(0) else self.expr()
                    self.depth -= 1
                    self.accept_kind(_RP)
                    left = _Quant(op, left, quant, operand)
                else:
                    left = _Cmp(op, left, self.arith())
            else:
                return left

    def in_rest(self, left: _Node, negated: bool) -> _Node:
        if self.kind() != _LP:
            return _In(left, [self.arith()], None, negated)
        self.i += 1
        self.enter()
        if self.starts_query(0):
            sub = self.statement()
            self.depth -= 1
            self.accept_kind(_RP)
            return _In(left, [], sub, negated)
        items = self.expr_list()
        self.depth -= 1
        self.accept_kind(_RP)
        return _In(left, items, None, negated)

    def arith(self) -> _Node:
        left = self.unary()
        while True:
            k = self.kind()
            if k == _OP:
                op = self.t[self.i].text
                if op in _CMP_SYMBOLS or op in _REGEX_SYMBOLS:
                    return left
                self.i += 1
                left = _Bin(op, left, self.unary())
            elif k == _STAR:
                self.i += 1
                left = _Bin("*", left, self.unary())
            elif k == _N and self.t[self.i].text[:1] in "+-":  # `a -1` lexed as a signed number
                right = self.primary()
                left = _Bin(self.t[self.i - 1].text[:1], left, right)
            elif self.word() == "AT" and self.word(1) == "TIME" and self.word(2) == "ZONE":
                self.i += 3
                left = _Bin("at time zone", left, self.unary())
            elif self.word() == "COLLATE":
                self.i += 1
                if self.kind() in (_W, _Q):
                    self.i += 1
            else:
                return left

    def unary(self) -> _Node:
        if self.kind() == _OP and self.t[self.i].text in ("-", "+", "~", "!"):
            op = self.t[self.i].text
            self.i += 1
            return _Un(op, self.unary())
        return self.postfix(self.primary())

    def type_name(self) -> str:
        """A type after ``::`` or ``AS``: ``int``, ``double precision``, ``numeric(10, 2)[]``."""
        words: list[str] = []
        if self.kind() in (_W, _Q):
            words.append(self.t[self.i].ident)
            self.i += 1
            while self.kind() == _DOT and self.kind(1) in (_W, _Q):
                words[-1] += "." + self.t[self.i + 1].ident
                self.i += 2
            while self.word() in _TYPE_TAILS:
                if self.word() in ("WITH", "WITHOUT") and self.word(1) != "TIME":
                    break
                words.append(self.t[self.i].ident)
                self.i += 1
        if self.kind() == _LP:
            self.skip_group()
        while self.kind() == _LB:
            self.skip_group()
        return " ".join(words) or "?"

    def postfix(self, node: _Node) -> _Node:
        while True:
            if self.accept_kind(_CAST):
                node = _Cast(node, self.type_name())
            elif self.kind() == _LB and self.t[self.i].adj:
                self.i += 1
                self.enter()
                inner = self.expr_list()
                self.depth -= 1
                self.accept_kind(_RB)
                node = _Opaque([node, *inner], "[]")
            elif self.kind() == _DOT and self.kind(1) in (_W, _Q, _STAR):
                # (composite).field
                self.i += 2
                node = _Opaque([node], ".")
            else:
                return node

    def func_args(self) -> list[_Node]:
        """After ``(``: the arguments, up to and including ``)``."""
        args: list[_Node] = []
        self.enter()
        self.accept("DISTINCT", "ALL")
        while self.i < self.n and self.kind() not in (_RP, _SEMI):
            start = self.i
            if self.kind() == _STAR:
                self.i += 1
                args.append(_Star())
            elif self.word() == "ORDER" and self.word(1) == "BY":
                self.i += 2
                args.extend(n for n, _ in self.order_items())
            elif self.word() in ("FROM", "FOR", "IN", "AS", "PLACING", "USING", "SEPARATOR"):
                self.i += 1
                if self.word() in _RESERVED or self.kind() not in (_W, _Q):
                    args.append(self.expr())
                else:  # AS type, USING charset
                    self.type_name()
            elif self.word() in ("BOTH", "LEADING", "TRAILING"):
                self.i += 1
            else:
                args.append(self.expr())
            if self.i == start:
                self.partial = True
                self.i += 1
            self.accept_kind(_COMMA)
        self.accept_kind(_RP)
        self.depth -= 1
        return args

    def primary(self) -> _Node:
        tok = self.peek()
        if tok is None:
            return _Opaque([], "")
        k = tok.kind
        if k in _SLOT_KINDS:
            self.i += 1
            return _Val((tok.slot,), tok.text)
        if k == _LP:
            self.i += 1
            self.enter()
            if self.starts_query(0):
                node: _Node = _Sub(self.statement())
                self.accept_kind(_RP)
            else:
                items = self.expr_list()
                self.accept_kind(_RP)
                node = items[0] if len(items) == 1 else _Row(items)
            self.depth -= 1
            return node
        if k == _STAR:
            self.i += 1
            return _Star()
        if k == _Q:
            return self.column_or_call()
        if k != _W:
            if k in (_RP, _RB, _COMMA, _SEMI):
                return _Opaque([], "")
            self.i += 1
            return _Opaque([], tok.text if k == _OP else "?")
        w = tok.up
        if w in ("NULL", "TRUE", "FALSE", "DEFAULT"):
            self.i += 1
            return _Const(w)
        if w == "CASE":
            self.i += 1
            self.enter()
            children: list[_Node] = []
            while self.i < self.n and not self.accept("END"):
                if self.kind() in (_RP, _SEMI):
                    break
                if self.word() in ("WHEN", "THEN", "ELSE"):
                    self.i += 1
                    continue
                start = self.i
                children.append(self.expr())
                if self.i == start:
                    self.i += 1
            self.depth -= 1
            return _Opaque(children, "CASE")
        if w == "CAST" and self.kind(1) == _LP:
            self.i += 2
            self.enter()
            inner = self.expr()
            type_ = "?"
            if self.accept("AS"):
                type_ = self.type_name()
            while self.i < self.n and self.kind() not in (_RP, _SEMI):
                self.i += 1
            self.accept_kind(_RP)
            self.depth -= 1
            return _Cast(inner, type_)
        if w == "EXISTS" and self.kind(1) == _LP:
            self.i += 2
            self.enter()
            sub = self.statement()
            self.depth -= 1
            self.accept_kind(_RP)
            return _Exists(sub, False)
        if w == "NOT" and self.word(1) == "EXISTS" and self.kind(2) == _LP:
            self.i += 3
            self.enter()
            sub = self.statement()
            self.depth -= 1
            self.accept_kind(_RP)
            return _Exists(sub, True)
        if w == "ARRAY" and self.kind(1) in (_LB, _LP):
            self.i += 1
            if self.kind() == _LP and self.starts_query(1):
                self.i += 1
                self.enter()
                stmt = self.statement()
                self.depth -= 1
                self.accept_kind(_RP)
                return _Sub(stmt)
            closer = _RB if self.kind() == _LB else _RP
            self.i += 1
            self.enter()
            items = self.expr_list()
            self.depth -= 1
            self.accept_kind(closer)
            return _Opaque(items, "ARRAY")
        if w in _TYPED_WORDS and self.kind(1) in _SLOT_KINDS:
            lit = self.t[self.i + 1]
            self.i += 2
            if w == "INTERVAL":  # INTERVAL '1' DAY
                while self.word() in ("YEAR", "MONTH", "DAY", "HOUR", "MINUTE", "SECOND", "TO"):
                    self.i += 1
            return _Val((lit.slot,), lit.text, typed=w)
        if w == "NOT":
            self.i += 1
            return _Not(self.predicate())
        if w in _RESERVED and not (w in ("LEFT", "RIGHT") and self.kind(1) == _LP):
            return _Opaque([], "")
        return self.column_or_call()

    def column_or_call(self) -> _Node:
        parts = self.name()
        if self.kind() == _DOT and self.kind(1) == _STAR:
            self.i += 2
            return _Star()
        if self.kind() == _LP:
            self.i += 1
            args = self.func_args()
            node: _Node = _Func(".".join(parts), args)
            # FILTER (WHERE ...), WITHIN GROUP (ORDER BY ...), OVER (...)
            while True:
                if self.word() == "FILTER" and self.kind(1) == _LP:
                    self.i += 2
                    self.accept("WHERE")
                    self.enter()
                    args.append(self.expr())
                    self.depth -= 1
                    self.accept_kind(_RP)
                elif self.word() == "WITHIN" and self.word(1) == "GROUP":
                    self.i += 2
                    if self.kind() == _LP:
                        self.skip_group()
                elif self.word() == "OVER":
                    self.i += 1
                    if self.kind() == _LP:
                        self.skip_group()
                    elif self.kind() in (_W, _Q):
                        self.i += 1
                else:
                    return node
        return _Col(parts)


# --------------------------------------------------------------------------- #
# Analysis over the AST
# --------------------------------------------------------------------------- #


class _Out:
    """The output columns of a query block or derived table."""

    __slots__ = ("names", "order", "star")

    def __init__(self) -> None:
        self.names: dict[str, tuple[str, ColumnRef] | None] = {}
        self.order: list[str] = []
        self.star: tuple[str, str] | None = None  # (alias, table) of a lone base source


class _Source:
    __slots__ = ("alias", "out", "table")

    def __init__(self, alias: str, table: str | None, out: _Out | None) -> None:
        self.alias = alias
        self.table = table
        self.out = out


class _Scope:
    __slots__ = (
        "ctes",
        "eq",
        "group",
        "has_limit",
        "joins",
        "order",
        "parent",
        "rng",
        "sources",
    )

    def __init__(self, parent: _Scope | None, ctes: dict[str, _Out | None]) -> None:
        self.parent = parent
        self.ctes = ctes
        self.sources: dict[str, _Source] = {}
        self.eq: list[Predicate] = []
        self.rng: list[Predicate] = []
        self.joins: list[JoinKey] = []
        self.order: list[OrderColumn] = []
        self.group: list[ColumnRef] = []
        self.has_limit = False


_Resolved = tuple[_Scope, str, ColumnRef]


class _Analyzer:
    def __init__(self) -> None:
        self.tables: list[str] = []
        self.aliases: list[tuple[str, str]] = []
        self.unindexable: list[Unindexable] = []
        self.blocks: list[tuple[_Scope, int]] = []
        self.hints: dict[int, ParameterSlot] = {}
        self.ctes: list[str] = []
        self.subqueries = 0

    # -- helpers ------------------------------------------------------------ #

    def hint(self, node: _Node, role: str, res: _Resolved | None, scope: _Scope) -> None:
        col = res[2] if res is not None else None
        cands: tuple[str, ...] = ()
        if col is not None and col.table is None:
            cands = tuple(s.table for s in scope.sources.values() if s.table)
        for val in _value_leaves(node):
            typed = val.typed
            r = "interval" if typed == "INTERVAL" else role
            for slot in val.slots:
                if slot >= 0:
                    self.hints[slot] = ParameterSlot(slot, r, col, cands, typed)

    def hint_other(self, node: _Node) -> None:
        for val in _iter_vals(node):
            for slot in val.slots:
                if slot >= 0 and slot not in self.hints:
                    r = "interval" if val.typed == "INTERVAL" else "other"
                    self.hints[slot] = ParameterSlot(slot, r, typed=val.typed)

    def resolve(self, node: _Node, scope: _Scope) -> _Resolved | None:
        """A column reference -> (scope it belongs to, instance alias, column)."""
        if not isinstance(node, _Col):
            return None
        parts = node.parts
        column = parts[-1]
        if column in _PSEUDO_COLUMNS:
            return None
        if len(parts) == 1:
            s: _Scope | None = scope
            while s is not None:
                if len(s.sources) == 1:
                    src = next(iter(s.sources.values()))
                    return self._through(s, src, column)
                if len(s.sources) > 1:
                    return (s, "", ColumnRef(None, column))
                s = s.parent
            return None
        qual = parts[-2]
        schema = ".".join(parts[:-2])
        s = scope
        while s is not None:
            hit = s.sources.get(qual)
            if hit is not None and (
                not schema or (hit.table or "").startswith(schema + ".") or hit.alias == qual
            ):
                return self._through(s, hit, column)
            for src in s.sources.values():  # orders.id when orders is aliased
                if src.table is not None and src.table.rsplit(".", 1)[-1] == qual:
                    return self._through(s, src, column)
            s = s.parent
        return None

    @staticmethod
    def _through(scope: _Scope, src: _Source, column: str) -> _Resolved | None:
        if src.table is not None:
            return (scope, src.alias, ColumnRef(src.table, column))
        out = src.out
        if out is None:
            return None
        hit = out.names.get(column)
        if hit is not None:
            return (scope, src.alias, hit[1])
        if column not in out.names and out.star is not None:
            return (scope, src.alias, ColumnRef(out.star[1], column))
        return None

    def is_value(self, node: _Node, scope: _Scope) -> bool:
        """True when ``node`` holds no column of ``scope`` (a constant per row)."""
        for col in _iter_cols(node):
            res = self.resolve(col, scope)
            if res is None or res[0] is scope:
                return False
        return not any(isinstance(n, _Star) for n in _walk(node))

    def walk(self, node: _Node | None, scope: _Scope) -> None:
        """Analyze the subqueries inside an expression; other slots get 'other'."""
        if node is None:
            return
        for sub in _iter_subs(node):
            self.subqueries += 1
            self.statement(sub, scope, scope.ctes)
        self.hint_other(node)

    def add_source(self, scope: _Scope, alias: str, table: str | None, out: _Out | None) -> None:
        key = alias
        n = 2
        while key in scope.sources:
            key = f"{alias}#{n}"
            n += 1
        scope.sources[key] = _Source(key, table, out)
        if table is not None:
            if table not in self.tables:
                self.tables.append(table)
            if alias != table.rsplit(".", 1)[-1] and (alias, table) not in self.aliases:
                self.aliases.append((alias, table))

    def record_block(self, scope: _Scope) -> None:
        self.blocks.append((scope, len(self.blocks)))

    def unindexable_of(self, kind: str, node: _Node, scope: _Scope, reason: str) -> None:
        cols: list[ColumnRef] = []
        for col in _iter_cols(node):
            res = self.resolve(col, scope)
            if res is not None and res[0] is scope and res[2] not in cols:
                cols.append(res[2])
        self.unindexable.append(Unindexable(kind, tuple(cols), _render(node)[:240], reason))

    # -- statements --------------------------------------------------------- #

    def statement(self, stmt: _Stmt, parent: _Scope | None, ctes: dict[str, _Out | None]) -> _Out:
        visible = dict(ctes)
        for name, cols, body in stmt.ctes:
            visible[name] = None  # recursive references see an opaque table
            self.ctes.append(name)
            out = self.statement(body, parent, visible)
            if cols:
                renamed = _Out()
                for new, old in zip(cols, out.order, strict=False):
                    renamed.names[new] = out.names.get(old)
                    renamed.order.append(new)
                out = renamed
            visible[name] = out
        if stmt.kind in ("select", "values"):
            return self.select(stmt, parent, visible)
        if stmt.kind in ("insert", "update", "delete"):
            self.write(stmt, parent, visible)
        return _Out()

    def select(self, stmt: _Stmt, parent: _Scope | None, ctes: dict[str, _Out | None]) -> _Out:
        results = [self.core(core, parent, ctes) for core in stmt.cores]
        out = results[0][1] if results else _Out()
        single = results[0][0] if len(results) == 1 else None
        if single is not None:
            for node, desc in stmt.order:
                res = self.order_target(node, single, stmt.cores[0], out)
                if res is not None:
                    single.order.append(OrderColumn(res[2], desc, res[1]))
                else:
                    self.walk(node, single)
            single.has_limit = stmt.limit is not None
        else:
            for node, _ in stmt.order:
                self.hint_other(node)
        for bound, role in ((stmt.limit, "limit"), (stmt.offset, "offset")):
            if bound is not None:
                for val in _iter_vals(bound):
                    for slot in val.slots:
                        if slot >= 0:
                            self.hints[slot] = ParameterSlot(slot, role)
        return out

    def order_target(self, node: _Node, scope: _Scope, core: _Core, out: _Out) -> _Resolved | None:
        if isinstance(node, _Col) and len(node.parts) == 1:
            hit = out.names.get(node.parts[0])  # ORDER BY an output alias
            if hit is not None:
                return (scope, hit[0], hit[1])
        if isinstance(node, _Val) and node.text.isdigit() and core.items:
            n = int(node.text)
            if 1 <= n <= len(core.items):
                res = self.resolve(core.items[n - 1][0], scope)
                return res if res is not None and res[0] is scope else None
        res = self.resolve(node, scope)
        return res if res is not None and res[0] is scope else None

    def core(
        self, core: _Core, parent: _Scope | None, ctes: dict[str, _Out | None]
    ) -> tuple[_Scope | None, _Out]:
        if core.nested is not None:
            self.subqueries += 1
            return None, self.statement(core.nested, parent, ctes)
        scope = _Scope(parent, ctes)
        if core.values is not None:
            for row in core.values:
                for node in row:
                    self.walk(node, scope)
            return None, _Out()
        self.from_items(core.froms, scope, parent, ctes)
        for cond in core.conds:
            self.predicate(cond, scope)
        for left_count, cols in core.usings:
            self.using(left_count, cols, scope)
        if core.where is not None:
            self.predicate(core.where, scope)
        out = _Out()
        for node, alias in core.items:
            if isinstance(node, _Star):
                bases = [s for s in scope.sources.values() if s.table is not None]
                if len(scope.sources) == 1 and len(bases) == 1:
                    out.star = (bases[0].alias, bases[0].table or "")
                elif len(scope.sources) == 1:
                    src = next(iter(scope.sources.values()))
                    if src.out is not None:
                        out.names.update(src.out.names)
                        out.order.extend(src.out.order)
                        out.star = src.out.star
                continue
            res = self.resolve(node, scope)
            name = alias or (node.parts[-1] if isinstance(node, _Col) else None)
            if name is not None:
                out.names[name] = (
                    (res[1], res[2])
                    if res is not None and res[0] is scope and res[2].table
                    else None
                )
                out.order.append(name)
            self.walk(node, scope)
        for node in core.group:
            res = self.order_target(node, scope, core, out)
            if res is not None:
                scope.group.append(res[2])
            else:
                self.walk(node, scope)
        self.walk(core.having, scope)
        self.record_block(scope)
        return scope, out

    def from_items(
        self,
        items: list[_FromItem],
        scope: _Scope,
        parent: _Scope | None,
        ctes: dict[str, _Out | None],
    ) -> None:
        for item in items:
            if item.kind == "table":
                name = ".".join(item.parts)
                alias = item.alias or item.parts[-1]
                if len(item.parts) == 1 and name in ctes:
                    self.add_source(scope, alias, None, ctes[name])
                else:
                    self.add_source(scope, alias, name, None)
            elif item.kind == "sub" and item.stmt is not None:
                self.subqueries += 1
                out = self.statement(item.stmt, scope if item.lateral else parent, ctes)
                if item.columns:
                    renamed = _Out()
                    for new, old in zip(item.columns, out.order, strict=False):
                        renamed.names[new] = out.names.get(old)
                        renamed.order.append(new)
                    out = renamed
                self.add_source(scope, item.alias or f"subquery{self.subqueries}", None, out)
            else:
                if item.func is not None:
                    self.walk(item.func, scope)
                self.add_source(scope, item.alias or "function", None, _Out())

    def using(self, left_count: int, cols: tuple[str, ...], scope: _Scope) -> None:
        sources = list(scope.sources.values())
        if left_count < 1 or left_count >= len(sources) + 1:
            return
        right = sources[min(left_count, len(sources) - 1)]
        lefts = sources[:left_count]
        for col in cols:
            r = self._through(scope, right, col)
            for left in reversed(lefts):
                lres = self._through(scope, left, col)
                if lres is not None and r is not None:
                    scope.joins.append(JoinKey(lres[2], r[2], "join", lres[1], r[1]))
                    break

    def write(self, stmt: _Stmt, parent: _Scope | None, ctes: dict[str, _Out | None]) -> None:
        scope = _Scope(parent, ctes)
        if stmt.target is not None and stmt.target.parts:
            name = ".".join(stmt.target.parts)
            self.add_source(scope, stmt.target.alias or stmt.target.parts[-1], name, None)
        if stmt.kind == "insert":
            if stmt.source is not None:
                self.statement(stmt.source, parent, ctes)
            for node in [*stmt.sets, *stmt.extra]:
                self.walk(node, scope)
            return
        if stmt.cores:
            self.from_items(stmt.cores[0].froms, scope, parent, ctes)
            for cond in stmt.cores[0].conds:
                self.predicate(cond, scope)
        for node in stmt.sets:
            self.walk(node, scope)
        if stmt.where is not None:
            self.predicate(stmt.where, scope)
        for node in stmt.extra:
            self.walk(node, scope)
        self.record_block(scope)

    # -- predicates --------------------------------------------------------- #

    def predicate(self, node: _Node, scope: _Scope) -> None:
        if isinstance(node, _And):
            for item in node.items:
                self.predicate(item, scope)
            return
        if isinstance(node, _Or):
            self.disjunction(node, scope)
            return
        if isinstance(node, _Not):
            inner = node.expr
            if isinstance(inner, _Exists):
                self.walk(inner, scope)
                return
            self.unindexable_of(
                "negation", node, scope, "a negated condition matches most rows; no btree seek"
            )
            self.walk(node, scope)
            return
        if isinstance(node, _Exists):
            self.walk(node, scope)
            return
        if isinstance(node, _Cmp):
            self.comparison(node, scope)
            return
        if isinstance(node, _In):
            self.in_predicate(node, scope)
            return
        if isinstance(node, _Quant):
            self.quantified(node, scope)
            return
        if isinstance(node, _Between):
            res = self.resolve(node.expr, scope)
            own = res is not None and res[0] is scope
            if (
                own
                and not node.negated
                and self.is_value(node.lo, scope)
                and (self.is_value(node.hi, scope))
            ):
                assert res is not None
                scope.rng.append(Predicate(res[2], "between", res[1] or None))
                self.hint(node.lo, "between-low", res, scope)
                self.hint(node.hi, "between-high", res, scope)
            elif own and node.negated:
                self.unindexable_of(
                    "negation", node, scope, "NOT BETWEEN matches two open ranges; no single seek"
                )
            elif not own:
                self.function_on_column(node.expr, node, scope)
            self.walk(node, scope)
            return
        if isinstance(node, _IsNull):
            res = self.resolve(node.expr, scope)
            if res is not None and res[0] is scope and not node.negated:
                scope.eq.append(Predicate(res[2], "is null", res[1] or None))
            self.walk(node, scope)
            return
        if isinstance(node, _Col):  # WHERE active
            res = self.resolve(node, scope)
            if res is not None and res[0] is scope:
                scope.eq.append(Predicate(res[2], "=", res[1] or None))
            return
        self.walk(node, scope)

    def disjunction(self, node: _Or, scope: _Scope) -> None:
        """``a = 1 OR a = 2`` is an IN list; any other OR is reported."""
        target: ColumnRef | None = None
        alias = ""
        same = True
        for item in node.items:
            col: _Node | None = None
            val: _Node | None = None
            if isinstance(item, _Cmp) and item.op in ("=", "=="):
                col, val = item.left, item.right
                if not isinstance(col, _Col):
                    col, val = val, col
            elif isinstance(item, _In) and not item.negated and item.sub is None:
                col, val = item.expr, _Row(item.items)
            res = self.resolve(col, scope) if col is not None else None
            if (
                res is None
                or res[0] is not scope
                or val is None
                or not self.is_value(val, scope)
                or (target is not None and res[2] != target)
            ):
                same = False
                break
            target, alias = res[2], res[1]
        if same and target is not None:
            scope.eq.append(Predicate(target, "in", alias or None))
            for item in node.items:
                for part in (item.left, item.right) if isinstance(item, _Cmp) else ():
                    if not isinstance(part, _Col):
                        self.hint(part, "in", (scope, alias, target), scope)
                if isinstance(item, _In):
                    for v in item.items:
                        self.hint(v, "in", (scope, alias, target), scope)
            return
        self.unindexable_of(
            "or",
            node,
            scope,
            "OR across different columns: one btree index cannot serve it "
            "(a bitmap/multi-index OR of one index per branch can)",
        )
        # Bind representative values to each branch's slots.
        for item in node.items:
            self.hint_branch(item, scope)
            self.walk(item, scope)

    def hint_branch(self, node: _Node, scope: _Scope) -> None:
        if isinstance(node, _And):
            for item in node.items:
                self.hint_branch(item, scope)
        elif isinstance(node, _Cmp):
            left, right, op = node.left, node.right, node.op
            if not isinstance(left, _Col) and isinstance(right, _Col):
                left, right, op = right, left, _FLIP.get(op, op)
            res = self.resolve(left, scope)
            if res is not None and res[0] is scope:
                self.hint(right, _role_of(op), res, scope)

    def function_on_column(self, expr: _Node, whole: _Node, scope: _Scope) -> bool:
        if isinstance(expr, (_Func, _Cast, _Bin, _Un, _Opaque)) and any(
            (r := self.resolve(c, scope)) is not None and r[0] is scope for c in _iter_cols(expr)
        ):
            what = expr.name if isinstance(expr, _Func) else "an expression"
            if isinstance(expr, _Cast):
                what = f"a cast to {expr.type}"
            self.unindexable_of(
                "function",
                whole,
                scope,
                f"the column is wrapped in {what}; only an expression index on "
                "exactly that expression could serve it",
            )
            return True
        return False

    def comparison(self, node: _Cmp, scope: _Scope) -> None:
        left, right, op = node.left, node.right, node.op.upper()
        if op == "==":
            op = "="
        lres = self.resolve(left, scope)
        rres = self.resolve(right, scope)
        lown = lres is not None and lres[0] is scope
        rown = rres is not None and rres[0] is scope
        if not lown and rown:
            left, right, lres, rres, lown, rown = right, left, rres, lres, rown, lown
            op = _FLIP.get(op, op)
        if lown and lres is not None:
            if rown and rres is not None:
                if op == "=" and rres[1] != lres[1]:
                    scope.joins.append(JoinKey(lres[2], rres[2], "join", lres[1], rres[1]))
                return
            if rres is not None and rres[0] is not scope and op == "=":
                # correlated: inner.col = outer.col -- a constant per outer row
                scope.eq.append(Predicate(lres[2], "=", lres[1] or None))
                scope.joins.append(JoinKey(lres[2], rres[2], "correlated", lres[1], rres[1]))
                return
            if not self.is_value(right, scope):
                self.walk(right, scope)
                return
            self.walk(right, scope)
            col = lres[2]
            alias = lres[1] or None
            if op == "=":
                scope.eq.append(Predicate(col, "=", alias))
                self.hint(right, "eq", lres, scope)
            elif op in ("<", ">", "<=", ">="):
                scope.rng.append(Predicate(col, op, alias))
                self.hint(right, _role_of(op), lres, scope)
            elif op in ("<>", "!=", "IS DISTINCT", "IS"):
                kind = "distinct-from" if "DISTINCT" in op else "inequality"
                self.unindexable_of(
                    kind, node, scope, f"{op} matches nearly every row; no btree seek"
                )
                self.hint(right, "eq", lres, scope)
            elif op == "IS NOT DISTINCT":
                self.unindexable_of(
                    "distinct-from",
                    node,
                    scope,
                    "IS NOT DISTINCT FROM is not an indexable operator; write "
                    "col = ? (or col IS NULL) instead",
                )
                self.hint(right, "eq", lres, scope)
            elif op in ("LIKE", "ILIKE", "GLOB"):
                self.pattern(node, op, right, lres, scope)
            else:
                self.unindexable_of(
                    "pattern",
                    node,
                    scope,
                    f"{op} (negated or regular-expression matching) cannot use a btree index",
                )
                self.hint(right, "like", lres, scope)
            return
        if self.function_on_column(left, node, scope):
            inner = [r for c in _iter_cols(left) if (r := self.resolve(c, scope)) is not None]
            self.hint(right, _role_of(op), inner[0] if inner else None, scope)
            self.walk(right, scope)
            return
        self.walk(node, scope)

    def pattern(self, node: _Cmp, op: str, right: _Node, res: _Resolved, scope: _Scope) -> None:
        literal = right.text if isinstance(right, _Val) and right.text[:1] in "'\"" else None
        if isinstance(right, _Val) and literal is None and right.text[:1] in "eE":
            literal = right.text[1:]
        if literal is None:
            self.unindexable_of(
                "like-parameter",
                node,
                scope,
                "the pattern is a parameter: a btree index serves only a constant "
                "prefix ('abc%'), which cannot be known here",
            )
            self.hint(right, "like", res, scope)
            return
        body = literal[1:-1]
        wildcards = "%_" if op != "GLOB" else "*?["
        if not body or body[0] in wildcards:
            self.unindexable_of(
                "leading-wildcard",
                node,
                scope,
                "the pattern starts with a wildcard; a btree index cannot seek it "
                "(a trigram/full-text index can)",
            )
        elif op == "ILIKE":
            self.unindexable_of(
                "case-insensitive",
                node,
                scope,
                "ILIKE folds case; only an index on lower(column) can serve it",
            )
        else:
            scope.rng.append(Predicate(res[2], "prefix", res[1] or None))
        self.hint(right, "like", res, scope)

    def in_predicate(self, node: _In, scope: _Scope) -> None:
        cols = node.expr.items if isinstance(node.expr, _Row) else [node.expr]
        resolved = [self.resolve(c, scope) for c in cols]
        own = [r for r in resolved if r is not None and r[0] is scope]
        if node.sub is not None:
            self.subqueries += 1
            out = self.statement(node.sub, scope, scope.ctes)
            if node.negated:
                self.unindexable_of("not-in", node, scope, "NOT IN (subquery) is an anti-join")
                return
            inner = [out.names.get(n) for n in out.order]
            for i, r in enumerate(resolved):
                if r is None or r[0] is not scope:
                    continue
                hit = inner[i] if i < len(inner) else None
                if hit is None and out.star is not None and len(out.order) == 0 and i == 0:
                    hit = None
                if hit is not None:
                    scope.joins.append(JoinKey(r[2], hit[1], "semi-join", r[1], hit[0]))
            return
        if not own or not all(self.is_value(v, scope) for v in node.items):
            if not own:
                self.function_on_column(node.expr, node, scope)
            self.walk(node, scope)
            return
        if node.negated:
            self.unindexable_of(
                "not-in", node, scope, "NOT IN matches nearly every row; no btree seek"
            )
            for v in node.items:
                self.hint_other(v)
            return
        for i, r in enumerate(resolved):
            if r is None or r[0] is not scope:
                continue
            scope.eq.append(Predicate(r[2], "in", r[1] or None))
            for v in node.items:
                parts = v.items if isinstance(v, _Row) and len(cols) > 1 else [v]
                if i < len(parts):
                    self.hint(parts[i], "in", r, scope)

    def quantified(self, node: _Quant, scope: _Scope) -> None:
        res = self.resolve(node.left, scope)
        own = res is not None and res[0] is scope
        if isinstance(node.right, _Sub):
            self.subqueries += 1
            out = self.statement(node.right.stmt, scope, scope.ctes)
            if own and res is not None and node.op == "=" and node.quant != "ALL" and out.order:
                hit = out.names.get(out.order[0])
                if hit is not None:
                    scope.joins.append(JoinKey(res[2], hit[1], "semi-join", res[1], hit[0]))
            return
        if (
            own
            and res is not None
            and node.op == "="
            and node.quant in ("ANY", "SOME")
            and self.is_value(node.right, scope)
        ):
            scope.eq.append(Predicate(res[2], "in", res[1] or None))
            array = isinstance(node.right, _Opaque) and node.right.label == "ARRAY"
            self.hint(node.right, "in" if array else "any", res, scope)
            return
        if own and res is not None and node.op in ("<>", "!=") and node.quant == "ALL":
            self.unindexable_of("not-in", node, scope, "<> ALL matches nearly every row")
        self.walk(node.right, scope)


_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}


def _role_of(op: str) -> str:
    if op in (">", ">="):
        return "range-low"
    if op in ("<", "<="):
        return "range-high"
    return "eq"


def _children(node: _Node) -> list[_Node]:
    if isinstance(node, (_Cmp, _Bin)):
        return [node.left, node.right]
    if isinstance(node, _Quant):
        return [node.left, node.right]
    if isinstance(node, (_And, _Or, _Row)):
        return list(node.items)
    if isinstance(node, (_Not, _Un, _Cast, _IsNull)):
        return [node.expr]
    if isinstance(node, _Func):
        return list(node.args)
    if isinstance(node, _In):
        return [node.expr, *node.items]
    if isinstance(node, _Between):
        return [node.expr, node.lo, node.hi]
    if isinstance(node, _Opaque):
        return list(node.children)
    return []


def _walk(node: _Node) -> Iterator[_Node]:
    """Every node of an expression, not descending into subqueries."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(_children(n))


def _iter_cols(node: _Node) -> Iterator[_Col]:
    for n in _walk(node):
        if isinstance(n, _Col):
            yield n


def _iter_vals(node: _Node) -> Iterator[_Val]:
    for n in _walk(node):
        if isinstance(n, _Val):
            yield n


def _iter_subs(node: _Node) -> Iterator[_Stmt]:
    for n in _walk(node):
        if isinstance(n, _Sub):
            yield n.stmt
        elif isinstance(n, _Exists) or (isinstance(n, _In) and n.sub is not None):
            assert n.sub is not None
            yield n.sub


def _value_leaves(node: _Node) -> list[_Val]:
    """The literal/placeholder a column is compared with (through casts, signs)."""
    if isinstance(node, _Val):
        return [node]
    if isinstance(node, (_Cast, _Un)):
        return _value_leaves(node.expr)
    if isinstance(node, _Func) and len(node.args) == 1:  # lower(?), date(?)
        return _value_leaves(node.args[0])
    if isinstance(node, _Row) or (isinstance(node, _Opaque) and node.label == "ARRAY"):
        items = node.items if isinstance(node, _Row) else node.children
        return [v for item in items for v in _value_leaves(item)]
    return []


def _render(node: _Node) -> str:
    """Re-render an expression with every literal as ``?`` (no data leaks out)."""
    if isinstance(node, _Col):
        return ".".join(node.parts)
    if isinstance(node, _Val):
        return f"{node.typed} ?" if node.typed else "?"
    if isinstance(node, _Const):
        return node.word
    if isinstance(node, _Func):
        return f"{node.name}({', '.join(_render(a) for a in node.args)})"
    if isinstance(node, _Cast):
        return f"CAST({_render(node.expr)} AS {node.type})"
    if isinstance(node, _Un):
        return f"{node.op}{_render(node.expr)}"
    if isinstance(node, (_Bin, _Cmp)):
        return f"{_render(node.left)} {node.op} {_render(node.right)}"
    if isinstance(node, _Quant):
        return f"{_render(node.left)} {node.op} {node.quant}({_render(node.right)})"
    if isinstance(node, _And):
        return " AND ".join(_render(i) for i in node.items)
    if isinstance(node, _Or):
        return "(" + " OR ".join(_render(i) for i in node.items) + ")"
    if isinstance(node, _Not):
        return f"NOT {_render(node.expr)}"
    if isinstance(node, _In):
        inner = "SELECT ..." if node.sub is not None else ", ".join(_render(i) for i in node.items)
        return f"{_render(node.expr)} {'NOT ' if node.negated else ''}IN ({inner})"
    if isinstance(node, _Between):
        neg = "NOT " if node.negated else ""
        return f"{_render(node.expr)} {neg}BETWEEN {_render(node.lo)} AND {_render(node.hi)}"
    if isinstance(node, _IsNull):
        return f"{_render(node.expr)} IS {'NOT ' if node.negated else ''}NULL"
    if isinstance(node, (_Sub, _Exists)):
        return "(SELECT ...)"
    if isinstance(node, _Row):
        return "(" + ", ".join(_render(i) for i in node.items) + ")"
    if isinstance(node, _Star):
        return "*"
    if isinstance(node, _Opaque):
        return f"{node.label}(...)" if node.label else "..."
    return "..."


# --------------------------------------------------------------------------- #
# Entry points
# --------------------------------------------------------------------------- #


def _number_slots(toks: list[_Tok]) -> None:
    n = 0
    for tok in toks:
        if tok.kind in _SLOT_KINDS:
            tok.slot = n
            n += 1


def _split_first(toks: list[_Tok]) -> tuple[list[_Tok], bool]:
    """The first statement, and whether more non-empty statements follow."""
    depth = 0
    for i, tok in enumerate(toks):
        if tok.kind in (_LP, _LB):
            depth += 1
        elif tok.kind in (_RP, _RB):
            depth = max(0, depth - 1)
        elif tok.kind == _SEMI and depth == 0:
            rest = [t for t in toks[i + 1 :] if t.kind != _SEMI]
            return toks[:i], bool(rest)
    return toks, False


def _leading_kind(sql: str) -> str:
    m = re.match(r"\s*([A-Za-z]+)", sql)
    return m.group(1).lower() if m else "unknown"


def _build(sql: str) -> Analysis:
    toks = _tokens(sql)
    if not toks:
        return Analysis(kind="unknown", parsed=False, error="empty statement")
    first, more = _split_first(toks)
    _number_slots(first)
    if not first:
        return Analysis(kind="unknown", parsed=False, error="empty statement")
    parser = _Parser(first)
    try:
        stmt = parser.statement()
    except _TooDeep:
        return Analysis(
            kind=_leading_kind(sql),
            parsed=False,
            error=f"nesting deeper than {_MAX_DEPTH} levels",
        )
    partial = parser.partial or parser.i < parser.n
    an = _Analyzer()
    an.statement(stmt, None, {})
    errors = any(t.kind == _ERR for t in first)
    read_only = (
        stmt.kind in ("select", "values")
        and not stmt.writes_in_ctes
        and not more
        and not any(c.into for c in stmt.cores)
        and _tokens_ok(first)
    )
    params = tuple(
        an.hints.get(t.slot, ParameterSlot(t.slot))
        for i, t in enumerate(first)
        if t.slot >= 0 and i not in parser.keep
    )
    blocks: list[QueryBlock] = []
    eq: list[Predicate] = []
    rng: list[Predicate] = []
    joins: list[JoinKey] = []
    order: list[OrderColumn] = []
    group: list[ColumnRef] = []
    outer_limit = False
    for scope, _ in an.blocks:
        if scope.parent is None and scope.has_limit:
            outer_limit = True
        block = QueryBlock(
            sources=tuple((s.alias, s.table) for s in scope.sources.values() if s.table),
            equality=tuple(dict.fromkeys(scope.eq)),
            ranges=tuple(dict.fromkeys(scope.rng)),
            joins=tuple(dict.fromkeys(scope.joins)),
            order_by=tuple(scope.order),
            group_by=tuple(dict.fromkeys(scope.group)),
            has_limit=scope.has_limit,
        )
        blocks.append(block)
        eq += block.equality
        rng += block.ranges
        joins += block.joins
        order += block.order_by
        group += block.group_by
    error = None
    if partial:
        error = "some clauses were not understood and were skipped"
    if more:
        error = "several statements: only the first was analyzed"
    return Analysis(
        kind=stmt.kind,
        tables=tuple(an.tables),
        aliases=tuple(an.aliases),
        equality=tuple(dict.fromkeys(eq)),
        ranges=tuple(dict.fromkeys(rng)),
        joins=tuple(dict.fromkeys(joins)),
        order_by=tuple(order),
        group_by=tuple(dict.fromkeys(group)),
        unindexable=tuple(dict.fromkeys(an.unindexable)),
        blocks=tuple(blocks),
        parameters=params,
        ctes=tuple(an.ctes),
        subqueries=an.subqueries,
        has_limit=outer_limit,
        read_only=read_only,
        parsed=True,
        partial=partial or more or errors,
        error=error,
    )


def _analyze_uncached(sql: str) -> Analysis:
    try:
        return _build(sql)
    except (RecursionError, _TooDeep):
        return Analysis(kind=_leading_kind(sql), parsed=False, error="statement nested too deeply")
    except Exception as exc:  # never let hostile text escape as an exception
        return Analysis(
            kind=_leading_kind(sql),
            parsed=False,
            error=f"could not analyze: {type(exc).__name__}",
        )


_analyze_cached = functools.lru_cache(maxsize=4096)(_analyze_uncached)


def analyze(sql: str) -> Analysis:
    """Analyze one SQL statement (raw SQL or a fingerprint with ``?`` slots).

    Reports the statement kind, the base tables (aliases, derived tables and
    CTEs resolved), the equality / IN / IS NULL and range columns, join keys
    (both sides), ORDER BY and GROUP BY columns, and the predicates no btree
    index can serve, each column qualified by its resolved table. Results are
    cached per text (bounded LRU; texts over 16 KiB are not cached).

    Args:
        sql: the statement. Only the first of several statements is analyzed
            (and the result is flagged ``partial``).

    Returns:
        A frozen :class:`Analysis`. Never raises: text that cannot be analyzed
        gives ``Analysis(parsed=False, error=...)``.
    """
    if not isinstance(sql, str):
        return Analysis(kind="unknown", parsed=False, error="not a string")
    if len(sql) > _MAX_CHARS:
        return Analysis(
            kind=_leading_kind(sql[:100]),
            parsed=False,
            error=f"statement longer than {_MAX_CHARS} characters",
        )
    if len(sql) > _CACHE_CHARS:
        return _analyze_uncached(sql)
    return _analyze_cached(sql)


# --------------------------------------------------------------------------- #
# EXPLAIN probes (used by _verify)
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True)
class Probe:
    """A statement ready for EXPLAIN: text pieces with slots between them.

    ``parts`` alternates verbatim SQL (``str``) and :class:`ParameterSlot`
    markers where a driver placeholder goes. ``rewritten`` is True when the
    statement was an UPDATE/DELETE/INSERT ... SELECT and ``parts`` is the
    read-only SELECT over the same tables and WHERE clause.
    """

    parts: tuple[str | ParameterSlot, ...]
    rewritten: bool = False


def _check_tokens(toks: list[_Tok], start: int, end: int) -> None:
    prev = ""
    for tok in toks[start:end]:
        if tok.kind in (_ERR, _SEMI):
            raise UnsafeStatementError(f"unexpected token {tok.text[:20]!r} in statement")
        if tok.kind == _W:
            if tok.up in _WRITE_WORDS and not (tok.up == "UPDATE" and prev in ("FOR", "KEY", "NO")):
                raise UnsafeStatementError(f"statement contains {tok.up}; refusing to EXPLAIN it")
            if not _IDENT_RE.match(tok.text):
                raise UnsafeStatementError(f"unusual word {tok.text[:20]!r} in statement")
            prev = tok.up
        elif tok.kind == _OP and not _SAFE_OP_RE.match(tok.text):
            raise UnsafeStatementError(f"unusual operator {tok.text[:20]!r} in statement")
        elif tok.kind == _Q and (
            tok.text[:1] not in '"`[' or tok.text[-1:] not in '"`]' or len(tok.text) < 2
        ):
            raise UnsafeStatementError("malformed quoted identifier in statement")


def _tokens_ok(toks: list[_Tok]) -> bool:
    try:
        _check_tokens(toks, 0, len(toks))
    except UnsafeStatementError:
        return False
    return True


def _render_tokens(
    toks: list[_Tok], start: int, end: int, slots: dict[int, ParameterSlot], keep: set[int]
) -> list[str | ParameterSlot]:
    out: list[str | ParameterSlot] = []
    i = start
    while i < end:
        tok = toks[i]
        if tok.kind in _SLOT_KINDS and i not in keep:
            slot = slots.get(tok.slot, ParameterSlot(tok.slot))
            if out and isinstance(out[-1], str) and out[-1].upper() in _TYPED_WORDS:
                typed = str(out.pop())
                out.extend(["CAST(", slot, f"AS {typed.upper()})"])
            else:
                out.append(slot)
        elif tok.kind in _SLOT_KINDS:
            out.append(tok.text if tok.kind == _N and tok.text.isdigit() else "NULL")
        else:
            out.append(tok.text)
        i += 1
    return out


def probe(sql: str, *, rewrite_writes: bool = True) -> Probe:
    """Turn a statement into a :class:`Probe` that is safe to EXPLAIN.

    A SELECT (or VALUES) is kept as it is. With ``rewrite_writes``, an
    UPDATE or DELETE becomes ``SELECT 1 FROM <target>[, <FROM/USING list>]
    WHERE <its WHERE>`` and an INSERT ... SELECT becomes its SELECT: the
    data-changing statement itself is never explained. Every literal and
    placeholder becomes a slot. The text is rebuilt only from tokens checked
    against an allow-list (no ``;``, no data-changing or session word, no
    unclassified character), so what reaches the database is what was checked.

    Raises:
        UnsafeStatementError: a data-changing statement that cannot be
            rewritten (or ``rewrite_writes=False``), several statements, DDL,
            ``SELECT ... INTO``, a data-modifying CTE, or unusual tokens.
    """
    if not isinstance(sql, str) or len(sql) > _MAX_CHARS:
        raise UnsafeStatementError("not a statement that can be explained")
    toks = _tokens(sql)
    first, more = _split_first(toks)
    if more:
        raise UnsafeStatementError("several statements; refusing to EXPLAIN")
    _number_slots(first)
    analysis = analyze(sql)
    slots = {p.index: p for p in analysis.parameters}
    parser = _Parser(first)
    try:
        stmt = parser.statement()
    except (_TooDeep, RecursionError) as exc:
        raise UnsafeStatementError("statement nested too deeply to check") from exc
    keep = set(parser.keep)
    if stmt.kind in ("select", "values"):
        if stmt.writes_in_ctes or any(c.into for c in stmt.cores):
            raise UnsafeStatementError("statement writes data (data-modifying CTE or INTO)")
        _check_tokens(first, 0, len(first))
        return Probe(tuple(_render_tokens(first, 0, len(first), slots, keep)))
    if not rewrite_writes or stmt.kind not in ("update", "delete", "insert"):
        raise UnsafeStatementError(
            f"{stmt.kind.upper()} statements are never explained (they change data)"
        )
    if stmt.ctes:
        raise UnsafeStatementError("a data-changing statement with CTEs cannot be rewritten")
    if stmt.kind == "insert":
        s0, s1 = stmt.source_span
        if stmt.source is None or s0 == s1 or stmt.source.kind != "select":
            raise UnsafeStatementError("INSERT without a SELECT has nothing to explain")
        _check_tokens(first, s0, s1)
        return Probe(tuple(_render_tokens(first, s0, s1, slots, keep)), rewritten=True)
    w0, w1 = stmt.where_span
    t0, t1 = stmt.target_span
    if w0 == w1 or t0 == t1:
        raise UnsafeStatementError(f"{stmt.kind.upper()} without WHERE has nothing to explain")
    parts: list[str | ParameterSlot] = ["SELECT 1 FROM"]
    _check_tokens(first, t0, t1)
    parts += _render_tokens(first, t0, t1, slots, keep)
    f0, f1 = stmt.from_span
    if f0 != f1:
        _check_tokens(first, f0, f1)
        parts.append(",")
        parts += _render_tokens(first, f0, f1, slots, keep)
    _check_tokens(first, w0, w1)
    parts.append("WHERE")
    parts += _render_tokens(first, w0, w1, slots, keep)
    return Probe(tuple(parts), rewritten=True)
