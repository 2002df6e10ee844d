"""``@cache.cached``: keys, methods, templates, tags, invalidation, async."""

from __future__ import annotations

import enum
import subprocess
import sys
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sentia_core.cache import InvalidKeyError, TieredCache
from sentia_core.errors import ConfigError
from sentia_core.testing import ManualClock

cache = TieredCache()


@cache.cached
def module_level(a: Any, b: Any = 0, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    return (a, b, args, kwargs)


@cache.cached
def describe(a: Any) -> str:
    return repr(a)


class Color(enum.Enum):
    RED = "r"


class TestDefaultKey:
    def test_the_key_names_the_function_and_its_arguments(self) -> None:
        assert module_level.key_for(1, "x") == f"{__name__}.module_level(1,'x')"
        assert module_level.key_for(1, b=2) == f"{__name__}.module_level(1,b=2)"

    def test_keyword_order_does_not_matter(self) -> None:
        assert module_level.key_for(1, x=1, y=2) == module_level.key_for(1, y=2, x=1)

    def test_dicts_and_sets_are_keyed_in_sorted_order(self) -> None:
        assert module_level.key_for({"a": 1, "b": 2}) == module_level.key_for({"b": 2, "a": 1})
        assert module_level.key_for({3, 1, 2}) == module_level.key_for({2, 3, 1})

    def test_values_of_different_types_get_different_keys(self) -> None:
        keys = {module_level.key_for(v) for v in (1, 1.0, True, "1", b"1", (1,), [1])}
        assert len(keys) == 7

    @pytest.mark.parametrize(
        "arg",
        [
            None,
            Decimal("1.5"),
            uuid.UUID(int=5),
            date(2025, 1, 1),
            Color.RED,
            frozenset({1}),
            ((1, 2), [3, {"k": None}]),
        ],
    )
    def test_supported_argument_types(self, arg: Any) -> None:
        describe.invalidate(arg)
        before = cache.stats().loader_calls
        assert describe(arg) == repr(arg)
        assert describe(arg) == repr(arg)
        assert cache.stats().loader_calls == before + 1

    def test_unsupported_arguments_ask_for_a_key_function(self) -> None:
        with pytest.raises(InvalidKeyError):
            module_level(object())

    def test_long_arguments_are_digested(self) -> None:
        key = module_level.key_for("x" * 1000)
        assert len(key) < 100
        assert key != module_level.key_for("x" * 1001)

    def test_keys_are_stable_across_processes(self) -> None:
        code = (
            "import sys; sys.path.insert(0, 'tests/..');"
            "from tests.cache.test_decorator import module_level, Color;"
            "print(module_level.key_for({'b': {2, 1}, 'a': (Color.RED, 1.5)}, 'é'))"
        )
        root = Path(__file__).resolve().parents[2]
        outs = {
            subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                check=True,
                cwd=root,
                env={"PYTHONHASHSEED": seed, "PATH": ""},
            ).stdout.strip()
            for seed in ("1", "2")
        }
        here = module_level.key_for({"b": {2, 1}, "a": (Color.RED, 1.5)}, "é")
        assert outs == {here.replace(__name__, "tests.cache.test_decorator")}


class Catalog:
    def __init__(self, clock: ManualClock, name: str) -> None:
        self.name = name
        self.calls: list[Any] = []

    shared = TieredCache(clock=ManualClock())

    @shared.cached(ttl=60)
    def product(self, pid: int) -> dict[str, Any]:
        self.calls.append(pid)
        return {"id": pid}

    @shared.cached(key="price:{sku}", tags=lambda sku, currency="EUR": (f"sku:{sku}",))
    def price(self, sku: str, currency: str = "EUR") -> str:
        self.calls.append(sku)
        return f"{sku}-{currency}"

    @classmethod
    @shared.cached
    def version(cls) -> str:
        return "v1"

    @shared.cached
    @staticmethod
    def helper(x: int) -> int:
        return x + 1


class TestMethods:
    def setup_method(self) -> None:
        Catalog.shared.clear()

    def test_self_is_left_out_of_the_key(self) -> None:
        a, b = Catalog(ManualClock(), "a"), Catalog(ManualClock(), "b")
        assert a.product(1) == {"id": 1}
        assert b.product(1) == {"id": 1}
        assert (a.calls, b.calls) == ([1], [])
        assert Catalog.product.key_for(1).endswith("Catalog.product(1)")

    def test_invalidate_through_the_instance_or_the_class(self) -> None:
        a = Catalog(ManualClock(), "a")
        a.product(1)
        assert a.product.invalidate(1) is True
        assert Catalog.product.invalidate(1) is False
        a.product(1)
        assert a.calls == [1, 1]

    def test_templates_bind_parameter_names_and_defaults(self) -> None:
        a = Catalog(ManualClock(), "a")
        assert a.price("X1") == "X1-EUR"
        assert a.price(sku="X1", currency="USD") == "X1-EUR"  # same key: price:{sku}
        assert Catalog.price.key_for("X1") == "price:X1"
        assert a.calls == ["X1"]

    def test_dynamic_tags(self) -> None:
        a = Catalog(ManualClock(), "a")
        a.price("X1")
        a.price("X2")
        assert Catalog.shared.invalidate_tags("sku:X1") == 1
        a.price("X1")
        a.price("X2")
        assert a.calls == ["X1", "X2", "X1"]

    def test_classmethods_and_staticmethods(self) -> None:
        assert Catalog.version() == "v1"
        assert Catalog.helper(1) == 2
        assert Catalog.helper(1) == 2


class TestConfiguration:
    def test_a_template_naming_an_unknown_parameter_is_refused_at_decoration(self) -> None:
        c = TieredCache()
        with pytest.raises(ConfigError, match="no parameter 'id'"):

            @c.cached(key="product:{id}")
            def product(pid: int) -> int:
                return pid

    def test_positional_template_fields_are_refused(self) -> None:
        c = TieredCache()
        with pytest.raises(ConfigError):

            @c.cached(key="product:{}")
            def product(pid: int) -> int:
                return pid

    def test_bad_ttl_and_tags_are_refused_at_decoration(self) -> None:
        c = TieredCache()
        with pytest.raises(ConfigError):
            c.cached(ttl=-1)
        with pytest.raises(ConfigError):
            c.cached(tags="products")  # type: ignore[arg-type]
        with pytest.raises(ConfigError):
            c.cached(key=42)(lambda: 1)  # type: ignore[arg-type]

    def test_a_key_callable_must_return_a_string(self) -> None:
        c = TieredCache()

        @c.cached(key=lambda x: x)
        def ident(x: Any) -> Any:
            return x

        assert ident("s") == "s"
        with pytest.raises(InvalidKeyError):
            ident(5)


class TestBehaviour:
    def test_ttl_is_honoured(self, clock: ManualClock) -> None:
        c = TieredCache(clock=clock)
        calls: list[int] = []

        @c.cached(ttl=5)
        def f() -> int:
            calls.append(1)
            return 1

        f()
        clock.advance(4)
        f()
        clock.advance(1)
        f()
        assert len(calls) == 2

    def test_exceptions_are_not_cached(self) -> None:
        c = TieredCache()
        calls: list[int] = []

        @c.cached
        def flaky() -> int:
            calls.append(1)
            if len(calls) == 1:
                raise ValueError("first")
            return 2

        with pytest.raises(ValueError, match="first"):
            flaky()
        assert flaky() == 2
        assert flaky() == 2
        assert len(calls) == 2

    def test_the_wrapper_looks_like_the_function(self) -> None:
        assert module_level.__name__ == "module_level"
        assert module_level.__wrapped__ is not None  # type: ignore[attr-defined]
        assert module_level.cache is cache

    async def test_async_methods(self) -> None:
        c = TieredCache()

        class Repo:
            calls = 0

            @c.cached(key="user:{uid}")
            async def user(self, uid: int) -> dict[str, int]:
                Repo.calls += 1
                return {"uid": uid}

        r = Repo()
        assert await r.user(1) == {"uid": 1}
        assert await r.user(1) == {"uid": 1}
        assert Repo.calls == 1
        assert r.user.invalidate(1) is True
        assert await r.user(1) == {"uid": 1}
        assert Repo.calls == 2
