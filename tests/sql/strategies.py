"""Hypothesis strategies for SQL text: statements with traceable literals, soups, mutations.

Every literal a strategy puts in a statement carries a *marker*: a string no
fingerprint, report or export could produce by itself (``zq`` + letters for
strings, a 9-digit number starting with 7 for numbers). The redaction
properties look for those markers in every output.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

IDENTIFIERS = ["users", "orders", "order_lines", "t1", "customer_id", "status", "total", "id"]
QUOTED = ['"Users"', '"order_id"', '"Total$"']
TABLES = ["users", "orders", "order_lines", "products", '"Accounts"']
COLUMNS = ["id", "status", "total", "customer_id", "created_at", '"Name"', "qty"]
KEYWORDS = ["SELECT", "FROM", "WHERE", "AND", "OR", "IN", "IS", "NOT", "NULL", "ORDER", "BY"]
OPS = ["=", "<>", "!=", "<", ">", "<=", ">=", "||", "+", "-", "*", "/", "%", "::", "->>"]


@dataclass(frozen=True)
class Sql:
    """A statement and the raw literal markers written into it."""

    text: str
    markers: tuple[str, ...]


markers_str = st.text(alphabet="abcdefghijklmnopqrstuvwxy", min_size=6, max_size=10).map(
    lambda s: "zq" + s
)
markers_num = st.integers(min_value=700_000_000, max_value=799_999_999).map(str)


@st.composite
def string_literal(draw: st.DrawFn) -> tuple[str, str]:
    """(SQL text of a string literal, its marker)."""
    marker = draw(markers_str)
    extra = draw(
        st.sampled_from(["", " ", "it''s ", "a--b ", "/*x*/ ", '"q" ', "%s ", "$1 ", "(;,)"])
    )
    body = draw(st.sampled_from([marker + extra, extra + marker, marker]))
    form = draw(st.sampled_from(["plain", "E", "N", "X", "dollar", "tagged"]))
    if form == "plain":
        return f"'{body}'", marker
    if form == "E":
        return "E'" + body.replace("''", "\\'") + "'", marker
    if form == "N":
        return f"N'{body}'", marker
    if form == "X":
        return f"X'{marker}'", marker
    if form == "dollar":
        return f"$${body}$$", marker
    return f"$tag${body}$tag$", marker


@st.composite
def number_literal(draw: st.DrawFn) -> tuple[str, str]:
    marker = draw(markers_num)
    form = draw(st.sampled_from(["int", "neg", "float", "exp", "spaced-neg"]))
    text = {
        "int": marker,
        "neg": "-" + marker,
        "float": marker + ".25",
        "exp": marker + "e3",
        "spaced-neg": "- " + marker,
    }[form]
    return text, marker


literal = st.one_of(string_literal(), number_literal())
placeholder = st.sampled_from(["?", "%s", "%(p_1)s", "$1", ":name", "?2"])


def _case(word: str, style: int) -> str:
    return [word.upper(), word.lower(), word.capitalize()][style % 3]


@st.composite
def statements(draw: st.DrawFn) -> Sql:
    """A realistic statement with literals (markers recorded) in many layouts."""
    markers: list[str] = []

    def value() -> str:
        if draw(st.booleans()):
            text, marker = draw(literal)
            markers.append(marker)
            return text
        return draw(placeholder)

    style = draw(st.integers(0, 2))
    k = lambda w: _case(w, style)  # noqa: E731
    table = draw(st.sampled_from(TABLES))
    col = lambda: draw(st.sampled_from(COLUMNS))  # noqa: E731
    kind = draw(st.sampled_from(["select", "insert", "update", "delete", "in", "join"]))
    if kind == "insert":
        ncols = draw(st.integers(1, 4))
        cols = ", ".join(draw(st.sampled_from(COLUMNS)) for _ in range(ncols))
        nrows = draw(st.integers(1, 4))
        rows = ", ".join("(" + ", ".join(value() for _ in range(ncols)) + ")" for _ in range(nrows))
        text = f"{k('insert')} {k('into')} {table} ({cols}) {k('values')} {rows}"
    elif kind == "update":
        text = (
            f"{k('update')} {table} {k('set')} {col()} = {value()} {k('where')} {col()} = {value()}"
        )
    elif kind == "delete":
        text = f"{k('delete')} {k('from')} {table} {k('where')} {col()} < {value()}"
    elif kind == "in":
        n = draw(st.integers(1, 5))
        items = ", ".join(value() for _ in range(n))
        text = (
            f"{k('select')} * {k('from')} {table} {k('where')} {col()} {k('in')} ({items})"
            f" {k('and')} {col()} {k('is')} {k('not')} {k('null')}"
        )
    elif kind == "join":
        text = (
            f"{k('select')} a.id, b.{col()} {k('from')} {table} a {k('join')} orders b"
            f" {k('on')} b.customer_id = a.id {k('where')} a.{col()} = {value()}"
            f" {k('order')} {k('by')} b.id {k('limit')} {value()}"
        )
    else:
        text = (
            f"{k('select')} {col()}, count(*) {k('from')} {table} {k('where')} {col()} = {value()}"
            f" {k('and')} {col()} >= {value()} {k('group')} {k('by')} {col()}"
        )
    layout = draw(st.sampled_from(["as-is", "newlines", "comment", "tight-commas", "trailing"]))
    if layout == "newlines":
        text = text.replace(" ", "\n  ", 3)
    elif layout == "comment":
        text = "/* app=shop */ " + text + " -- tail"
    elif layout == "tight-commas":
        text = text.replace(", ", ",")
    elif layout == "trailing":
        text = text + " ;"
    return Sql(text, tuple(markers))


PIECES = [
    *IDENTIFIERS,
    *QUOTED,
    *KEYWORDS,
    *OPS,
    "(",
    ")",
    ",",
    ";",
    ".",
    "*",
    "VALUES",
    "ARRAY[",
    "]",
    "ANY(",
    "CAST(",
    "TRUE",
    "false",
    "-- c\n",
    "/* c */",
    "/* a /* b */ c */",
    "'",
    '"',
    "$$",
    "E'",
    "\\",
    "\n",
    "\t",
    "@p",
    ":x",
    "%",
    "0x1F",
    ".5",
    "1e-3",
    "U&'d'",
    "é",
    "{",
]


#: Pieces that open a quote: after one of them, a "literal" may be an identifier.
QUOTE_PIECES = frozenset({"'", '"', "$$", "E'", "\\"})


@st.composite
def soups(draw: st.DrawFn, quotes: bool = True) -> Sql:
    """A random run of SQL pieces and marked literals: mostly not valid SQL.

    With ``quotes=False`` no stray quote is drawn, so every marked literal is
    still a literal of the text (the redaction properties need that).
    """
    pieces = PIECES if quotes else [p for p in PIECES if p not in QUOTE_PIECES]
    markers: list[str] = []
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 25))):
        if draw(st.integers(0, 4)) == 0:
            text, marker = draw(literal)
            markers.append(marker)
            parts.append(f" {text} ")  # glued to a word, it would be part of the word
        else:
            parts.append(draw(st.sampled_from(pieces)))
    seps = draw(
        st.lists(st.sampled_from(["", " ", "  ", "\n"]), min_size=len(parts), max_size=len(parts))
    )
    return Sql("".join(p + s for p, s in zip(parts, seps, strict=False)), tuple(markers))


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[Sql] | None = None) -> str:
    """A statement cut, spliced or sprinkled with SQL's special characters."""
    sql = draw(base if base is not None else statements()).text
    for _ in range(draw(st.integers(1, 3))):
        if not sql:
            break
        op = draw(st.sampled_from(["truncate", "delete", "insert", "duplicate"]))
        i = draw(st.integers(0, len(sql)))
        if op == "truncate":
            sql = sql[:i]
        elif op == "delete":
            sql = sql[:i] + sql[i + 1 :]
        elif op == "insert":
            sql = sql[:i] + draw(st.sampled_from(list("'\"$-/*()[];,\\\x00é"))) + sql[i:]
        else:
            j = draw(st.integers(i, len(sql)))
            sql = sql[:j] + sql[i:j] + sql[j:]
    return sql
