"""Back-off strategies: bounded, capped, a monotone envelope, reproducible jitter."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given

from sentia_core.errors import ConfigError
from sentia_core.policies import Backoff, ExponentialBackoff, FixedBackoff, LinearBackoff

from .strategies import backoffs, exponential_backoffs, retry_numbers, seeds


@given(backoffs, retry_numbers, seeds)
def test_every_delay_is_finite_and_within_zero_and_the_cap(
    backoff: Backoff, n: int, seed: int
) -> None:
    delay = backoff(n, random.Random(seed))
    assert math.isfinite(delay)
    assert 0.0 <= delay <= getattr(backoff, "max_delay", getattr(backoff, "delay", None))


@given(backoffs, retry_numbers)
def test_the_envelope_never_shrinks_from_one_retry_to_the_next(backoff: Backoff, n: int) -> None:
    envelope = backoff.envelope  # type: ignore[attr-defined]
    assert envelope(n) <= envelope(n + 1)


@given(exponential_backoffs(), retry_numbers, seeds)
def test_a_jittered_delay_stays_under_its_envelope(
    backoff: ExponentialBackoff, n: int, seed: int
) -> None:
    delay = backoff(n, random.Random(seed))
    top = backoff.envelope(n)
    assert delay <= top
    if backoff.jitter == "equal":
        assert delay >= top / 2
    if backoff.jitter == "none":
        assert delay == top


@given(exponential_backoffs(), retry_numbers, seeds)
def test_the_same_seed_gives_the_same_delays(
    backoff: ExponentialBackoff, n: int, seed: int
) -> None:
    assert backoff(n, random.Random(seed)) == backoff(n, random.Random(seed))


def test_exponential_doubles_from_initial_until_the_cap() -> None:
    b = ExponentialBackoff(initial=0.5, multiplier=2, max_delay=3.0, jitter="none")
    rng = random.Random(0)
    assert [b(n, rng) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_exponential_survives_huge_retry_numbers() -> None:
    b = ExponentialBackoff(initial=1.0, multiplier=10.0, max_delay=30.0, jitter="none")
    assert b(10_000, random.Random(0)) == 30.0


def test_full_jitter_spreads_delays_over_the_whole_envelope() -> None:
    b = ExponentialBackoff(initial=1.0, multiplier=1.0, max_delay=1.0, jitter="full")
    rng = random.Random(42)
    delays = [b(1, rng) for _ in range(2000)]
    assert min(delays) < 0.05
    assert max(delays) > 0.95


def test_linear_adds_the_increment_until_the_cap() -> None:
    b = LinearBackoff(initial=1.0, increment=0.5, max_delay=2.2)
    rng = random.Random(0)
    assert [b(n, rng) for n in range(1, 5)] == [1.0, 1.5, 2.0, 2.2]


def test_fixed_is_constant() -> None:
    b = FixedBackoff(0.25)
    assert {b(n, random.Random(n)) for n in range(1, 50)} == {0.25}


def test_strategies_satisfy_the_protocol() -> None:
    for b in (ExponentialBackoff(), LinearBackoff(), FixedBackoff(1)):
        assert isinstance(b, Backoff)
        assert type(b).__name__ in repr(b)


@pytest.mark.parametrize(
    ("factory", "parameter"),
    [
        (lambda: ExponentialBackoff(initial=0), "initial"),
        (lambda: ExponentialBackoff(initial=-1), "initial"),
        (lambda: ExponentialBackoff(multiplier=0.5), "multiplier"),
        (lambda: ExponentialBackoff(max_delay=math.inf), "max_delay"),
        (lambda: ExponentialBackoff(initial=5, max_delay=1), "max_delay"),
        (lambda: ExponentialBackoff(jitter="decorrelated"), "jitter"),  # type: ignore[arg-type]
        (lambda: ExponentialBackoff(initial=math.nan), "initial"),
        (lambda: LinearBackoff(increment=-1), "increment"),
        (lambda: LinearBackoff(initial=3, max_delay=1), "max_delay"),
        (lambda: FixedBackoff(-0.1), "delay"),
        (lambda: FixedBackoff("1 fortnight"), "delay"),  # type: ignore[arg-type]
    ],
)
def test_bad_configuration_names_the_parameter(factory: object, parameter: str) -> None:
    with pytest.raises(ConfigError) as info:
        factory()  # type: ignore[operator]
    assert info.value.parameter == parameter
