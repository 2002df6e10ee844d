"""call() and acall(): one core, two loops. Every test runs both ways."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from typing import Any

import pytest

from sentia_core.breaker import CircuitBreaker
from sentia_core.errors import CircuitOpenError, NoHealthyInstanceError
from sentia_core.registry import (
    Instance,
    InstanceEjected,
    MemoryBackend,
    RegistryEvent,
    ServiceRegistry,
)
from sentia_core.testing import ManualClock

Fn = Callable[[Instance], Any]


class Invoker:
    """Runs a plain ``fn(instance)`` through ``call`` or, wrapped in a coroutine, ``acall``."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    async def __call__(self, reg: ServiceRegistry, service: str, fn: Fn, **kw: Any) -> Any:
        if self.mode == "sync":
            return reg.call(service, fn, **kw)

        async def afn(inst: Instance) -> Any:
            await asyncio.sleep(0)
            return fn(inst)

        return await reg.acall(service, afn, **kw)


@pytest.fixture(params=["sync", "async"])
def invoke(request: pytest.FixtureRequest) -> Invoker:
    return Invoker(request.param)


def make(clock: ManualClock, n: int = 3, **kw: Any) -> ServiceRegistry:
    kw.setdefault("rng", random.Random(3))
    kw.setdefault("strategy", "round_robin")
    reg = ServiceRegistry(backend=MemoryBackend(clock), clock=clock, **kw)
    for k in range(n):
        reg.register("svc", f"10.0.0.{k}:80", instance_id=f"i{k}")
    return reg


def per_instance(reg: ServiceRegistry, service: str = "svc") -> dict[str, Any]:
    return dict(reg.stats().services[service].per_instance)


async def test_returns_what_fn_returns(invoke: Invoker, clock: ManualClock) -> None:
    reg = make(clock)
    assert await invoke(reg, "svc", lambda i: i.address) in {f"10.0.0.{k}:80" for k in range(3)}
    assert sum(s.requests for s in per_instance(reg).values()) == 1


async def test_a_failure_is_retried_on_a_different_instance(
    invoke: Invoker, clock: ManualClock
) -> None:
    reg = make(clock)
    tried: list[str] = []

    def fn(inst: Instance) -> str:
        tried.append(inst.id)
        if len(tried) < 3:
            raise ConnectionError(f"{inst.id} is down")
        return inst.id

    assert await invoke(reg, "svc", fn) == tried[-1]
    assert len(set(tried)) == 3
    stats = per_instance(reg)
    assert [stats[i].failures for i in tried] == [1, 1, 0]
    assert all(s.outstanding == 0 for s in stats.values())


async def test_when_every_attempt_fails_the_last_error_is_raised(
    invoke: Invoker, clock: ManualClock
) -> None:
    reg = make(clock, n=5)
    tried: list[str] = []

    def fn(inst: Instance) -> None:
        tried.append(inst.id)
        raise ConnectionError(inst.id)

    with pytest.raises(ConnectionError) as err:
        await invoke(reg, "svc", fn, retries=2)
    assert len(tried) == 3 and len(set(tried)) == 3
    assert str(err.value) == tried[-1]


async def test_retries_stop_when_every_instance_was_tried(
    invoke: Invoker, clock: ManualClock
) -> None:
    reg = make(clock, n=2)
    tried: list[str] = []

    def fn(inst: Instance) -> None:
        tried.append(inst.id)
        raise TimeoutError(inst.id)

    with pytest.raises(TimeoutError):
        await invoke(reg, "svc", fn, retries=5)
    assert sorted(tried) == ["i0", "i1"]


async def test_retries_zero_means_one_attempt(invoke: Invoker, clock: ManualClock) -> None:
    reg = make(clock)
    calls: list[str] = []

    def fn(inst: Instance) -> None:
        calls.append(inst.id)
        raise ConnectionError

    with pytest.raises(ConnectionError):
        await invoke(reg, "svc", fn, retries=0)
    assert len(calls) == 1


async def test_errors_outside_retry_on_propagate_at_once_and_are_not_failures(
    invoke: Invoker, clock: ManualClock
) -> None:
    reg = make(clock, retry_on=(ConnectionError,))
    calls: list[str] = []

    def fn(inst: Instance) -> None:
        calls.append(inst.id)
        raise KeyError("the instance answered: no such record")

    with pytest.raises(KeyError):
        await invoke(reg, "svc", fn)
    assert len(calls) == 1
    assert sum(s.failures for s in per_instance(reg).values()) == 0


async def test_base_exceptions_propagate_and_release_the_slot(
    invoke: Invoker, clock: ManualClock
) -> None:
    class Stop(BaseException):
        pass

    reg = make(clock)

    def fn(inst: Instance) -> None:
        raise Stop

    with pytest.raises(Stop):
        await invoke(reg, "svc", fn)
    stats = per_instance(reg)
    assert sum(s.requests for s in stats.values()) == 1
    assert all(s.outstanding == 0 and s.failures == 0 for s in stats.values())


async def test_no_instance_raises_no_healthy_instance_error(
    invoke: Invoker, clock: ManualClock
) -> None:
    reg = make(clock, n=0)
    with pytest.raises(NoHealthyInstanceError) as err:
        await invoke(reg, "svc", lambda i: None)
    assert err.value.service == "svc"


async def test_open_breakers_are_skipped_without_using_a_retry(
    invoke: Invoker, clock: ManualClock
) -> None:
    breakers: dict[str, CircuitBreaker] = {}

    def factory(name: str) -> CircuitBreaker:
        breakers[name] = CircuitBreaker(name, clock=clock)
        return breakers[name]

    reg = make(clock, n=3, breaker_factory=factory)
    for _ in range(3):
        await invoke(reg, "svc", lambda i: None)  # one call each: every breaker exists
    breakers["svc/i0"].force_open()
    breakers["svc/i1"].force_open()
    served = [await invoke(reg, "svc", lambda i: i.id, retries=0) for _ in range(6)]
    assert served == ["i2"] * 6  # retries=0, yet no call failed: rejections cost nothing
    stats = per_instance(reg)
    assert stats["i0"].rejections + stats["i1"].rejections >= 4
    assert stats["i0"].failures == stats["i1"].failures == 0
    breakers["svc/i2"].force_open()
    with pytest.raises(NoHealthyInstanceError) as err:
        await invoke(reg, "svc", lambda i: None)
    assert isinstance(err.value.__cause__, CircuitOpenError)


async def test_a_circuit_open_error_from_inside_fn_is_an_ordinary_failure(
    invoke: Invoker, clock: ManualClock
) -> None:
    reg = make(clock, n=2)

    def fn(inst: Instance) -> None:
        raise CircuitOpenError("downstream-of-the-instance")

    with pytest.raises(CircuitOpenError):
        await invoke(reg, "svc", fn)
    assert sum(s.failures for s in per_instance(reg).values()) == 2


async def test_consecutive_failures_eject_until_the_ejection_ends(
    invoke: Invoker, clock: ManualClock
) -> None:
    reg = make(
        clock,
        n=3,
        outlier_consecutive_failures=3,
        base_ejection_time=30,
        breaker_factory=lambda name: CircuitBreaker(name, consecutive_failures=None, clock=clock),
    )
    events: list[RegistryEvent] = []
    reg.add_listener(events.append)
    broken = {"i1"}

    def fn(inst: Instance) -> str:
        if inst.id in broken:
            raise ConnectionError(inst.id)
        return inst.id

    for _ in range(12):
        assert await invoke(reg, "svc", fn) != "i1"  # failures are retried elsewhere
    stats = per_instance(reg)
    assert stats["i1"].ejected and stats["i1"].ejections == 1 and stats["i1"].failures == 3
    assert [e.instance_id for e in events if isinstance(e, InstanceEjected)] == ["i1"]
    assert {reg.choose("svc").id for _ in range(20)} == {"i0", "i2"}
    broken.clear()
    for _ in range(3):  # 30 s pass; the owner keeps its leases alive meanwhile
        clock.advance(10)
        reg.run_once()
    assert {reg.choose("svc").id for _ in range(20)} == {"i0", "i1", "i2"}
    assert not per_instance(reg)["i1"].ejected


async def test_latency_and_outstanding_are_recorded(invoke: Invoker, clock: ManualClock) -> None:
    reg = make(clock, n=1)
    seen_outstanding: list[int] = []

    def fn(inst: Instance) -> None:
        seen_outstanding.append(per_instance(reg)["i0"].outstanding)
        clock.advance(durations.pop(0))

    durations = [0.010] * 19 + [0.500]
    for _ in range(20):
        await invoke(reg, "svc", fn)
    s = per_instance(reg)["i0"]
    assert seen_outstanding == [1] * 20 and s.outstanding == 0
    assert s.requests == 20
    assert s.latency_mean == pytest.approx((19 * 0.010 + 0.5) / 20)
    assert s.latency_p95 == pytest.approx(0.010)  # 19 of 20 samples are 10 ms
    durations = [0.5] * 5
    for _ in range(5):
        await invoke(reg, "svc", fn)
    assert per_instance(reg)["i0"].latency_p95 == pytest.approx(0.5)


async def test_the_default_breaker_is_a_circuit_breaker_that_opens(
    invoke: Invoker, clock: ManualClock
) -> None:
    reg = make(clock, n=2, max_ejection_percent=0)  # no ejection: only the breaker acts

    def fn(inst: Instance) -> str:
        if inst.id == "i0":
            raise ConnectionError
        return inst.id

    for _ in range(40):
        assert await invoke(reg, "svc", fn) == "i1"
    stats = per_instance(reg)
    assert stats["i0"].failures == 5  # CircuitBreaker's default: 5 in a row opens it
    assert stats["i0"].rejections > 0


def test_one_of_three_dies_mid_load_and_no_caller_sees_a_failure(clock: ManualClock) -> None:
    reg = make(clock, n=3, strategy="power_of_two")
    dead: set[str] = set()
    lock = threading.Lock()
    total = {"calls": 0}
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []
    served: list[str] = []

    def fn(inst: Instance) -> str:
        with lock:
            total["calls"] += 1
            if total["calls"] == 400:
                dead.add("i1")  # dies while 8 threads are hammering it
        if inst.id in dead:
            raise ConnectionResetError(f"{inst.id} died")
        return inst.id

    def worker() -> None:
        barrier.wait()
        for _ in range(150):
            try:
                served.append(reg.call("svc", fn))
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(served) == 1200
    stats = per_instance(reg)
    assert stats["i1"].failures >= 1 and stats["i1"].ejected
    assert all(s.outstanding == 0 for s in stats.values())
    assert sum(s.requests for s in stats.values()) == total["calls"]


async def test_one_of_three_dies_mid_load_under_asyncio(clock: ManualClock) -> None:
    reg = make(clock, n=3, strategy="least_outstanding")
    dead: set[str] = set()
    started = {"n": 0}

    async def fn(inst: Instance) -> str:
        started["n"] += 1
        if started["n"] == 300:
            dead.add("i2")
        await asyncio.sleep(0)
        if inst.id in dead:
            raise ConnectionResetError(inst.id)
        return inst.id

    async def worker() -> list[str]:
        return [await reg.acall("svc", fn) for _ in range(40)]

    results = await asyncio.gather(*(worker() for _ in range(25)))
    assert sum(len(r) for r in results) == 1000
    stats = per_instance(reg)
    assert stats["i2"].failures >= 1
    assert all(s.outstanding == 0 for s in stats.values())


async def test_acall_reads_the_backend_off_the_event_loop(clock: ManualClock) -> None:
    loop_thread = threading.get_ident()
    reader_threads: list[int] = []
    backend = MemoryBackend(clock)
    original = backend.instances

    def spy(service: str) -> list[Instance]:
        reader_threads.append(threading.get_ident())
        return original(service)

    backend.instances = spy  # type: ignore[method-assign]
    reg = ServiceRegistry(backend=backend, clock=clock)
    reg.register("svc", "h:1")

    async def fn(inst: Instance) -> str:
        return inst.address

    assert await reg.acall("svc", fn) == "h:1"
    assert reader_threads and loop_thread not in reader_threads


def test_the_success_path_allocates_no_retry_state(
    clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sentia_core.registry import _failover as _registry

    made: list[object] = []

    class CountingRetry(_registry._Retry):
        def __init__(self, retries: int) -> None:
            made.append(self)
            super().__init__(retries)

    monkeypatch.setattr(_registry, "_Retry", CountingRetry)
    reg = make(clock, n=2)
    for _ in range(50):
        reg.call("svc", lambda i: None)
    assert made == []
    calls: list[str] = []

    def flaky(inst: Instance) -> None:
        calls.append(inst.id)
        if len(calls) == 1:
            raise ConnectionError

    reg.call("svc", flaky)
    assert len(made) == 1
