"""verify(): suggestions checked against the real planner, leaving no trace."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from sentia_core.errors import BackendError, ConfigError, UnsafeStatementError
from sentia_core.sql._advisor import IndexSuggestion, ShapeWorkload, index_ddl, suggest_indexes
from sentia_core.sql._verify import VerifiedSuggestion, explain, verify
from tests._servers import unavailable

from .advisor_db import load_pg, pg_database, pg_index_names, sqlite_db, sqlite_index_names

BY_CUSTOMER = "SELECT * FROM orders WHERE customer_id = ? ORDER BY created_at DESC LIMIT ?"
BY_ORDER = "SELECT * FROM order_lines WHERE order_id = ?"
BY_STATUS = "SELECT * FROM orders WHERE status = ?"
JOINED = (
    "SELECT o.id, l.qty FROM orders o JOIN order_lines l ON l.order_id = o.id "
    "WHERE o.customer_id = ?"
)
UPDATE_LINES = "UPDATE order_lines SET qty = qty + ? WHERE product_id = ?"
INSERT_ORDER = (
    "INSERT INTO orders (customer_id, status, plant, created_at, total) VALUES (?, ?, ?, ?, ?)"  # noqa: E501
)


def suggestion(table: str, columns: tuple[str, ...], *fingerprints: str) -> IndexSuggestion:
    name = "ix_" + table + "_" + "_".join(columns)
    return IndexSuggestion(
        table, columns, name, index_ddl(table, columns, (), name), fingerprints, 1, 1.0, "test"
    )


def by_columns(result: list[VerifiedSuggestion]) -> dict[tuple[str, ...], VerifiedSuggestion]:
    return {v.columns: v for v in result}


# -- SQLite ------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def lite() -> Iterator[sqlite3.Connection]:
    conn = sqlite_db()
    yield conn
    conn.close()


def test_sqlite_keeps_an_index_that_turns_a_scan_into_a_search(lite: sqlite3.Connection) -> None:
    workload = [ShapeWorkload(BY_CUSTOMER, 500, 5.0), ShapeWorkload(BY_ORDER, 900, 2.0)]
    result = verify(suggest_indexes(workload, lite), lite, workload)
    found = by_columns(result)
    v = found[("customer_id", "created_at")]
    assert v.accepted and v.method == "sqlite-savepoint"
    [check] = v.checks
    assert check.outcome == "improved" and check.uses_index
    assert "SCAN orders" in check.plan_before and "USE TEMP B-TREE" in check.plan_before
    assert "SEARCH orders USING INDEX <index>" in check.plan_after
    assert "TEMP B-TREE" not in check.plan_after
    assert check.cost_before is None  # SQLite has no costs
    assert v.calls == 500 and v.total_time == 5.0
    assert v.savings == ((BY_CUSTOMER, 5.0),) and v.benefit == 5.0  # no costs: an upper bound
    assert found[("order_id",)].accepted
    assert v.verdict.startswith("kept")


def test_sqlite_rejects_an_index_the_planner_cannot_use(lite: sqlite3.Connection) -> None:
    shape = "SELECT * FROM orders WHERE customer_id = ? OR total > ?"
    [v] = verify([suggestion("orders", ("customer_id",), shape)], lite, [shape])
    assert not v.accepted
    assert [c.outcome for c in v.checks] == ["not-used"]
    assert v.verdict == "rejected: the planner does not use the index"


def test_sqlite_join_index_on_the_referencing_side(lite: sqlite3.Connection) -> None:
    workload = [ShapeWorkload(JOINED, 100, 3.0)]
    found = by_columns(verify(suggest_indexes(workload, lite), lite, workload))
    assert found[("order_id",)].accepted
    assert "SEARCH l USING" in found[("order_id",)].checks[0].plan_after


def test_second_pass_finds_an_index_that_helps_once_the_other_join_side_has_one(
    lite: sqlite3.Connection,
) -> None:
    shape = (
        "SELECT o.id, l.product_id FROM orders o JOIN order_lines l ON l.order_id = o.id "
        "WHERE o.customer_id = ? AND o.status = ?"
    )
    sugg = suggest_indexes([shape], lite)
    alone = by_columns(verify(sugg, lite, [shape], interactions=False))
    assert alone[("order_id",)].accepted
    assert not alone[("customer_id", "status")].accepted  # SQLite keeps scanning lines
    together = by_columns(verify(sugg, lite, [shape]))
    v = together[("customer_id", "status")]
    assert v.accepted and v.depends_on == ("ix_order_lines_order_id",)
    assert "with ix_order_lines_order_id in place" in v.verdict
    assert "ix_order_lines_order_id" in v.checks[0].plan_before  # the baseline has it
    assert together[("order_id",)].depends_on == ()


def test_sqlite_update_is_checked_through_its_where_clause(lite: sqlite3.Connection) -> None:
    before = lite.execute("SELECT sum(qty) FROM order_lines").fetchone()
    [v] = verify([suggestion("order_lines", ("product_id",), UPDATE_LINES)], lite, [UPDATE_LINES])
    assert v.accepted
    assert "SEARCH order_lines" in v.checks[0].plan_after
    assert lite.execute("SELECT sum(qty) FROM order_lines").fetchone() == before


def test_sqlite_insert_values_is_skipped_not_explained(lite: sqlite3.Connection) -> None:
    [v] = verify([suggestion("orders", ("customer_id",), INSERT_ORDER)], lite, [INSERT_ORDER])
    assert not v.accepted
    assert [c.outcome for c in v.checks] == ["skipped"]
    assert "no shape could be explained" in v.verdict


def test_sqlite_leaves_no_index_no_transaction_and_the_same_data(
    lite: sqlite3.Connection,
) -> None:
    indexes = sqlite_index_names(lite)
    rows = lite.execute("SELECT count(*), sum(total) FROM orders").fetchone()
    workload = [BY_CUSTOMER, BY_ORDER, BY_STATUS, JOINED, UPDATE_LINES]
    verify(suggest_indexes(workload, lite), lite, workload)
    assert sqlite_index_names(lite) == indexes
    assert not lite.in_transaction
    assert lite.execute("SELECT count(*), sum(total) FROM orders").fetchone() == rows


def test_sqlite_an_open_transaction_of_the_caller_survives() -> None:
    conn = sqlite_db(100, 2_000, 10)
    conn.execute("INSERT INTO customers VALUES (100001, 'Z', 'new@example.com')")
    assert conn.in_transaction
    verify(suggest_indexes([BY_CUSTOMER], conn), conn, [BY_CUSTOMER])
    assert conn.in_transaction
    assert conn.execute("SELECT region FROM customers WHERE id = 100001").fetchone() == ("Z",)
    conn.rollback()
    assert conn.execute("SELECT region FROM customers WHERE id = 100001").fetchone() is None
    conn.close()


class RecordingConnection(sqlite3.Connection):
    """Records every statement and its parameters that goes through execute()."""

    seen: list[tuple[str, tuple[object, ...]]]

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # type: ignore[override]
        self.seen.append((sql, tuple(parameters)))
        return super().execute(sql, parameters)


def test_sqlite_values_come_from_the_table_never_from_the_workload() -> None:
    conn = sqlite_db(100, 3_000, 10, factory=RecordingConnection)
    assert isinstance(conn, RecordingConnection)
    conn.seen = []
    raw = "SELECT * FROM orders WHERE status = 'zq-secret-literal' AND total > 123456.75"
    result = verify(suggest_indexes([raw], conn), conn, [ShapeWorkload(raw, 10, 1.0)])
    assert result and result[0].checks[0].outcome == "improved"
    explained = [(sql, params) for sql, params in conn.seen if sql.startswith("EXPLAIN")]
    assert explained
    for sql, params in explained:
        assert "zq-secret" not in sql and "123456.75" not in sql
        assert "zq-secret-literal" not in params and 123456.75 not in params
        status, total = params
        assert status in ("new", "open", "shipped", "done")  # sampled from the column
        assert isinstance(total, float) and total < 500  # a high quantile of the column
    conn.close()


def test_sqlite_a_bad_suggestion_is_an_error_verdict_not_an_exception(
    lite: sqlite3.Connection,
) -> None:
    [v] = verify([suggestion("orders", ("no_such_column",), BY_STATUS)], lite, [BY_STATUS])
    assert not v.accepted
    assert v.checks[-1].outcome == "error" and "no_such_column" in v.checks[-1].note


def test_sqlite_shape_not_in_the_workload_is_explained_from_its_text(
    lite: sqlite3.Connection,
) -> None:
    [v] = verify([suggestion("order_lines", ("order_id",), BY_ORDER)], lite)
    assert v.accepted and v.calls == 0


def test_explain_refuses_data_changing_statements_and_runs_nothing(
    lite: sqlite3.Connection,
) -> None:
    count = lite.execute("SELECT count(*) FROM orders").fetchone()
    for sql in ("DELETE FROM orders", "DELETE FROM orders WHERE id = ?", "DROP TABLE orders"):
        with pytest.raises(UnsafeStatementError):
            explain(lite, sql)
    assert lite.execute("SELECT count(*) FROM orders").fetchone() == count
    assert explain(lite, "SELECT * FROM orders WHERE id = ?").startswith("SEARCH orders")


def test_explain_reports_a_statement_the_database_cannot_plan(lite: sqlite3.Connection) -> None:
    with pytest.raises(BackendError):
        explain(lite, "SELECT * FROM no_such_table WHERE a = ?")


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"min_cost_reduction": 1.5}, "min_cost_reduction"),
        ({"range_fraction": -0.1}, "range_fraction"),
        ({"method": "magic"}, "method"),
        ({"method": "hypopg"}, "method"),  # HypoPG exists only for PostgreSQL
        ({"lock_timeout": 0}, "lock_timeout"),
        ({"statement_timeout": -1}, "statement_timeout"),
        ({"rng": 42}, "rng"),
    ],
)
def test_invalid_parameters_name_themselves(
    lite: sqlite3.Connection, kwargs: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(ConfigError) as err:
        verify([], lite, **kwargs)
    assert err.value.parameter == parameter


def test_suggestions_must_be_suggestions(lite: sqlite3.Connection) -> None:
    with pytest.raises(ConfigError):
        verify(["CREATE INDEX x ON t (a)"], lite)  # type: ignore[list-item]


def test_the_same_seed_gives_the_same_verdicts(lite: sqlite3.Connection) -> None:
    workload = [BY_CUSTOMER, BY_ORDER, JOINED]
    sugg = suggest_indexes(workload, lite)
    one = verify(sugg, lite, workload, rng=random.Random(3))
    two = verify(sugg, lite, workload, rng=random.Random(3))
    assert one == two


# -- PostgreSQL --------------------------------------------------------------- #


@pytest.fixture(scope="module")
def pg(postgres_server: Any) -> Iterator[Any]:
    import psycopg

    with pg_database(postgres_server.dsn) as dsn, psycopg.connect(dsn) as conn:
        load_pg(conn)
        yield conn


def extension_installed(conn: Any) -> bool:
    row = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'hypopg'").fetchone()
    conn.rollback()
    return bool(row[0])


@pytest.mark.postgres
def test_postgres_hypopg_verdicts_and_no_trace(pg: Any, postgres_server: Any) -> None:
    if not postgres_server.has_hypopg:
        unavailable("HypoPG (Debian package postgresql-15-hypopg)", "SENTIA_REQUIRE_POSTGRES")
    indexes = pg_index_names(pg)
    workload = [
        ShapeWorkload(BY_CUSTOMER, 500, 5.0),
        ShapeWorkload(BY_ORDER, 900, 2.0),
        ShapeWorkload(BY_STATUS, 50, 1.0),
    ]
    found = by_columns(verify(suggest_indexes(workload, pg), pg, workload))
    good = found[("customer_id", "created_at")]
    assert good.accepted and good.method == "hypopg"
    check = good.checks[0]
    assert check.cost_before is not None and check.cost_after is not None
    assert check.cost_reduction is not None and check.cost_reduction >= 0.5
    assert "Seq Scan on orders" in check.plan_before and "<index>" in check.plan_after
    assert good.cost_reduction == check.cost_reduction
    assert good.benefit == pytest.approx(5.0 * check.cost_reduction)
    # four statuses, evenly spread: an index on status barely beats a sequential scan
    assert not found[("status",)].accepted
    assert found[("status",)].checks[0].outcome in ("not-used", "unchanged")
    assert found[("order_id",)].accepted
    assert not extension_installed(pg)  # created inside the rolled-back transaction
    assert pg_index_names(pg) == indexes


@pytest.mark.postgres
def test_postgres_rolled_back_real_index(pg: Any) -> None:
    indexes = pg_index_names(pg)
    workload = [ShapeWorkload(BY_ORDER, 900, 2.0), ShapeWorkload(UPDATE_LINES, 10, 1.0)]
    found = by_columns(verify(suggest_indexes(workload, pg), pg, workload, method="index"))
    assert found[("order_id",)].accepted
    assert found[("order_id",)].method == "rolled-back-index"
    assert found[("product_id",)].accepted  # the UPDATE, through SELECT 1 ... WHERE
    assert pg_index_names(pg) == indexes
    assert not extension_installed(pg)


@pytest.mark.postgres
def test_postgres_the_cost_margin_decides(pg: Any) -> None:
    workload = [ShapeWorkload(BY_ORDER, 900, 2.0)]
    sugg = suggest_indexes(workload, pg)
    assert verify(sugg, pg, workload)[0].accepted
    [strict] = verify(sugg, pg, workload, min_cost_reduction=1.0)
    assert not strict.accepted
    assert strict.checks[0].outcome == "unchanged"
    assert "less than 100%" in strict.verdict


@pytest.mark.postgres
def test_postgres_an_open_transaction_of_the_caller_survives(pg: Any) -> None:
    from psycopg.pq import TransactionStatus

    pg.execute("INSERT INTO customers (region, email) VALUES ('Z', 'open@example.com')")
    assert pg.info.transaction_status == TransactionStatus.INTRANS
    verify(suggest_indexes([BY_ORDER], pg), pg, [BY_ORDER])
    assert pg.info.transaction_status == TransactionStatus.INTRANS
    row = pg.execute("SELECT region FROM customers WHERE email = 'open@example.com'").fetchone()
    assert row == ("Z",)
    pg.rollback()
    assert pg.execute("SELECT 1 FROM customers WHERE email = 'open@example.com'").fetchone() is None
    pg.rollback()


@pytest.mark.postgres
def test_postgres_a_failed_transaction_is_refused(pg: Any) -> None:
    import psycopg

    with pytest.raises(psycopg.errors.UndefinedTable):
        pg.execute("SELECT * FROM no_such_table")
    with pytest.raises(BackendError):
        verify(suggest_indexes([BY_ORDER], [], schema={}), pg, [BY_ORDER])
    pg.rollback()


@pytest.mark.postgres
def test_postgres_explain_binds_sampled_values_and_refuses_writes(pg: Any) -> None:
    plan = explain(pg, "SELECT * FROM orders WHERE id = ANY(?) AND created_at > now() - INTERVAL ?")
    assert "Index Scan on orders using orders_pkey" in plan and "total cost" in plan
    assert "Aggregate" in explain(pg, "SELECT count(*) FROM orders")  # no parameter at all
    count = pg.execute("SELECT count(*) FROM orders").fetchone()
    pg.rollback()
    with pytest.raises(UnsafeStatementError):
        explain(pg, "DELETE FROM orders WHERE id = ?")
    with pytest.raises(UnsafeStatementError):
        explain(pg, "WITH d AS (DELETE FROM orders RETURNING id) SELECT * FROM d")
    assert pg.execute("SELECT count(*) FROM orders").fetchone() == count
    pg.rollback()


@pytest.mark.postgres
def test_postgres_samples_are_in_the_columns_own_order(pg: Any) -> None:
    import random as _random

    from sentia_core.sql._postgres import PostgresPlanner

    pg.execute("CREATE TABLE nums (n int) WITH (autovacuum_enabled = false)")
    pg.execute("INSERT INTO nums SELECT g FROM generate_series(1, 3000) g")
    pg.commit()
    backend = PostgresPlanner(pg, _random.Random(0), "index", 5.0, 60.0)
    # never analyzed: a TABLESAMPLE, sorted as integers (not as text)
    values, typical = backend.sample("nums", "n")
    assert len(values) > 100
    assert values == sorted(values, key=lambda v: int(str(v)))
    assert typical in values
    pg.execute("ANALYZE nums")
    pg.commit()
    values, _ = backend.sample("nums", "n")  # histogram bounds from pg_stats
    assert values == sorted(values, key=lambda v: int(str(v)))
    assert int(str(values[0])) <= 30 and int(str(values[-1])) >= 2970
    pg.execute("DROP TABLE nums")
    pg.commit()
