"""Real databases for the advisor tests: a small manufacturing schema with data.

SQLite databases live in memory. PostgreSQL tests get a private database on
the session's shared server (created per test module, dropped afterwards), so
modules never see each other's tables or indexes.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

SCHEMA = """
CREATE TABLE customers (id INTEGER PRIMARY KEY, region TEXT NOT NULL, email TEXT UNIQUE);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, status TEXT NOT NULL,
    plant TEXT NOT NULL, created_at TEXT NOT NULL, total REAL NOT NULL
);
CREATE TABLE order_lines (
    id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, product_id INTEGER NOT NULL,
    qty INTEGER NOT NULL
);
"""

STATUSES = ["new", "open", "shipped", "done"]
PLANTS = ["P1", "P2"]


def sqlite_db(
    customers: int = 2_000,
    orders: int = 20_000,
    lines: int = 40_000,
    factory: type[sqlite3.Connection] = sqlite3.Connection,
) -> sqlite3.Connection:
    """An in-memory SQLite database with the schema and deterministic data."""
    conn = sqlite3.connect(":memory:", factory=factory)
    conn.executescript(SCHEMA)
    rng = random.Random(7)
    conn.executemany(
        "INSERT INTO customers VALUES (?, ?, ?)",
        [(i, rng.choice("ABCD"), f"user{i}@example.com") for i in range(1, customers + 1)],
    )
    conn.executemany(
        "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)",
        [
            (
                i,
                rng.randint(1, customers),
                rng.choice(STATUSES),
                rng.choice(PLANTS),
                f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                round(rng.uniform(5, 500), 2),
            )
            for i in range(1, orders + 1)
        ],
    )
    conn.executemany(
        "INSERT INTO order_lines VALUES (?, ?, ?, ?)",
        [
            (i, rng.randint(1, orders), rng.randint(1, 500), rng.randint(1, 9))
            for i in range(1, lines + 1)
        ],
    )
    conn.commit()
    return conn


def load_pg(conn: Any, customers: int = 5_000, orders: int = 50_000, lines: int = 100_000) -> None:
    """Create the schema with deterministic data in the connected PostgreSQL database."""
    with conn.cursor() as cur:
        cur.execute(
            f"""
            CREATE TABLE customers (id serial PRIMARY KEY, region text NOT NULL, email text UNIQUE);
            CREATE TABLE orders (
                id serial PRIMARY KEY, customer_id int NOT NULL, status text NOT NULL,
                plant text NOT NULL, created_at timestamptz NOT NULL, total numeric NOT NULL
            );
            CREATE TABLE order_lines (
                id serial PRIMARY KEY, order_id int NOT NULL, product_id int NOT NULL,
                qty int NOT NULL
            );
            INSERT INTO customers (region, email)
                SELECT (ARRAY['A','B','C','D'])[1 + g % 4], 'user' || g || '@example.com'
                FROM generate_series(1, {customers}) g;
            INSERT INTO orders (customer_id, status, plant, created_at, total)
                SELECT 1 + (g::bigint * 7919) % {customers},
                       (ARRAY['new','open','shipped','done'])[1 + g % 4],
                       (ARRAY['P1','P2'])[1 + g % 2], now() - (g % 365) * interval '1 day',
                       5 + (g % 495)
                FROM generate_series(1, {orders}) g;
            INSERT INTO order_lines (order_id, product_id, qty)
                SELECT 1 + (g::bigint * 104729) % {orders}, 1 + g % 500, 1 + g % 9
                FROM generate_series(1, {lines}) g;
            ANALYZE;
            """
        )
    conn.commit()


@contextlib.contextmanager
def pg_database(admin_dsn: str) -> Iterator[str]:
    """A fresh database on the shared server; yields its DSN and drops it after."""
    import psycopg

    name = "sentia_advisor_" + uuid.uuid4().hex[:10]
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = admin_dsn.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_index_names(conn: Any) -> set[str]:
    rows = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog', "
        "'information_schema')"
    ).fetchall()
    conn.rollback()
    return {r[0] for r in rows}


def sqlite_index_names(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
