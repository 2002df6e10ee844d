"""The value objects: Instance addresses, immutability, the public surface."""

from __future__ import annotations

import dataclasses

import pytest

import sentia_core.registry as registry
from sentia_core.registry import HealthStatus, Instance


@pytest.mark.parametrize(
    ("address", "host", "port"),
    [
        ("10.0.0.1:8080", "10.0.0.1", 8080),
        ("db.internal:5432", "db.internal", 5432),
        ("[::1]:9000", "::1", 9000),
        ("::1", "::1", None),
        ("localhost", "localhost", None),
        ("http://api.local:81/base", "api.local", 81),
        ("https://api.local/base", "api.local", None),
        ("host:notaport", "host", None),
        ("http://h:99999", "h", None),
    ],
)
def test_host_and_port_are_parsed_from_any_address(
    address: str, host: str, port: int | None
) -> None:
    i = Instance(service="s", id="1", address=address)
    assert (i.host, i.port) == (host, port)


def test_url_joins_paths() -> None:
    assert Instance(service="s", id="1", address="h:1").url("/health") == "http://h:1/health"
    assert Instance(service="s", id="1", address="h:1").url("x", "https") == "https://h:1/x"
    assert (
        Instance(service="s", id="1", address="http://h:1/api/").url("/v1") == "http://h:1/api/v1"
    )
    assert Instance(service="s", id="1", address="h:1").url() == "http://h:1"


def test_instances_compare_by_identity_and_content_not_lease_times() -> None:
    a = Instance(service="s", id="1", address="h:1", registered_at=1.0, last_heartbeat=2.0)
    b = dataclasses.replace(a, registered_at=5.0, last_heartbeat=9.0)
    assert a == b and hash(a) == hash(b)
    assert a != dataclasses.replace(a, status=HealthStatus.UNHEALTHY)
    assert a.healthy and not dataclasses.replace(a, status=HealthStatus.STARTING).healthy
    assert str(HealthStatus.UNHEALTHY) == "unhealthy"


def test_public_surface_is_sorted_and_importable() -> None:
    # isort-style, as ruff keeps it: CONSTANTS, then Classes, then functions
    def kind(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert registry.__all__ == sorted(registry.__all__, key=kind)
    for name in registry.__all__:
        assert getattr(registry, name) is not None
    assert {"ServiceRegistry", "Instance", "HealthStatus", "HttpCheck"} <= set(registry.__all__)
    for name in registry.__all__:
        obj = getattr(registry, name)
        if isinstance(obj, type):
            assert obj.__doc__, f"{name} needs a docstring"
