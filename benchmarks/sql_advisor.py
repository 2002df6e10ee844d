"""Index advice on a manufacturing workload: no indexes vs sentia_core vs every column.

Run: ``python benchmarks/sql_advisor.py`` (``--quick`` for a smoke run with a
small data set, ``--json PATH``).

A plant's order system (customers, products, orders, order lines, inventory;
26 query shapes: shop-floor lists, order history, stock checks, demand
reports, dashboards, and the writes that keep them moving) runs on three
copies of the same database:

* **no indexes** beyond the primary keys and UNIQUE constraints;
* **sentia_core**: the workload is captured once (calls and time per shape),
  ``suggest_indexes`` proposes, ``verify`` keeps what the planner accepts
  (HypoPG on PostgreSQL, rolled-back savepoints on SQLite) and ``apply``
  creates it (calls/hour measured over the capture run);
* **every filtered column**: one single-column index on every column the
  workload filters or joins on (the common hand-made approach).

Every copy is ANALYZEd. The same statement sequence (same seeded parameters)
runs on each copy, alternating, and the median total workload time is
reported. Target (issue 7): sentia_core reaches at least 90% of the
every-column speed-up (workload time sentia/every-column <= 1/0.9) with at
most half as many indexes. Done on SQLite and, when PostgreSQL 15 binaries
exist, on a throwaway PostgreSQL cluster (``tests._servers.PostgresServer``).

A last section times the analysis of one new shape against parsing alone
(``sqlparse.parse``, ``pglast.parse_sql``), for scale.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests._servers

import pglast
import sqlparse
from _harness import Suite, parse_args

from sentia_core.sql import (
    ShapeWorkload,
    analyze,
    apply,
    read_column_stats,
    read_existing_indexes,
    suggest_indexes,
    verify,
)
from sentia_core.sql._analyze import _analyze_uncached  # the cost of a first analysis

# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #

REGIONS = ["north", "south", "east", "west", "central", "alpine", "coastal", "export"]
SEGMENTS = ["oem", "distributor", "retail", "service"]
PLANTS = ["lyon", "turin", "graz", "brno", "porto"]
WAREHOUSES = ["W1", "W2", "W3", "W4", "W5"]
STATUSES = ["new", "open", "picking", "shipped", "done", "cancelled"]
STATUS_WEIGHTS = [0.03, 0.06, 0.03, 0.13, 0.70, 0.05]
FAMILIES = [f"family-{i:02d}" for i in range(40)]
CATEGORIES = ["fasteners", "bearings", "seals", "motors", "sensors", "cables", "valves", "tools"]
WORDS = ["hex", "bolt", "nut", "washer", "bearing", "seal", "motor", "sensor", "valve", "cable"]
EPOCH = 1_640_995_200  # 2022-01-01 00:00:00 UTC
DAY = 86_400
SPAN_DAYS = 900
NOW = EPOCH + SPAN_DAYS * DAY


_T0 = time.perf_counter()


def progress(what: str) -> None:
    """A progress line on stderr (the figures go to stdout)."""
    print(f"[{time.perf_counter() - _T0:6.1f} s] {what}", file=sys.stderr, flush=True)


def ts(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))


def day(seconds: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(seconds))


@dataclass
class Sizes:
    customers: int
    products: int
    orders: int


def generate(sizes: Sizes, seed: int = 1) -> dict[str, list[tuple[Any, ...]]]:
    """Rows for every table (the same rows go into SQLite and PostgreSQL)."""
    rng = random.Random(seed)
    customers = [
        (
            i,
            f"Customer {i}",
            f"buyer{i}@example.com",
            rng.choice(REGIONS),
            rng.choice(SEGMENTS),
            day(EPOCH + rng.randrange(SPAN_DAYS) * DAY),
        )
        for i in range(1, sizes.customers + 1)
    ]
    products = [
        (
            i,
            f"SKU-{i:06d}",
            f"{rng.choice(WORDS)} {rng.choice(WORDS)} {i}",
            rng.choice(FAMILIES),
            rng.choice(CATEGORIES),
            round(rng.uniform(0.5, 900.0), 2),
            1 if rng.random() < 0.9 else 0,
        )
        for i in range(1, sizes.products + 1)
    ]
    orders, lines = [], []
    line_id = 1
    for i in range(1, sizes.orders + 1):
        created = EPOCH + (i / sizes.orders) * SPAN_DAYS * DAY + rng.uniform(-DAY, DAY)
        status = rng.choices(STATUSES, STATUS_WEIGHTS)[0]
        # recent orders are still in flight
        if created > NOW - 20 * DAY and status == "done":
            status = rng.choice(["open", "picking", "shipped"])
        customer = int(sizes.customers * rng.random() ** 2) + 1  # some customers buy a lot
        orders.append(
            (
                i,
                customer,
                status,
                rng.choice(PLANTS),
                rng.choices([1, 2, 3, 4], [0.05, 0.15, 0.5, 0.3])[0],
                ts(created),
                day(created + rng.randint(5, 40) * DAY),
                round(rng.uniform(20, 20_000), 2),
            )
        )
        for _ in range(rng.randint(1, 5)):
            product = int(sizes.products * rng.random() ** 1.5) + 1
            lines.append(
                (
                    line_id,
                    i,
                    product,
                    rng.randint(1, 50),
                    round(rng.uniform(0.5, 900), 2),
                    status if status != "picking" else rng.choice(["open", "picking"]),
                )
            )
            line_id += 1
    inventory = []
    inv_id = 1
    for p in range(1, sizes.products + 1):
        for w in WAREHOUSES:
            inventory.append(
                (
                    inv_id,
                    p,
                    w,
                    rng.randint(0, 500),
                    rng.randint(10, 100),
                    ts(NOW - rng.randrange(60 * DAY)),
                )
            )
            inv_id += 1
    return {
        "customers": customers,
        "products": products,
        "orders": orders,
        "order_lines": lines,
        "inventory": inventory,
    }


SQLITE_SCHEMA = """
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE,
    region TEXT NOT NULL, segment TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE products (id INTEGER PRIMARY KEY, sku TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
    family TEXT NOT NULL, category TEXT NOT NULL, price REAL NOT NULL, active INTEGER NOT NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, status TEXT NOT NULL,
    plant TEXT NOT NULL, priority INTEGER NOT NULL, created_at TEXT NOT NULL,
    due_date TEXT NOT NULL, total REAL NOT NULL);
CREATE TABLE order_lines (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL,
    product_id INTEGER NOT NULL, qty INTEGER NOT NULL, unit_price REAL NOT NULL,
    status TEXT NOT NULL);
CREATE TABLE inventory (id INTEGER PRIMARY KEY, product_id INTEGER NOT NULL,
    warehouse TEXT NOT NULL, qty_on_hand INTEGER NOT NULL, reorder_point INTEGER NOT NULL,
    updated_at TEXT NOT NULL);
"""

PG_SCHEMA = """
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text NOT NULL UNIQUE,
    region text NOT NULL, segment text NOT NULL, created_at date NOT NULL);
CREATE TABLE products (id serial PRIMARY KEY, sku text NOT NULL UNIQUE, name text NOT NULL,
    family text NOT NULL, category text NOT NULL, price numeric NOT NULL, active int NOT NULL);
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL, status text NOT NULL,
    plant text NOT NULL, priority int NOT NULL, created_at timestamp NOT NULL,
    due_date date NOT NULL, total numeric NOT NULL);
CREATE TABLE order_lines (id serial PRIMARY KEY, order_id int NOT NULL, product_id int NOT NULL,
    qty int NOT NULL, unit_price numeric NOT NULL, status text NOT NULL);
CREATE TABLE inventory (id serial PRIMARY KEY, product_id int NOT NULL, warehouse text NOT NULL,
    qty_on_hand int NOT NULL, reorder_point int NOT NULL, updated_at timestamp NOT NULL);
"""

# --------------------------------------------------------------------------- #
# Workload: (shape, calls per run, parameters)
# --------------------------------------------------------------------------- #

Params = Callable[[random.Random, Sizes], tuple[Any, ...]]


def _cust(r: random.Random, s: Sizes) -> int:
    return int(s.customers * r.random() ** 2) + 1


def _order(r: random.Random, s: Sizes) -> int:
    return r.randint(1, s.orders)


def _recent_order(r: random.Random, s: Sizes) -> int:
    return r.randint(max(1, s.orders - s.orders // 30), s.orders)


def _product(r: random.Random, s: Sizes) -> int:
    return int(s.products * r.random() ** 1.5) + 1


def _since(days: int) -> str:
    return ts(NOW - days * DAY)


SHAPES: list[tuple[str, int, Params]] = [
    # order desk
    (
        "SELECT id, status, total, created_at FROM orders WHERE customer_id = ? "
        "ORDER BY created_at DESC LIMIT 20",
        40,
        lambda r, s: (_cust(r, s),),
    ),
    (
        "SELECT count(*) FROM orders WHERE customer_id = ? AND status = ?",
        20,
        lambda r, s: (_cust(r, s), r.choice(["open", "picking", "shipped"])),
    ),
    (
        "SELECT id, product_id, qty, unit_price, status FROM order_lines WHERE order_id = ?",
        60,
        lambda r, s: (_order(r, s),),
    ),
    (
        "SELECT o.id, o.status, p.sku, p.name, l.qty FROM orders o "
        "JOIN order_lines l ON l.order_id = o.id JOIN products p ON p.id = l.product_id "
        "WHERE o.id = ?",
        30,
        lambda r, s: (_order(r, s),),
    ),
    (
        "SELECT id, name, price FROM products WHERE sku = ?",
        40,
        lambda r, s: (f"SKU-{_product(r, s):06d}",),
    ),
    (
        "SELECT id, name FROM customers WHERE email = ?",
        20,
        lambda r, s: (f"buyer{_cust(r, s)}@example.com",),
    ),
    # shop floor
    (
        "SELECT id, customer_id, priority, due_date FROM orders WHERE plant = ? AND status = ? "
        "ORDER BY due_date LIMIT 50",
        25,
        lambda r, s: (r.choice(PLANTS), r.choice(["open", "picking"])),
    ),
    (
        "SELECT status, count(*) FROM orders WHERE plant = ? AND created_at >= ? GROUP BY status",
        6,
        lambda r, s: (r.choice(PLANTS), _since(7)),
    ),
    (
        "SELECT id, customer_id, due_date FROM orders WHERE status = ? AND due_date < ?",
        10,
        lambda r, s: ("open", day(NOW - 3 * DAY)),
    ),
    (
        "SELECT id FROM orders WHERE priority = ? AND due_date BETWEEN ? AND ?",
        10,
        lambda r, s: (1, day(NOW), day(NOW + 3 * DAY)),
    ),
    (
        "UPDATE orders SET status = ? WHERE id = ?",
        20,
        lambda r, s: (r.choice(["picking", "shipped"]), _recent_order(r, s)),
    ),
    (
        "UPDATE order_lines SET status = ? WHERE order_id = ?",
        20,
        lambda r, s: ("shipped", _recent_order(r, s)),
    ),
    # stock
    (
        "SELECT qty_on_hand, reorder_point FROM inventory WHERE product_id = ? AND warehouse = ?",
        50,
        lambda r, s: (_product(r, s), r.choice(WAREHOUSES)),
    ),
    (
        "SELECT warehouse, qty_on_hand FROM inventory WHERE product_id = ?",
        20,
        lambda r, s: (_product(r, s),),
    ),
    (
        "UPDATE inventory SET qty_on_hand = qty_on_hand - ?, updated_at = ? "
        "WHERE product_id = ? AND warehouse = ?",
        40,
        lambda r, s: (r.randint(1, 5), ts(NOW), _product(r, s), r.choice(WAREHOUSES)),
    ),
    (
        "SELECT i.product_id, p.sku, i.qty_on_hand FROM inventory i "
        "JOIN products p ON p.id = i.product_id "
        "WHERE i.warehouse = ? AND i.qty_on_hand < i.reorder_point",
        2,
        lambda r, s: (r.choice(WAREHOUSES),),
    ),
    # catalogue and customers
    (
        "SELECT id, sku, name, price FROM products WHERE family = ? AND active = ? ORDER BY name",
        12,
        lambda r, s: (r.choice(FAMILIES), 1),
    ),
    ("SELECT id, sku FROM products WHERE name LIKE ?", 3, lambda r, s: (f"%{r.choice(WORDS)}%",)),
    (
        "SELECT id, name FROM customers WHERE segment = ? AND region = ? ORDER BY name LIMIT 50",
        8,
        lambda r, s: (r.choice(SEGMENTS), r.choice(REGIONS)),
    ),
    # planning and reports
    (
        "SELECT sum(l.qty) FROM order_lines l JOIN orders o ON o.id = l.order_id "
        "WHERE l.product_id = ? AND o.created_at >= ?",
        15,
        lambda r, s: (_product(r, s), _since(90)),
    ),
    (
        "SELECT order_id, qty FROM order_lines WHERE product_id = ? AND status = ?",
        15,
        lambda r, s: (_product(r, s), "open"),
    ),
    (
        "SELECT o.id, o.total FROM orders o JOIN customers c ON c.id = o.customer_id "
        "WHERE c.region = ? AND o.created_at >= ? ORDER BY o.created_at DESC LIMIT 100",
        5,
        lambda r, s: (r.choice(REGIONS), _since(2)),
    ),
    (
        "SELECT sum(total) FROM orders WHERE created_at >= ? AND created_at < ?",
        5,
        lambda r, s: (_since(1), ts(NOW)),
    ),
    (
        "SELECT customer_id, sum(total) FROM orders WHERE created_at >= ? "
        "GROUP BY customer_id ORDER BY 2 DESC LIMIT 10",
        2,
        lambda r, s: (_since(30),),
    ),
    # order entry
    (
        "INSERT INTO orders (customer_id, status, plant, priority, created_at, due_date, total) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        10,
        lambda r, s: (
            _cust(r, s),
            "new",
            r.choice(PLANTS),
            3,
            ts(NOW),
            day(NOW + 14 * DAY),
            round(r.uniform(20, 2000), 2),
        ),
    ),
    (
        "INSERT INTO order_lines (order_id, product_id, qty, unit_price, status) "
        "VALUES (?, ?, ?, ?, ?)",
        30,
        lambda r, s: (_recent_order(r, s), _product(r, s), r.randint(1, 20), 9.5, "new"),
    ),
]


def statements(sizes: Sizes, scale: float, seed: int = 11) -> list[tuple[int, tuple[Any, ...]]]:
    """The workload: every shape's calls (times ``scale``), shuffled, with parameters."""
    rng = random.Random(seed)
    plan = [
        i for i, (_, calls, _) in enumerate(SHAPES) for _ in range(max(1, round(calls * scale)))
    ]
    rng.shuffle(plan)
    return [(i, SHAPES[i][2](rng, sizes)) for i in plan]


# --------------------------------------------------------------------------- #
# Databases
# --------------------------------------------------------------------------- #


class Db:
    """One copy of the database, with the statements prepared for its driver."""

    def __init__(self, conn: Any, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect
        self.texts = [
            sql if dialect == "sqlite" else sql.replace("?", "%s") for sql, _, _ in SHAPES
        ]

    def run(self, work: Sequence[tuple[int, tuple[Any, ...]]]) -> None:
        execute = self.conn.execute
        texts = self.texts
        for i, params in work:
            cur = execute(texts[i], params)
            if cur.description is not None:
                cur.fetchall()

    def capture(
        self, work: Sequence[tuple[int, tuple[Any, ...]]]
    ) -> tuple[list[ShapeWorkload], float]:
        """Run once, timing each statement: what a QueryOptimizer would have recorded."""
        calls = [0] * len(SHAPES)
        spent = [0.0] * len(SHAPES)
        execute = self.conn.execute
        start = time.perf_counter()
        for i, params in work:
            t0 = time.perf_counter()
            cur = execute(self.texts[i], params)
            if cur.description is not None:
                cur.fetchall()
            spent[i] += time.perf_counter() - t0
            calls[i] += 1
        window = time.perf_counter() - start
        shapes = [
            ShapeWorkload(SHAPES[i][0], calls[i], spent[i]) for i in range(len(SHAPES)) if calls[i]
        ]
        return shapes, window

    def analyze_all(self) -> None:
        self.conn.execute("ANALYZE")

    def create(self, table: str, column: str) -> None:
        self.conn.execute(f"CREATE INDEX naive_{table}_{column} ON {table} ({column})")


def every_filtered_column(existing: Sequence[Any]) -> list[tuple[str, str]]:
    """One index per column the workload filters or joins on, as done by hand.

    Columns already leading an index (primary keys, UNIQUE constraints) are
    left out; so are columns only compared with another column of the same row.
    """
    leading = {(ix.table, ix.columns[0]) for ix in existing if ix.columns}
    out: list[tuple[str, str]] = []
    for sql, _, _ in SHAPES:
        a = analyze(sql)
        cols = list(a.filtered_columns) + [c for u in a.unindexable for c in u.columns]
        for c in cols:
            if c.table is None:
                continue
            key = (c.table, c.column)
            if key not in leading and key not in out:
                out.append(key)
    return out


def load_sqlite(path: Path, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(SQLITE_SCHEMA)
    for table, data in rows.items():
        marks = ", ".join("?" * len(data[0]))
        conn.executemany(f"INSERT INTO {table} VALUES ({marks})", data)
    conn.commit()
    conn.close()


def open_sqlite(path: Path) -> Db:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -65536")
    return Db(conn, "sqlite")


def load_pg(dsn: str, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute(PG_SCHEMA)
        with conn.cursor() as cur:
            for table, data in rows.items():
                with cur.copy(f"COPY {table} FROM STDIN") as copy:
                    for row in data:
                        copy.write_row(row)
            for table in rows:
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
        conn.commit()


# --------------------------------------------------------------------------- #
# The comparison
# --------------------------------------------------------------------------- #


def advise(db: Db, shapes: list[ShapeWorkload], window: float) -> tuple[int, float, list[str]]:
    """suggest -> verify -> apply on ``db``; returns (indexes created, seconds, report lines)."""
    t0 = time.perf_counter()
    existing = read_existing_indexes(db.conn)
    stats = read_column_stats(db.conn)
    suggestions = suggest_indexes(shapes, existing, column_stats=stats)
    verified = verify(suggestions, db.conn, shapes)
    advice_seconds = time.perf_counter() - t0
    applied = apply(verified, db.conn, dry_run=False, window=window)
    verdicts = {v.suggestion.name: v for v in verified}
    lines = []
    for a in applied:
        v = verdicts[a.name]
        what = "created" if a.status == "created" else f"{a.status}: {a.reason}"
        benefit = f"{v.benefit:.2f} s" if v.accepted else "-"
        lines.append(f"{a.table}({', '.join(a.columns)}) benefit {benefit}: {what}")
    created = sum(1 for a in applied if a.status == "created")
    return created, advice_seconds, lines


def compare(
    suite: Suite,
    label: str,
    dbs: dict[str, Db],
    sizes: Sizes,
    scale: float,
    rounds: int,
) -> None:
    none, mine, naive = dbs["none"], dbs["sentia"], dbs["naive"]
    work = statements(sizes, scale)
    progress(f"{label}: capturing the workload")
    shapes, window = none.capture(work)
    progress(f"{label}: suggest, verify, apply")
    created, advice_seconds, lines = advise(mine, shapes, window)
    columns = every_filtered_column(read_existing_indexes(naive.conn))
    for table, column in columns:
        naive.create(table, column)
    for db in dbs.values():
        db.analyze_all()
    print(f"\n{label}: sentia_core's suggestions after verify and apply ({created} created)")
    for line in lines:
        print("  " + line)
    print(
        f"{label}: every filtered column ({len(columns)} indexes): "
        + ", ".join(f"{t}.{c}" for t, c in columns)
    )
    cases = {
        "no indexes": lambda: none.run(work),
        f"sentia_core ({created} indexes)": lambda: mine.run(work),
        f"every filtered column ({len(columns)} indexes)": lambda: naive.run(work),
    }
    progress(f"{label}: timing the workload on the three copies")
    med = suite.compare(
        f"{label}: whole workload ({len(work)} statements, {len(SHAPES)} shapes), ns per run",
        cases,
        number=1,
        rounds=rounds,
    )
    t_none, t_mine, t_naive = med.values()
    suite.ratio(
        "workload time sentia/every-column (<= 1.111 means >= 90% of its speed-up)",
        t_mine,
        t_naive,
        target=round(1 / 0.9, 3),
    )
    suite.ratio("indexes sentia/every-column", created, len(columns), target=0.5)
    suite.note(f"{label} speed-up sentia_core (x)", round(t_none / t_mine, 1))
    suite.note(f"{label} speed-up every filtered column (x)", round(t_none / t_naive, 1))
    suite.note(
        f"{label} sentia share of the every-column speed-up",
        f"{(t_none / t_mine) / (t_none / t_naive):.0%}",
    )
    suite.note(f"{label} indexes sentia / every column", f"{created} / {len(columns)}")
    suite.note(f"{label} suggest+verify time (s)", round(advice_seconds, 2))


def sqlite_section(
    suite: Suite, sizes: Sizes, scale: float, rounds: int, before_timing: Callable[[], object]
) -> None:
    progress("SQLite: generating and loading data")
    rows = generate(sizes)
    tmp = Path(tempfile.mkdtemp(prefix="sentia-bench-sqlite-"))
    try:
        base = tmp / "none.db"
        load_sqlite(base, rows)
        for name in ("sentia", "naive"):
            shutil.copy(base, tmp / f"{name}.db")
        progress("SQLite: waiting for PostgreSQL to finish starting")
        before_timing()  # nothing else may run while the workload is timed
        dbs = {name: open_sqlite(tmp / f"{name}.db") for name in ("none", "sentia", "naive")}
        compare(suite, "SQLite", dbs, sizes, scale, rounds)
        for db in dbs.values():
            db.conn.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class PostgresStarter:
    """Starts the throwaway cluster in a thread (initdb is slow), stops it the same way."""

    def __init__(self) -> None:
        self.server: Any = None
        self.error = ""
        self.thread: threading.Thread | None = None
        try:
            from tests._servers import PG_BIN
        except ImportError as exc:  # pragma: no cover - run outside the repository
            self.error = f"skipped: {exc}"
            return
        if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None:
            self.error = "skipped: no PostgreSQL 15 initdb / runuser on this machine"
            return
        self.thread = threading.Thread(target=self._start, daemon=True)
        self.thread.start()

    def _start(self) -> None:
        from tests._servers import PostgresServer

        try:
            self.server = PostgresServer()
        except BaseException as exc:  # pytest.skip/fail raise BaseException subclasses
            self.error = f"skipped: could not start PostgreSQL ({exc})"

    def wait(self) -> Any:
        if self.thread is not None:
            self.thread.join()
        return self.server

    def stop_in_background(self) -> threading.Thread | None:
        if self.server is None:
            return None
        stopper = threading.Thread(target=self.server.stop)
        stopper.start()
        return stopper


def postgres_section(
    suite: Suite, starter: PostgresStarter, sizes: Sizes, scale: float, rounds: int
) -> None:
    import psycopg

    server = starter.wait()
    if server is None:
        print(f"\nPostgreSQL: {starter.error}")
        suite.note("PostgreSQL", starter.error)
        return
    base_dsn = server.dsn.rsplit("/", 1)[0]
    progress("PostgreSQL: loading data")
    with psycopg.connect(server.dsn, autocommit=True) as admin:
        admin.execute("CREATE DATABASE bench_none")
    load_pg(f"{base_dsn}/bench_none", generate(sizes))
    with psycopg.connect(server.dsn, autocommit=True) as admin:
        for name in ("sentia", "naive"):
            admin.execute(f"CREATE DATABASE bench_{name} TEMPLATE bench_none")
    dbs = {
        name: Db(psycopg.connect(f"{base_dsn}/bench_{name}", autocommit=True), "postgres")
        for name in ("none", "sentia", "naive")
    }
    try:
        compare(suite, "PostgreSQL", dbs, sizes, scale, rounds)
    finally:
        for db in dbs.values():
            db.conn.close()


def analysis_cost(suite: Suite) -> None:
    texts = [sql for sql, _, _ in SHAPES]
    pg_texts = []
    for sql in texts:
        n = 0
        out = []
        for ch in sql:
            if ch == "?":
                n += 1
                out.append(f"${n}")
            else:
                out.append(ch)
        pg_texts.append("".join(out))
    state = {"i": 0}

    def nxt() -> int:
        state["i"] = (state["i"] + 1) % len(texts)
        return state["i"]

    cases = {
        "sentia analyze (uncached)": lambda: _analyze_uncached(texts[nxt()]),
        "sqlparse.parse": lambda: sqlparse.parse(texts[nxt()]),
        "pglast.parse_sql": lambda: pglast.parse_sql(pg_texts[nxt()]),
        "sentia analyze (cached)": lambda: analyze(texts[nxt()]),
    }
    med = suite.compare(
        "analyze one shape of this workload vs parsing it alone", cases, number=200, rounds=7
    )
    suite.ratio(
        "sentia analyze (uncached) / sqlparse.parse",
        med["sentia analyze (uncached)"],
        med["sqlparse.parse"],
    )


def main() -> None:
    args = parse_args(__doc__ or "")
    suite = Suite.from_args("sql_advisor", args)
    if args.quick:
        sizes, scale, rounds = Sizes(500, 300, 4_000), 0.3, 3
    else:
        sizes, scale, rounds = Sizes(20_000, 5_000, 150_000), 1.0, args.rounds or 5
    suite.note(
        "data",
        f"{sizes.customers} customers, {sizes.products} products, {sizes.orders} orders, "
        f"~{sizes.orders * 3} order lines, {sizes.products * len(WAREHOUSES)} inventory rows",
    )
    starter = PostgresStarter()  # initdb runs while the SQLite part loads its data
    stopper = None
    try:
        # a full run waits for initdb before timing SQLite (accuracy); --quick
        # only proves the script works and lets them overlap
        wait = (lambda: None) if args.quick else starter.wait
        sqlite_section(suite, sizes, scale, rounds, before_timing=wait)
        postgres_section(suite, starter, sizes, scale, rounds)
    finally:
        stopper = starter.stop_in_background()
    progress("analysis cost")
    analysis_cost(suite)
    if stopper is not None:
        stopper.join()
    progress("done")
    suite.finish(args)


if __name__ == "__main__":
    main()
