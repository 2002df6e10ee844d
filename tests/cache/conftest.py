"""The cache contract suite's configurations.

Every test that takes ``make_cache`` runs once per *flavor*: one way of
building a cache that must honour the same contract. Part 2 adds its flavors
(fakeredis, a real redis-server, the 3-node cluster; async ones through a
sync facade) to ``FLAVORS`` and the whole contract suite runs on them, like
cachetools' ``CacheTestMixin``. A flavor builds its cache from the pytest
``request`` (so it can pull fixtures such as ``redis_url`` lazily), the
test's ManualClock and keyword overrides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from sentia_core.cache import TieredCache
from sentia_core.testing import ManualClock

from .backends import DictBackend

SECRET = "contract-suite-secret-0123456789"


@dataclass(frozen=True)
class Flavor:
    name: str
    build: Callable[[pytest.FixtureRequest, ManualClock, dict[str, Any]], TieredCache]
    #: an in-process L1 holds entries (LRU/size tests apply)
    has_l1: bool = True
    #: a backend shared by caches built with the same ``store=`` object
    has_backend: bool = False


def _memory(request: pytest.FixtureRequest, clock: ManualClock, kw: dict[str, Any]) -> TieredCache:
    return TieredCache(clock=clock, **kw)


def _payload(request: pytest.FixtureRequest, clock: ManualClock, kw: dict[str, Any]) -> TieredCache:
    return TieredCache(clock=clock, l1_store="payload", **kw)


def _pickle(request: pytest.FixtureRequest, clock: ManualClock, kw: dict[str, Any]) -> TieredCache:
    return TieredCache(clock=clock, serializer="pickle", secret=SECRET, **kw)


def _backend(clock: ManualClock, kw: dict[str, Any]) -> DictBackend:
    store = kw.pop("store", None)
    return store if store is not None else DictBackend(clock)


def _tiered(request: pytest.FixtureRequest, clock: ManualClock, kw: dict[str, Any]) -> TieredCache:
    backend = _backend(clock, kw)
    return TieredCache(clock=clock, backend=backend, **kw)


def _l2_only(request: pytest.FixtureRequest, clock: ManualClock, kw: dict[str, Any]) -> TieredCache:
    backend = _backend(clock, kw)
    kw.setdefault("max_items", 0)
    return TieredCache(clock=clock, backend=backend, secret=SECRET, **kw)


FLAVORS: dict[str, Flavor] = {
    f.name: f
    for f in (
        Flavor("memory", _memory),
        Flavor("memory-payload", _payload),
        Flavor("memory-signed-pickle", _pickle),
        Flavor("memory+backend", _tiered, has_backend=True),
        Flavor("backend-only", _l2_only, has_l1=False, has_backend=True),
    )
}


@pytest.fixture(params=sorted(FLAVORS))
def flavor(request: pytest.FixtureRequest) -> Flavor:
    return FLAVORS[request.param]


@pytest.fixture
def make_cache(
    flavor: Flavor, request: pytest.FixtureRequest, clock: ManualClock
) -> Iterator[Callable[..., TieredCache]]:
    """Build caches of the current flavor: ``make_cache(ttl=10, namespace="a")``."""
    built: list[TieredCache] = []

    def make(**kw: Any) -> TieredCache:
        cache = flavor.build(request, clock, dict(kw))
        built.append(cache)
        return cache

    yield make
    for cache in built:
        cache.close()


@pytest.fixture
def cache(make_cache: Callable[..., TieredCache]) -> TieredCache:
    """A cache of the current flavor with default settings."""
    return make_cache()
