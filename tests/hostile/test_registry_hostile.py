"""Foreign data under the registry's Redis keys (issue 12, item 2).

A foreign value under one instance hash, a lease set or the service index is
corrupt data about that key: the other instances are still served, the
record is skipped and counted in ``corrupt_records``, registrations complete,
and nothing is reported as an unreachable backend.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentia_core.registry import RedisBackend, ServiceRegistry

from .strategies import foreign_values, write

_hostile = settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _registry(client: Any) -> ServiceRegistry:
    return ServiceRegistry(redis=client, refresh_interval=3600, health_check_interval=3600)


def _backend(registry: ServiceRegistry) -> RedisBackend:
    backend = registry._backend
    assert isinstance(backend, RedisBackend)
    return backend


def test_a_string_at_one_instance_key_skips_that_instance_only(redis_client: Any) -> None:
    # issue 12: the read script failed as a whole; call() raised
    # NoHealthyInstanceError with two healthy instances registered
    with _registry(redis_client) as owner:
        a = owner.register("svc", "10.0.0.1:80")
        b = owner.register("svc", "10.0.0.2:80")
        c = owner.register("svc", "10.0.0.3:80")
        backend = _backend(owner)
        redis_client.delete(backend._prefix("svc") + c.id)
        redis_client.set(backend._prefix("svc") + c.id, b"junk")
        with _registry(redis_client) as reader:
            found = {i.id for i in reader.instances("svc")}
            assert found == {a.id, b.id}
            assert reader.call("svc", lambda inst: inst.address) in {a.address, b.address}
            assert _backend(reader).corrupt_records >= 1
            stats = reader.stats()
            assert stats.backend_available and stats.backend_errors == 0


def test_a_string_at_the_services_index_does_not_block_registrations(
    redis_client: Any,
) -> None:
    # issue 12: pending_registrations stayed 1 forever
    with _registry(redis_client) as registry:
        backend = _backend(registry)
        redis_client.set(backend._index, b"junk")
        registry.register("svc", "10.0.0.1:80")
        s = registry.stats()
        assert s.pending_registrations == 0 and s.backend_errors == 0
        assert registry.services() == ["svc"]
        assert backend.corrupt_records == 1


_FAMILIES = ["hash", "leases", "index"]


def _target(backend: RedisBackend, family: str, instance_id: str) -> str:
    """The key of ``family`` for service ``svc`` and ``instance_id``."""
    return {
        "hash": backend._prefix("svc") + instance_id,
        "leases": backend._leases("svc"),
        "index": backend._index,
    }[family]


@_hostile
@given(family=st.sampled_from(_FAMILIES), value=foreign_values)
def test_foreign_data_under_any_registry_key_never_raises_and_recovers(
    redis_client: Any, family: str, value: tuple[str, Any]
) -> None:
    redis_client.flushdb()
    with _registry(redis_client) as registry:
        backend = _backend(registry)
        kept = registry.register("other", "10.0.1.1:80")
        victim = registry.register("svc", "10.0.0.1:80")
        target = _target(backend, family, victim.id)
        if value[0] != "zset" or family == "hash":  # a zset is what leases/index hold
            write(redis_client, target, value)
        # nothing raises, whatever is there
        registry.instances("svc")
        registry.services()
        backend.heartbeat("svc", victim.id, 30.0)
        backend.set_status("svc", victim.id, victim.status)
        backend.sweep("svc")
        # other services are unaffected
        assert [i.id for i in backend.instances("other")] == [kept.id]
        # and the victim's key works again once its owner writes it
        again = registry.register("svc", "10.0.0.2:80")
        assert again.id in {i.id for i in backend.instances("svc")}
        # a foreign index was deleted: each service is back at its next heartbeat
        assert backend.heartbeat("other", kept.id, 30.0)
        assert "svc" in backend.services() and "other" in backend.services()
        assert registry.stats().backend_errors == 0


@pytest.mark.parametrize("family", _FAMILIES)
def test_a_foreign_type_is_counted_in_corrupt_records(redis_client: Any, family: str) -> None:
    with _registry(redis_client) as registry:
        backend = _backend(registry)
        victim = registry.register("svc", "10.0.0.1:80")
        target = _target(backend, family, victim.id)
        write(redis_client, target, ("list", [b"x"]))
        backend.instances("svc")
        backend.services()
        assert backend.corrupt_records >= 1
