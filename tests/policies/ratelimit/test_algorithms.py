"""Both algorithms, decision by decision, against exact rational reference models.

Each trace runs through the public in-memory ``RateLimiter`` on a ManualClock
and checks, at every step: the verdict and ``remaining`` equal the model's,
``retry_after`` is the exact wait (allowed just after it, denied just before),
``reset_after`` is when the key is back to full capacity. Then the whole
trace is checked against each algorithm's stated guarantees (docs/ratelimit.md):

GCRA (token bucket of ``burst`` refilled at ``limit/period``):
  * safety: in any window of length W the allowed cost is < burst + W*limit/period;
  * no false denial: a hit is allowed whenever the allowed cost in the last
    ``burst*period/limit`` seconds plus its own cost fits in ``burst``.

Sliding-window counter (fixed windows of one period, previous one weighted):
  * safety: at most ``limit`` per aligned window, and over any sliding window
    ending at t (a fraction f into its fixed window) at most
    ``limit + f * previous window's count`` (< 2 * limit): the approximation bound;
  * no false denial: a hit is allowed whenever the allowed cost in the last two
    periods plus its own cost fits in ``limit``.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sentia_core.policies._ratelimit import Rate, RateDecision, RateLimiter
from sentia_core.policies._ratelimit._core import GcraCore, WindowCore
from sentia_core.testing import ManualClock

from .models import SlidingWindowModel, TokenBucketModel
from .strategies import TICK, Step, rates, traces

Record = tuple[Fraction, int, bool]  # (time, cost, allowed) of each hit


def _assert_retry_after_is_exact(model: object, now: Fraction, cost: int, d: RateDecision) -> None:
    allows = model.allows  # type: ignore[attr-defined]
    if d.allowed:
        assert d.retry_after == 0.0
        return
    if math.isinf(d.retry_after):
        return
    assert d.retry_after > 0.0
    after = now + Fraction(d.retry_after)
    assert allows(after + Fraction(1, 10**9), cost), "still denied after retry_after"
    if d.retry_after > 1e-6:
        assert not allows(after - Fraction(1, 10**6), cost), "allowed before retry_after"


def _run(
    limiter: RateLimiter, clock: ManualClock, model: object, steps: list[Step]
) -> list[Record]:
    records: list[Record] = []
    for step in steps:
        clock.advance(step.ticks * TICK)
        now = Fraction(clock.monotonic())
        if step.peek:
            d = limiter.peek("t", "k", step.cost)
            assert d.allowed == model.allows(now, step.cost)  # type: ignore[attr-defined]
        else:
            d = limiter.hit("t", "k", step.cost)
            assert d.allowed == model.hit(now, step.cost)  # type: ignore[attr-defined]
            records.append((now, step.cost, d.allowed))
        assert (d.tier, d.key) == ("t", "k")
        assert d.remaining == model.remaining(now)  # type: ignore[attr-defined]
        if step.peek or not d.allowed:
            _assert_retry_after_is_exact(model, now, step.cost, d)
        else:
            assert d.retry_after == 0.0
        assert d.reset_after >= 0.0
    return records


def _allowed_cost(records: list[Record], start: Fraction, end: Fraction, *, closed: bool) -> int:
    """Allowed cost with time in [start, end) (or (start, end] when ``closed``)."""
    if closed:
        return sum(c for t, c, ok in records if ok and start < t <= end)
    return sum(c for t, c, ok in records if ok and start <= t < end)


# -- GCRA ------------------------------------------------------------------


@st.composite
def gcra_cases(draw: st.DrawFn) -> tuple[Rate, int, list[Step]]:
    rate = draw(rates())
    burst = draw(st.one_of(st.just(rate.limit), st.integers(1, 2 * rate.limit + 1)))
    return rate, burst, draw(traces(rate))


@given(gcra_cases())
def test_gcra_matches_the_token_bucket_and_keeps_its_guarantees(
    case: tuple[Rate, int, list[Step]],
) -> None:
    rate, burst, steps = case
    clock = ManualClock()
    limiter = RateLimiter({"t": rate}, burst=burst, clock=clock)
    model = TokenBucketModel(rate.limit, rate.period, burst)
    records = _run(limiter, clock, model, steps)

    per_second = Fraction(rate.limit) / Fraction(rate.period)
    refill = Fraction(burst) / per_second  # seconds from empty to full
    for start, _, ok in records:
        if not ok:
            continue
        for window in (Fraction(rate.period), Fraction(rate.period) / 2, refill):
            used = _allowed_cost(records, start, start + window, closed=False)
            assert used < burst + window * per_second, (start, window, used)
    for i, (t, cost, ok) in enumerate(records):
        if _allowed_cost(records[:i], t - refill, t, closed=True) + cost <= burst:
            assert ok, f"false denial at {t}: the last {refill}s used less than the burst"


@given(gcra_cases())
def test_gcra_reset_after_is_when_the_bucket_is_full_again(
    case: tuple[Rate, int, list[Step]],
) -> None:
    rate, burst, steps = case
    clock = ManualClock()
    limiter = RateLimiter({"t": rate}, burst=burst, clock=clock)
    model = TokenBucketModel(rate.limit, rate.period, burst)
    for step in steps:
        clock.advance(step.ticks * TICK)
        now = Fraction(clock.monotonic())
        d = limiter.hit("t", "k", step.cost)
        model.hit(now, step.cost)
        full_at = now + Fraction(d.reset_after)
        assert model.level(full_at + Fraction(1, 10**9)) == burst
        if d.reset_after > 1e-6:
            assert model.level(full_at - Fraction(1, 10**6)) < burst


# -- sliding-window counter --------------------------------------------------


@given(rates().flatmap(lambda r: st.tuples(st.just(r), traces(r))))
def test_sliding_window_matches_the_counter_model_and_keeps_its_bound(
    case: tuple[Rate, list[Step]],
) -> None:
    rate, steps = case
    clock = ManualClock()
    limiter = RateLimiter({"t": rate}, algorithm="sliding_window", clock=clock)
    model = SlidingWindowModel(rate.limit, rate.period)
    records = _run(limiter, clock, model, steps)

    period = Fraction(rate.period)
    for t, _, ok in records:
        index = math.floor(t / period)
        start = index * period
        assert _allowed_cost(records, start, start + period, closed=False) <= rate.limit
        if ok:
            # The approximation bound over the sliding window (t - period, t].
            fraction = (t - start) / period
            previous = _allowed_cost(records, start - period, start, closed=False)
            used = _allowed_cost(records, t - period, t, closed=True)
            assert used <= rate.limit + fraction * previous < 2 * rate.limit + 1
    for i, (t, cost, ok) in enumerate(records):
        before = _allowed_cost(records[:i], t - 2 * period, t, closed=True)
        if before + cost <= rate.limit:
            assert ok, f"false denial at {t}: the last two periods used {before}"


@given(rates().flatmap(lambda r: st.tuples(st.just(r), traces(r))))
def test_sliding_window_reset_after_is_when_the_estimate_reaches_zero(
    case: tuple[Rate, list[Step]],
) -> None:
    rate, steps = case
    clock = ManualClock()
    limiter = RateLimiter({"t": rate}, algorithm="sliding_window", clock=clock)
    model = SlidingWindowModel(rate.limit, rate.period)
    for step in steps:
        clock.advance(step.ticks * TICK)
        now = Fraction(clock.monotonic())
        d = limiter.hit("t", "k", step.cost)
        model.hit(now, step.cost)
        empty_at = now + Fraction(d.reset_after)
        assert model.estimate(empty_at + Fraction(1, 10**9)) == 0
        if d.reset_after > 1e-6:
            assert model.estimate(empty_at - Fraction(1, 10**6)) > 0


def test_sliding_window_worst_case_reaches_its_bound() -> None:
    # 10/minute: 10 hits at the very end of one window, then the weighted
    # estimate lets the next window's hits in as the old ones "age out".
    clock = ManualClock(start=0.0)
    limiter = RateLimiter({"t": "10/minute"}, algorithm="sliding_window", clock=clock)
    clock.advance(59.0)
    assert all(limiter.hit("t").allowed for _ in range(10))
    clock.advance(1.0 + 30.0)  # halfway into the next window: weight 1/2
    assert [limiter.hit("t").allowed for _ in range(6)] == [True] * 5 + [False]
    # In (30.5, 90.5]: 10 + 5 = 15 = limit + 0.5 * previous count, as documented.


# -- the cores directly --------------------------------------------------------


@given(
    rates(),
    st.integers(1, 100),
    st.integers(0, 50),
    st.integers(-200, 200).map(lambda n: n * TICK),
)
def test_gcra_take_agrees_with_describe(rate: Rate, burst: int, cost: int, offset: float) -> None:
    core = GcraCore("t", rate, burst)
    now = 1000.0
    states: dict[str, float] = {}
    taken = core.take(states, "k", now + offset, now, cost)
    tat = max(now + offset, now)
    allowed = tat + cost * core.interval - now <= core.tol_eps
    assert taken == core.describe(allowed, tat, now, cost, True, "k")
    assert core.peek(now + offset, now, cost, "k").allowed == allowed
    assert (core.allowed, core.denied) == ((1, 0) if allowed else (0, 1))


@given(rates(), st.integers(0, 50), st.integers(0, 50), st.integers(0, 63), st.integers(0, 50))
def test_window_take_agrees_with_describe(
    rate: Rate, prev: int, curr: int, sixtyfourths: int, cost: int
) -> None:
    core = WindowCore("t", rate)
    index = 100
    now = (index + sixtyfourths / 64) * rate.period
    state = [float(index), float(prev), float(curr)]
    elapsed = now - index * rate.period
    allowed = prev * (1.0 - elapsed / rate.period) + curr + cost <= core.limit_eps
    peeked = core.peek(list(state), now, cost, "k")
    taken = core.take({}, "k", state, now, cost)
    assert taken == core.describe(allowed, prev, curr, elapsed, cost, True, "k")
    assert peeked.allowed == allowed
    assert peeked == core.describe(allowed, prev, curr, elapsed, cost, False, "k")


@pytest.mark.parametrize("algorithm", ["gcra", "sliding_window"])
def test_a_cost_above_capacity_is_denied_forever_and_consumes_nothing(algorithm: str) -> None:
    clock = ManualClock()
    limiter = RateLimiter({"t": "5/minute"}, algorithm=algorithm, clock=clock)  # type: ignore[arg-type]
    d = limiter.hit("t", "k", cost=6)
    assert not d.allowed and math.isinf(d.retry_after) and d.remaining == 5
    assert limiter.hit("t", "k", cost=5).allowed


def test_burst_below_the_limit_smooths_traffic() -> None:
    clock = ManualClock()
    limiter = RateLimiter({"t": "60/minute"}, burst=2, clock=clock)
    assert [limiter.hit("t").allowed for _ in range(3)] == [True, True, False]
    assert limiter.peek("t").retry_after == pytest.approx(1.0)
    clock.advance(1.0)
    assert limiter.hit("t").allowed


def test_burst_above_the_limit_allows_a_bigger_first_burst() -> None:
    clock = ManualClock()
    limiter = RateLimiter({"t": "10/minute"}, burst={"t": 15}, clock=clock)
    assert sum(limiter.hit("t").allowed for _ in range(20)) == 15
    assert limiter.peek("t", cost=16).retry_after == math.inf
