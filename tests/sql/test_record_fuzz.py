"""Fuzzing record(): whatever text arrives, nothing escapes and every call is counted."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from sentia_core.sql import QueryOptimizer

from .strategies import Sql, mutated, soups, statements

CORPUS = [
    "SELECT o.id, o.total FROM orders o JOIN customers c ON c.id = o.customer_id "
    "WHERE c.country IN ('DE', 'FR') AND o.created_at > '2024-01-01' ORDER BY o.total DESC",
    "INSERT INTO order_lines (order_id, product_id, qty, price) "
    "VALUES (1, 2, 3, 4.5), (1, 3, 1, 9)",
    "UPDATE inventory SET qty = qty - 3 WHERE product_id = 42 AND warehouse = 'north' "
    "RETURNING qty",
    "WITH recent AS (SELECT * FROM orders WHERE created_at > now() - interval '1 day') "
    "SELECT count(*) FROM recent WHERE total > $1",
    "DELETE FROM sessions WHERE expires_at < %(now)s",
    'SELECT "Users"."id" FROM "Users" WHERE "Users"."email" = E\'a\\\'b\' -- who',
    "SELECT * FROM t WHERE data->>'k' = 'v' AND tags @> ARRAY['a','b'] AND x::int = ?",
]
real_sql = st.sampled_from(CORPUS).map(lambda t: Sql(t, ()))
texts = st.one_of(
    st.text(),
    mutated(real_sql),
    soups().map(lambda s: s.text),
    statements().map(lambda s: s.text),
)


@given(st.lists(texts, max_size=20))
def test_record_never_raises_and_counts_every_call(batch: list[str]) -> None:
    opt = QueryOptimizer(
        sample_rate=0.5, slow_query_threshold=0.5, log_events=False, rng=random.Random(0)
    )
    with opt.unit_of_work():
        for i, text in enumerate(batch):
            opt.record(text, 0.001 * i, rows=i)
    stats = opt.stats()
    assert stats.calls == len(batch)
    assert stats.errors == 0
    assert sum(s.calls for s in stats.shapes) == len(batch)
    assert opt.nplusone_reports() is not None


@given(mutated(real_sql))
def test_mutated_real_sql_is_analyzed_without_raising(text: str) -> None:
    opt = QueryOptimizer(log_events=False)
    analysis = opt.analyze(text)
    assert analysis.kind
