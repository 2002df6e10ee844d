"""suggest_indexes(): per-shape candidates, merging across the workload, ranking."""

from __future__ import annotations

import pytest

from sentia_core.errors import ConfigError
from sentia_core.sql._advisor import (
    IndexSuggestion,
    ShapeWorkload,
    index_ddl,
    index_name,
    suggest_indexes,
)
from sentia_core.sql._catalog import ExistingIndex


def W(sql: str, calls: int = 10, total_time: float = 1.0) -> ShapeWorkload:
    return ShapeWorkload(sql, calls, total_time)


def cols(suggestions: list[IndexSuggestion]) -> list[tuple[str, tuple[str, ...]]]:
    return [(s.table, s.columns) for s in suggestions]


def pk(table: str, column: str = "id") -> ExistingIndex:
    return ExistingIndex(f"{table}_pkey", table, (column,), unique=True, primary=True)


# -- the workload item -------------------------------------------------------- #


def test_shape_workload_validates_at_construction() -> None:
    with pytest.raises(ConfigError) as err:
        ShapeWorkload("SELECT 1", calls=-1)
    assert err.value.parameter == "calls"
    with pytest.raises(ConfigError) as err:
        ShapeWorkload("SELECT 1", total_time=-0.5)
    assert err.value.parameter == "total_time"
    with pytest.raises(ConfigError):
        ShapeWorkload(b"SELECT 1")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"max_per_table": 0}, "max_per_table"),
        ({"min_calls": -1}, "min_calls"),
        ({"min_total_time": -1.0}, "min_total_time"),
        ({"column_stats": [1]}, "column_stats"),
    ],
)
def test_invalid_parameters_name_themselves(kwargs: dict[str, object], parameter: str) -> None:
    with pytest.raises(ConfigError) as err:
        suggest_indexes([], **kwargs)  # type: ignore[arg-type]
    assert err.value.parameter == parameter


def test_workload_items_must_be_shapes_or_strings() -> None:
    with pytest.raises(ConfigError):
        suggest_indexes([42])  # type: ignore[list-item]


# -- one candidate per shape ---------------------------------------------------- #


def test_equality_columns_then_one_range_column() -> None:
    [s] = suggest_indexes([W("SELECT * FROM t WHERE a > ? AND b = ? AND c < ? AND d = ?")])
    assert s.columns[:2] in (("b", "d"), ("d", "b"))
    assert s.columns[2] == "a"
    assert len(s.columns) == 3


def test_equality_before_in_before_is_null() -> None:
    [s] = suggest_indexes([W("SELECT * FROM t WHERE c IS NULL AND b IN (?) AND a = ?")])
    assert s.columns == ("a", "b", "c")


def test_most_selective_equality_first_when_statistics_are_known() -> None:
    stats = {("t", "status"): 4.0, ("t", "customer_id"): 20_000.0, ("t", "plant"): 3.0}
    [s] = suggest_indexes(
        [W("SELECT * FROM t WHERE status = ? AND plant = ? AND customer_id = ?")],
        column_stats=stats,
    )
    assert s.columns == ("customer_id", "status", "plant")


def test_most_selective_range_column_is_picked_with_statistics() -> None:
    stats = {("t", "qty"): 10.0, ("t", "created_at"): 50_000.0}
    [s] = suggest_indexes(
        [W("SELECT * FROM t WHERE qty > ? AND created_at > ? AND k = ?")], column_stats=stats
    )
    assert s.columns == ("k", "created_at")


def test_order_by_when_there_is_no_range() -> None:
    [s] = suggest_indexes([W("SELECT * FROM t WHERE a = ? ORDER BY created_at DESC, id DESC")])
    assert s.columns == ("a", "created_at", "id")
    assert s.descending == ()  # one direction: a btree scans backwards


def test_mixed_order_directions_are_kept_in_the_ddl() -> None:
    [s] = suggest_indexes([W("SELECT * FROM t WHERE a = ? ORDER BY b ASC, c DESC")])
    assert s.columns == ("a", "b", "c")
    assert s.descending == (False, False, True)
    assert s.ddl == "CREATE INDEX ix_t_a_b_c ON t (a, b, c DESC)"


def test_order_by_the_range_column_serves_both() -> None:
    [s] = suggest_indexes([W("SELECT * FROM t WHERE a = ? AND ts > ? ORDER BY ts LIMIT 10")])
    assert s.columns == ("a", "ts")


def test_range_wins_over_an_unrelated_order_by() -> None:
    [s] = suggest_indexes([W("SELECT * FROM t WHERE a = ? AND qty > ? ORDER BY ts")])
    assert s.columns == ("a", "qty")


def test_group_by_when_nothing_else_orders_the_index() -> None:
    [s] = suggest_indexes([W("SELECT plant, count(*) FROM t WHERE status = ? GROUP BY plant")])
    assert s.columns == ("status", "plant")


def test_width_is_at_most_three() -> None:
    [s] = suggest_indexes([W("SELECT * FROM t WHERE a = ? AND b = ? AND c = ? AND d = ? ")])
    assert len(s.columns) == 3


def test_unindexable_predicates_give_no_candidate() -> None:
    assert (
        suggest_indexes(
            [W("SELECT * FROM t WHERE lower(a) = ? OR b LIKE '%x' OR c <> ?"), W("SELECT 1")]
        )
        == []
    )


def test_join_key_goes_on_the_referencing_side() -> None:
    out = suggest_indexes(
        [W("SELECT * FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.region = ?")],
        existing=[pk("orders"), pk("customers")],
    )
    assert ("orders", ("customer_id",)) in cols(out)
    assert ("customers", ("region",)) in cols(out)
    assert not any(t == "customers" and c[0] == "id" for t, c in cols(out))


def test_join_key_takes_the_tables_equality_columns_after_it() -> None:
    out = suggest_indexes(
        [W("SELECT * FROM orders o JOIN order_lines l ON l.order_id = o.id WHERE o.id = ?")],
        existing=[pk("orders"), pk("order_lines")],
    )
    assert cols(out) == [("order_lines", ("order_id",))]


def test_unique_existing_index_marks_the_referenced_side() -> None:
    out = suggest_indexes(
        [W("SELECT * FROM a JOIN b ON a.code = b.a_code")],
        existing=[ExistingIndex("a_code_key", "a", ("code",), unique=True)],
    )
    assert cols(out) == [("b", ("a_code",))]


def test_undecidable_join_indexes_both_sides() -> None:
    out = suggest_indexes([W("SELECT * FROM a JOIN b ON a.x = b.y")])
    assert sorted(cols(out)) == [("a", ("x",)), ("b", ("y",))]


def test_correlated_subquery_uses_the_inner_equality_only() -> None:
    out = suggest_indexes(
        [
            W(
                "SELECT * FROM orders o WHERE EXISTS (SELECT 1 FROM order_lines l "
                "WHERE l.order_id = o.id AND l.qty > ?)"
            )
        ],
        existing=[pk("orders")],
    )
    assert cols(out) == [("order_lines", ("order_id", "qty"))]


def test_union_arms_give_separate_candidates() -> None:
    out = suggest_indexes([W("SELECT id FROM t WHERE a = ? UNION SELECT id FROM t WHERE b = ?")])
    assert sorted(cols(out)) == [("t", ("a",)), ("t", ("b",))]


def test_update_and_delete_where_clauses_count() -> None:
    out = suggest_indexes(
        [W("UPDATE inventory SET qty = ? WHERE sku = ?"), W("DELETE FROM s WHERE exp < ?")]
    )
    assert sorted(cols(out)) == [("inventory", ("sku",)), ("s", ("exp",))]


def test_schema_attributes_unqualified_columns() -> None:
    sql = "SELECT * FROM orders, customers WHERE orders.customer_id = customers.id AND region = ?"
    assert ("customers", ("region",)) not in cols(suggest_indexes([W(sql)]))
    out = suggest_indexes([W(sql)], schema={"customers": ["id", "region"], "orders": ["id"]})
    assert ("customers", ("region",)) in cols(out)


# -- merging across the workload ---------------------------------------------- #


def test_a_prefix_of_another_candidate_is_dropped() -> None:
    out = suggest_indexes(
        [
            W("SELECT * FROM t WHERE a = ?", 100, 1.0),
            W("SELECT * FROM t WHERE a = ? AND b > ?", 10, 2.0),
        ]
    )
    assert cols(out) == [("t", ("a", "b"))]
    assert out[0].fingerprints == (
        "SELECT * FROM t WHERE a = ? AND b > ?",
        "SELECT * FROM t WHERE a = ?",
    )
    assert out[0].calls == 110
    assert out[0].total_time == pytest.approx(3.0)


def test_equality_sets_are_reordered_to_share_one_index() -> None:
    out = suggest_indexes(
        [
            W("SELECT * FROM t WHERE b = ? AND a = ?"),
            W("SELECT * FROM t WHERE a = ? AND b = ?"),
            W("SELECT * FROM t WHERE b = ?"),
        ]
    )
    assert cols(out) == [("t", ("b", "a"))]
    assert len(out[0].fingerprints) == 3


def test_two_incompatible_prefixes_stay_apart() -> None:
    out = suggest_indexes(
        [
            W("SELECT * FROM t WHERE a = ? AND b = ?", total_time=3.0),
            W("SELECT * FROM t WHERE a = ?", total_time=2.0),
            W("SELECT * FROM t WHERE b = ?", total_time=1.0),
        ]
    )
    assert cols(out) == [("t", ("a", "b")), ("t", ("b",))]


def test_an_order_by_tail_fixes_the_order_of_a_free_block() -> None:
    out = suggest_indexes(
        [
            W("SELECT * FROM t WHERE a = ? AND b = ?", total_time=3.0),
            W("SELECT * FROM t WHERE a = ? ORDER BY b", total_time=2.0),
        ]
    )
    assert cols(out) == [("t", ("a", "b"))]


def test_candidates_served_by_an_existing_index_are_dropped() -> None:
    existing = [ExistingIndex("ix_t_a_b", "t", ("a", "b"))]
    assert suggest_indexes([W("SELECT * FROM t WHERE a = ?")], existing=existing) == []
    assert suggest_indexes([W("SELECT * FROM t WHERE b = ? AND a = ?")], existing=existing) == []
    assert cols(suggest_indexes([W("SELECT * FROM t WHERE b = ?")], existing=existing)) == [
        ("t", ("b",))
    ]


def test_partial_expression_and_non_btree_indexes_serve_nothing() -> None:
    existing = [
        ExistingIndex("ix_partial", "t", ("a",), partial=True),
        ExistingIndex("ix_expr", "t", ("(lower(b))",)),
        ExistingIndex("ix_gin", "t", ("c",), method="gin"),
        ExistingIndex("ix_broken", "t", ("d",), valid=False),
    ]
    out = suggest_indexes([W(f"SELECT * FROM t WHERE {c} = ?") for c in "abcd"], existing=existing)
    assert sorted(cols(out)) == [("t", (c,)) for c in "abcd"]


def test_an_index_extending_an_existing_one_says_it_supersedes_it() -> None:
    existing = [ExistingIndex("ix_t_a", "t", ("a",))]
    [s] = suggest_indexes([W("SELECT * FROM t WHERE a = ? AND b > ?")], existing=existing)
    assert s.columns == ("a", "b")
    assert s.supersedes == ("ix_t_a",)
    assert "ix_t_a" in s.why


def test_matching_existing_indexes_is_case_insensitive() -> None:
    existing = [ExistingIndex("IX", "Orders", ("Status",))]
    assert suggest_indexes([W("SELECT * FROM orders WHERE status = ?")], existing=existing) == []


# -- ranking, limits, filters -------------------------------------------------- #


def test_ranked_by_total_time_served() -> None:
    out = suggest_indexes(
        [
            W("SELECT * FROM t WHERE a = ?", calls=1000, total_time=1.0),
            W("SELECT * FROM u WHERE b = ?", calls=10, total_time=9.0),
            W("SELECT * FROM v WHERE c = ?", calls=10, total_time=5.0),
        ]
    )
    assert cols(out) == [("u", ("b",)), ("v", ("c",)), ("t", ("a",))]


def test_max_per_table_counts_the_existing_indexes() -> None:
    workload = [W(f"SELECT * FROM t WHERE c{i} = ?", total_time=float(i)) for i in range(1, 6)]
    assert len(suggest_indexes(workload, max_per_table=3)) == 3
    assert [s.columns for s in suggest_indexes(workload, max_per_table=3)] == [
        ("c5",),
        ("c4",),
        ("c3",),
    ]
    existing = [ExistingIndex("x1", "t", ("z1",)), ExistingIndex("x2", "t", ("z2",)), pk("t")]
    assert len(suggest_indexes(workload, existing=existing, max_per_table=3)) == 1


def test_min_calls_and_min_total_time_filter_shapes() -> None:
    workload = [
        W("SELECT * FROM t WHERE a = ?", calls=5, total_time=10.0),
        W("SELECT * FROM t WHERE b = ?", calls=500, total_time=0.01),
    ]
    assert cols(suggest_indexes(workload, min_calls=10)) == [("t", ("b",))]
    assert cols(suggest_indexes(workload, min_total_time=1.0)) == [("t", ("a",))]


def test_repeated_fingerprints_and_bare_strings_are_summed() -> None:
    [s] = suggest_indexes(
        [W("SELECT * FROM t WHERE a = ?", 3, 1.0), W("SELECT * FROM t WHERE a = ?", 4, 2.0)]
    )
    assert (s.calls, s.total_time) == (7, 3.0)
    [s] = suggest_indexes(["SELECT * FROM t WHERE a = ?"])
    assert s.calls == 1


def test_unparseable_shapes_are_ignored() -> None:
    assert suggest_indexes([W("SELECT " + "(" * 300), W("\x00garbage")]) == []


def test_why_names_the_shapes_and_the_reasons() -> None:
    [s] = suggest_indexes([W("SELECT * FROM t WHERE a = ? AND b > ?", 42, 1.5)])
    assert "1 query shape" in s.why and "42 calls" in s.why
    assert "equality on a" in s.why and "range on b" in s.why


# -- names and DDL ------------------------------------------------------------ #


def test_names_are_deterministic_and_fit_postgres() -> None:
    assert index_name("orders", ["customer_id", "created_at"]) == "ix_orders_customer_id_created_at"
    long = index_name("a_very_long_table_name_for_testing", ["x" * 30, "y" * 30])
    assert len(long) <= 63
    assert long == index_name("a_very_long_table_name_for_testing", ["x" * 30, "y" * 30])
    assert long != index_name("a_very_long_table_name_for_testing", ["x" * 30, "z" * 30])
    odd = index_name("Line Items", ["Order Id"])
    assert odd.startswith("ix_line_items_order_id_") and len(odd) <= 63


def test_ddl_quotes_what_needs_quoting() -> None:
    assert index_ddl("sales.orders", ["order", "Qty"], [], "ix") == (
        'CREATE INDEX ix ON sales.orders ("order", "Qty")'
    )
    [s] = suggest_indexes([W('SELECT * FROM "Line Items" WHERE "OrderId" = ?')])
    assert s.ddl.startswith("CREATE INDEX ix_line_items_orderid_") and s.ddl.endswith(
        ' ON "Line Items" ("OrderId")'
    )
