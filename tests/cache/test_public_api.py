"""The two caches are twins, and the docs list every argument they take."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import sentia_core.cache as cache_pkg
from sentia_core.cache import AsyncTieredCache, TieredCache

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cache.md"


def _params(cls: type) -> dict[str, object]:
    sig = inspect.signature(cls.__init__)  # type: ignore[misc]
    return {n: p.default for n, p in sig.parameters.items() if n != "self"}


def test_the_async_cache_takes_the_same_arguments_with_the_same_defaults() -> None:
    assert _params(AsyncTieredCache) == _params(TieredCache)


def test_the_async_cache_has_every_method_of_the_sync_one_as_a_coroutine() -> None:
    sync_only = {"close", "cached"}  # aclose; cached returns a decorator in both
    for name, member in vars(TieredCache).items():
        if name.startswith("_") or not callable(member) or name in sync_only:
            continue
        twin = getattr(AsyncTieredCache, name)
        assert inspect.iscoroutinefunction(twin), name
    for name in ("stats", "reset_stats", "add_listener"):
        assert not inspect.iscoroutinefunction(getattr(AsyncTieredCache, name)), name
    assert inspect.iscoroutinefunction(AsyncTieredCache.aclose)


def test_the_configuration_table_lists_every_argument() -> None:
    table = re.findall(r"^\| `(\w+)` \|", DOCS.read_text(), flags=re.MULTILINE)
    assert set(_params(TieredCache)) <= set(table)


def test_the_public_names_are_exported_sorted() -> None:
    names = list(cache_pkg.__all__)
    assert names == sorted(names)
    for name in ("AsyncTieredCache", "AsyncCacheBackend", "AsyncCachedFunction", "RedisStats"):
        assert name in names
