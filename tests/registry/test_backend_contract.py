"""The backend contract: every backend behaves the same (memory, fakeredis, real Redis)."""

from __future__ import annotations

import threading

import pytest

from sentia_core.registry import HealthStatus, Instance

from .conftest import Harness


def inst(iid: str = "a", service: str = "svc", **kw: object) -> Instance:
    fields: dict[str, object] = {"address": f"10.0.0.1:{8000 + len(iid)}", **kw}
    return Instance(service=service, id=iid, **fields)  # type: ignore[arg-type]


def test_register_then_read_back_every_field(harness: Harness) -> None:
    original = inst(
        "a",
        weight=7,
        zone="eu-1",
        metadata={"version": "1.2", "proto": "grpc", "ünï": "cødé"},
        status=HealthStatus.STARTING,
    )
    stored = harness.backend.register(original, 30)
    assert stored == original
    assert stored.registered_at > 0
    assert stored.last_heartbeat == stored.registered_at
    (read,) = harness.backend.instances("svc")
    assert read == original
    assert dict(read.metadata) == {"version": "1.2", "proto": "grpc", "ünï": "cødé"}
    assert (read.weight, read.zone, read.status) == (7, "eu-1", HealthStatus.STARTING)
    assert read.registered_at == pytest.approx(stored.registered_at, abs=0.002)


def test_registering_the_same_id_again_replaces_it(harness: Harness) -> None:
    harness.backend.register(inst("a", address="10.0.0.1:1"), 30)
    harness.backend.register(inst("a", address="10.0.0.1:2", weight=3), 30)
    (read,) = harness.backend.instances("svc")
    assert (read.address, read.weight) == ("10.0.0.1:2", 3)


def test_services_are_isolated_and_listed_sorted(harness: Harness) -> None:
    for service in ("zeta", "alpha", "mid"):
        harness.backend.register(inst("x", service=service), 30)
    harness.backend.register(inst("y", service="alpha"), 30)
    assert harness.backend.services() == ["alpha", "mid", "zeta"]
    assert sorted(i.id for i in harness.backend.instances("alpha")) == ["x", "y"]
    assert [i.id for i in harness.backend.instances("mid")] == ["x"]
    assert harness.backend.instances("nobody") == []


def test_heartbeat_renews_a_live_lease_and_reports_a_missing_one(harness: Harness) -> None:
    harness.backend.register(inst("a"), 30)
    assert harness.backend.heartbeat("svc", "a", 30) is True
    assert harness.backend.heartbeat("svc", "ghost", 30) is False
    assert harness.backend.heartbeat("other", "a", 30) is False
    (read,) = harness.backend.instances("svc")
    assert read.last_heartbeat >= read.registered_at


def test_deregister_removes_once(harness: Harness) -> None:
    harness.backend.register(inst("a"), 30)
    harness.backend.register(inst("b"), 30)
    assert harness.backend.deregister("svc", "a") is True
    assert harness.backend.deregister("svc", "a") is False
    assert [i.id for i in harness.backend.instances("svc")] == ["b"]
    assert harness.backend.deregister("svc", "b") is True
    assert harness.backend.services() == []


def test_set_status_publishes_health(harness: Harness) -> None:
    harness.backend.register(inst("a"), 30)
    assert harness.backend.set_status("svc", "a", HealthStatus.UNHEALTHY) is True
    assert harness.backend.instances("svc")[0].status is HealthStatus.UNHEALTHY
    assert harness.backend.set_status("svc", "nope", HealthStatus.HEALTHY) is False


def test_an_expired_lease_is_invisible_even_before_a_sweep(harness: Harness) -> None:
    harness.backend.register(inst("old"), harness.short_ttl)
    harness.backend.register(inst("new"), 60)
    harness.let_expire("svc", {"old"})
    assert [i.id for i in harness.backend.instances("svc")] == ["new"]
    # a heartbeat cannot resurrect an expired lease: the owner must re-register
    assert harness.backend.heartbeat("svc", "old", 60) is False
    assert harness.backend.set_status("svc", "old", HealthStatus.HEALTHY) is False


def test_sweep_removes_expired_leases_exactly_once(harness: Harness) -> None:
    harness.backend.register(inst("d1"), harness.short_ttl)
    harness.backend.register(inst("d2"), harness.short_ttl)
    harness.backend.register(inst("live"), 60)
    harness.let_expire("svc", {"d1", "d2"})
    assert sorted(harness.backend.sweep("svc")) == ["d1", "d2"]
    assert harness.backend.sweep("svc") == []
    assert [i.id for i in harness.backend.instances("svc")] == ["live"]
    assert harness.backend.sweep("never-registered") == []


def test_concurrent_sweepers_each_report_a_dead_lease_once(harness: Harness) -> None:
    ids = {f"dead{i}" for i in range(20)}
    for iid in ids:
        harness.backend.register(inst(iid), harness.short_ttl)
    harness.let_expire("svc", ids)
    peers = [harness.make_peer() for _ in range(4)]
    results: list[list[str]] = [[] for _ in peers]
    barrier = threading.Barrier(len(peers))

    def sweep(k: int) -> None:
        barrier.wait()
        results[k] = peers[k].sweep("svc")

    threads = [threading.Thread(target=sweep, args=(k,)) for k in range(len(peers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [iid for r in results for iid in r]
    assert sorted(flat) == sorted(ids)  # every dead lease reported, none twice


def test_services_drops_a_service_whose_leases_all_expired(harness: Harness) -> None:
    harness.backend.register(inst("a", service="gone"), harness.short_ttl)
    harness.backend.register(inst("b", service="kept"), 60)
    harness.let_expire("gone", {"a"})
    assert harness.backend.services() == ["kept"]


def test_writes_notify_subscribers_and_heartbeats_do_not(harness: Harness) -> None:
    sub = harness.subscribe()
    try:
        harness.backend.register(inst("a"), 30)
        harness.expect_change(sub, "svc")
        harness.backend.set_status("svc", "a", HealthStatus.UNHEALTHY)
        harness.expect_change(sub, "svc")
        harness.backend.heartbeat("svc", "a", 30)
        assert harness.quiet(sub) == []
        harness.backend.set_status("svc", "a", HealthStatus.UNHEALTHY)  # no change
        assert harness.quiet(sub) == []
        harness.backend.deregister("svc", "a")
        harness.expect_change(sub, "svc")
        harness.backend.register(inst("b", service="other"), harness.short_ttl)
        harness.expect_change(sub, "other")
        harness.let_expire("other", {"b"})
        assert harness.backend.sweep("other") == ["b"]
        harness.expect_change(sub, "other")
    finally:
        sub.close()


def test_wake_interrupts_a_poll(harness: Harness) -> None:
    sub = harness.subscribe()
    done = threading.Event()

    def poller() -> None:
        sub.poll(30.0)
        done.set()

    t = threading.Thread(target=poller)
    t.start()
    try:
        # keep waking until the poller notices (the first wake may precede the poll)
        for _ in range(200):
            sub.wake()
            if done.wait(0.05):
                break
        assert done.is_set()
    finally:
        sub.close()
        t.join(5)


def test_many_instances_round_trip(harness: Harness) -> None:
    for k in range(60):
        harness.backend.register(inst(f"i{k:02d}", weight=k + 1), 30)
    read = sorted(harness.backend.instances("svc"), key=lambda i: i.id)
    assert [i.weight for i in read] == list(range(1, 61))
