"""apply() and maintenance() on real SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from sentia_core.errors import BackendError, ConfigError
from sentia_core.sql._advisor import IndexSuggestion, ShapeWorkload, index_ddl, suggest_indexes
from sentia_core.sql._apply import apply, maintenance
from sentia_core.sql._postgres import ADVISORY_LOCK_KEY
from sentia_core.sql._verify import VerifiedSuggestion, verify
from sentia_core.testing import ManualClock

from .advisor_db import load_pg, pg_database, pg_index_names, sqlite_db, sqlite_index_names

BY_CUSTOMER = "SELECT * FROM orders WHERE customer_id = ? ORDER BY created_at DESC LIMIT ?"
BY_ORDER = "SELECT * FROM order_lines WHERE order_id = ?"
BY_PRODUCT = "SELECT * FROM order_lines WHERE product_id = ? AND qty > ?"


def workload(calls: int = 1000) -> list[ShapeWorkload]:
    return [
        ShapeWorkload(BY_CUSTOMER, calls, 5.0),
        ShapeWorkload(BY_ORDER, calls, 3.0),
        ShapeWorkload(BY_PRODUCT, calls // 10, 1.0),
    ]


def verified_on(conn: Any, calls: int = 1000) -> list[VerifiedSuggestion]:
    wl = workload(calls)
    result = verify(suggest_indexes(wl, conn), conn, wl)
    assert all(v.accepted for v in result)
    return result


def fake(
    accepted: bool,
    calls: int = 1000,
    table: str = "orders",
    columns: tuple[str, ...] = ("plant",),
    savings: tuple[tuple[str, float], ...] = (),
) -> VerifiedSuggestion:
    name = "ix_" + "_".join(columns)
    fps = tuple(fp for fp, _ in savings) or ("q",)
    s = IndexSuggestion(
        table, columns, name, index_ddl(table, columns, (), name), fps, calls, 1.0, ""
    )
    return VerifiedSuggestion(s, accepted, "test", "verdict", (), calls, 1.0, savings)


# -- SQLite ------------------------------------------------------------------- #


@pytest.fixture
def lite() -> Iterator[sqlite3.Connection]:
    conn = sqlite_db(500, 5_000, 10_000)
    yield conn
    conn.close()


def test_dry_run_is_the_default_and_creates_nothing(lite: sqlite3.Connection) -> None:
    before = sqlite_index_names(lite)
    result = apply(verified_on(lite), lite)
    assert [r.status for r in result] == ["dry-run"] * 3
    assert result[0].ddl == (
        'CREATE INDEX IF NOT EXISTS "ix_orders_customer_id_created_at" '
        'ON "orders" ("customer_id", "created_at")'
    )
    assert sqlite_index_names(lite) == before


def test_apply_creates_and_analyzes(lite: sqlite3.Connection) -> None:
    clock = ManualClock()
    result = apply(verified_on(lite), lite, dry_run=False, clock=clock)
    assert {r.status for r in result} == {"created"}
    assert {r.name for r in result} <= sqlite_index_names(lite)
    analyzed = {r[0] for r in lite.execute("SELECT tbl FROM sqlite_stat1")}
    assert analyzed >= {"orders", "order_lines"}
    assert not lite.in_transaction
    # applying again finds them in place
    again = apply(verified_on_again(lite), lite, dry_run=False)
    assert all(r.status in ("exists", "skipped") for r in again)


def verified_on_again(conn: sqlite3.Connection) -> list[VerifiedSuggestion]:
    wl = workload()
    return verify(suggest_indexes(wl), conn, wl)


def test_usage_threshold_in_calls_per_hour(lite: sqlite3.Connection) -> None:
    verified = verified_on(lite, calls=100)  # the third shape has 10 calls
    result = {r.columns: r for r in apply(verified, lite)}
    low = result[("product_id", "qty")]
    assert low.status == "skipped" and "10.0 calls/hour" in low.reason
    assert low.calls_per_hour == 10.0
    # the same calls over six minutes are 100/hour
    result = {r.columns: r for r in apply(verified, lite, window=360.0)}
    assert result[("product_id", "qty")].status == "dry-run"


def test_the_long_tail_of_the_estimated_benefit_is_left_out(lite: sqlite3.Connection) -> None:
    big = fake(True, columns=("customer_id",), savings=(("a", 90.0), ("b", 6.0)))
    small = fake(True, columns=("status",), savings=(("c", 3.0),))
    tiny = fake(True, columns=("plant",), savings=(("d", 1.0),))
    result = {r.columns: r for r in apply([tiny, small, big], lite)}
    assert result[("customer_id",)].status == "dry-run"
    assert result[("status",)].status == "skipped"
    assert "long tail" in result[("status",)].reason and "96%" in result[("status",)].reason
    assert result[("plant",)].status == "skipped"
    every = {r.columns: r.status for r in apply([tiny, small, big], lite, coverage=1.0)}
    assert set(every.values()) == {"dry-run"}
    first = [r.columns for r in apply([tiny, small, big], lite, coverage=1.0)]
    assert first == [("customer_id",), ("status",), ("plant",)]  # by marginal benefit


def test_an_index_whose_shapes_are_already_served_is_redundant(lite: sqlite3.Connection) -> None:
    wide = fake(True, columns=("customer_id", "status"), savings=(("a", 10.0), ("b", 5.0)))
    narrow = fake(True, columns=("customer_id",), savings=(("a", 9.0),))
    result = {r.columns: r for r in apply([narrow, wide], lite, coverage=1.0)}
    assert result[("customer_id", "status")].status == "dry-run"
    assert result[("customer_id",)].status == "skipped"
    assert "redundant" in result[("customer_id",)].reason


def test_an_index_that_needs_another_is_skipped_without_it(lite: sqlite3.Connection) -> None:
    base = fake(True, columns=("customer_id",), savings=(("a", 100.0),))
    helper = fake(False, columns=("status",), savings=())
    needy = VerifiedSuggestion(
        fake(True, columns=("plant",)).suggestion,
        accepted=True,
        method="test",
        verdict="kept",
        checks=(),
        calls=1000,
        savings=(("b", 50.0),),
        depends_on=(helper.suggestion.name,),
    )
    result = {r.columns: r for r in apply([base, helper, needy], lite, coverage=1.0)}
    assert result[("customer_id",)].status == "dry-run"
    assert result[("plant",)].status == "skipped"
    assert "pays off only together with ix_status" in result[("plant",)].reason


def test_without_savings_every_accepted_index_is_kept(lite: sqlite3.Connection) -> None:
    verified = verify(suggest_indexes(workload(), lite), lite)  # no workload: no savings
    assert all(v.accepted and v.savings == () for v in verified)
    result = apply(verified, lite, min_calls_per_hour=0)
    assert [r.status for r in result] == ["dry-run"] * 3


def test_only_accepted_suggestions_are_applied(lite: sqlite3.Connection) -> None:
    [r] = apply([fake(accepted=False)], lite, dry_run=False)
    assert r.status == "skipped" and "not verified" in r.reason
    assert "ix_x" not in sqlite_index_names(lite)


def test_max_per_table_counts_existing_indexes(lite: sqlite3.Connection) -> None:
    lite.execute("CREATE INDEX one ON orders (status)")
    lite.execute("CREATE INDEX two ON orders (total)")
    [r] = apply([fake(accepted=True)], lite, max_per_table=2)
    assert r.status == "skipped" and "already has 2 indexes" in r.reason


def test_an_open_transaction_is_refused(lite: sqlite3.Connection) -> None:
    lite.execute("INSERT INTO customers VALUES (99999, 'Z', 'z@example.com')")
    [r] = apply([fake(accepted=True)], lite, dry_run=False)
    assert r.status == "failed" and "open transaction" in r.reason
    lite.rollback()


def test_a_missing_column_fails_cleanly_instead_of_indexing_a_string(
    lite: sqlite3.Connection,
) -> None:
    s = IndexSuggestion("orders", ("nope",), "ix_nope", "", ("q",), 1000, 1.0, "")
    v = VerifiedSuggestion(s, True, "test", "", (), 1000, 1.0)
    [r] = apply([v], lite, dry_run=False)
    assert r.status == "failed" and "no such column" in r.reason
    assert "ix_nope" not in sqlite_index_names(lite)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"min_calls_per_hour": -1}, "min_calls_per_hour"),
        ({"max_per_table": 0}, "max_per_table"),
        ({"window": 0}, "window"),
        ({"lock_timeout": -1}, "lock_timeout"),
        ({"coverage": 0}, "coverage"),
        ({"coverage": 1.5}, "coverage"),
    ],
)
def test_invalid_parameters_name_themselves(
    lite: sqlite3.Connection, kwargs: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(ConfigError) as err:
        apply([], lite, **kwargs)
    assert err.value.parameter == parameter


def test_apply_takes_verified_suggestions_only(lite: sqlite3.Connection) -> None:
    with pytest.raises(ConfigError):
        apply(suggest_indexes(workload()), lite)  # type: ignore[arg-type]


def test_sqlite_maintenance_analyzes_stale_tables_only(lite: sqlite3.Connection) -> None:
    lite.execute("CREATE INDEX ix_lines_order ON order_lines (order_id)")
    dry = maintenance(lite, dry_run=True)
    # customers has the UNIQUE(email) autoindex; neither table has statistics yet
    assert dry.dry_run and dry.analyzed == ("customers", "order_lines")
    assert dry.statements == ('ANALYZE "customers"', 'ANALYZE "order_lines"', "PRAGMA optimize")
    assert not lite.execute(
        "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
    ).fetchone()  # dry run ran nothing
    report = maintenance(lite)
    assert report.analyzed == ("customers", "order_lines")
    assert lite.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'order_lines'").fetchone()
    assert maintenance(lite).analyzed == ()  # fresh now
    lite.executemany(
        "INSERT INTO order_lines (order_id, product_id, qty) VALUES (?, ?, ?)",
        [(1, 1, 1)] * 2_000,
    )
    lite.commit()
    assert maintenance(lite).analyzed == ("order_lines",)  # 20% more rows: stale
    assert report.unused_indexes == () and "no index usage counters" in report.notes[0]


def test_sqlite_maintenance_refuses_an_open_transaction(lite: sqlite3.Connection) -> None:
    lite.execute("CREATE INDEX ix_lines_order ON order_lines (order_id)")
    lite.execute("INSERT INTO customers VALUES (99999, 'Z', 'z@example.com')")
    with pytest.raises(BackendError):
        maintenance(lite)
    lite.rollback()


def test_maintenance_validates(lite: sqlite3.Connection) -> None:
    with pytest.raises(ConfigError) as err:
        maintenance(lite, stale_fraction=2.0)
    assert err.value.parameter == "stale_fraction"


# -- PostgreSQL --------------------------------------------------------------- #


@pytest.fixture
def pg(postgres_server: Any) -> Iterator[Any]:
    import psycopg

    with pg_database(postgres_server.dsn) as dsn, psycopg.connect(dsn) as conn:
        load_pg(conn, customers=2_000, orders=20_000, lines=40_000)
        yield conn


@pytest.mark.postgres
def test_postgres_creates_concurrently_then_analyzes_and_restores_the_session(pg: Any) -> None:
    pg.execute("SET lock_timeout = '7s'")
    pg.commit()
    verified = verified_on(pg)
    result = apply(verified, pg, dry_run=False, lock_timeout=2.0)
    assert {r.status for r in result} == {"created"}
    assert all(r.ddl.startswith("CREATE INDEX CONCURRENTLY IF NOT EXISTS") for r in result)
    assert {r.name for r in result} <= pg_index_names(pg)
    assert pg.autocommit is False
    assert pg.execute("SHOW lock_timeout").fetchone() == ("7s",)
    analyzed = pg.execute(
        "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL"
    ).fetchall()
    assert {"orders", "order_lines"} <= {r[0] for r in analyzed}
    locks = pg.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    ).fetchone()
    assert locks == (0,)
    pg.rollback()
    again = {r.status for r in apply(verified, pg, dry_run=False)}
    assert again == {"exists"}


@pytest.mark.postgres
def test_postgres_another_apply_holding_the_lock_makes_this_one_skip(
    pg: Any, postgres_server: Any
) -> None:
    import psycopg

    verified = verified_on(pg)
    with psycopg.connect(pg.info.dsn, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        result = apply(verified, pg, dry_run=False)
    assert {r.status for r in result} == {"skipped"}
    assert "advisory lock" in result[0].reason
    assert not {r.name for r in result} & pg_index_names(pg)


@pytest.mark.postgres
def test_postgres_a_build_that_times_out_is_cleaned_up_by_the_next_apply(pg: Any) -> None:
    import psycopg

    [first, *_] = verified_on(pg)
    name = first.suggestion.name
    with psycopg.connect(pg.info.dsn) as other:
        # An open writer: CONCURRENTLY creates the (invalid) index entry, then
        # waits for this transaction to end, and the lock_timeout fires. The
        # drop of the invalid index waits for the same writer and times out too.
        other.execute(f"UPDATE {first.suggestion.table} SET id = id WHERE id = 1")
        [r] = apply([first], pg, dry_run=False, lock_timeout=0.3)
        other.rollback()
    assert r.status == "failed" and "timeout" in r.reason
    assert f"an INVALID index {name} remains" in r.reason
    [again] = apply([first], pg, dry_run=False)
    assert again.status == "created"
    valid = pg.execute(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [name]
    ).fetchone()
    assert valid == (True,)
    pg.rollback()


@pytest.mark.postgres
def test_postgres_an_open_transaction_is_refused(pg: Any) -> None:
    verified = verified_on(pg)
    pg.execute("SELECT 1")
    result = apply(verified, pg, dry_run=False)
    assert {r.status for r in result} == {"failed"}
    pg.rollback()


@pytest.mark.postgres
def test_postgres_maintenance_analyzes_stale_tables_and_lists_unused_indexes(pg: Any) -> None:
    flush(pg)
    first = maintenance(pg)  # the loader's inserts count as changes since its ANALYZE
    assert "public.orders" in first.analyzed
    flush(pg)
    pg.execute("CREATE TABLE events (id serial PRIMARY KEY, kind text, at int)")
    pg.execute("CREATE INDEX ix_events_kind ON events (kind)")
    pg.execute("CREATE INDEX ix_orders_plant ON orders (plant)")
    pg.execute(
        "INSERT INTO events (kind, at) SELECT 'k' || (g % 7), g FROM generate_series(1, 5000) g"
    )
    pg.commit()
    flush(pg)
    report = maintenance(pg, dry_run=True)
    assert report.analyzed == ("public.events",)
    assert report.statements == tuple(f"ANALYZE {_q(t)}" for t in report.analyzed)
    unused = {u.name: u for u in report.unused_indexes}
    assert {"ix_events_kind", "ix_orders_plant"} <= set(unused)
    assert "events_pkey" not in unused and "customers_email_key" not in unused
    assert unused["ix_events_kind"].drop_ddl == 'DROP INDEX CONCURRENTLY "public"."ix_events_kind"'
    assert unused["ix_events_kind"].size_bytes > 0
    assert report.notes
    maintenance(pg)
    last = pg.execute("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'events'")
    assert last.fetchone()[0] is not None
    pg.rollback()
    # use one index; once the counters are flushed it is no longer unused
    pg.execute("SET enable_seqscan = off")
    pg.execute("SELECT * FROM events WHERE kind = 'k1'").fetchall()
    pg.execute("RESET enable_seqscan")
    pg.commit()
    flush(pg)
    names = {u.name for u in maintenance(pg, dry_run=True).unused_indexes}
    assert "ix_events_kind" not in names and "ix_orders_plant" in names
    big_only = maintenance(pg, dry_run=True, min_index_size=10**9)
    assert big_only.unused_indexes == ()


def flush(conn: Any) -> None:
    """Make this backend's statistics counters visible now (PostgreSQL 15+)."""
    conn.commit()
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.commit()


def _q(table: str) -> str:
    schema, name = table.split(".")
    return f'"{schema}"."{name}"'
