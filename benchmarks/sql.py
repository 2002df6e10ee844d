"""QueryOptimizer capture cost and fingerprinting speed, side by side with peers.

Run: ``python benchmarks/sql.py`` (``--quick`` for a smoke run, ``--json PATH``).

Sections:

1. ``record`` of an already-seen parameterized query (the hot path, every
   statement of a service): the median cost in ns, against a 3 µs budget,
   next to what users wire into a query hook today: a prometheus_client
   ``Histogram`` observation labelled by statement. Variants: sampling off,
   and inside a unit of work (N+1 tracking walks the stack).
2. A literal-laden statement seen for the first time (each call builds a
   new string, as an application inlining values does): sentia's
   ``fingerprint`` and ``record`` against ``pglast.fingerprint`` (libpg_query,
   C; target: no slower) and ``sqlparse.parse`` (reported).
3. A short, compact hand-written statement (``id=5``, lower case): little
   text per fixed cost, pglast's best case (reported).
4. A 50-row multi-row INSERT seen for the first time (big statements).
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import pglast
import prometheus_client
import sqlparse
from _harness import Suite, parse_args

from sentia_core.sql import QueryOptimizer, fingerprint

SEEN = "SELECT orders.id, orders.total, orders.status FROM orders WHERE orders.customer_id = ?"

# Literal-laden, as an application that formats values into SQL sends it.
LADEN = (
    "SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id "
    "WHERE o.status = 'shipped' AND o.created_at > '2024-01-{day:02d} 10:00:00' "
    "AND o.total >= {n}.95 AND c.country IN ('DE', 'FR', 'IT', 'ES') AND o.warehouse_id = {n} "
    "ORDER BY o.created_at DESC LIMIT 50 OFFSET {off}"
)
COMPACT = "select id,name from users where id={n} and status='active' and score>-{day}.5"


def laden(n: int) -> str:
    return LADEN.format(n=n, day=n % 28 + 1, off=n % 1000)


def compact(n: int) -> str:
    return COMPACT.format(n=n, day=n % 28 + 1)


def bulk_insert(n: int) -> str:
    rows = ", ".join(f"({n + i}, 'sku-{n}-{i}', {i}.5, {i % 7})" for i in range(50))
    return f"INSERT INTO order_lines (order_id, sku, price, qty) VALUES {rows}"


def fresh(make: Callable[[int], str]) -> Callable[[], str]:
    """A zero-argument callable returning a never-seen-before statement each call."""
    counter = itertools.count(1)
    return lambda: make(next(counter))


def main() -> None:
    args = parse_args(__doc__ or "", None)
    suite = Suite.from_args("sql", args)

    # -- 1. record, already seen ------------------------------------------------
    opt = QueryOptimizer(log_events=False)  # defaults: sample_rate=0.1
    quiet = QueryOptimizer(sample_rate=0.0, log_events=False)
    in_unit = QueryOptimizer(sample_rate=0.0, log_events=False, nplusone_threshold=10**9)
    registry = prometheus_client.CollectorRegistry()
    hist = prometheus_client.Histogram(
        "db_query_seconds", "query time", ["statement"], registry=registry
    )
    for o in (opt, quiet, in_unit):
        o.record(SEEN, 0.0012)
    unit = in_unit.unit_of_work("bench")
    unit.__enter__()
    cases = {
        "sentia record": lambda: opt.record(SEEN, 0.0012),
        "sentia record, sampling off": lambda: quiet.record(SEEN, 0.0012),
        "sentia record, in a unit of work": lambda: in_unit.record(SEEN, 0.0012),
        "prometheus Histogram.labels(sql).observe": lambda: hist.labels(SEEN).observe(0.0012),
    }
    m = suite.compare("record: already-seen parameterized query", cases, number=20_000, rounds=15)
    unit.__exit__(None, None, None)
    suite.ratio("sentia record / 3 us budget", m["sentia record"], 3000.0, target=1.0)
    suite.ratio(
        "sentia record / prometheus observe",
        m["sentia record"],
        m["prometheus Histogram.labels(sql).observe"],
    )
    suite.note("record already seen, median (ns)", round(m["sentia record"], 1))
    stats = opt.stats()
    suite.note("record: shapes after the run", stats.distinct_shapes)

    # -- 2. literal-laden, first sight -----------------------------------------
    first = QueryOptimizer(sample_rate=0.0, log_events=False, max_cached_statements=1000)
    make = fresh(laden)
    assert fingerprint(laden(1)) == fingerprint(laden(2))
    cases = {
        "sentia fingerprint": lambda: fingerprint(make()),
        "sentia record (first sight)": lambda: first.record(make(), 0.001),
        "pglast.fingerprint": lambda: pglast.fingerprint(make()),
        "sqlparse.parse": lambda: sqlparse.parse(make()),
        "(string formatting alone)": make,
    }
    m = suite.compare(
        "literal-laden statement seen for the first time", cases, number=1_000, rounds=9
    )
    base = m["(string formatting alone)"]
    net = {k: max(v - base, 1.0) for k, v in m.items()}
    suite.ratio(
        "fingerprint / pglast.fingerprint",
        net["sentia fingerprint"],
        net["pglast.fingerprint"],
        target=1.0,
    )
    suite.ratio(
        "record (first sight) / pglast.fingerprint",
        net["sentia record (first sight)"],
        net["pglast.fingerprint"],
        target=1.0,
    )
    suite.ratio("fingerprint / sqlparse.parse", net["sentia fingerprint"], net["sqlparse.parse"])
    suite.note("first sight: fingerprint net (ns)", round(net["sentia fingerprint"], 1))
    suite.note("first sight: pglast.fingerprint net (ns)", round(net["pglast.fingerprint"], 1))

    # -- 3. short compact hand-written statement ---------------------------------
    make_c = fresh(compact)
    cases = {
        "sentia fingerprint": lambda: fingerprint(make_c()),
        "pglast.fingerprint": lambda: pglast.fingerprint(make_c()),
        "sqlparse.parse": lambda: sqlparse.parse(make_c()),
        "(string formatting alone)": make_c,
    }
    m = suite.compare("compact hand-written statement, first sight", cases, number=1_000, rounds=9)
    base = m["(string formatting alone)"]
    net = {k: max(v - base, 1.0) for k, v in m.items()}
    suite.ratio(
        "fingerprint / pglast.fingerprint",
        net["sentia fingerprint"],
        net["pglast.fingerprint"],
    )
    suite.ratio(
        "fingerprint / sqlparse.parse",
        net["sentia fingerprint"],
        net["sqlparse.parse"],
    )

    # -- 4. a 50-row INSERT ---------------------------------------------------------
    make_b = fresh(bulk_insert)
    cases = {
        "sentia fingerprint": lambda: fingerprint(make_b()),
        "pglast.fingerprint": lambda: pglast.fingerprint(make_b()),
        "(string formatting alone)": make_b,
    }
    m = suite.compare("50-row multi-row INSERT, first sight", cases, number=200, rounds=9)
    base = m["(string formatting alone)"]
    net = {k: max(v - base, 1.0) for k, v in m.items()}
    suite.ratio(
        "fingerprint / pglast.fingerprint", net["sentia fingerprint"], net["pglast.fingerprint"]
    )

    suite.finish(args)


if __name__ == "__main__":
    main()
