"""Issue 15, item 7: your own value types in the cache.

Without an L2 the L1 holds any object; with one, dataclasses, pydantic models
and attrs classes travel through the codec extension (``JsonSerializer(types=)``),
safely: reading builds only registered classes, from their fields.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import attrs
import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentia_core import Sentia, TieredCache
from sentia_core.cache import Codec, CorruptPayloadError, JsonSerializer, TypeCodec
from sentia_core.errors import ConfigError, SerializationError
from sentia_core.testing import ManualClock


@dataclasses.dataclass(frozen=True)
class Price:
    amount: Decimal
    currency: str


@dataclasses.dataclass
class Product:
    id: int
    name: str
    price: Price
    tags: tuple[str, ...] = ()
    seen: int = dataclasses.field(default=0, init=False)


class User(pydantic.BaseModel):
    id: int
    email: str
    joined: datetime


@attrs.define
class Address:
    city: str
    zip: str


class Money:
    """Not a dataclass: needs an explicit TypeCodec."""

    def __init__(self, cents: int) -> None:
        self.cents = cents

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Money) and other.cents == self.cents

    def __hash__(self) -> int:
        return hash(self.cents)


TYPES = [Price, Product, User, Address, TypeCodec(Money, "money", lambda m: m.cents, Money)]


def _roundtrip(value: Any, types: Any = TYPES) -> Any:
    codec = Codec(JsonSerializer(types=types))
    return codec.loads(codec.dumps(value))


def test_dataclasses_pydantic_attrs_and_custom_types_round_trip() -> None:
    product = Product(1, "widget", Price(Decimal("9.99"), "EUR"), ("a", "b"))
    user = User(id=7, email="u@example.com", joined=datetime(2025, 1, 2, tzinfo=timezone.utc))
    value = {"p": product, "u": user, "a": Address("Oslo", "0150"), "m": [Money(250)]}
    back = _roundtrip(value)
    assert back == value
    assert type(back["p"].price) is Price and type(back["p"].tags) is tuple
    assert type(back["u"]) is User and back["u"].joined == user.joined


def test_an_unregistered_class_is_refused_at_set_time_naming_it() -> None:
    with pytest.raises(SerializationError, match="Address"):
        Codec().dumps(Address("Oslo", "0150"))
    with pytest.raises(SerializationError, match="Price"):  # nested, unregistered
        Codec(JsonSerializer(types=[Product])).dumps(Product(1, "x", Price(Decimal(1), "EUR")))


def test_registration_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="TypeCodec"):
        JsonSerializer(types=[Money])
    with pytest.raises(ConfigError, match="twice"):
        JsonSerializer(types=[Price, Price])
    with pytest.raises(ConfigError, match="twice"):
        JsonSerializer(types=[TypeCodec.of(Price, "x"), TypeCodec.of(Address, "x")])


def test_a_payload_naming_an_unregistered_tag_is_corrupt_not_executed() -> None:
    writer = Codec(JsonSerializer(types=TYPES))
    payload = writer.dumps(Address("Oslo", "0150"))
    with pytest.raises(CorruptPayloadError):
        Codec(JsonSerializer(types=[Price])).loads(payload)
    # A hand-written payload naming a class the reader never registered.
    crafted = b'\x01{"\\u0000":"x:os.system","v":"echo hi"}'
    with pytest.raises(CorruptPayloadError):
        writer.loads(crafted)


@given(st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=4))
def test_hostile_fields_for_a_registered_class_are_corrupt(fields: dict[str, Any]) -> None:
    import json

    codec = Codec(JsonSerializer(types=TYPES))
    body = json.dumps({"\x00": f"x:{Address.__module__}.{Address.__qualname__}", "v": fields})
    payload = b"\x01" + body.encode("ascii")
    try:
        value = codec.loads(payload)
    except CorruptPayloadError:
        return
    assert type(value) is Address  # the only thing it may ever build


def test_with_a_redis_l2_registered_types_cross_processes(fake_redis: Any) -> None:
    clock = ManualClock()
    kw: dict[str, Any] = {"redis": fake_redis, "clock": clock, "namespace": "types"}
    writer = TieredCache(serializer=JsonSerializer(types=TYPES), **kw)
    reader = TieredCache(serializer=JsonSerializer(types=TYPES), **kw)
    product = Product(2, "gadget", Price(Decimal("1.50"), "USD"))
    writer.set("p", product)
    assert reader.get("p") == product
    with pytest.raises(SerializationError):
        TieredCache(**kw).set("q", product)  # the default serializer knows no Product


@pytest.mark.redis
def test_registered_types_through_a_real_redis_and_the_facade(redis_url: str) -> None:
    ser = JsonSerializer(types=TYPES)
    config = {"redis_url": redis_url, "namespace": "types15", "monitor": {"system_metrics": False}}
    with Sentia(config, start_monitor=False) as a, Sentia(config, start_monitor=False) as b:
        users_a = a.named_cache("users", serializer=ser)
        users_b = b.named_cache("users", serializer=ser)
        user = User(id=1, email="a@example.com", joined=datetime(2025, 5, 1, tzinfo=timezone.utc))
        users_a.set("u1", user)
        assert users_b.get("u1") == user


def test_without_an_l2_the_l1_holds_any_object_by_reference() -> None:
    clock = ManualClock()
    with Sentia({"monitor": {"system_metrics": False}}, clock=clock, start_monitor=False) as app:
        lock = threading.Lock()
        product = Product(3, "thing", Price(Decimal(2), "EUR"))
        app.cache.set("lock", lock)
        app.cache.set("product", product)
        assert app.cache.get("lock") is lock
        assert app.cache.get("product") is product  # the same object, as cachetools
        assert app.cache.stats().bytes > 0  # sized by an estimate


def test_the_size_estimate_is_bounded_on_cycles_and_huge_graphs() -> None:
    codec = Codec()

    class Node:
        def __init__(self) -> None:
            self.next: Node | None = None
            self.payload = "x" * 100

    a, b = Node(), Node()
    a.next, b.next = b, a  # a cycle
    assert codec.measure_object(a) > 200
    big = [[i] for i in range(100_000)]
    assert codec.measure_object(big) > 0  # stops after a bounded number of objects
