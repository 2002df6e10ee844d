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
5. The real-world corpus (``tests/data/sql_corpus``: ~45,000 public
   statements, PostgreSQL's regression suite, sqlglot's fixtures, pgbench and
   SQLAlchemy output, with ~65,000 literal-only variants): ``fingerprint``
   against ``pglast.fingerprint`` statement by statement (each timed
   alternately, the median of a few runs per statement; the figure is the
   median of the per-statement ratios, overall, by path and by length), and
   the checks with libpg_query as the oracle: leaks, splits, merges.
   ``--quick`` takes a deterministic sample.
"""

from __future__ import annotations

import gc
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import _sqlcorpus as corpus
import pglast
import prometheus_client
import sqlparse
from _harness import Section, Suite, parse_args

from sentia_core.sql import QueryOptimizer, fingerprint, redact
from sentia_core.sql._fingerprint import _Bail, _fast_fingerprint

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

    corpus_sections(suite)
    suite.finish(args)


LENGTHS = ((0, 200, "under 200 characters"), (200, 1000, "200-999"), (1000, 10**9, "1000+"))


def _per_statement(texts: list[str], repeat: int) -> list[tuple[float, float]]:
    """(sentia ns, pglast ns) per text: medians of ``repeat`` alternating runs."""
    clock = time.perf_counter_ns
    rows = []
    gc.disable()
    try:
        for text in texts:
            mine, theirs = [], []
            for _ in range(repeat):
                t0 = clock()
                fingerprint(text)
                t1 = clock()
                pglast.fingerprint(text)
                t2 = clock()
                mine.append(t1 - t0)
                theirs.append(t2 - t1)
            rows.append((statistics.median(mine), statistics.median(theirs)))
    finally:
        gc.enable()
    return rows


def _fast(text: str) -> bool:
    try:
        _fast_fingerprint(text)
    except _Bail:
        return False
    return True


def corpus_sections(suite: Suite) -> None:
    if not corpus.available():
        suite.note("corpus", "not found (tests/data/sql_corpus is not in installed wheels)")
        return
    statements = corpus.load_statements()
    variants = corpus.load_variants()
    if suite.quick:
        statements_t = corpus.sample(statements, 1500)
        variants_t = corpus.sample(variants, 1500)
    else:
        statements_t, variants_t = statements, variants
    texts = [s.sql for s in statements_t]
    for text in texts[:500]:  # warm both sides' caches and code paths
        fingerprint(text)
        pglast.fingerprint(text)
    timings = _per_statement(texts, 3 if suite.quick else 5)
    fast = [_fast(t) for t in texts]
    groups: list[tuple[str, list[int]]] = [("all statements", list(range(len(texts))))]
    groups.append(("fast path", [i for i, f in enumerate(fast) if f]))
    groups.append(("general path", [i for i, f in enumerate(fast) if not f]))
    for low, high, label in LENGTHS:
        groups.append((label, [i for i, t in enumerate(texts) if low <= len(t) < high]))
    for label, idx in groups:
        if not idx:
            continue
        mine = [timings[i][0] for i in idx]
        theirs = [timings[i][1] for i in idx]
        ratios = [timings[i][0] / max(timings[i][1], 1.0) for i in idx]
        suite.sections.append(
            Section(
                title=f"corpus, {label} ({len(idx)} statements): per-statement medians",
                unit="ns/statement",
                medians={
                    "sentia fingerprint": statistics.median(mine),
                    "pglast.fingerprint": statistics.median(theirs),
                },
            )
        )
        suite.sections[-1].ratios.append(
            ("median per-statement fingerprint / pglast", "1", statistics.median(ratios))
        )
        suite.ratio("total time fingerprint / pglast", sum(mine), sum(theirs))
    suite.note("corpus: statements timed", len(texts))
    suite.note("corpus: fast-path share", round(sum(fast) / len(fast), 4))
    leak_texts = texts + [v.sql for v in variants_t if v.kind == "forms"]
    found = corpus.leaks(leak_texts, fingerprint, redact)
    suite.note("corpus: texts checked for leaks", found.checked)
    suite.note("corpus: leaks", len(found.leaky))
    g = corpus.grouping(fingerprint, statements, variants_t, corpus.documented_difference)
    suite.note("corpus: variants pglast groups with their statement", g.grouped_by_pg)
    suite.note("corpus: splits outside documented differences", len(g.splits))
    suite.note(
        "corpus: split share outside documented differences",
        len(g.splits) / max(g.grouped_by_pg, 1),
    )
    suite.note("corpus: splits from the documented VALUES difference", g.excused)
    suite.note("corpus: statements merged that pglast keeps apart", g.merged_statements)
    suite.note("corpus: merged share of statements", g.merged_statements / max(g.statements, 1))


if __name__ == "__main__":
    main()
