"""The cache contract suite's configurations.

Every test that takes ``make_cache`` runs once per *flavor*: one way of
building a cache that must honour the same contract, like cachetools'
``CacheTestMixin``: in-process ones, a test-double backend, and the Redis L2
on fakeredis, on a real redis-server and on the 3-node cluster, each for
``TieredCache`` and for ``AsyncTieredCache`` (through a sync facade, see
``facade.py``). A flavor builds its cache from the pytest ``request`` (so it
can pull fixtures such as ``redis_url`` lazily), the test's ManualClock and
keyword overrides. Flavors on real servers are marked ``redis``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from sentia_core.cache import AsyncTieredCache, TieredCache
from sentia_core.testing import ManualClock

from .backends import DictBackend
from .facade import AsyncFacade, LoopThread

SECRET = "contract-suite-secret-0123456789"


@dataclass(frozen=True)
class Flavor:
    name: str
    build: Callable[[pytest.FixtureRequest, ManualClock, dict[str, Any]], TieredCache]
    #: an in-process L1 holds entries (LRU/size tests apply)
    has_l1: bool = True
    #: a backend shared by caches built with the same ``store=`` object
    has_backend: bool = False
    #: the L2 is Redis: an infinite TTL lives ``redis_ttl`` there (nothing grows forever)
    redis: bool = False
    #: needs a real redis-server
    real: bool = False

    @property
    def holds_objects(self) -> bool:
        """Objects in L1 and no backend: any value is held by reference (nothing to encode)."""
        return self.has_l1 and not self.has_backend and self.name != "memory-payload"

    def shared(self, clock: ManualClock) -> dict[str, Any]:
        """Keyword arguments that make two caches of this flavor share their L2."""
        if self.has_backend and not self.redis:
            return {"store": DictBackend(clock)}
        return {}  # Redis flavors share the test's server already


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


def _same_ttl(kw: dict[str, Any]) -> dict[str, Any]:
    """The contract's ``ttl`` is an entry's lifetime: give the L2 the same one.

    (``redis_ttl`` defaults to 3600 s whatever ``ttl`` is; test_redis_l2.py
    specifies the two-TTL behaviour.)"""
    kw.pop("store", None)
    if "ttl" in kw:
        kw.setdefault("redis_ttl", kw["ttl"])
    return kw


def _redis_fake(request: pytest.FixtureRequest, clock: ManualClock, kw: dict[str, Any]) -> Any:
    kw = _same_ttl(kw)
    return TieredCache(clock=clock, redis=request.getfixturevalue("fake_redis"), **kw)


def _redis_real(request: pytest.FixtureRequest, clock: ManualClock, kw: dict[str, Any]) -> Any:
    kw = _same_ttl(kw)
    return TieredCache(clock=clock, redis=request.getfixturevalue("redis_url"), **kw)


def _redis_real_l2(request: pytest.FixtureRequest, clock: ManualClock, kw: dict[str, Any]) -> Any:
    kw = _same_ttl(kw)
    kw.setdefault("max_items", 0)
    url = request.getfixturevalue("redis_url")
    return TieredCache(clock=clock, redis=url, secret=SECRET, **kw)


def _redis_cluster(request: pytest.FixtureRequest, clock: ManualClock, kw: dict[str, Any]) -> Any:
    kw = _same_ttl(kw)
    return TieredCache(clock=clock, redis=request.getfixturevalue("cluster_client"), **kw)


def _async(make_redis: Callable[[], Any], clock: ManualClock, kw: dict[str, Any]) -> Any:
    kw = _same_ttl(kw)
    runner = LoopThread()
    cache = AsyncTieredCache(clock=clock, redis=make_redis(), **kw)
    facade = AsyncFacade(cache, runner)
    close = facade.close

    def close_all() -> None:
        try:
            close()
        finally:
            runner.stop()

    facade.close = close_all  # type: ignore[method-assign]
    return facade


def _async_fake(request: pytest.FixtureRequest, clock: ManualClock, kw: dict[str, Any]) -> Any:
    import fakeredis

    server = request.getfixturevalue("fake_server")
    return _async(lambda: fakeredis.FakeAsyncRedis(server=server), clock, kw)


def _async_real(request: pytest.FixtureRequest, clock: ManualClock, kw: dict[str, Any]) -> Any:
    url = request.getfixturevalue("redis_url")
    return _async(lambda: url, clock, kw)


def _async_cluster(request: pytest.FixtureRequest, clock: ManualClock, kw: dict[str, Any]) -> Any:
    request.getfixturevalue("cluster_client")  # flushes every primary
    url = request.getfixturevalue("redis_cluster").url
    kw["redis_cluster"] = True
    return _async(lambda: url, clock, kw)


FLAVORS: dict[str, Flavor] = {
    f.name: f
    for f in (
        Flavor("memory", _memory),
        Flavor("memory-payload", _payload),
        Flavor("memory-signed-pickle", _pickle),
        Flavor("memory+backend", _tiered, has_backend=True),
        Flavor("backend-only", _l2_only, has_l1=False, has_backend=True),
        Flavor("redis-fake", _redis_fake, has_backend=True, redis=True),
        Flavor("redis-real", _redis_real, has_backend=True, redis=True, real=True),
        Flavor(
            "redis-real-l2-only",
            _redis_real_l2,
            has_l1=False,
            has_backend=True,
            redis=True,
            real=True,
        ),
        Flavor("redis-cluster", _redis_cluster, has_backend=True, redis=True, real=True),
        Flavor("async-redis-fake", _async_fake, has_backend=True, redis=True),
        Flavor("async-redis-real", _async_real, has_backend=True, redis=True, real=True),
        Flavor("async-redis-cluster", _async_cluster, has_backend=True, redis=True, real=True),
    )
}


@pytest.fixture(
    params=[
        pytest.param(name, marks=[pytest.mark.redis] if FLAVORS[name].real else [])
        for name in sorted(FLAVORS)
    ]
)
def flavor(request: pytest.FixtureRequest) -> Flavor:
    return FLAVORS[request.param]


@pytest.fixture
def fake_server() -> Any:
    """One fakeredis server for every client of a test."""
    import fakeredis

    return fakeredis.FakeServer()


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
