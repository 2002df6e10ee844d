"""A tolerant recursive-descent parser from :mod:`._tokens` to :mod:`._ast`.

See :mod:`._analyze` for what it understands and how it gives up: anything it
does not follow is skipped to the next clause keyword (``partial``), and nesting
deeper than ``_MAX_DEPTH`` raises :class:`_TooDeep` instead of recursing without
bound.
"""

from __future__ import annotations

from ._ast import (
    _Const,
    _Core,
    _FromItem,
    _Func,
    _Node,
    _Stmt,
)
from ._tokens import (
    _COMMA,
    _CORE_END,
    _DOT,
    _JOIN_WORDS,
    _LB,
    _LP,
    _N,
    _OP,
    _Q,
    _RP,
    _SEMI,
    _W,
)

__all__: list[str] = []


from ._expr import _ExprParser


class _Parser(_ExprParser):
    """Tolerant recursive descent over :class:`_Tok`: statements (see :mod:`._analyze`)."""

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
