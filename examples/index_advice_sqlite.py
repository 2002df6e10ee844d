"""Index advice on SQLite, end to end: analyze, suggest, verify, apply, measure.

A small order database gets a realistic read/write workload. The workload is
captured (calls and time per query shape, in the fingerprint form the
QueryOptimizer records: literals replaced by ``?``), analyzed, and turned
into index suggestions. Each suggestion is checked against SQLite's own
planner inside a rolled-back savepoint, the accepted ones are created, and
the same workload runs again to show the speed-up.

Run: ``python examples/index_advice_sqlite.py`` (no network; about 10 s).
"""

from __future__ import annotations

import random
import sqlite3
import time

from sentia_core.sql import (
    ShapeWorkload,
    analyze,
    apply,
    maintenance,
    read_column_stats,
    read_existing_indexes,
    suggest_indexes,
    verify,
)

CUSTOMERS, ORDERS = 4_000, 40_000
STATUSES = ["new", "open", "shipped", "done"]


def build() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.executescript(
        """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT UNIQUE, region TEXT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, status TEXT,
                             created_at TEXT, total REAL);
        CREATE TABLE order_lines (id INTEGER PRIMARY KEY, order_id INTEGER,
                                  product_id INTEGER, qty INTEGER);
        """
    )
    rng = random.Random(42)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO customers VALUES (?, ?, ?)",
        [(i, f"c{i}@example.com", rng.choice("NSEW")) for i in range(1, CUSTOMERS + 1)],
    )
    conn.executemany(
        "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
        [
            (
                i,
                rng.randint(1, CUSTOMERS),
                rng.choices(STATUSES, [1, 2, 3, 14])[0],
                f"2025-{1 + i * 12 // (ORDERS + 1):02d}-{rng.randint(1, 28):02d}",
                round(rng.uniform(10, 900), 2),
            )
            for i in range(1, ORDERS + 1)
        ],
    )
    conn.executemany(
        "INSERT INTO order_lines (order_id, product_id, qty) VALUES (?, ?, ?)",
        [
            (rng.randint(1, ORDERS), rng.randint(1, 800), rng.randint(1, 9))
            for _ in range(ORDERS * 2)
        ],
    )
    conn.execute("COMMIT")
    return conn


# (shape as the optimizer fingerprints it, calls, parameters)
WORKLOAD = [
    (
        "SELECT id, status, total FROM orders WHERE customer_id = ? "
        "ORDER BY created_at DESC LIMIT ?",
        60,
        lambda r: (r.randint(1, CUSTOMERS), 10),
    ),
    (
        "SELECT product_id, qty FROM order_lines WHERE order_id = ?",
        80,
        lambda r: (r.randint(1, ORDERS),),
    ),
    (
        "SELECT o.id, l.product_id FROM orders o JOIN order_lines l ON l.order_id = o.id "
        "WHERE o.customer_id = ? AND o.status = ?",
        30,
        lambda r: (r.randint(1, CUSTOMERS), "open"),
    ),
    (
        "SELECT count(*) FROM orders WHERE status = ? AND created_at >= ?",
        10,
        lambda r: ("open", "2025-12-01"),
    ),
    ("SELECT id FROM customers WHERE lower(email) = ?", 5, lambda r: ("c7@example.com",)),
    (
        "UPDATE orders SET status = ? WHERE id = ?",
        20,
        lambda r: ("shipped", r.randint(1, ORDERS)),
    ),
]


def run(conn: sqlite3.Connection) -> tuple[list[ShapeWorkload], float]:
    """Run the workload once (same parameters every time); time each shape."""
    rng = random.Random(7)
    plan = [i for i, (_, calls, _) in enumerate(WORKLOAD) for _ in range(calls)]
    rng.shuffle(plan)
    spent = [0.0] * len(WORKLOAD)
    start = time.perf_counter()
    for i in plan:
        sql, _, params = WORKLOAD[i]
        t0 = time.perf_counter()
        conn.execute(sql, params(rng)).fetchall()
        spent[i] += time.perf_counter() - t0
    elapsed = time.perf_counter() - start
    shapes = [ShapeWorkload(sql, calls, spent[i]) for i, (sql, calls, _) in enumerate(WORKLOAD)]
    return shapes, elapsed


def main() -> None:
    conn = build()
    print(f"database: {CUSTOMERS} customers, {ORDERS} orders, {ORDERS * 2} order lines")
    shapes, before = run(conn)
    print(f"workload without secondary indexes: {before:.2f} s\n")

    print("== analysis of each shape ==")
    for shape in shapes:
        a = analyze(shape.fingerprint)
        print(f"- {shape.fingerprint}")
        print(
            f"    kind={a.kind} tables={', '.join(a.tables)} "
            f"calls={shape.calls} time={shape.total_time:.3f} s"
        )
        if a.equality:
            print("    equality:", ", ".join(f"{p.column} {p.op}" for p in a.equality))
        if a.ranges:
            print("    range:   ", ", ".join(f"{p.column} {p.op}" for p in a.ranges))
        if a.joins:
            print("    joins:   ", ", ".join(f"{j.left} = {j.right}" for j in a.joins))
        if a.order_by:
            desc = {True: " DESC", False: ""}
            print("    order by:", ", ".join(f"{o.column}{desc[o.descending]}" for o in a.order_by))
        for u in a.unindexable:
            print(f"    no btree index can serve {u.text!r}: {u.reason}")

    print("\n== suggestions ==")
    suggestions = suggest_indexes(
        shapes, read_existing_indexes(conn), column_stats=read_column_stats(conn)
    )
    for s in suggestions:
        print(f"- {s.ddl}\n    why: {s.why}")

    print("\n== verification against SQLite's planner (savepoint, rolled back) ==")
    verified = verify(suggestions, conn, shapes)
    for v in verified:
        print(f"- {v.suggestion.name}: {v.verdict}")
        for c in v.checks:
            print(f"    {c.outcome:9s} {c.plan_before}  ->  {c.plan_after}")

    print("\n== apply (opt-in; dry_run=False) ==")
    for a in apply(verified, conn, dry_run=False, window=before):
        print(f"- {a.status:8s} {a.ddl}" + (f"  ({a.reason})" if a.reason else ""))

    print("\n== maintenance ==")
    report = maintenance(conn)
    print("  statistics refreshed for:", ", ".join(report.analyzed) or "nothing (all fresh)")

    _, after = run(conn)
    print(f"\nworkload with the verified indexes: {after:.2f} s  (speed-up {before / after:.1f}x)")
    conn.close()


if __name__ == "__main__":
    main()
