"""wrap_connection: every statement a DB-API connection runs lands in the optimizer."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from sentia_core.errors import ConfigError
from sentia_core.integrations import (
    InstrumentedConnection,
    InstrumentedCursor,
    wrap_async_connection,
    wrap_connection,
)
from sentia_core.sql import QueryOptimizer
from sentia_core.testing import ManualClock


def optimizer(**kw: Any) -> QueryOptimizer:
    kw.setdefault("log_events", False)
    return QueryOptimizer(sample_rate=0.0, **kw)


@pytest.fixture
def sqlite_db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.executescript(
        """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INT, total REAL);
        """
    )
    conn.executemany(
        "INSERT INTO customers (id, email) VALUES (?, ?)",
        [(i, f"zqcust{i}@example.com") for i in range(10)],
    )
    conn.executemany(
        "INSERT INTO orders (customer_id, total) VALUES (?, ?)",
        [(i % 10, i * 1.5) for i in range(30)],
    )
    conn.commit()
    yield conn
    conn.close()


# --------------------------------------------------------------------------- #
# sqlite3
# --------------------------------------------------------------------------- #


def test_sqlite_statements_are_recorded_with_rows(sqlite_db: sqlite3.Connection) -> None:
    opt = optimizer()
    db = wrap_connection(sqlite_db, opt)
    assert isinstance(db, InstrumentedConnection)
    cur = db.cursor()
    assert isinstance(cur, InstrumentedCursor)
    for i in range(3):
        cur.execute("SELECT * FROM orders WHERE customer_id = ?", (i,))
        assert len(cur.fetchall()) == 3
    db.execute("UPDATE orders SET total = total + 1 WHERE customer_id = ?", (1,))
    db.executemany("INSERT INTO customers (email) VALUES (?)", [("a",), ("b",)])
    db.commit()
    by_kind = {s.kind: s for s in opt.stats().shapes}
    assert by_kind["SELECT"].calls == 3
    assert by_kind["SELECT"].fingerprint == "SELECT * FROM orders WHERE customer_id = ?"
    assert by_kind["UPDATE"].rows == 3
    assert by_kind["INSERT"].rows == 2
    assert all(s.total_time > 0 for s in opt.stats().shapes)


def test_the_wrapped_connection_behaves_like_the_driver(sqlite_db: sqlite3.Connection) -> None:
    db = wrap_connection(sqlite_db, optimizer())
    with db:  # sqlite3: a transaction
        db.execute("INSERT INTO customers (email) VALUES ('x')")
    assert db.total_changes > 0  # attribute delegated
    cur = db.execute("SELECT id FROM customers ORDER BY id LIMIT 3")
    assert [row[0] for row in cur] == [0, 1, 2]  # iteration delegated
    assert db.wrapped is sqlite_db
    with pytest.raises(sqlite3.OperationalError):
        db.execute("SELECT * FROM no_such_table")


def test_failed_statements_are_not_recorded(sqlite_db: sqlite3.Connection) -> None:
    opt = optimizer()
    db = wrap_connection(sqlite_db, opt)
    with pytest.raises(sqlite3.OperationalError):
        db.cursor().execute("SELEC oops")
    assert opt.stats().calls == 0


def test_durations_come_from_the_optimizer_clock(sqlite_db: sqlite3.Connection) -> None:
    clock = ManualClock()
    opt = optimizer(clock=clock, slow_query_threshold=0.5)

    class SlowCursor:
        def __init__(self, cursor: sqlite3.Cursor) -> None:
            self.cursor = cursor
            self.rowcount = -1

        def execute(self, sql: str, *args: Any) -> Any:
            clock.advance(0.75)  # the database takes 750 ms
            return self.cursor.execute(sql, *args)

    class Conn:
        def cursor(self) -> SlowCursor:
            return SlowCursor(sqlite_db.cursor())

    wrap_connection(Conn(), opt, read_indexes=False).cursor().execute("SELECT 1")
    (q,) = opt.slow_queries()
    assert q.duration == 0.75
    assert "test_dbapi.py" in q.call_site


def test_an_n_plus_one_through_sqlite_names_the_missing_index(
    sqlite_db: sqlite3.Connection,
) -> None:
    opt = optimizer()
    db = wrap_connection(sqlite_db, opt)
    with opt.unit_of_work("GET /customers"):
        customers = db.execute("SELECT id FROM customers").fetchall()
        for (cid,) in customers:
            db.execute("SELECT * FROM orders WHERE customer_id = ?", (cid,)).fetchall()
    (r,) = opt.nplusone_reports()
    assert (r.count, r.table, r.column, r.indexed) == (10, "orders", "customer_id", "no")
    assert "test_dbapi.py" in r.call_site


def test_a_unit_per_transaction(sqlite_db: sqlite3.Connection) -> None:
    opt = optimizer()
    db = wrap_connection(sqlite_db, opt, unit_per_transaction=True, unit_name="tx")
    for cid in range(6):
        db.execute("SELECT * FROM orders WHERE customer_id = ?", (cid,))
    assert opt.nplusone_reports() == []  # still inside the transaction
    db.commit()
    (r,) = opt.nplusone_reports()
    assert (r.unit, r.count) == ("tx", 6)
    for cid in range(3):
        db.execute("SELECT * FROM orders WHERE customer_id = ?", (cid,))
    db.rollback()
    assert opt.nplusone_reports()[0].occurrences == 1


def test_literals_never_reach_the_optimizer_outputs(sqlite_db: sqlite3.Connection) -> None:
    opt = optimizer(slow_query_threshold=1e-12)
    db = wrap_connection(sqlite_db, opt)
    with opt.unit_of_work():
        for i in range(6):
            db.execute(f"SELECT * FROM customers WHERE email = 'zqcust{i}@example.com'")
    out = json.dumps(opt.export()) + repr(opt.stats()) + repr(opt.nplusone_reports())
    assert "zqcust" not in out


def test_wrap_rejects_a_non_optimizer(sqlite_db: sqlite3.Connection) -> None:
    with pytest.raises(ConfigError) as info:
        wrap_connection(sqlite_db, object())  # type: ignore[arg-type]
    assert info.value.parameter == "optimizer"
    with pytest.raises(ConfigError) as info:
        wrap_connection(sqlite_db, optimizer(), unit_per_transaction="yes")  # type: ignore[arg-type]
    assert info.value.parameter == "unit_per_transaction"


# --------------------------------------------------------------------------- #
# psycopg 3 on a real PostgreSQL
# --------------------------------------------------------------------------- #


@pytest.fixture
def pg(pg_dsn: str) -> Iterator[Any]:
    psycopg = pytest.importorskip("psycopg")
    conn = psycopg.connect(pg_dsn)
    conn.execute("CREATE TABLE customers (id int PRIMARY KEY, email text)")
    conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, customer_id int, total numeric)")
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO customers (id, email) VALUES (%s, %s)",
            [(i, f"zqcust{i}@example.com") for i in range(10)],
        )
        cur.executemany(
            "INSERT INTO orders (customer_id, total) VALUES (%s, %s)",
            [(i % 10, i) for i in range(30)],
        )
    conn.commit()
    yield conn
    conn.close()


@pytest.mark.postgres
def test_psycopg_statements_are_recorded(pg: Any) -> None:
    from psycopg import sql

    opt = optimizer()
    db = wrap_connection(pg, opt)
    with db.cursor() as cur:
        for i in range(4):
            cur.execute("SELECT * FROM orders WHERE customer_id = %s", (i,))
            assert len(cur.fetchall()) == 3
        cur.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE id = %(id)s").format(sql.Identifier("orders")),
            {"id": 1},
        )
        cur.execute("UPDATE orders SET total = total + 1 WHERE customer_id = %s", (2,))
    db.execute("SELECT email FROM customers WHERE id IN (%s, %s, %s)", (1, 2, 3)).fetchall()
    db.commit()
    shapes = {s.fingerprint: s for s in opt.stats().shapes}
    lookup = shapes["SELECT * FROM orders WHERE customer_id = ?"]
    assert (lookup.calls, lookup.rows) == (4, 12)
    assert 'SELECT count(*) FROM "orders" WHERE id = ?' in shapes
    assert shapes["UPDATE orders SET total = total + ? WHERE customer_id = ?"].rows == 3
    assert "SELECT email FROM customers WHERE id IN (?)" in shapes


@pytest.mark.postgres
def test_psycopg_n_plus_one_knows_the_indexes(pg: Any) -> None:
    pg.execute("CREATE INDEX ix_orders_customer ON orders (customer_id)")
    pg.commit()
    opt = optimizer()
    db = wrap_connection(pg, opt)
    with opt.unit_of_work("report"):
        for (cid,) in db.execute("SELECT id FROM customers").fetchall():
            db.execute("SELECT total FROM orders WHERE customer_id = %s", (cid,)).fetchall()
        db.commit()  # the report is made after the transaction: the catalog can be read
    (r,) = opt.nplusone_reports()
    assert (r.count, r.table, r.column, r.indexed) == (10, "orders", "customer_id", "yes")
    assert "ix_orders_customer" in r.fix
    from psycopg.pq import TransactionStatus

    assert pg.info.transaction_status == TransactionStatus.IDLE  # no transaction left open


@pytest.mark.postgres
def test_psycopg_catalog_is_not_read_inside_an_application_transaction(pg: Any) -> None:
    opt = optimizer()
    db = wrap_connection(pg, opt)
    with opt.unit_of_work():
        for cid in range(5):
            db.execute("SELECT total FROM orders WHERE customer_id = %s", (cid,)).fetchall()
    # the unit ended while the application's transaction was still open
    (r,) = opt.nplusone_reports()
    assert r.indexed == "unknown"
    db.rollback()


@pytest.mark.postgres
async def test_psycopg_async_connection_is_recorded(pg_dsn: str) -> None:
    psycopg = pytest.importorskip("psycopg")
    opt = optimizer()
    raw = await psycopg.AsyncConnection.connect(pg_dsn)
    db = wrap_async_connection(raw, opt, unit_per_transaction=True, unit_name="async tx")
    async with db:
        await db.execute("CREATE TABLE t (id int, v text)")
        async with db.cursor() as cur:
            await cur.executemany("INSERT INTO t VALUES (%s, %s)", [(i, "v") for i in range(5)])
            for i in range(5):
                await cur.execute("SELECT v FROM t WHERE id = %s", (i,))
                assert await cur.fetchone() == ("v",)
        await db.commit()
    shapes = {s.fingerprint: s for s in opt.stats().shapes}
    assert shapes["SELECT v FROM t WHERE id = ?"].calls == 5
    assert shapes["INSERT INTO t VALUES (?, ?)"].rows == 5
    (r,) = opt.nplusone_reports()
    assert (r.unit, r.count) == ("async tx", 5)
