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
