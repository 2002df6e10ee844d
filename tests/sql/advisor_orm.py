"""A small SQLAlchemy ORM model and a session that records the SQL it emits."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    joinedload,
    mapped_column,
    relationship,
    selectinload,
)


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    region: Mapped[str]
    orders: Mapped[list[Order]] = relationship(back_populates="customer")


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"))
    status: Mapped[str]
    customer: Mapped[Customer] = relationship(back_populates="orders")


def orm_statements() -> list[str]:
    """Run typical ORM loads on SQLite and return every SQL text SQLAlchemy sent."""
    engine = sa.create_engine("sqlite://")
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    Base.metadata.create_all(engine)
    seen.clear()
    with Session(engine) as s:
        s.add_all([Customer(id=1, region="eu", orders=[Order(status="new")])])
        s.commit()
        s.scalars(sa.select(Customer).options(selectinload(Customer.orders))).all()
        s.scalars(
            sa.select(Customer).options(joinedload(Customer.orders)).where(Customer.region == "eu")
        ).unique().all()
        s.scalars(
            sa.select(Order).where(Order.status == "new", Order.customer_id.in_([1, 2])).limit(3)
        ).all()
        order = s.get(Order, 1)
        assert order is not None
        order.status = "shipped"
        s.commit()
        s.execute(sa.delete(Order).where(Order.status == "cancelled"))
        s.commit()
    engine.dispose()
    return seen
