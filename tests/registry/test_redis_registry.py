"""ServiceRegistry on Redis: notifications, lost leases, outages (fakeredis and a real server)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from sentia_core.registry import HealthStatus, Instance, RedisBackend, ServiceRegistry
from sentia_core.testing import ManualClock
from tests._servers import RedisServer

from .conftest import wait_for


@pytest.fixture(params=["fakeredis", pytest.param("redis", marks=pytest.mark.redis)])
def clients(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Any]]:
    """Two independent clients of one Redis (two 'machines')."""
    if request.param == "fakeredis":
        import fakeredis

        server = fakeredis.FakeServer()
        a, b = fakeredis.FakeRedis(server=server), fakeredis.FakeRedis(server=server)
    else:
        import redis

        url = request.getfixturevalue("redis_url")
        a, b = redis.Redis.from_url(url), redis.Redis.from_url(url)
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


def test_changes_reach_another_registry_over_pub_sub(clients: tuple[Any, Any]) -> None:
    a_client, b_client = clients
    with (
        ServiceRegistry(redis=a_client, health_check_interval=0.05, unhealthy_threshold=1) as a,
        ServiceRegistry(redis=b_client, refresh_interval=3600) as b,
    ):
        seen: list[tuple[str, ...]] = []
        b.watch("svc", lambda found: seen.append(tuple(f"{i.address}/{i.status}" for i in found)))
        state = {"up": True}
        first = a.register("svc", "10.0.0.1:80", health_check=lambda i: state["up"])
        # the refresh interval is an hour: only pub/sub can tell b about these
        wait_for(lambda: [i.id for i in b.instances("svc")] == [first.id], what="registered")
        state["up"] = False
        wait_for(lambda: b.instances("svc") == [], what="unhealthy status")
        assert b.instances("svc", healthy_only=False)[0].status is HealthStatus.UNHEALTHY
        a.deregister(first)
        wait_for(lambda: b.instances("svc", healthy_only=False) == [], what="deregistered")
        assert seen[0] == ()
        assert seen[-1] == ()
        assert "10.0.0.1:80/unhealthy" in {s for snap in seen for s in snap}


@pytest.mark.redis
def test_a_flushed_redis_is_repopulated_by_the_owners(real_redis: Any) -> None:
    clock = ManualClock()
    reg = ServiceRegistry(redis=real_redis, clock=clock, heartbeat_interval=10, ttl=30)
    inst = reg.register("svc", "10.0.0.1:80", metadata={"role": "primary"})
    real_redis.flushall()
    assert RedisBackend(real_redis).instances("svc") == []
    clock.advance(10)
    reg.run_once()
    (back,) = RedisBackend(real_redis).instances("svc")
    assert back == inst and back.metadata["role"] == "primary"
    assert reg.stats().reregistrations == 1


@pytest.mark.redis
def test_registration_waits_for_redis_that_starts_later(private_redis: RedisServer) -> None:
    url = private_redis.url
    private_redis.kill()
    clock = ManualClock()
    reg = ServiceRegistry(
        redis=url,
        clock=clock,
        registration_backoff=1,
        registration_backoff_max=4,
        rng=random.Random(1),
    )
    try:
        inst = reg.register("svc", "10.0.0.9:80")
        assert reg.stats().pending_registrations == 1
        for _ in range(3):
            clock.advance(4)
            reg.run_once()
        assert reg.stats().pending_registrations == 1
        private_redis.start()
        clock.advance(4)
        reg.run_once()
        assert reg.stats().pending_registrations == 0
        client = private_redis.client()
        try:
            assert RedisBackend(client).instances("svc") == [inst]
        finally:
            client.close()
    finally:
        reg.close()


@pytest.mark.redis
def test_a_dead_redis_keeps_the_last_known_instances(private_redis: RedisServer) -> None:
    clock = ManualClock()
    owner = ServiceRegistry(redis=private_redis.url, clock=clock, refresh_interval=5)
    consumer = ServiceRegistry(redis=private_redis.url, clock=clock, refresh_interval=5)
    try:
        inst = owner.register("svc", "10.0.0.1:80")
        assert consumer.instances("svc") == [inst]
        private_redis.kill()
        clock.advance(5)
        consumer.run_once()
        assert consumer.instances("svc") == [inst]
        assert consumer.choose("svc") == inst
        assert consumer.call("svc", lambda i: i.address) == "10.0.0.1:80"
        stats = consumer.stats()
        assert not stats.backend_available and stats.services["svc"].stale
        private_redis.start()  # an empty Redis: nothing persisted
        clock.advance(10)
        owner.run_once()  # heartbeat: lease lost, registers again
        consumer.run_once()
        assert consumer.instances("svc") == [inst]
        assert consumer.stats().backend_available
        assert owner.stats().reregistrations == 1
    finally:
        owner.close()
        consumer.close()


@pytest.mark.redis
def test_a_hung_redis_costs_a_timeout_not_an_outage(private_redis: RedisServer) -> None:
    clock = ManualClock()
    reg = ServiceRegistry(redis=private_redis.url, clock=clock, refresh_interval=5)
    try:
        inst = reg.register("svc", "10.0.0.1:80")
        assert reg.instances("svc") == [inst]
        private_redis.pause()
        try:
            clock.advance(5)
            reg.run_once()  # the reads time out (socket timeout), the view survives
            assert reg.instances("svc") == [inst]
            assert reg.stats().services["svc"].stale
        finally:
            private_redis.resume()
        clock.advance(5)
        reg.run_once()
        assert not reg.stats().services["svc"].stale
    finally:
        reg.close()


@pytest.mark.redis
def test_the_background_thread_resubscribes_after_a_redis_restart(
    private_redis: RedisServer,
) -> None:
    with (
        ServiceRegistry(redis=private_redis.url, heartbeat_interval=0.2, ttl=2) as owner,
        ServiceRegistry(redis=private_redis.url, refresh_interval=3600) as consumer,
    ):
        first = owner.register("svc", "10.0.0.1:80")
        wait_for(lambda: consumer.instances("svc") == [first])
        private_redis.kill()
        private_redis.start()
        second = owner.register("svc", "10.0.0.2:80")
        want = sorted([first.id, second.id])

        def both() -> bool:
            return sorted(i.id for i in consumer.instances("svc")) == want

        # pub/sub broke with the restart; the consumer re-subscribes and reloads
        wait_for(both, deadline=20, what="consumer resynchronised after the restart")


def test_instances_are_frozen(clients: tuple[Any, Any]) -> None:
    reg = ServiceRegistry(redis=clients[0])
    inst = reg.register("svc", "h:1", metadata={"a": "b"})
    with pytest.raises(AttributeError):
        inst.address = "h:2"  # type: ignore[misc]
    with pytest.raises(TypeError):
        inst.metadata["a"] = "c"  # type: ignore[index]
    assert isinstance(hash(inst), int)
    assert isinstance(reg.instances("svc")[0], Instance)
    reg.close()
