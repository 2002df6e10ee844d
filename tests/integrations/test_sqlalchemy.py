"""instrument_sqlalchemy: ORM lazy loading is a real N+1; eager loading is not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

sa = pytest.importorskip("sqlalchemy")

from sqlalchemy import ForeignKey, String, create_engine, select  # noqa: E402
from sqlalchemy.orm import (  # noqa: E402
    DeclarativeBase,
    Mapped,
    Session,
    joinedload,
    mapped_column,
    relationship,
    selectinload,
)

from sentia_core.errors import ConfigError  # noqa: E402
from sentia_core.integrations import instrument_sqlalchemy  # noqa: E402
from sentia_core.sql import QueryOptimizer  # noqa: E402


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(80))
    orders: Mapped[list[Order]] = relationship(back_populates="customer")


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    total: Mapped[int]
    customer: Mapped[Customer] = relationship(back_populates="orders")


def optimizer() -> QueryOptimizer:
    return QueryOptimizer(sample_rate=0.0, log_events=False)


def populate(engine: Any) -> None:
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        for i in range(12):
            c = Customer(email=f"zqcustomer{i}@example.com")
            s.add(c)
            s.add_all(Order(customer=c, total=i * 10 + j) for j in range(3))
        s.commit()


@pytest.fixture
def engine() -> Iterator[Any]:
    eng = create_engine("sqlite://")
    yield eng
    eng.dispose()


def lazy_loop(engine: Any) -> int:
    total = 0
    with Session(engine) as s:
        for customer in s.scalars(select(Customer)):
            total += len(customer.orders)  # lazy load: one SELECT per customer
    return total


def test_orm_lazy_loading_is_reported_as_an_n_plus_one(engine: Any) -> None:
    opt = optimizer()
    instrument_sqlalchemy(engine, opt)
    populate(engine)
    assert opt.nplusone_reports() == []  # inserts in a loop are not N+1s
    assert lazy_loop(engine) == 36
    (r,) = opt.nplusone_reports()
    assert r.count == 12
    assert r.fingerprint == (
        "SELECT orders.id, orders.customer_id, orders.total FROM orders "
        "WHERE ? = orders.customer_id"
    )
    # the call site is the application line, not SQLAlchemy's internals
    assert "test_sqlalchemy.py" in r.call_site
    with open(__file__) as fh:
        line = int(r.call_site.rsplit(":", 1)[1])
        assert "customer.orders" in fh.read().splitlines()[line - 1]
    assert (r.table, r.column, r.indexed) == ("orders", "customer_id", "no")
    assert "selectinload" in r.fix and r.unit == "transaction"


def test_selectinload_and_joinedload_are_not_reported(engine: Any) -> None:
    opt = optimizer()
    instrument_sqlalchemy(engine, opt)
    populate(engine)
    with Session(engine) as s:
        for customer in s.scalars(select(Customer).options(selectinload(Customer.orders))):
            assert len(customer.orders) == 3
        for order in s.scalars(select(Order).options(joinedload(Order.customer))):
            assert order.customer.email
        for customer in s.scalars(select(Customer).options(joinedload(Customer.orders))).unique():
            assert len(customer.orders) == 3
    assert opt.nplusone_reports() == []


def test_the_missing_index_is_noticed_once_created(engine: Any) -> None:
    opt = optimizer()
    instrument_sqlalchemy(engine, opt)
    populate(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE INDEX ix_orders_customer_id ON orders (customer_id)")
    lazy_loop(engine)
    (r,) = opt.nplusone_reports()
    assert r.indexed == "yes"
    assert "ix_orders_customer_id" in r.fix


def test_a_request_unit_is_joined_by_transactions(engine: Any) -> None:
    opt = optimizer()
    instrument_sqlalchemy(engine, opt)
    populate(engine)
    with opt.unit_of_work("GET /report"):
        lazy_loop(engine)
        assert opt.nplusone_reports() == []  # the request is not over
    (r,) = opt.nplusone_reports()
    assert r.unit == "GET /report"
    # the catalog was read while the transaction's connection was at hand
    assert (r.column, r.indexed) == ("customer_id", "no")


def test_without_units_per_transaction_only_explicit_units_count(engine: Any) -> None:
    opt = optimizer()
    instrument_sqlalchemy(engine, opt, unit_per_transaction=False)
    populate(engine)
    lazy_loop(engine)
    assert opt.nplusone_reports() == []
    with opt.unit_of_work("job"):
        lazy_loop(engine)
    assert opt.nplusone_reports()[0].unit == "job"


def test_statements_are_recorded_once_per_execution_with_rows(engine: Any) -> None:
    opt = optimizer()
    remove = instrument_sqlalchemy(engine, opt)
    populate(engine)
    with engine.connect() as conn:
        for _ in range(3):
            conn.execute(select(Customer.id).where(Customer.email == "nobody")).all()
        conn.execute(sa.update(Order).where(Order.total > 100).values(total=0))
        conn.commit()
    shapes = {s.fingerprint: s for s in opt.stats().shapes}
    assert shapes["SELECT customers.id FROM customers WHERE customers.email = ?"].calls == 3
    update = shapes["UPDATE orders SET total = ? WHERE orders.total > ?"]
    assert update.rows == 5  # totals 101, 102, 110, 111, 112
    before = opt.stats().calls
    remove()
    with engine.connect() as conn:
        conn.execute(select(Customer.id)).all()
    assert opt.stats().calls == before


def test_a_failing_statement_is_not_recorded_and_leaves_no_timer(engine: Any) -> None:
    opt = optimizer()
    instrument_sqlalchemy(engine, opt)
    with engine.connect() as conn:
        with pytest.raises(sa.exc.OperationalError):
            conn.exec_driver_sql("SELECT * FROM missing")
        conn.exec_driver_sql("SELECT 1")
        assert conn.info.get("sentia_core.start") == []
    assert [s.fingerprint for s in opt.stats().shapes] == ["SELECT ?"]


def test_no_literal_escapes_through_the_orm(engine: Any) -> None:
    opt = QueryOptimizer(sample_rate=1.0, slow_query_threshold=1e-12, log_events=False)
    instrument_sqlalchemy(engine, opt)
    populate(engine)
    with Session(engine) as s:
        for i in range(6):
            s.execute(sa.text(f"SELECT * FROM customers WHERE email = 'zqcustomer{i}@example.com'"))
    assert "zqcustomer" not in json.dumps(opt.export())


def test_instrument_validates_its_arguments(engine: Any) -> None:
    with pytest.raises(ConfigError) as info:
        instrument_sqlalchemy(object(), optimizer())
    assert info.value.parameter == "engine"
    with pytest.raises(ConfigError) as info:
        instrument_sqlalchemy(engine, "opt")  # type: ignore[arg-type]
    assert info.value.parameter == "optimizer"
    with pytest.raises(ConfigError) as info:
        instrument_sqlalchemy(engine, optimizer(), unit_name="")
    assert info.value.parameter == "unit_name"


@pytest.mark.postgres
def test_orm_n_plus_one_on_postgresql(pg_dsn: str) -> None:
    eng = create_engine(pg_dsn.replace("postgresql://", "postgresql+psycopg://"))
    try:
        opt = optimizer()
        instrument_sqlalchemy(eng, opt)
        populate(eng)
        with eng.begin() as conn:
            conn.exec_driver_sql("CREATE INDEX ix_orders_customer ON orders (customer_id)")
        assert lazy_loop(eng) == 36
        (r,) = opt.nplusone_reports()
        assert (r.count, r.table, r.column, r.indexed) == (12, "orders", "customer_id", "yes")
        opt2 = optimizer()
        remove = instrument_sqlalchemy(eng, opt2)
        with Session(eng) as s:
            for c in s.scalars(select(Customer).options(selectinload(Customer.orders))):
                assert len(c.orders) == 3
        assert opt2.nplusone_reports() == []
        remove()
    finally:
        eng.dispose()
