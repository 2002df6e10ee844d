"""Static analysis of one SQL statement: which columns an index could serve.

Theory of operation
-------------------
sqlparse's lexer cuts the text into tokens (it is lossless and never
raises); everything after that is ours, because sqlparse's grouping layer
neither resolves aliases nor understands predicates. Three passes, one module
each (the public value objects live in :mod:`._analysis`, EXPLAIN probes in
:mod:`._probe`):

1. :mod:`._tokens`: ``_tokens`` normalises the lexer output into
   :class:`_Tok` records: one word per keyword (``ORDER BY`` becomes two), identifiers folded as the
   database folds them (unquoted to lower case, quoted kept exact), string
   prefixes (``E'..'``, ``X'..'``, ``U&'..'``) and numbered placeholders
   (``?1``, ``@p``) merged. Every literal and placeholder token is a numbered
   *slot*; the analysis later says what each slot is compared with, which is
   how :mod:`._verify` binds representative values without ever seeing a
   literal from the workload.
2. :mod:`._expr` and :mod:`._parser`: ``_Parser`` is a tolerant
   recursive-descent parser over those tokens. It builds a small AST for
   SELECT (with CTEs, set operations, joins, derived tables, LATERAL), INSERT,
   UPDATE and DELETE, and an expression AST with SQL precedence (OR < AND <
   NOT < comparison < arithmetic < postfix). Anything it does not understand
   is skipped up to the next clause keyword and the analysis is flagged
   ``partial``; nesting deeper than ``_MAX_DEPTH`` gives up (``parsed=False``)
   instead of recursing without bound.
3. this module: ``_Analyzer`` walks the AST (:mod:`._ast`) with one scope per
   query block (a SELECT core, or the WHERE of an UPDATE/DELETE). Each scope
   maps aliases to base tables or to derived tables (subqueries and CTEs,
   whose output columns are traced back to base columns where they are plain
   column references). Correlated
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

from ._analysis import (
    Analysis,
    ColumnRef,
    JoinKey,
    OrderColumn,
    ParameterSlot,
    Predicate,
    QueryBlock,
    Unindexable,
)
from ._ast import (
    _And,
    _Between,
    _Bin,
    _Cast,
    _Cmp,
    _Col,
    _Core,
    _Exists,
    _FromItem,
    _Func,
    _In,
    _IsNull,
    _iter_cols,
    _iter_subs,
    _iter_vals,
    _Node,
    _Not,
    _Opaque,
    _Or,
    _Quant,
    _render,
    _Row,
    _Star,
    _Stmt,
    _Sub,
    _Un,
    _Val,
    _value_leaves,
    _walk,
)
from ._expr import _TooDeep
from ._parser import _Parser
from ._tokens import (
    _CACHE_CHARS,
    _ERR,
    _LB,
    _LP,
    _MAX_CHARS,
    _MAX_DEPTH,
    _PSEUDO_COLUMNS,
    _RB,
    _RP,
    _SEMI,
    _SLOT_KINDS,
    _Tok,
    _tokens,
    _tokens_ok,
)

__all__ = ["analyze"]

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
