"""Shared fixtures: clocks, fakeredis, and real servers started on loopback.

Real-server fixtures are session-scoped and shared; a test that kills, pauses
or fills its server must build a private one with ``tests._servers.RedisServer()``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from sentia_core.testing import ManualClock

from ._servers import PostgresServer, RedisCluster, RedisServer

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@pytest.fixture
def clock() -> ManualClock:
    """A ManualClock; advance it instead of sleeping."""
    return ManualClock()


@pytest.fixture
def fake_redis() -> Iterator[Any]:
    """A fresh in-memory fakeredis client (sync)."""
    import fakeredis

    server = fakeredis.FakeServer()
    client = fakeredis.FakeRedis(server=server)
    yield client
    client.close()


@pytest.fixture
async def fake_async_redis() -> Any:
    """A fresh in-memory fakeredis client (asyncio)."""
    import fakeredis

    client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the whole session (do not kill it; see module doc)."""
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of the shared real redis-server, flushed before each test."""
    client = redis_server.client()
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def real_redis(redis_url: str) -> Iterator[Any]:
    """A sync redis-py client on the shared, freshly flushed real server."""
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A real 3-node Redis Cluster on loopback, shared by the session."""
    cluster = RedisCluster()
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_client(redis_cluster: RedisCluster) -> Iterator[Any]:
    """A redis-py RedisCluster client, with every primary flushed first."""
    client = redis_cluster.client()
    client.flushall(target_nodes="primaries")
    yield client
    client.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real throwaway PostgreSQL 15 on loopback, shared by the session."""
    server = PostgresServer()
    yield server
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def _no_leaked_monitor_threads() -> Iterator[None]:
    """The suite leaves no monitor sampler running: ``Sentia()`` starts one by
    default, and closing it (or dropping it: a finalizer) must stop it."""
    import gc
    import threading

    yield
    gc.collect()
    leaked = [t for t in threading.enumerate() if t.name == "sentia-monitor" and t.is_alive()]
    for t in leaked:
        t.join(5)
    leaked = [t for t in leaked if t.is_alive()]
    assert not leaked, f"{len(leaked)} monitor sampler thread(s) still running after the suite"
