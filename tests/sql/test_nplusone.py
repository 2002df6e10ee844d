"""N+1 detection: one SELECT shape repeated from one line inside one unit of work."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from sentia_core._events import Event
from sentia_core.sql import (
    ExistingIndex,
    NPlusOneDetected,
    NPlusOneReport,
    QueryOptimizer,
    UnitOfWork,
    shape_id,
)
from sentia_core.testing import ManualClock

LOOKUP = "SELECT * FROM orders WHERE customer_id = {}"


def make(clock: ManualClock, **kw: Any) -> QueryOptimizer:
    kw.setdefault("log_events", False)
    return QueryOptimizer(clock=clock, sample_rate=0.0, **kw)


def lookups(opt: QueryOptimizer, n: int, sql: str = LOOKUP) -> None:
    for i in range(n):
        opt.record(sql.format(i), 0.001)  # the N+1 line


def line_of(marker: str) -> int:
    with open(__file__) as fh:
        for n, line in enumerate(fh, 1):
            if marker in line and "line_of(" not in line:
                return n
    raise AssertionError(marker)


@pytest.fixture
def opt(clock: ManualClock) -> QueryOptimizer:
    return make(clock)


# --------------------------------------------------------------------------- #
# What is reported
# --------------------------------------------------------------------------- #


def test_a_select_repeated_from_one_line_is_reported(opt: QueryOptimizer) -> None:
    with opt.unit_of_work("GET /customers"):
        lookups(opt, 7)
    (r,) = opt.nplusone_reports()
    assert isinstance(r, NPlusOneReport)
    assert r.fingerprint == "SELECT * FROM orders WHERE customer_id = ?"
    assert r.shape_id == shape_id(r.fingerprint)
    assert r.count == 7
    assert r.call_site.endswith(f"test_nplusone.py:{line_of('# the N+1 line')}")
    assert r.unit == "GET /customers"
    assert (r.table, r.column) == ("orders", "customer_id")
    assert r.indexed == "unknown"
    assert r.occurrences == 1
    assert "IN (...)" in r.fix and "selectinload" in r.fix and "joinedload" in r.fix
    assert "orders.customer_id" in r.fix
    assert opt.stats().nplusone_reports == 1


def test_below_the_threshold_nothing_is_reported(opt: QueryOptimizer) -> None:
    with opt.unit_of_work():
        lookups(opt, 4)
    assert opt.nplusone_reports() == []


def test_the_threshold_is_configurable(clock: ManualClock) -> None:
    opt = make(clock, nplusone_threshold=2)
    with opt.unit_of_work():
        lookups(opt, 2)
    assert len(opt.nplusone_reports()) == 1


def test_outside_a_unit_of_work_nothing_is_counted(opt: QueryOptimizer) -> None:
    lookups(opt, 50)
    assert opt.nplusone_reports() == []


def test_the_same_shape_from_different_lines_is_not_an_n_plus_one(opt: QueryOptimizer) -> None:
    with opt.unit_of_work():
        for i in range(3):
            opt.record(LOOKUP.format(i), 0.001)
        for i in range(3):
            opt.record(LOOKUP.format(i), 0.001)
    assert opt.nplusone_reports() == []


def test_repeated_writes_are_not_reported(opt: QueryOptimizer) -> None:
    with opt.unit_of_work():
        lookups(opt, 10, "UPDATE orders SET seen = 1 WHERE id = {}")
        lookups(opt, 10, "INSERT INTO audit (x) VALUES ({})")
    assert opt.nplusone_reports() == []


def test_each_unit_is_judged_on_its_own(opt: QueryOptimizer) -> None:
    for _ in range(3):
        with opt.unit_of_work():
            lookups(opt, 3)
    assert opt.nplusone_reports() == []


def test_occurrences_aggregate_across_units(opt: QueryOptimizer) -> None:
    for n in (6, 9, 5):
        with opt.unit_of_work("job"):
            lookups(opt, n)
    (r,) = opt.nplusone_reports()
    assert (r.occurrences, r.count) == (3, 9)
    assert opt.stats().nplusone_reports == 3


def test_reports_are_bounded(clock: ManualClock) -> None:
    opt = make(clock, max_reports=2)
    with opt.unit_of_work():
        for table in ("a", "b", "c"):
            lookups(opt, 5, f"SELECT * FROM {table} WHERE id = {{}}")
    assert [r.table for r in opt.nplusone_reports()] == ["b", "c"]


def test_listeners_get_each_report_and_the_log_has_no_literal(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    opt = QueryOptimizer(clock=clock, sample_rate=0.0)
    events: list[Event] = []
    opt.add_listener(events.append)
    with caplog.at_level(logging.WARNING, logger="sentia_core.sql"), opt.unit_of_work():
        for i in range(5):
            opt.record(f"SELECT * FROM users WHERE email = 'zqmail{i}@example.com'", 0.001)
    (event,) = events
    assert isinstance(event, NPlusOneDetected)
    assert event.report == opt.nplusone_reports()[0]
    assert event.at == clock.time() and event.source == "sql:default"
    assert "N+1" in caplog.text and "zqmail" not in caplog.text


# --------------------------------------------------------------------------- #
# Intended repetition
# --------------------------------------------------------------------------- #


def test_an_allow_pattern_on_the_call_site_silences_it(clock: ManualClock) -> None:
    opt = make(clock, nplusone_allow=["*/test_nplusone.py:*"])
    with opt.unit_of_work():
        lookups(opt, 10)
    assert opt.nplusone_reports() == []


def test_an_allow_pattern_on_the_shape_silences_it(clock: ManualClock) -> None:
    fp = "SELECT * FROM orders WHERE customer_id = ?"
    for pattern in (fp, shape_id(fp)):
        opt = make(clock, nplusone_allow=[pattern])
        with opt.unit_of_work():
            lookups(opt, 10)
            lookups(opt, 10, "SELECT * FROM other WHERE id = {}")
        assert [r.table for r in opt.nplusone_reports()] == ["other"]


def test_a_block_marked_as_intended_is_not_counted(opt: QueryOptimizer) -> None:
    with opt.unit_of_work():
        with opt.allow_nplusone():
            lookups(opt, 10)
        lookups(opt, 2)
    assert opt.nplusone_reports() == []


# --------------------------------------------------------------------------- #
# Units: nesting, decorators, threads, asyncio
# --------------------------------------------------------------------------- #


def test_a_nested_unit_joins_the_outer_one(opt: QueryOptimizer) -> None:
    with opt.unit_of_work("request"):
        with opt.unit_of_work("transaction"):
            lookups(opt, 3)
        assert opt.nplusone_reports() == []  # nothing until the outer unit ends
        with opt.unit_of_work("transaction"):
            lookups(opt, 3)
    (r,) = opt.nplusone_reports()
    assert (r.unit, r.count) == ("request", 6)


def test_pending_patterns_are_visible_before_the_unit_ends(opt: QueryOptimizer) -> None:
    assert opt.pending_nplusone() == 0
    with opt.unit_of_work() as unit:
        lookups(opt, 4)
        assert opt.pending_nplusone() == 0
        lookups(opt, 1)
        assert opt.pending_nplusone() == 1
        assert not unit.joined
        with opt.unit_of_work() as inner:
            assert inner.joined
    assert opt.pending_nplusone() == 0


def test_the_decorator_makes_each_call_a_unit(opt: QueryOptimizer) -> None:
    @opt.unit_of_work("handler")
    def handler(n: int) -> int:
        lookups(opt, n)
        return n

    assert handler(3) == 3
    assert opt.nplusone_reports() == []
    assert handler(6) == 6
    assert opt.nplusone_reports()[0].unit == "handler"
    assert handler.__name__ == "handler"


async def test_the_decorator_works_on_coroutines(opt: QueryOptimizer) -> None:
    @opt.unit_of_work("async handler")
    async def handler() -> str:
        await asyncio.sleep(0)
        lookups(opt, 5)
        return "ok"

    assert await handler() == "ok"
    assert opt.nplusone_reports()[0].unit == "async handler"


async def test_async_with_is_supported(opt: QueryOptimizer) -> None:
    async with opt.unit_of_work("async"):
        lookups(opt, 5)
    assert len(opt.nplusone_reports()) == 1


async def test_concurrent_tasks_have_separate_units(opt: QueryOptimizer) -> None:
    inside: list[int] = []
    both_inside = asyncio.Event()

    async def request(n: int) -> None:
        with opt.unit_of_work(f"request {n}"):
            inside.append(n)
            if len(inside) == 2:
                both_inside.set()
            await both_inside.wait()  # both units are open at the same time
            for i in range(n):
                opt.record(LOOKUP.format(i), 0.001)
                await asyncio.sleep(0)

    await asyncio.gather(request(3), request(4))
    assert opt.nplusone_reports() == []  # 3 and 4, never 7


async def test_tasks_spawned_inside_a_unit_count_into_it(opt: QueryOptimizer) -> None:
    async def one(i: int) -> None:
        await asyncio.sleep(0)
        opt.record(LOOKUP.format(i), 0.001)

    with opt.unit_of_work("fan-out"):
        await asyncio.gather(*(one(i) for i in range(6)))
    (r,) = opt.nplusone_reports()
    assert (r.unit, r.count) == ("fan-out", 6)


def test_threads_have_separate_units(opt: QueryOptimizer) -> None:
    barrier = threading.Barrier(2)

    def request() -> None:
        with opt.unit_of_work("thread"):
            barrier.wait()
            lookups(opt, 3)
            barrier.wait()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert opt.nplusone_reports() == []


def test_a_unit_closed_from_another_context_does_not_leak(opt: QueryOptimizer) -> None:
    import contextvars

    unit = opt.unit_of_work("odd")
    contextvars.copy_context().run(unit.__enter__)
    unit.__exit__(None, None, None)
    lookups(opt, 10)
    assert opt.nplusone_reports() == []
    assert isinstance(unit, UnitOfWork)


# --------------------------------------------------------------------------- #
# Whether the filtered column is indexed
# --------------------------------------------------------------------------- #


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INT, status TEXT)")
    yield conn
    conn.close()


def test_an_unindexed_column_is_reported_with_the_index_to_create(
    opt: QueryOptimizer, db: sqlite3.Connection
) -> None:
    opt.set_existing_indexes(db)
    with opt.unit_of_work():
        lookups(opt, 5)
    (r,) = opt.nplusone_reports()
    assert r.indexed == "no"
    assert "CREATE INDEX ON orders (customer_id)" in r.fix


def test_an_indexed_column_is_reported_as_indexed(
    opt: QueryOptimizer, db: sqlite3.Connection
) -> None:
    db.execute("CREATE INDEX ix_orders_customer ON orders (customer_id, status)")
    opt.set_existing_indexes(db)
    with opt.unit_of_work():
        lookups(opt, 5)
    (r,) = opt.nplusone_reports()
    assert r.indexed == "yes"
    assert "ix_orders_customer" in r.fix


def test_an_index_not_leading_with_the_column_does_not_count(opt: QueryOptimizer) -> None:
    opt.set_existing_indexes([ExistingIndex("ix", "orders", ("status", "customer_id"))])
    with opt.unit_of_work():
        lookups(opt, 5)
    assert opt.nplusone_reports()[0].indexed == "no"


def test_an_index_provider_is_asked_at_each_report(
    opt: QueryOptimizer, db: sqlite3.Connection
) -> None:
    opt.set_existing_indexes(lambda: db)
    with opt.unit_of_work():
        lookups(opt, 5)
    db.execute("CREATE INDEX ix_c ON orders (customer_id)")
    with opt.unit_of_work():
        lookups(opt, 5)
    assert opt.nplusone_reports()[0].indexed == "yes"


def test_a_failing_provider_keeps_what_was_known(opt: QueryOptimizer) -> None:
    calls = iter([[ExistingIndex("ix", "orders", ("customer_id",))], None])

    def provider() -> object:
        value = next(calls, None)
        if value is None:
            raise RuntimeError("database gone")
        return value

    opt.set_existing_indexes(provider)
    assert opt.existing_indexes() is not None
    assert opt.existing_indexes() == [ExistingIndex("ix", "orders", ("customer_id",))]
    opt.set_existing_indexes(None)
    assert opt.existing_indexes() is None


def test_a_statement_filtering_on_several_columns_names_no_single_column(
    opt: QueryOptimizer,
) -> None:
    with opt.unit_of_work():
        lookups(opt, 5, "SELECT * FROM orders WHERE customer_id = {} AND status = 'x'")
    (r,) = opt.nplusone_reports()
    assert (r.table, r.column, r.indexed) == ("orders", None, "unknown")
    assert "IN (...)" in r.fix
