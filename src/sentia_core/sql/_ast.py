"""The analyzer's syntax tree: expression nodes, statements, and walks over them.

Nodes are slotted dataclasses compared by identity (``eq=False``): the analyzer
keys dictionaries by node. :func:`_render` re-renders an expression with every
literal as ``?``, so nothing rendered from the tree carries data.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = []


# --------------------------------------------------------------------------- #
# AST
# --------------------------------------------------------------------------- #


class _Node:
    __slots__ = ()


@dataclass(slots=True, eq=False)
class _Col(_Node):
    parts: tuple[str, ...]


@dataclass(slots=True, eq=False)
class _Val(_Node):
    slots: tuple[int, ...]
    text: str  # the raw literal (used only for LIKE-pattern checks)
    typed: str | None = None


@dataclass(slots=True, eq=False)
class _Const(_Node):
    word: str


@dataclass(slots=True, eq=False)
class _Func(_Node):
    name: str
    args: list[_Node]


@dataclass(slots=True, eq=False)
class _Cast(_Node):
    expr: _Node
    type: str


@dataclass(slots=True, eq=False)
class _Un(_Node):
    op: str
    expr: _Node


@dataclass(slots=True, eq=False)
class _Bin(_Node):
    op: str
    left: _Node
    right: _Node


@dataclass(slots=True, eq=False)
class _Cmp(_Node):
    op: str
    left: _Node
    right: _Node


@dataclass(slots=True, eq=False)
class _Quant(_Node):
    op: str
    left: _Node
    quant: str
    right: _Node


@dataclass(slots=True, eq=False)
class _And(_Node):
    items: list[_Node]


@dataclass(slots=True, eq=False)
class _Or(_Node):
    items: list[_Node]


@dataclass(slots=True, eq=False)
class _Not(_Node):
    expr: _Node


@dataclass(slots=True, eq=False)
class _In(_Node):
    expr: _Node
    items: list[_Node]
    sub: _Stmt | None
    negated: bool


@dataclass(slots=True, eq=False)
class _Between(_Node):
    expr: _Node
    lo: _Node
    hi: _Node
    negated: bool


@dataclass(slots=True, eq=False)
class _IsNull(_Node):
    expr: _Node
    negated: bool


@dataclass(slots=True, eq=False)
class _Exists(_Node):
    sub: _Stmt
    negated: bool


@dataclass(slots=True, eq=False)
class _Sub(_Node):
    stmt: _Stmt


@dataclass(slots=True, eq=False)
class _Row(_Node):
    items: list[_Node]


@dataclass(slots=True, eq=False)
class _Opaque(_Node):
    children: list[_Node]
    label: str = "..."


@dataclass(slots=True, eq=False)
class _Star(_Node):
    pass


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
