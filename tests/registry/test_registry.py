"""ServiceRegistry on the memory backend: every timing rule driven by a ManualClock."""

from __future__ import annotations

import random
from typing import Any

import pytest

from sentia_core.errors import ConfigError, NoHealthyInstanceError
from sentia_core.registry import (
    BackendStatusChanged,
    CallableCheck,
    HealthStatus,
    Instance,
    InstanceDeregistered,
    InstanceHealthChanged,
    InstanceRegistered,
    LeaseLost,
    MemoryBackend,
    RegistryEvent,
    ServiceRegistry,
)
from sentia_core.testing import ManualClock

from .conftest import FlakyBackend


@pytest.fixture
def backend(clock: ManualClock) -> MemoryBackend:
    return MemoryBackend(clock)


def make(clock: ManualClock, backend: Any, **kw: Any) -> ServiceRegistry:
    kw.setdefault("rng", random.Random(11))
    return ServiceRegistry(backend=backend, clock=clock, **kw)


def ids(instances: list[Instance]) -> list[str]:
    return [i.id for i in instances]


# --- registration and discovery -------------------------------------------------------


def test_registries_sharing_a_backend_discover_each_other(
    clock: ManualClock, backend: MemoryBackend
) -> None:
    a, b = make(clock, backend), make(clock, backend)
    inst = a.register("pay", "10.0.0.1:80", weight=2, metadata={"v": "3"}, zone="eu")
    assert b.instances("pay") == [inst]
    assert b.services() == ["pay"]
    other = a.register("pay", "10.0.0.2:80")
    assert sorted(ids(b.instances("pay"))) == sorted([inst.id, other.id])  # notified at once
    assert a.deregister(other) is True
    assert b.instances("pay") == [inst]
    assert a.deregister(other) is False


def test_default_registries_share_the_process_wide_memory_backend() -> None:
    a, b = ServiceRegistry(), ServiceRegistry()
    assert a.backend is b.backend is MemoryBackend.default()
    inst = a.register("shared-default-test", "127.0.0.1:9")
    try:
        assert b.instances("shared-default-test") == [inst]
    finally:
        a.stop()
    assert b.instances("shared-default-test") == []


def test_a_registry_on_a_manual_clock_gets_a_private_backend(clock: ManualClock) -> None:
    reg = ServiceRegistry(clock=clock)
    assert reg.backend is not MemoryBackend.default()
    assert isinstance(reg.backend, MemoryBackend)


def test_ids_are_generated_or_given(clock: ManualClock, backend: MemoryBackend) -> None:
    reg = make(clock, backend)
    generated = reg.register("s", "h:1")
    assert len(generated.id) == 16
    given = reg.register("s", "h:2", instance_id="node-2")
    assert given.id == "node-2"
    assert reg.owned() == [generated, given]


def test_healthy_only_filters_by_status(clock: ManualClock, backend: MemoryBackend) -> None:
    reg = make(clock, backend)
    reg.register("s", "h:1", instance_id="up")
    reg.register("s", "h:2", instance_id="down", health_check=lambda i: False)
    assert ids(reg.instances("s")) == ["up"]
    assert ids(reg.instances("s", healthy_only=False)) == ["down", "up"]
    assert reg.instances("s", healthy_only=False)[0].status is HealthStatus.STARTING


# --- leases: heartbeats, loss, expiry, sweeping ------------------------------------------


def test_heartbeats_keep_a_lease_alive_far_beyond_ttl(
    clock: ManualClock, backend: MemoryBackend
) -> None:
    reg = make(clock, backend, ttl=30, heartbeat_interval=10)
    inst = reg.register("s", "h:1")
    for _ in range(12):  # two minutes
        clock.advance(10)
        reg.run_once()
    assert backend.instances("s") == [inst]
    assert backend.instances("s")[0].last_heartbeat == clock.time()


def test_without_heartbeats_the_lease_expires_and_a_sweep_removes_it(
    clock: ManualClock, backend: MemoryBackend
) -> None:
    owner = make(clock, backend, ttl=30, heartbeat_interval=10)
    watcher = make(clock, backend, ttl=30, heartbeat_interval=10, sweep_interval=5)
    inst = owner.register("s", "h:1")
    assert watcher.instances("s") == [inst]
    events: list[RegistryEvent] = []
    watcher.add_listener(events.append)
    clock.advance(29.9)
    watcher.run_once()
    assert watcher.instances("s") == [inst]
    clock.advance(0.1)  # the owner "crashed": nobody renewed the lease
    assert make(clock, backend).instances("s") == []  # a fresh read no longer sees it
    clock.advance(5)  # within one sweep interval the watcher sweeps it
    watcher.run_once()
    assert watcher.instances("s") == []
    assert watcher.stats().swept == 1
    assert [e for e in events if isinstance(e, InstanceDeregistered)] == [
        InstanceDeregistered("registry:registry", clock.time(), "s", inst.id, "expired")
    ]


def test_a_lost_lease_is_detected_and_the_instance_registers_again(
    clock: ManualClock, backend: MemoryBackend
) -> None:
    reg = make(clock, backend, ttl=30, heartbeat_interval=10)
    events: list[RegistryEvent] = []
    reg.add_listener(events.append)
    inst = reg.register("s", "h:1", metadata={"k": "v"})
    backend.deregister("s", inst.id)  # e.g. swept after a long GC pause, or Redis flushed
    clock.advance(10)
    reg.run_once()
    (again,) = backend.instances("s")
    assert again == inst and again.registered_at == clock.time()
    assert reg.stats().reregistrations == 1
    kinds = [type(e) for e in events]
    assert kinds == [InstanceRegistered, LeaseLost, InstanceRegistered]
    assert isinstance(events[-1], InstanceRegistered) and events[-1].reregistration


def test_a_deregistration_racing_a_reregistration_wins(
    clock: ManualClock, backend: MemoryBackend
) -> None:
    flaky = FlakyBackend(backend, clock)
    reg = make(clock, flaky)
    inst = reg.register("s", "h:1")
    backend.deregister("s", inst.id)  # the lease is lost...
    flaky.on_register = lambda: reg.deregister(inst)  # ...and the user deregisters meanwhile
    clock.advance(10)
    reg.run_once()  # the heartbeat re-registers, then sees it is no longer owned
    assert backend.instances("s") == []
    assert reg.owned() == []


def test_a_replacement_racing_a_reregistration_keeps_the_newer_data(
    clock: ManualClock, backend: MemoryBackend
) -> None:
    flaky = FlakyBackend(backend, clock)
    reg = make(clock, flaky)
    reg.register("s", "h:1", instance_id="x", metadata={"v": "1"})
    backend.deregister("s", "x")
    flaky.on_register = lambda: reg.register("s", "h:1", instance_id="x", metadata={"v": "2"})
    clock.advance(10)
    reg.run_once()
    assert [dict(i.metadata) for i in backend.instances("s")] == [{"v": "2"}]


def test_registration_retries_with_growing_jittered_backoff(
    clock: ManualClock, backend: MemoryBackend
) -> None:
    flaky = FlakyBackend(backend, clock)
    flaky.fail_registrations = 5
    reg = make(clock, flaky, registration_backoff=1.0, registration_backoff_max=8.0)
    inst = reg.register("s", "h:1")
    assert inst.registered_at == 0.0
    assert reg.stats().pending_registrations == 1
    assert reg.stats().backend_available is False
    while len(flaky.register_attempts) < 6:
        clock.advance(0.05)
        reg.run_once()
    gaps = [
        b - a for a, b in zip(flaky.register_attempts, flaky.register_attempts[1:], strict=False)
    ]
    for gap, nominal in zip(gaps, [1, 2, 4, 8, 8], strict=True):
        assert nominal / 2 - 0.06 <= gap <= nominal + 0.06
    assert reg.stats().pending_registrations == 0
    assert reg.stats().backend_available is True
    assert ids(backend.instances("s")) == [inst.id]


def test_deregister_after_drops_an_instance_that_stays_unhealthy(
    clock: ManualClock, backend: MemoryBackend
) -> None:
    state = {"up": True}
    reg = make(
        clock,
        backend,
        health_check_interval=5,
        unhealthy_threshold=2,
        deregister_after=60,
    )
    events: list[RegistryEvent] = []
    reg.add_listener(events.append)
    inst = reg.register("s", "h:1", health_check=lambda i: state["up"])
    reg.run_once()
    assert reg.instances("s")[0].status is HealthStatus.HEALTHY
    state["up"] = False
    for _ in range(2):
        clock.advance(5)
        reg.run_once()
    assert reg.instances("s") == []
    unhealthy_at = clock.monotonic()
    while clock.monotonic() - unhealthy_at < 55:
        clock.advance(5)
        reg.run_once()
        assert ids(reg.instances("s", healthy_only=False)) == [inst.id]
    clock.advance(5)
    reg.run_once()
    assert reg.instances("s", healthy_only=False) == []
    assert reg.owned() == []
    assert InstanceDeregistered("registry:registry", clock.time(), "s", inst.id, "unhealthy") in (
        events
    )


def test_an_instance_that_recovers_in_time_is_kept(
    clock: ManualClock, backend: MemoryBackend
) -> None:
    state = {"up": False}
    reg = make(clock, backend, health_check_interval=5, healthy_threshold=1, deregister_after=30)
    reg.register("s", "h:1", health_check=lambda i: state["up"])
    for _ in range(5):
        reg.run_once()
        clock.advance(5)
    state["up"] = True
    reg.run_once()
    clock.advance(100)
    reg.run_once()
    assert len(reg.instances("s")) == 1


# --- active health checks -------------------------------------------------------------------


def test_health_checks_run_on_interval_with_rise_and_fall(
    clock: ManualClock, backend: MemoryBackend
) -> None:
    probes: list[float] = []
    state = {"up": True}

    def check(_: Instance) -> bool:
        probes.append(clock.monotonic())
        return state["up"]

    owner = make(clock, backend, health_check_interval=10, healthy_threshold=2)
    consumer = make(clock, backend)
    events: list[RegistryEvent] = []
    owner.add_listener(events.append)
    owner.register("s", "h:1", health_check=CallableCheck(check, interval=3, fall=2))
    assert consumer.instances("s") == []  # starting: not routed to
    owner.run_once()
    assert [i.status for i in consumer.instances("s", healthy_only=False)] == [HealthStatus.HEALTHY]
    owner.run_once()  # not due yet
    assert probes == [clock.monotonic()]
    state["up"] = False
    clock.advance(3)
    owner.run_once()
    assert len(consumer.instances("s")) == 1  # one failure is not enough (fall=2)
    clock.advance(3)
    owner.run_once()
    assert consumer.instances("s") == []
    state["up"] = True
    for expected in (0, 1):  # rise=2 (the registry default)
        clock.advance(3)
        owner.run_once()
        assert len(consumer.instances("s")) == expected
    assert probes == [1000.0 + 3 * k for k in range(5)]
    changes = [
        (e.previous, e.instance.status) for e in events if isinstance(e, InstanceHealthChanged)
    ]
    assert changes == [
        (HealthStatus.STARTING, HealthStatus.HEALTHY),
        (HealthStatus.HEALTHY, HealthStatus.UNHEALTHY),
        (HealthStatus.UNHEALTHY, HealthStatus.HEALTHY),
    ]
    stats = consumer.stats().services["s"].per_instance
    assert next(iter(stats.values())).health_transitions == 3


def test_a_probe_slower_than_its_timeout_fails(clock: ManualClock, backend: MemoryBackend) -> None:
    def slow(_: Instance) -> bool:
        clock.advance(2.5)  # the probe "takes" 2.5 s
        return True

    reg = make(clock, backend, health_check_timeout=2.0)
    reg.register("s", "h:1", health_check=slow)
    reg.run_once()
    assert reg.instances("s", healthy_only=False)[0].status is HealthStatus.UNHEALTHY


def test_a_probe_that_raises_fails(clock: ManualClock, backend: MemoryBackend) -> None:
    class Broken:
        interval = None
        timeout = None
        rise = None
        fall = None

        def probe(self, instance: Instance, timeout: float) -> bool:
            raise RuntimeError("bug in a custom check")

    reg = make(clock, backend)
    reg.register("s", "h:1", health_check=Broken())
    reg.run_once()
    assert reg.instances("s", healthy_only=False)[0].status is HealthStatus.UNHEALTHY


def test_a_status_change_that_finds_the_lease_lost_registers_again(
    clock: ManualClock, backend: MemoryBackend
) -> None:
    state = {"up": True}
    reg = make(clock, backend, health_check_interval=1, unhealthy_threshold=1)
    events: list[RegistryEvent] = []
    reg.add_listener(events.append)
    inst = reg.register("s", "h:1", health_check=lambda i: state["up"])
    reg.run_once()
    backend.deregister("s", inst.id)  # swept behind its back
    state["up"] = False
    clock.advance(1)
    reg.run_once()  # the probe publishes the change, finds no lease, registers again
    (again,) = backend.instances("s")
    assert again.id == inst.id and again.status is HealthStatus.UNHEALTHY
    assert any(isinstance(e, LeaseLost) for e in events)
    assert reg.stats().reregistrations == 1


def test_a_status_that_could_not_be_published_is_published_later(
    clock: ManualClock, backend: MemoryBackend
) -> None:
    flaky = FlakyBackend(backend, clock)
    state = {"up": True}
    reg = make(clock, flaky, health_check_interval=1, unhealthy_threshold=1)
    reg.register("s", "h:1", health_check=lambda i: state["up"])
    reg.run_once()
    state["up"] = False
    flaky.down = True
    clock.advance(1)
    reg.run_once()
    assert backend.instances("s")[0].status is HealthStatus.HEALTHY  # could not publish
    flaky.down = False
    clock.advance(10)
    reg.run_once()
    assert backend.instances("s")[0].status is HealthStatus.UNHEALTHY


# --- views: notifications, refresh, self-preservation, watch ---------------------------------


def test_views_refresh_periodically_when_notifications_are_lost(
    clock: ManualClock, backend: MemoryBackend
) -> None:
    flaky = FlakyBackend(backend, clock)
    flaky.silent = True
    consumer = make(clock, flaky, refresh_interval=10)
    owner = make(clock, backend)
    first = owner.register("s", "h:1")
    assert consumer.instances("s") == [first]
    second = owner.register("s", "h:2")
    assert consumer.instances("s") == [first]  # nobody told it
    clock.advance(10)
    consumer.run_once()
    assert sorted(ids(consumer.instances("s"))) == sorted([first.id, second.id])
    assert consumer.stats().refreshes >= 2


def test_without_the_thread_a_stale_view_reloads_on_use(
    clock: ManualClock, backend: MemoryBackend
) -> None:
    flaky = FlakyBackend(backend, clock)
    flaky.silent = True  # no notifications: only staleness can refresh the view
    consumer = make(clock, flaky, refresh_interval=10)
    owner = make(clock, backend, ttl=120, heartbeat_interval=60)
    first = owner.register("s", "h:1")
    assert consumer.instances("s") == [first]
    owner.register("s", "h:2")
    clock.advance(20)  # two refresh intervals: still trusted
    assert consumer.instances("s") == [first]
    clock.advance(0.1)
    assert len(consumer.instances("s")) == 2


def test_self_preservation_keeps_the_last_known_instances(
    clock: ManualClock, backend: MemoryBackend
) -> None:
    flaky = FlakyBackend(backend, clock)
    reg = make(clock, flaky, refresh_interval=5)
    events: list[RegistryEvent] = []
    reg.add_listener(events.append)
    a = reg.register("s", "h:1")
    assert reg.instances("s") == [a]
    assert reg.services() == ["s"]
    flaky.down = True
    clock.advance(60)  # leases lapse in the backend's eyes; we cannot know
    reg.run_once()
    assert reg.instances("s") == [a]
    assert reg.choose("s") == a
    assert reg.services() == ["s"]
    stats = reg.stats()
    assert stats.backend_available is False and stats.services["s"].stale
    assert stats.backend_errors >= 1
    flaky.down = False
    clock.advance(5)
    reg.run_once()
    assert reg.stats().backend_available is True
    assert reg.instances("s") == [a]  # the heartbeat found the lease gone and re-registered
    assert not reg.stats().services["s"].stale
    assert [e.available for e in events if isinstance(e, BackendStatusChanged)] == [False, True]


def _flush(backend: MemoryBackend) -> None:
    """What a Redis restarted without persistence looks like: every lease gone."""
    for service in backend.services():
        for inst in backend.instances(service):
            backend.deregister(service, inst.id)


def test_a_backend_that_comes_back_empty_keeps_the_last_known_instances(
    clock: ManualClock, backend: MemoryBackend
) -> None:
    flaky = FlakyBackend(backend, clock)
    owner = make(clock, backend)  # another process: it never saw the outage yet
    consumer = make(clock, flaky, refresh_interval=5)
    a = owner.register("s", "h:1")
    assert consumer.instances("s") == [a]
    flaky.down = True
    consumer.run_once()  # the consumer sees the outage
    assert consumer.stats().backend_available is False
    _flush(backend)  # ... and Redis comes back with nothing in it
    flaky.down = False
    clock.advance(5)
    consumer.run_once()
    # not NoHealthyInstanceError: the leases were lost, not the instances
    assert consumer.instances("s") == [a]
    assert consumer.call("s", lambda inst: inst.id) == a.id
    assert consumer.stats().preserved_reloads >= 1
    assert consumer.stats().services["s"].stale
    clock.advance(5)  # the owner's next heartbeat is due
    owner.run_once()  # it finds its lease gone and takes it again
    consumer.run_once()
    assert consumer.instances("s") == [a]
    assert not consumer.stats().services["s"].stale


def test_preservation_ends_after_one_lease_length(
    clock: ManualClock, backend: MemoryBackend
) -> None:
    flaky = FlakyBackend(backend, clock)
    owner = make(clock, backend, ttl=30, heartbeat_interval=10)
    consumer = make(clock, flaky, refresh_interval=5, ttl=30, heartbeat_interval=10)
    owner.register("s", "h:1")
    assert len(consumer.instances("s")) == 1
    flaky.down = True
    consumer.run_once()
    owner.close()  # the owner is really gone, and Redis restarted empty
    _flush(backend)
    flaky.down = False
    consumer.run_once()
    assert len(consumer.instances("s")) == 1  # preserved for now
    clock.advance(31)  # a lease length since the backend came back
    consumer.run_once()
    assert consumer.instances("s") == []  # then an empty service is believed


def test_an_owner_renews_every_lease_as_soon_as_the_backend_is_back(
    clock: ManualClock, backend: MemoryBackend
) -> None:
    flaky = FlakyBackend(backend, clock)
    owner = make(clock, flaky, ttl=30, heartbeat_interval=10)
    a = owner.register("s", "h:1")
    flaky.down = True
    clock.advance(10)
    owner.run_once()  # a heartbeat fails: the owner knows the backend is down
    assert owner.stats().backend_available is False
    _flush(backend)
    flaky.down = False
    clock.advance(1)  # far from the next heartbeat's time
    owner.instances("s")  # any successful read notices the backend is back ...
    owner.run_once()  # ... and the next run renews every owned lease at once
    assert [i.id for i in backend.instances("s")] == [a.id]


def test_watch_reports_now_and_on_every_change(clock: ManualClock, backend: MemoryBackend) -> None:
    owner, consumer = make(clock, backend), make(clock, backend)
    seen: list[list[str]] = []

    def cb(instances: tuple[Instance, ...]) -> None:
        seen.append([f"{i.address}:{i.status}" for i in instances])

    def broken(_: tuple[Instance, ...]) -> None:
        raise RuntimeError("a buggy watcher does not stop the others")

    consumer.watch("s", broken)
    stop = consumer.watch("s", cb)
    assert seen == [[]]
    owner.register("s", "h:1", instance_id="1")
    consumer.run_once()
    owner.register("s", "h:2", instance_id="2", health_check=lambda i: False)
    consumer.run_once()
    owner.run_once()  # probes instance 2: unhealthy
    consumer.run_once()
    consumer.run_once()  # nothing changed: no call
    stop()
    owner.deregister(owner.owned()[0])
    consumer.run_once()
    assert seen == [
        [],
        ["h:1:healthy"],
        ["h:1:healthy", "h:2:starting"],
        ["h:1:healthy", "h:2:unhealthy"],
    ]


# --- choosing: zones and panic ------------------------------------------------------------------


def test_zone_preference_falls_back_to_other_zones(
    clock: ManualClock, backend: MemoryBackend
) -> None:
    state = {"eu": True}
    owner = make(clock, backend, unhealthy_threshold=1, health_check_interval=1)
    for k in range(2):
        owner.register("s", f"eu:{k}", zone="eu", health_check=lambda i: state["eu"])
    for k in range(2):
        owner.register("s", f"us:{k}", zone="us")
    owner.run_once()
    local = make(clock, backend, zone="eu")
    assert {local.choose("s").zone for _ in range(20)} == {"eu"}
    assert {local.choose("s", zone=None).zone for _ in range(20)} == {"eu", "us"}
    assert {local.choose("s", zone="us").zone for _ in range(20)} == {"us"}
    no_pref = make(clock, backend, zone="eu", prefer_zone=False)
    assert {no_pref.choose("s").zone for _ in range(20)} == {"eu", "us"}
    state["eu"] = False
    clock.advance(1)
    owner.run_once()
    assert {local.choose("s").zone for _ in range(20)} == {"us"}


def test_panic_mode_balances_over_everyone_when_too_few_are_healthy(
    clock: ManualClock, backend: MemoryBackend
) -> None:
    owner = make(clock, backend)
    owner.register("s", "h:ok", instance_id="ok")
    for k in range(3):
        owner.register("s", f"h:{k}", instance_id=f"sick{k}", health_check=lambda i: False)
    owner.run_once()
    panicky = make(clock, backend, panic_threshold=50)
    assert {panicky.choose("s").id for _ in range(40)} == {"ok", "sick0", "sick1", "sick2"}
    assert panicky.stats().services["s"].panic
    calm = make(clock, backend, panic_threshold=0)
    assert {calm.choose("s").id for _ in range(40)} == {"ok"}
    assert not calm.stats().services["s"].panic


def test_no_instance_is_an_error_naming_the_service(
    clock: ManualClock, backend: MemoryBackend
) -> None:
    reg = make(clock, backend, panic_threshold=0)
    with pytest.raises(NoHealthyInstanceError) as err:
        reg.choose("ghost")
    assert err.value.service == "ghost"
    reg.register("sick", "h:1", health_check=lambda i: False)
    reg.run_once()
    with pytest.raises(NoHealthyInstanceError):
        reg.choose("sick")
    assert reg.stats().services["ghost"].no_instance_errors == 1


# --- lifecycle -----------------------------------------------------------------------------------


def test_start_stop_runs_the_background_thread_and_deregisters(backend: MemoryBackend) -> None:
    real_backend = MemoryBackend()
    with ServiceRegistry(backend=real_backend, name="lifecycle") as reg:
        assert reg.running
        assert reg.start() is reg  # idempotent
        inst = reg.register("s", "h:1")
        assert real_backend.instances("s") == [inst]
    assert not reg.running
    assert real_backend.instances("s") == []
    reg2 = ServiceRegistry(backend=real_backend).start()
    kept = reg2.register("s", "h:2")
    reg2.stop(deregister=False)
    assert real_backend.instances("s") == [kept]  # left to expire after ttl


def test_stats_snapshot(clock: ManualClock, backend: MemoryBackend) -> None:
    reg = make(clock, backend)
    reg.register("s", "h:1", instance_id="a")
    reg.call("s", lambda i: None)
    stats = reg.stats()
    assert (stats.backend, stats.owned_instances, stats.running) == ("memory", 1, False)
    svc = stats.services["s"]
    assert (svc.instances, svc.healthy, svc.requests, svc.failures) == (1, 1, 1, 0)
    assert svc.per_instance["a"].address == "h:1"
    with pytest.raises(TypeError):
        svc.per_instance["b"] = svc.per_instance["a"]  # type: ignore[index]
    assert "memory" in repr(reg)


# --- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "parameter"),
    [
        ({"ttl": 0}, "ttl"),
        ({"ttl": 10, "heartbeat_interval": 10}, "heartbeat_interval"),
        ({"heartbeat_interval": -1}, "heartbeat_interval"),
        ({"health_check_interval": 0}, "health_check_interval"),
        ({"health_check_timeout": "1 fortnight"}, "health_check_timeout"),
        ({"healthy_threshold": 0}, "healthy_threshold"),
        ({"unhealthy_threshold": 1.5}, "unhealthy_threshold"),
        ({"deregister_after": 0}, "deregister_after"),
        ({"refresh_interval": float("nan")}, "refresh_interval"),
        ({"sweep_interval": 0}, "sweep_interval"),
        ({"registration_backoff": 0}, "registration_backoff"),
        ({"registration_backoff": 2, "registration_backoff_max": 1}, "registration_backoff_max"),
        ({"strategy": "fastest"}, "strategy"),
        ({"zone": ""}, "zone"),
        ({"outlier_consecutive_failures": 0}, "outlier_consecutive_failures"),
        ({"base_ejection_time": 0}, "base_ejection_time"),
        ({"max_ejection_percent": 150}, "max_ejection_percent"),
        ({"panic_threshold": -1}, "panic_threshold"),
        ({"retries": -1}, "retries"),
        ({"retry_on": "oops"}, "retry_on"),
        ({"retry_on": ()}, "retry_on"),
        ({"breaker_factory": 3}, "breaker_factory"),
        ({"name": ""}, "name"),
        ({"clock": object()}, "clock"),
        ({"rng": 4}, "rng"),
        ({"backend": object()}, "backend"),
        ({"redis": "http://x"}, "redis"),
        ({"redis": "redis://127.0.0.1:1/0", "backend": MemoryBackend()}, "backend"),
    ],
)
def test_invalid_configuration_is_rejected_at_construction(
    kw: dict[str, Any], parameter: str
) -> None:
    with pytest.raises(ConfigError) as err:
        ServiceRegistry(**kw)
    assert err.value.parameter == parameter


@pytest.mark.parametrize(
    ("kw", "parameter"),
    [
        ({"service": ""}, "service"),
        ({"service": "a\nb"}, "service"),
        ({"service": "x" * 300}, "service"),
        ({"address": 8080}, "address"),
        ({"weight": 0}, "weight"),
        ({"weight": 2_000_000}, "weight"),
        ({"weight": 1.5}, "weight"),
        ({"metadata": {"k": 1}}, "metadata"),
        ({"metadata": ["k"]}, "metadata"),
        ({"health_check": "smtp://x"}, "health_check"),
        ({"instance_id": ""}, "instance_id"),
        ({"zone": ""}, "zone"),
    ],
)
def test_invalid_registrations_are_rejected(
    clock: ManualClock, backend: MemoryBackend, kw: dict[str, Any], parameter: str
) -> None:
    reg = make(clock, backend)
    args = {"service": "s", "address": "h:1", **kw}
    with pytest.raises(ConfigError) as err:
        reg.register(**args)
    assert err.value.parameter == parameter
    assert backend.services() == []
