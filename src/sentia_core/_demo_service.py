"""The demo's *application* code: what a service author would write.

``sentia demo`` loads this file under its own module name
(``sentia_demo_service``, see ``_demo.load_service``), not as part of
``sentia_core``: the query optimizer attributes statements to the first frame
outside sentia_core, so the N+1 it finds is reported at the line below that
issues it, as it would be in your service.
"""

from __future__ import annotations

import random
import sqlite3
import time
from typing import Any

CUSTOMERS, ORDERS, PRODUCTS = 2_000, 20_000, 500


class Partner:
    """A simulated partner API: healthy, then down for a while, then healthy again."""

    def __init__(self, outage_start: float, outage_end: float) -> None:
        self.outage = (outage_start, outage_end)
        self.calls = 0

    def fetch(self, order_id: int) -> dict[str, Any]:
        self.calls += 1
        now = time.monotonic()
        if self.outage[0] <= now < self.outage[1]:
            raise ConnectionError("partner unavailable")
        return {"order": order_id, "status": "shipped"}


def build_db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    conn.executescript(
        """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, region TEXT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, status TEXT,
                             created_at TEXT, total REAL);
        CREATE TABLE order_lines (id INTEGER PRIMARY KEY, order_id INTEGER,
                                  product_id INTEGER, qty INTEGER);
        """
    )
    rng = random.Random(7)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO customers VALUES (?, ?, ?)",
        [(i, f"c{i}@example.com", rng.choice("NSEW")) for i in range(1, CUSTOMERS + 1)],
    )
    conn.executemany(
        "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
        [
            (i, rng.randint(1, CUSTOMERS), rng.choice(["open", "shipped", "done", "done"]),
             f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", rng.uniform(5, 500))
            for i in range(1, ORDERS + 1)
        ],
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO order_lines (order_id, product_id, qty) VALUES (?, ?, ?)",
        [(rng.randint(1, ORDERS), rng.randint(1, PRODUCTS), rng.randint(1, 5))
         for _ in range(ORDERS * 2)],
    )  # fmt: skip
    conn.execute("COMMIT")
    return conn


def orders_page(db: Any, customer_id: int) -> list[tuple[Any, ...]]:
    """A request handler with an N+1: one query for the orders, one per order for its lines."""
    orders = db.execute(
        "SELECT id, status, total FROM orders WHERE customer_id = ? ORDER BY created_at DESC",
        (customer_id,),
    ).fetchall()
    return [
        (o, db.execute("SELECT product_id, qty FROM order_lines WHERE order_id = ?",
                       (o[0],)).fetchall())
        for o in orders
    ]  # fmt: skip
