"""call(avoid=...): the hook a Hedge uses so that each attempt of a call goes elsewhere."""

from __future__ import annotations

import asyncio
import random
import threading

from sentia_core import Hedge
from sentia_core.policies import current_hedge_attempt
from sentia_core.registry import Instance, MemoryBackend, ServiceRegistry
from sentia_core.testing import ManualClock
from tests.policies.test_bulkhead import wait_until


def make(clock: ManualClock, n: int) -> ServiceRegistry:
    # "random" could pick one instance twice in a row: only avoid= keeps them apart
    reg = ServiceRegistry(
        backend=MemoryBackend(clock), clock=clock, rng=random.Random(0), strategy="random"
    )
    for k in range(n):
        reg.register("svc", f"10.0.0.{k}:80", instance_id=f"i{k}")
    return reg


def test_avoid_steers_away_and_records_the_choice(clock: ManualClock) -> None:
    reg = make(clock, 3)
    avoid: set[str] = set()
    chosen = [reg.call("svc", lambda inst: inst.id, avoid=avoid) for _ in range(3)]
    assert sorted(chosen) == ["i0", "i1", "i2"]
    assert avoid == {"i0", "i1", "i2"}
    # every instance avoided: the call still runs somewhere rather than failing
    assert reg.call("svc", lambda inst: inst.id, avoid=avoid) in avoid


def test_each_hedged_attempt_runs_on_another_instance(clock: ManualClock) -> None:
    reg = make(clock, 2)
    hedge = Hedge(0.0, max_attempts=2)
    for _ in range(5):
        release = threading.Event()
        seen: dict[int, str] = {}

        def on_instance(
            inst: Instance, release: threading.Event = release, seen: dict[int, str] = seen
        ) -> str:
            attempt = current_hedge_attempt()
            assert attempt is not None
            seen[attempt.number] = inst.id
            if attempt.number == 1:
                release.wait(30)
            else:  # attempt 1 chose first and is still running when the hedge wins
                wait_until(lambda: 1 in seen, "attempt 1 chose its instance")
            return inst.id

        def fetch(on_instance=on_instance) -> str:  # type: ignore[no-untyped-def]
            attempt = current_hedge_attempt()
            assert attempt is not None
            return reg.call("svc", on_instance, avoid=attempt.avoid)

        winner = hedge.call(fetch)
        release.set()
        assert winner == seen[2] != seen[1]
    assert hedge.stats().hedge_wins == 5


async def test_async_hedged_attempts_use_distinct_instances(clock: ManualClock) -> None:
    reg = make(clock, 3)
    seen: list[tuple[int, str]] = []
    gate = asyncio.Event()
    hedge = Hedge(0.0, max_attempts=3)

    async def on_instance(inst: Instance) -> str:
        attempt = current_hedge_attempt()
        assert attempt is not None
        seen.append((attempt.number, inst.id))
        if attempt.number < 3:
            await gate.wait()
        return inst.id

    async def fetch() -> str:
        attempt = current_hedge_attempt()
        assert attempt is not None
        return await reg.acall("svc", on_instance, avoid=attempt.avoid)

    winner = await hedge.call_async(fetch)
    assert sorted(i for _, i in seen) == ["i0", "i1", "i2"]
    assert winner == dict(seen)[3]
