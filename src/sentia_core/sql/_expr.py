"""Expressions for the parser: a token cursor and SQL's precedence climb.

:class:`_ExprParser` reads expressions (OR < AND < NOT < comparison < arithmetic
< postfix) over :mod:`._tokens` into :mod:`._ast` nodes; :class:`._parser._Parser`
adds statements on top of it and supplies :meth:`_ExprParser.statement` for
subqueries.
"""

from __future__ import annotations

from ._ast import (
    _And,
    _Between,
    _Bin,
    _Cast,
    _Cmp,
    _Col,
    _Const,
    _Exists,
    _Func,
    _In,
    _IsNull,
    _Node,
    _Not,
    _Opaque,
    _Or,
    _Quant,
    _Row,
    _Star,
    _Stmt,
    _Sub,
    _Un,
    _Val,
)
from ._tokens import (
    _CAST,
    _CMP_SYMBOLS,
    _COMMA,
    _DOT,
    _LB,
    _LP,
    _MAX_DEPTH,
    _N,
    _OP,
    _PATTERN_WORDS,
    _Q,
    _QUERY_CONTINUES,
    _RB,
    _REGEX_SYMBOLS,
    _RESERVED,
    _RP,
    _SEMI,
    _SLOT_KINDS,
    _STAR,
    _TYPE_TAILS,
    _TYPED_WORDS,
    _W,
    _Tok,
)

__all__: list[str] = []


class _TooDeep(Exception):
    pass


class _ExprParser:
    """The cursor and the expression grammar (see :mod:`._analyze`)."""

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

    def name(self) -> tuple[str, ...]:
        parts = [self.t[self.i].ident]
        self.i += 1
        while self.kind() == _DOT and self.kind(1) in (_W, _Q):
            parts.append(self.t[self.i + 1].ident)
            self.i += 2
        return tuple(parts)

    def statement(self) -> _Stmt:  # pragma: no cover - provided by _Parser
        raise NotImplementedError
