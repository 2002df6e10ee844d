"""Find an N+1 in a SQLAlchemy app, fix it, and see the report go away.

Run: ``python examples/nplusone_sqlalchemy.py`` (SQLite in memory, a few seconds).

1. A page lists customers and, for each, lazily loads its orders: one query
   for the customers, then one per customer. The QueryOptimizer, listening
   to the engine, reports the repeated query with the application line that
   issued it and how to fix it.
2. The same page with ``selectinload``: two queries in all, no report.
3. The statistics the optimizer kept (no literal anywhere) and the index it
   suggests for the lookup, verified against SQLite's planner.
"""

from __future__ import annotations

import random

from sqlalchemy import ForeignKey, String, create_engine, select
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    selectinload,
)

from sentia_core.integrations import instrument_sqlalchemy
from sentia_core.sql import QueryOptimizer


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


def customers_page(session: Session) -> list[tuple[str, int]]:
    """The slow version: touching customer.orders runs one SELECT per customer."""
    rows = []
    for customer in session.scalars(select(Customer).order_by(Customer.id).limit(20)):
        rows.append((customer.email, sum(o.total for o in customer.orders)))
    return rows


def customers_page_fixed(session: Session) -> list[tuple[str, int]]:
    """The fix: load every customer's orders in one more query (selectinload)."""
    stmt = select(Customer).order_by(Customer.id).limit(20).options(selectinload(Customer.orders))
    return [(c.email, sum(o.total for o in c.orders)) for c in session.scalars(stmt)]


def main() -> None:
    engine = create_engine("sqlite://")
    optimizer = QueryOptimizer(slow_query_threshold=0.5, log_events=False)
    # Every statement the engine runs is recorded; a unit of work opens per
    # transaction (and joins a request-level unit when there is one).
    instrument_sqlalchemy(engine, optimizer)

    Base.metadata.create_all(engine)
    rng = random.Random(7)
    with Session(engine) as session:
        for i in range(200):
            customer = Customer(email=f"customer{i}@example.com")
            session.add(customer)
            session.add_all(Order(customer=customer, total=rng.randrange(5, 500)) for _ in range(5))
        session.commit()

    print("1. The customers page, with lazy loading")
    with optimizer.unit_of_work("GET /customers"), Session(engine) as session:
        page = customers_page(session)
    print(f"   rendered {len(page)} customers")
    for report in optimizer.nplusone_reports():
        print(f"   N+1 found: {report.count} x {report.fingerprint}")
        print(f"   from {report.call_site} in unit {report.unit!r}")
        print(f"   {report.table}.{report.column} indexed: {report.indexed}")
        print(f"   fix: {report.fix}")
    assert len(optimizer.nplusone_reports()) == 1, "the lazy loop should be reported"

    print("\n2. The same page with selectinload")
    before = len(optimizer.nplusone_reports())
    with optimizer.unit_of_work("GET /customers (fixed)"), Session(engine) as session:
        fixed = customers_page_fixed(session)
    assert fixed == page
    new_reports = optimizer.nplusone_reports()[before:]
    print(f"   rendered {len(fixed)} customers, same totals; new N+1 reports: {len(new_reports)}")
    assert not new_reports, "eager loading must not be reported"

    print("\n3. What the optimizer kept: shapes by calls (literals are never stored)")
    for s in optimizer.top(4, by="calls"):
        print(f"   {s.calls:5d} calls  p95 {s.p95 * 1e3:7.3f} ms  {s.fingerprint[:90]}")

    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        suggestions = optimizer.suggest_indexes(connection=raw)
        verified = optimizer.verify(suggestions, raw) if suggestions else []
    print("\n   indexes worth creating, checked against SQLite's planner:")
    for v in verified:
        print(f"   [{'keep' if v.accepted else 'drop'}] {v.ddl}")
    if not verified:
        print("   none")


if __name__ == "__main__":
    main()
