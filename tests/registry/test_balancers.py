"""Balancers: exact shares where the algorithm promises them, statistics where it is random."""

from __future__ import annotations

import collections
import random
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentia_core.errors import ConfigError
from sentia_core.registry import (
    STRATEGIES,
    Balancer,
    Instance,
    LeastOutstanding,
    MemoryBackend,
    PowerOfTwoChoices,
    RandomChoice,
    RoundRobin,
    ServiceRegistry,
    SmoothWeightedRoundRobin,
)
from sentia_core.registry._balancers import make_balancer
from sentia_core.testing import ManualClock


def pool(*weights: int) -> list[Instance]:
    return [
        Instance(service="s", id=chr(ord("a") + k), address=f"h:{k}", weight=w)
        for k, w in enumerate(weights)
    ]


def idle(_: Instance) -> int:
    return 0


def test_round_robin_visits_each_in_turn() -> None:
    cands = pool(1, 1, 1)
    rr = RoundRobin()
    assert [rr.choose(cands, idle).id for _ in range(7)] == list("abcabca")


# The registry hands balancers cached tuples (SWRR precomputes one period for
# those); anything else (a retry's leftovers, a list) runs step by step.
CONTAINERS = [tuple, list]


@pytest.mark.parametrize("container", CONTAINERS)
def test_smooth_weighted_round_robin_interleaves_like_nginx(container: type) -> None:
    swrr = SmoothWeightedRoundRobin()
    cands = container(pool(5, 1, 1))
    # nginx's documented sequence for weights 5, 1, 1
    assert "".join(swrr.choose(cands, idle).id for _ in range(14)) == "aabacaa" * 2


def test_smooth_weighted_round_robin_reduces_the_period_by_the_gcd() -> None:
    swrr = SmoothWeightedRoundRobin()
    cands = tuple(pool(50, 10, 10))
    assert "".join(swrr.choose(cands, idle).id for _ in range(7)) == "aabacaa"
    huge = tuple(pool(5000, 1))  # period 5001 > MAX_PLAN: step by step, same shares
    picks = collections.Counter(swrr.choose(huge, idle).id for _ in range(5001))
    assert dict(picks) == {"a": 5000, "b": 1}


@given(
    st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=8),
    st.integers(1, 3),
    st.sampled_from(CONTAINERS),
)
def test_smooth_weighted_round_robin_gives_exact_shares(
    weights: list[int], cycles: int, container: type
) -> None:
    swrr = SmoothWeightedRoundRobin()
    cands = container(pool(*weights))
    picks = collections.Counter(swrr.choose(cands, idle).id for _ in range(sum(weights) * cycles))
    assert {c.id: c.weight * cycles for c in cands} == dict(picks)


@pytest.mark.parametrize("container", CONTAINERS)
def test_smooth_weighted_round_robin_stays_exact_across_threads(container: type) -> None:
    swrr = SmoothWeightedRoundRobin()
    cands = container(pool(4, 2, 1))
    counts: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(7)

    def worker() -> None:
        local = collections.Counter()
        barrier.wait()
        for _ in range(700):
            local[swrr.choose(cands, idle).id] += 1
        with lock:
            counts.update(local)

    threads = [threading.Thread(target=worker) for _ in range(7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert dict(counts) == {"a": 2800, "b": 1400, "c": 700}


def test_random_choice_is_uniform_within_tolerance() -> None:
    rnd = RandomChoice(random.Random(42))
    cands = pool(9, 1, 1, 1)  # weights are ignored by design
    n = 40_000
    counts = collections.Counter(rnd.choose(cands, idle).id for _ in range(n))
    for c in cands:
        assert counts[c.id] / n == pytest.approx(0.25, abs=0.015)


def test_least_outstanding_picks_the_idlest_per_unit_of_weight() -> None:
    lo = LeastOutstanding(random.Random(1))
    cands = pool(1, 1, 4)
    load = {"a": 3, "b": 1, "c": 6}
    # scores (load + 1) / weight: a 4.0, b 2.0, c 1.75
    assert {lo.choose(cands, lambda i: load[i.id]).id for _ in range(50)} == {"c"}
    load["c"] = 9  # c: 2.5, b: 2.0
    assert {lo.choose(cands, lambda i: load[i.id]).id for _ in range(50)} == {"b"}


def test_least_outstanding_spreads_ties() -> None:
    lo = LeastOutstanding(random.Random(7))
    cands = pool(1, 1, 1, 1)
    n = 20_000
    counts = collections.Counter(lo.choose(cands, idle).id for _ in range(n))
    for c in cands:
        assert counts[c.id] / n == pytest.approx(0.25, abs=0.02)


def test_power_of_two_never_picks_the_most_loaded_and_favours_the_idle() -> None:
    p2c = PowerOfTwoChoices(random.Random(3))
    cands = pool(1, 1, 1)
    load = {"a": 0, "b": 10, "c": 20}
    n = 30_000
    counts = collections.Counter(p2c.choose(cands, lambda i: load[i.id]).id for _ in range(n))
    assert counts["c"] == 0
    # a wins every pair it is in (2 of the 3 equally likely pairs); b wins {b, c}
    assert counts["a"] / n == pytest.approx(2 / 3, abs=0.015)
    assert counts["b"] / n == pytest.approx(1 / 3, abs=0.015)
    assert p2c.choose(pool(1), idle).id == "a"


def test_every_named_strategy_is_built_and_unknown_names_are_rejected() -> None:
    rng = random.Random(0)
    for name in STRATEGIES:
        b = make_balancer(name, rng)
        assert isinstance(b, Balancer)
        assert b.choose(pool(1, 2), idle).id in {"a", "b"}
    with pytest.raises(ConfigError) as err:
        make_balancer("fastest", rng)
    assert err.value.parameter == "strategy"


def make_registry(**kw: object) -> tuple[ServiceRegistry, ManualClock]:
    clock = ManualClock()
    reg = ServiceRegistry(backend=MemoryBackend(clock), clock=clock, rng=random.Random(5), **kw)
    return reg, clock


def test_choose_honours_weights_through_the_registry() -> None:
    reg, _ = make_registry()
    for addr, w in (("h:1", 5), ("h:2", 3), ("h:3", 1)):
        reg.register("api", addr, weight=w)
    counts = collections.Counter(reg.choose("api").address for _ in range(9 * 1000))
    assert dict(counts) == {"h:1": 5000, "h:2": 3000, "h:3": 1000}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_choose_accepts_every_strategy_by_name(strategy: str) -> None:
    reg, _ = make_registry()
    for k in range(3):
        reg.register("api", f"h:{k}")
    seen = {reg.choose("api", strategy).address for _ in range(300)}
    assert seen == {"h:0", "h:1", "h:2"}


def test_choose_accepts_a_custom_balancer_and_rejects_junk() -> None:
    class First:
        def choose(self, candidates, load):  # type: ignore[no-untyped-def]
            return candidates[0]

    reg, _ = make_registry(strategy=First())
    a = reg.register("api", "h:1", instance_id="a")
    reg.register("api", "h:2", instance_id="b")
    assert {reg.choose("api").id for _ in range(20)} == {a.id}
    with pytest.raises(ConfigError) as err:
        reg.choose("api", "nearest")
    assert err.value.parameter == "strategy"
    with pytest.raises(ConfigError):
        ServiceRegistry(strategy=42)  # type: ignore[arg-type]


def test_least_outstanding_through_the_registry_avoids_busy_instances() -> None:
    reg, _ = make_registry(strategy="least_outstanding")
    reg.register("api", "h:busy", instance_id="busy")
    reg.register("api", "h:free", instance_id="free")
    release = threading.Event()
    started = threading.Event()

    def hold(inst: Instance) -> str:
        started.set()
        release.wait(10)
        return inst.id

    t = threading.Thread(target=lambda: reg.call("api", hold, strategy="round_robin"))
    t.start()
    started.wait(10)
    busy = next(i for i, s in reg.stats().services["api"].per_instance.items() if s.outstanding)
    try:
        picks = {reg.choose("api").id for _ in range(50)}
        assert picks == {"free", "busy"} - {busy}
    finally:
        release.set()
        t.join()
    assert all(s.outstanding == 0 for s in reg.stats().services["api"].per_instance.values())
