"""Backends for the contract suite: one factory per backend, sync and async.

``limiter_factory`` builds limiters on: process memory, fakeredis (its Lua
runs the real scripts), the session's real redis-server, and the 3-node
Redis Cluster. ``async_limiter_factory`` does the same with asyncio clients.
Clients made here are closed here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from sentia_core.policies._ratelimit import RateLimiter

Factory = Callable[..., RateLimiter]

BACKENDS = [
    "memory",
    "fakeredis",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("cluster", marks=pytest.mark.redis),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def redis_client(backend: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    """The sync client behind the backend (None for memory)."""
    if backend == "memory":
        yield None
    elif backend == "fakeredis":
        yield request.getfixturevalue("fake_redis")
    elif backend == "redis":
        yield request.getfixturevalue("real_redis")
    else:
        yield request.getfixturevalue("cluster_client")


@pytest.fixture
def limiter_factory(backend: str, redis_client: Any) -> Factory:
    """``make(tiers, **kwargs)`` on the parametrized backend."""

    def make(tiers: Any, **kwargs: Any) -> RateLimiter:
        if redis_client is not None:
            kwargs.setdefault("redis", redis_client)
        return RateLimiter(tiers, **kwargs)

    return make


@pytest.fixture
def redis_target(backend: str, request: pytest.FixtureRequest) -> Any:
    """What an asyncio client should connect to (resolved by sync fixtures)."""
    if backend == "memory":
        return None
    if backend == "fakeredis":
        import fakeredis

        return fakeredis.FakeServer()
    if backend == "redis":
        return request.getfixturevalue("redis_url")
    request.getfixturevalue("cluster_client")  # flushes every primary
    return request.getfixturevalue("redis_cluster").nodes[0].port


@pytest.fixture
async def async_redis_client(backend: str, redis_target: Any) -> AsyncIterator[Any]:
    """The asyncio client behind the backend (None for memory)."""
    if backend == "memory":
        yield None
        return
    if backend == "fakeredis":
        import fakeredis

        client: Any = fakeredis.FakeAsyncRedis(server=redis_target)
    elif backend == "redis":
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(redis_target)
    else:
        import redis.asyncio as aioredis

        client = aioredis.RedisCluster(host="127.0.0.1", port=redis_target)
    yield client
    await client.aclose()


@pytest.fixture
def async_limiter_factory(backend: str, async_redis_client: Any) -> Factory:
    """``make(tiers, **kwargs)`` with an asyncio client on the parametrized backend."""

    def make(tiers: Any, **kwargs: Any) -> RateLimiter:
        if async_redis_client is not None:
            kwargs.setdefault("redis", async_redis_client)
        return RateLimiter(tiers, **kwargs)

    return make
