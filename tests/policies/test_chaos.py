"""Chaos: off unless code says so, injects at its rate (seeded), and marks what it injected."""

from __future__ import annotations

import asyncio
import math
import random
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentia_core import Chaos, Policy, Retry, Timeout
from sentia_core.errors import ConfigError
from sentia_core.policies import ChaosEvent, is_injected
from sentia_core.testing import ManualClock


def test_off_by_default_and_the_environment_alone_cannot_turn_it_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SENTIA_CHAOS", "1")
    chaos = Chaos(fault=ConnectionError, rate=1.0, require_env="SENTIA_CHAOS")
    assert not chaos.enabled
    assert all(chaos.call(int, i) == i for i in range(100))
    assert chaos.stats().faults == 0


def test_require_env_needs_both_keys() -> None:
    on = Chaos(fault=ValueError, rate=1.0, enabled=True, require_env="X", environ={"X": "1"})
    assert on.enabled
    for environ in ({}, {"X": "0"}, {"X": "true"}):
        off = Chaos(fault=ValueError, rate=1.0, enabled=True, require_env="X", environ=environ)
        assert not off.enabled
        assert off.call(lambda: 1) == 1


def test_a_flag_callable_is_read_per_call_and_a_broken_flag_reads_as_off() -> None:
    flag = [False]
    chaos = Chaos(result="fake", rate=1.0, enabled=lambda: flag[0])
    assert chaos.call(lambda: "real") == "real"
    flag[0] = True
    assert chaos.call(lambda: "real") == "fake"

    def broken() -> bool:
        raise RuntimeError("flag service down")

    assert not Chaos(result=1, rate=1.0, enabled=broken).enabled
    assert not Chaos(result=1, rate=1.0, enabled=lambda: "yes").enabled  # type: ignore[arg-type,return-value]


def test_enable_and_disable_at_runtime() -> None:
    chaos = Chaos(result=0, rate=1.0)
    chaos.enable()
    assert chaos.call(lambda: 1) == 0
    chaos.disable()
    assert chaos.call(lambda: 1) == 1


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), rate=st.floats(0.0, 1.0))
def test_the_injection_rate_matches_with_a_seeded_rng(seed: int, rate: float) -> None:
    n = 2000
    chaos = Chaos(result=None, rate=rate, enabled=True, rng=random.Random(seed))
    injected = sum(1 for _ in range(n) if chaos.call(lambda: "real") is None)
    sigma = math.sqrt(n * rate * (1 - rate))
    assert abs(injected - n * rate) <= 6 * sigma + 1
    stats = chaos.stats()
    assert (stats.calls, stats.results) == (n, injected)


def test_the_same_seed_injects_the_same_calls() -> None:
    def pattern(seed: int) -> list[bool]:
        chaos = Chaos(result=None, rate=0.3, enabled=True, rng=random.Random(seed))
        return [chaos.call(lambda: 1) is None for _ in range(200)]

    assert pattern(7) == pattern(7)
    assert pattern(7) != pattern(8)


def test_injected_faults_are_fresh_marked_and_reported() -> None:
    events: list[ChaosEvent] = []
    template = ConnectionError("injected")
    chaos = Chaos(fault=template, rate=1.0, enabled=True, name="db-chaos")
    chaos.add_listener(events.append)
    errors = []
    for _ in range(2):
        with pytest.raises(ConnectionError) as info:
            chaos.call(lambda: 1)
        errors.append(info.value)
    assert errors[0] is not errors[1] and errors[0] is not template
    assert all(is_injected(e) for e in errors)
    assert not is_injected(ConnectionError("real"))
    assert [(e.kind, e.injected, e.chaos) for e in events] == [("fault", True, "db-chaos")] * 2
    assert events[0].error is errors[0]


def test_injected_latency_uses_the_injected_sleep_then_runs_the_call() -> None:
    clock = ManualClock()
    chaos = Chaos(latency=2.5, rate=1.0, enabled=True, clock=clock)
    assert chaos.call(lambda: "real") == "real"
    assert clock.sleeps == [2.5]
    assert chaos.stats().delays == 1


def test_a_factory_that_returns_nonsense_still_raises_a_marked_error() -> None:
    chaos = Chaos(fault=lambda: "oops", rate=1.0, enabled=True)  # type: ignore[arg-type,return-value]
    with pytest.raises(RuntimeError) as info:
        chaos.call(lambda: 1)
    assert is_injected(info.value)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({}, "fault"),
        ({"fault": ValueError, "result": 1}, "result"),
        ({"fault": 3}, "fault"),
        ({"result": 1, "rate": 1.5}, "rate"),
        ({"result": 1, "enabled": "yes"}, "enabled"),
        ({"latency": -1}, "latency"),
    ],
)
def test_bad_configuration_names_the_parameter(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ConfigError) as info:
        Chaos(**kwargs)
    assert info.value.parameter == parameter


def test_threads_share_one_chaos_and_every_call_is_counted() -> None:
    chaos = Chaos(result=None, rate=0.5, enabled=True, rng=random.Random(1))
    threads = [
        threading.Thread(target=lambda: [chaos.call(lambda: 1) for _ in range(100)])
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    stats = chaos.stats()
    assert stats.calls == 800
    assert 0 < stats.results < 800


async def test_async_injection_with_latency_and_a_fault() -> None:
    clock = ManualClock()
    chaos = Chaos(fault=TimeoutError, latency=1.0, rate=1.0, enabled=True, clock=clock)

    async def real() -> int:
        return 1

    with pytest.raises(TimeoutError) as info:
        await chaos.call_async(real)
    assert is_injected(info.value)
    assert clock.sleeps == [1.0]
    stats = chaos.stats()
    assert (stats.faults, stats.delays) == (1, 1)


def test_policy_retry_recovers_from_an_injected_fault() -> None:
    chaos = Chaos(fault=ConnectionError, rate=0.5, enabled=True, rng=random.Random(3))
    policy = Policy(
        retry=Retry(attempts=50, backoff=0.0, on=ConnectionError, clock=ManualClock()),
        chaos=chaos,
    )

    @policy
    def real() -> str:
        return "ok"

    assert all(real() == "ok" for _ in range(20))
    stats = policy.stats()
    assert stats.chaos is not None and stats.chaos.faults > 0
    assert stats.retry is not None and stats.retry.retries == stats.chaos.faults


async def test_policy_chaos_sits_inside_the_timeout() -> None:
    chaos = Chaos(latency=3600.0, rate=1.0, enabled=True, async_sleep=asyncio.sleep)
    policy = Policy(timeout=Timeout(0.01), chaos=chaos)

    @policy
    async def real() -> int:
        return 1

    with pytest.raises(TimeoutError):  # the timeout cuts the injected delay short
        await real()
    assert "timeout -> chaos" in repr(policy)
