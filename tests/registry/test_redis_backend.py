"""Redis-specific behaviour: key layout, TTLs, server time, hostile data, outages, cluster."""

from __future__ import annotations

import json

import pytest
from hypothesis import given

from sentia_core.errors import BackendUnavailableError, ConfigError
from sentia_core.registry import HealthStatus, Instance, RedisBackend
from sentia_core.registry._redis_backend import parse_instance
from tests._servers import free_port

from .strategies import instance_hashes


def inst(iid: str = "a", service: str = "svc") -> Instance:
    return Instance(service=service, id=iid, address="10.1.1.1:80")


@pytest.mark.redis
def test_every_key_shares_the_service_hash_tag_and_has_a_ttl(real_redis: object) -> None:
    backend = RedisBackend(real_redis, namespace="ns")
    backend.register(inst("a", service="payments"), 30)
    keys = sorted(k.decode() for k in real_redis.scan_iter("*"))  # type: ignore[attr-defined]
    assert keys == ["ns:{_index}:services", "ns:{payments}:i:a", "ns:{payments}:leases"]
    for k in keys:
        ttl = real_redis.pttl(k)  # type: ignore[attr-defined]
        assert 0 < ttl <= 90_000, (k, ttl)  # three ttls: swept long before


@pytest.mark.redis
def test_leases_are_timed_by_the_redis_server_clock(real_redis: object) -> None:
    backend = RedisBackend(real_redis)
    stored = backend.register(inst(), 30)
    seconds, micros = real_redis.time()  # type: ignore[attr-defined]
    server_now = seconds + micros / 1e6
    assert abs(stored.registered_at - server_now) < 5.0
    score = real_redis.zscore("sentia:registry:{svc}:leases", "a")  # type: ignore[attr-defined]
    assert score == pytest.approx(stored.registered_at * 1000 + 30_000, abs=5)


def test_a_namespace_isolates_registries(fake_redis: object) -> None:
    RedisBackend(fake_redis, namespace="one").register(inst("a"), 30)
    assert RedisBackend(fake_redis, namespace="two").instances("svc") == []
    assert [i.id for i in RedisBackend(fake_redis, namespace="one").instances("svc")] == ["a"]


def test_corrupt_hashes_are_skipped_and_counted_never_raised(fake_redis: object) -> None:
    backend = RedisBackend(fake_redis, namespace="ns")
    backend.register(inst("good"), 30)
    for iid, fields in {
        "w": {"address": "x:1", "weight": "heavy"},
        "m": {"address": "x:1", "metadata": "{not json"},
        "s": {"address": "x:1", "status": "zombie"},
        "n": {"weight": "1"},
        "l": {"address": "x:1", "metadata": json.dumps(["a", "list"])},
        "z": {"address": "x:1", "weight": "0"},
    }.items():
        backend.register(inst(iid), 30)
        fake_redis.delete(f"ns:{{svc}}:i:{iid}")  # type: ignore[attr-defined]
        fake_redis.hset(f"ns:{{svc}}:i:{iid}", mapping=fields)  # type: ignore[attr-defined]
    assert [i.id for i in backend.instances("svc")] == ["good"]
    assert backend.corrupt_records == 6


@given(instance_hashes)
def test_parse_instance_never_raises_on_any_hash(fields: dict[str, str]) -> None:
    parsed = parse_instance("svc", "id", fields)
    if parsed is not None:
        assert parsed.address == fields["address"]
        assert parsed.weight >= 1
        assert isinstance(parsed.status, HealthStatus)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in parsed.metadata.items())


def test_a_key_of_the_wrong_type_is_corrupt_data_not_a_backend_error(fake_redis: object) -> None:
    # issue 12, item 2: WRONGTYPE is about one key, never an outage
    backend = RedisBackend(fake_redis, namespace="ns")
    fake_redis.set("ns:{svc}:leases", "i am a string")  # type: ignore[attr-defined]
    assert backend.instances("svc") == []
    assert backend.corrupt_records == 1
    registered = backend.register(inst(), 30)
    assert [i.id for i in backend.instances("svc")] == [registered.id]


def test_an_unreachable_server_is_backend_unavailable() -> None:
    backend = RedisBackend(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(BackendUnavailableError):
            backend.register(inst(), 30)
        with pytest.raises(BackendUnavailableError):
            backend.instances("svc")
        with pytest.raises(BackendUnavailableError):
            backend.services()
        sub = backend.subscribe(lambda s: None)
        with pytest.raises(BackendUnavailableError):
            sub.poll(0.01)
        sub.wake()  # best effort, never raises
        sub.close()
    finally:
        backend.close()


def test_configuration_is_checked_at_construction(fake_async_redis: object) -> None:
    with pytest.raises(ConfigError) as err:
        RedisBackend(fake_async_redis)
    assert err.value.parameter == "redis"
    with pytest.raises(ConfigError) as err:
        RedisBackend("http://not-redis")
    assert err.value.parameter == "redis"
    with pytest.raises(ConfigError) as err:
        RedisBackend(object())
    assert err.value.parameter == "redis"
    with pytest.raises(ConfigError) as err:
        RedisBackend("redis://127.0.0.1:1/0", namespace="")
    assert err.value.parameter == "namespace"


@pytest.mark.redis
def test_the_contract_holds_on_a_redis_cluster(cluster_client: object) -> None:
    backend = RedisBackend(cluster_client, namespace="c")
    changes: list[str | None] = []
    sub = backend.subscribe(changes.append)
    sub.poll(0.05)
    services = [f"svc{k}" for k in range(6)]  # spread over the three nodes' slots
    for s in services:
        backend.register(inst("a", service=s), 30)
        backend.register(inst("dead", service=s), 0.02)
    from .conftest import wait_for

    wait_for(lambda: all(len(backend.instances(s)) == 1 for s in services))
    assert backend.services() == services
    for s in services:
        assert backend.sweep(s) == ["dead"]
        assert backend.heartbeat(s, "a", 30) is True
        assert backend.set_status(s, "a", HealthStatus.UNHEALTHY) is True
        assert backend.instances(s)[0].status is HealthStatus.UNHEALTHY

    def notified() -> bool:
        sub.poll(0.05)
        return set(services) <= set(changes)

    wait_for(notified, what="pub/sub notifications through the cluster")
    sub.close()
    assert all(backend.deregister(s, "a") for s in services)
    assert backend.services() == []
