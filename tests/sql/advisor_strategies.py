"""Hypothesis strategies for the analysis/advice tests: SQL-ish text and mutations."""

from __future__ import annotations

from hypothesis import strategies as st

#: Real statements the mutations start from (raw SQL and fingerprint form).
SEED_SQL = [
    "SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id "
    "WHERE o.status = 'open' AND o.created_at >= '2024-01-01' ORDER BY o.created_at DESC LIMIT 20",
    "SELECT * FROM order_lines WHERE order_id IN (?) AND product_id = ?",
    "WITH r AS (SELECT customer_id, sum(total) t FROM orders WHERE created_at > ? GROUP BY 1) "
    "SELECT * FROM r WHERE t > ?",
    "SELECT * FROM orders o WHERE EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id)",
    "UPDATE inventory SET qty = qty - 3 WHERE product_id = 42 AND warehouse = 'B7'",
    "DELETE FROM sessions WHERE expires_at < now() - INTERVAL '1 day'",
    "INSERT INTO t(a, b) VALUES (?, ?) ON CONFLICT (a) DO UPDATE SET b = excluded.b",
    "SELECT p.sku, count(*) FROM products p LEFT JOIN order_lines l USING (product_id) "
    "WHERE p.name LIKE '%bolt%' OR lower(p.family) = $1 GROUP BY p.sku HAVING count(*) > 2",
    "SELECT * FROM t WHERE (a, b) IN ((1, 2), (3, 4)) AND c = ANY(%s) AND d BETWEEN :lo AND :hi",
    "SELECT CASE WHEN a > 0 THEN 'x' ELSE 'y' END, CAST(b AS numeric(10, 2)), c::date "
    "FROM t WHERE e IS NOT DISTINCT FROM ? FOR UPDATE SKIP LOCKED",
]

_WORDS = [
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "IS", "NULL", "JOIN", "ON", "USING",
    "LEFT", "GROUP", "ORDER", "BY", "LIMIT", "OFFSET", "UNION", "WITH", "AS", "CASE", "WHEN",
    "THEN", "END", "EXISTS", "BETWEEN", "LIKE", "INSERT", "INTO", "VALUES", "UPDATE", "SET",
    "DELETE", "ANY", "ALL", "DISTINCT", "HAVING", "t", "u", "a", "b", "c", "x.y", "count",
    "lower", "?", "%s", "$1", ":n", "'s'", "\"Q\"", "1", "2.5", "(", ")", ",", ".", ";", "=",
    "<", ">=", "<>", "::", "*", "+", "-", "||", "[", "]", "--", "/*", "*/", "E'\\''", "$$x$$",
]  # fmt: skip

#: Arbitrary (often invalid) token soups.
token_soup = st.lists(st.sampled_from(_WORDS), max_size=60).map(" ".join)


@st.composite
def mutated_sql(draw: st.DrawFn) -> str:
    """A seed statement with a few random edits: cut, duplicate, insert, swap."""
    text = draw(st.sampled_from(SEED_SQL))
    for _ in range(draw(st.integers(1, 4))):
        if not text:
            break
        i = draw(st.integers(0, len(text) - 1))
        j = draw(st.integers(i, min(len(text), i + 20)))
        op = draw(st.sampled_from(["cut", "dup", "insert", "truncate", "swap"]))
        if op == "cut":
            text = text[:i] + text[j:]
        elif op == "dup":
            text = text[:j] + text[i:j] + text[j:]
        elif op == "insert":
            text = text[:i] + draw(st.sampled_from(_WORDS)) + text[i:]
        elif op == "truncate":
            text = text[:i]
        else:
            text = text[i:j] + text[:i] + text[j:]
    return text


#: Any text at all, SQL-ish or not.
any_sql = st.one_of(st.text(max_size=200), token_soup, mutated_sql())


# -- single-table shapes with a known expected candidate -------------------- #

_COLS = ["a", "b", "c", "d", "e"]


@st.composite
def simple_shape(draw: st.DrawFn) -> tuple[str, str, frozenset[str], tuple[str, ...]]:
    """(table, sql, expected equality set, expected tail) for one filter shape.

    The expected candidate follows the documented rules: equality columns
    (any order), then the ORDER BY column when there is no range or it is the
    range column, else the range column.
    """
    table = draw(st.sampled_from(["t", "u"]))
    eq = draw(st.lists(st.sampled_from(_COLS), unique=True, max_size=3))
    rest = [c for c in _COLS if c not in eq]
    rng = draw(st.none() | st.sampled_from(rest)) if len(eq) < 3 else None
    order = draw(st.none() | st.sampled_from(rest)) if len(eq) < 3 else None
    if not eq and rng is None and order is None:
        eq = [draw(st.sampled_from(_COLS))]
    terms = [
        f"{c} = ?" if draw(st.booleans()) else f"{c} IN (?, ?)" for c in draw(st.permutations(eq))
    ]
    if rng is not None:
        terms.append(f"{rng} > ?")
    sql = f"SELECT * FROM {table}" + (" WHERE " + " AND ".join(terms) if terms else "")
    if order is not None:
        sql += f" ORDER BY {order}"
    if order is not None and (rng is None or order == rng):
        tail: tuple[str, ...] = (order,)
    elif rng is not None:
        tail = (rng,)
    else:
        tail = ()
    return table, sql, frozenset(eq), tail


workloads = st.lists(
    st.tuples(simple_shape(), st.integers(1, 1000), st.floats(0.0, 100.0)),
    min_size=1,
    max_size=12,
    unique_by=lambda x: x[0][1],
)


# -- well-formed expressions (parser synchronisation) ----------------------- #

_LEAVES = st.sampled_from(
    ["a", "t.b", '"Q"', "?", "%s", "$1", ":p", "1", "2.5", "'s'", "NULL", "TRUE", "now()"]
)


def _grow(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    # operands are parenthesised, so every generated expression is valid SQL
    pair = st.tuples(inner, inner)
    return st.one_of(
        pair.map(lambda p: f"({p[0]}) + ({p[1]})"),
        pair.map(lambda p: f"({p[0]}) = ({p[1]})"),
        pair.map(lambda p: f"({p[0]}) AND ({p[1]})"),
        pair.map(lambda p: f"({p[0]}) OR ({p[1]})"),
        inner.map(lambda e: f"NOT ({e})"),
        inner.map(lambda e: f"lower({e})"),
        pair.map(lambda p: f"coalesce({p[0]}, {p[1]})"),
        inner.map(lambda e: f"CAST({e} AS numeric(10, 2))"),
        inner.map(lambda e: f"({e})::text"),
        pair.map(lambda p: f"ARRAY[{p[0]}, {p[1]}]"),
        inner.map(lambda e: f"x = ANY(ARRAY[{e}])"),
        inner.map(lambda e: f"x = ANY({e})"),
        pair.map(lambda p: f"({p[0]}) IN ({p[1]}, ?)"),
        inner.map(lambda e: f"({e}) NOT IN (SELECT y FROM u WHERE z = ({e}))"),
        pair.map(lambda p: f"({p[0]}) BETWEEN ({p[1]}) AND ?"),
        inner.map(lambda e: f"({e}) IS NOT NULL"),
        inner.map(lambda e: f"({e}) LIKE 'x%' ESCAPE '!'"),
        pair.map(lambda p: f"CASE WHEN {p[0]} THEN {p[1]} ELSE 0 END"),
        inner.map(lambda e: f"EXISTS (SELECT 1 FROM u WHERE u.k = ({e}))"),
        inner.map(lambda e: f"(SELECT max(v) FROM w WHERE w.q = ({e}))"),
        inner.map(lambda e: f"count(*) FILTER (WHERE {e})"),
        inner.map(lambda e: f"extract(year FROM ({e}))"),
        inner.map(lambda e: f"({e}) IS DISTINCT FROM ?"),
        inner.map(lambda e: f"INTERVAL '1 day' + ({e})"),
        inner.map(lambda e: f"({e})"),
    )


#: Syntactically valid boolean-ish SQL expressions, nested a few levels.
expressions = st.recursive(_LEAVES, _grow, max_leaves=5)

_FROM_ITEMS = st.sampled_from(
    [
        "t AS a",
        "u b",
        "(SELECT * FROM v WHERE k = ?) s",
        "LATERAL (SELECT * FROM w WHERE w.id = zz.id) l",
        "generate_series(1, 10) AS g(n)",
        "(a1 JOIN a2 ON a1.x = a2.y)",
        "w TABLESAMPLE SYSTEM (10) REPEATABLE (1)",
        "ONLY p",
        "q INDEXED BY ix_q",
        "unnest(ARRAY[1, 2]) WITH ORDINALITY AS o(v, i)",
        "((SELECT 1 AS one) UNION (SELECT 2)) uu",
    ]
)
_JOINS = st.sampled_from([", ", " JOIN ", " LEFT JOIN ", " CROSS JOIN ", " NATURAL JOIN "])


@st.composite
def from_clauses(draw: st.DrawFn) -> str:
    """``zz`` followed by a few joined or listed FROM items of every kind."""
    out = "zz"
    for item in draw(st.lists(_FROM_ITEMS, max_size=4)):
        how = draw(_JOINS)
        out += how + item
        if how in (" JOIN ", " LEFT JOIN "):
            out += " ON true" if draw(st.booleans()) else " USING (id)"
    return out
