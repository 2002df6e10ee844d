"""Policy (sync): the order of the stages, and how they cooperate."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from sentia_core.errors import (
    BulkheadFullError,
    CallRejectedError,
    CallTimeoutError,
    CircuitOpenError,
    ConfigError,
    RateLimitExceeded,
)
from sentia_core.policies import (
    Bulkhead,
    FixedBackoff,
    Policy,
    PolicyEvent,
    Retry,
    Timeout,
    check_deadline,
    deadline,
)
from sentia_core.testing import ManualClock

from .fakes import FakeBreaker, FakeLimiter, LoggingBulkhead, LoggingRetry, LoggingTimeout

INNER = ["breaker>", "rate:api:k:1", "bulkhead>", "timeout>"]
OUTER = ["<timeout", "<bulkhead", "<breaker"]


def full_policy(
    log: list[str], clock: ManualClock, *, limiter: FakeLimiter | None = None, **kwargs: Any
) -> Policy:
    kwargs.setdefault("fallback", None)
    return Policy(
        retry=LoggingRetry(log, attempts=3, backoff=FixedBackoff(1.0), clock=clock),
        breaker=kwargs.pop("breaker", FakeBreaker(log)),
        rate_limit=limiter or FakeLimiter(log),
        rate_tier="api",
        rate_key="k",
        bulkhead=LoggingBulkhead(log, 2),
        timeout=LoggingTimeout(log, 5.0, sync_mode="cooperative", clock=clock),
        clock=clock,
        **kwargs,
    )


def test_a_successful_call_passes_every_stage_in_order(clock: ManualClock) -> None:
    log: list[str] = []

    @full_policy(log, clock)
    def fn(x: int) -> int:
        log.append("fn")
        return x + 1

    assert fn(1) == 2
    assert log == ["retry>", *INNER, "fn", *OUTER, "<retry"]


def test_each_retry_goes_through_every_inner_stage_again(clock: ManualClock) -> None:
    log: list[str] = []
    failures = [ConnectionError()]

    @full_policy(log, clock)
    def fn() -> str:
        log.append("fn")
        if failures:
            raise failures.pop()
        return "ok"

    assert fn() == "ok"
    attempt = [*INNER, "fn", *OUTER]
    assert log == ["retry>", *attempt, *attempt, "<retry"]
    assert clock.sleeps == [1.0]


def test_the_fallback_is_outermost_and_sees_the_final_error(clock: ManualClock) -> None:
    log: list[str] = []
    seen: list[Any] = []

    def fallback(error: BaseException, *args: Any, **kwargs: Any) -> str:
        log.append("fallback")
        seen.append((type(error), args, kwargs))
        return "cached"

    @full_policy(log, clock, fallback=fallback)
    def fn(item: str, *, fresh: bool) -> str:
        log.append("fn")
        raise ConnectionError

    assert fn("sku-1", fresh=True) == "cached"
    assert log.count("fn") == 3  # every attempt ran before the fallback
    assert log[-2:] == ["<retry", "fallback"]
    assert seen == [(ConnectionError, ("sku-1",), {"fresh": True})]


def test_an_open_circuit_stops_before_the_limiter_bulkhead_and_further_retries(
    clock: ManualClock,
) -> None:
    log: list[str] = []
    p = full_policy(log, clock, breaker=FakeBreaker(log, is_open=True))

    @p
    def fn() -> None:
        log.append("fn")

    with pytest.raises(CircuitOpenError):
        fn()
    assert log == ["retry>", "breaker>", "<retry"]
    assert clock.sleeps == []


def test_a_rate_limit_denial_never_takes_a_bulkhead_slot_and_retry_waits_retry_after(
    clock: ManualClock,
) -> None:
    log: list[str] = []
    limiter = FakeLimiter(log, (False, 2.5))

    @full_policy(log, clock, limiter=limiter)
    def fn() -> str:
        log.append("fn")
        return "ok"

    assert fn() == "ok"
    assert log[:4] == ["retry>", "breaker>", "rate:api:k:1", "<breaker"]
    assert clock.sleeps == [2.5]  # the denial's retry_after drove the retry delay


def test_the_bulkhead_is_held_while_the_timeout_runs_the_call(clock: ManualClock) -> None:
    bulkhead = Bulkhead(1)
    seen: list[int] = []
    p = Policy(bulkhead=bulkhead, timeout=Timeout(5.0, sync_mode="cooperative", clock=clock))

    @p
    def fn() -> None:
        seen.append(bulkhead.stats().active)

    fn()
    assert seen == [1]


def test_a_non_blocking_rate_limit_raises_with_retry_after(clock: ManualClock) -> None:
    log: list[str] = []
    events: list[PolicyEvent] = []
    p = Policy(rate_limit=FakeLimiter(log, (False, 4.0)), rate_tier="api", rate_key="t1")
    p.add_listener(events.append)
    with pytest.raises(RateLimitExceeded) as info:
        p.call(lambda: None)
    assert (info.value.tier, info.value.key, info.value.retry_after) == ("api", "t1", 4.0)
    assert p.stats().rate_limited == 1
    assert [e.kind for e in events] == ["rate_limited"]


def test_a_blocking_rate_limit_waits_for_quota(clock: ManualClock) -> None:
    log: list[str] = []
    limiter = FakeLimiter(log, (False, 0.5), (False, 0.25))
    p = Policy(rate_limit=limiter, rate_tier="api", rate_block=True, clock=clock)
    assert p.call(lambda: "sent") == "sent"
    assert clock.sleeps == [0.5, 0.25]
    assert log == ["rate:api::1"] * 3
    assert p.stats().rate_waits == 2


def test_a_blocking_rate_limit_gives_up_past_max_wait_without_sleeping(clock: ManualClock) -> None:
    limiter = FakeLimiter([], (False, 0.5), (False, 10.0))
    p = Policy(rate_limit=limiter, rate_tier="api", rate_block=True, rate_max_wait=5.0, clock=clock)
    with pytest.raises(RateLimitExceeded) as info:
        p.call(lambda: None)
    assert info.value.retry_after == 10.0
    assert clock.sleeps == [0.5]


def test_a_blocking_rate_limit_never_waits_past_the_deadline(clock: ManualClock) -> None:
    p = Policy(
        rate_limit=FakeLimiter([], (False, 3.0)), rate_tier="api", rate_block=True, clock=clock
    )
    with deadline(2.0, clock=clock), pytest.raises(RateLimitExceeded):
        p.call(lambda: None)
    assert clock.sleeps == []


def test_a_limiter_that_denies_with_a_zero_wait_cannot_spin_forever(clock: ManualClock) -> None:
    limiter = FakeLimiter([], *[(False, 0.0)] * 10_000)
    p = Policy(
        rate_limit=limiter, rate_tier="api", rate_block=True, rate_max_wait=0.01, clock=clock
    )
    with pytest.raises(RateLimitExceeded):
        p.call(lambda: None)
    assert 1 <= len(clock.sleeps) <= 10  # each wait is at least 1 ms, within 10 ms in all
    assert sum(clock.sleeps) <= 0.01


def test_the_rate_key_can_come_from_the_calls_arguments(clock: ManualClock) -> None:
    log: list[str] = []
    p = Policy(
        rate_limit=FakeLimiter(log),
        rate_tier="partner",
        rate_key=lambda tenant, **_: f"tenant:{tenant}",
        rate_cost=3,
    )

    @p
    def sync_orders(tenant: str, *, since: int) -> int:
        return since

    assert sync_orders("acme", since=5) == 5
    assert log == ["rate:partner:tenant:acme:3"]


def test_a_per_attempt_timeout_abandons_a_hung_attempt_and_the_retry_succeeds() -> None:
    release = threading.Event()
    calls = []

    # 0.5 s: long enough for a busy machine to run the quick second attempt in time.
    @Policy(retry=Retry(attempts=3, backoff=0.0), timeout=Timeout(0.5))
    def fetch() -> str:
        calls.append(1)
        if len(calls) == 1:
            release.wait(30)  # hangs until the test ends
            return "too late"
        return "second attempt"

    try:
        assert fetch() == "second attempt"
    finally:
        release.set()


def test_a_full_bulkhead_rejects_and_the_slot_is_returned_after_errors() -> None:
    p = Policy(bulkhead=1)
    gate = threading.Event()
    entered = threading.Event()

    def hold() -> None:
        entered.set()
        gate.wait(30)

    t = threading.Thread(target=p.call, args=(hold,))
    t.start()
    assert entered.wait(30)
    with pytest.raises(BulkheadFullError):
        p.call(lambda: None)
    gate.set()
    t.join()
    assert p.stats().bulkhead is not None
    assert p.stats().bulkhead.rejected == 1  # type: ignore[union-attr]
    with pytest.raises(ZeroDivisionError):
        p.call(lambda: 1 / 0)
    assert p.call(lambda: "free") == "free"


def test_the_fallback_only_handles_what_fallback_on_names(clock: ManualClock) -> None:
    p = Policy(fallback=lambda e, *a, **k: "default", fallback_on=(ConnectionError,))
    assert p.call(lambda: (_ for _ in ()).throw(ConnectionError())) == "default"
    with pytest.raises(KeyError):
        p.call(lambda: {}["missing"])
    assert p.stats().fallbacks == 1


def test_a_rejection_can_be_answered_by_the_fallback(clock: ManualClock) -> None:
    p = Policy(
        breaker=FakeBreaker([], is_open=True),
        fallback=lambda e, *a, **k: f"degraded: {type(e).__name__}",
        fallback_on=CallRejectedError,
    )
    assert p.call(lambda: "live") == "degraded: CircuitOpenError"


def test_without_stages_the_function_is_called_as_is() -> None:
    def fn(a: int) -> int:
        """Doc."""
        return a * 2

    wrapped = Policy()(fn)
    assert wrapped is not fn
    assert wrapped(4) == 8
    assert wrapped.__doc__ == "Doc."
    assert getattr(fn, "__wrapped__", None) is None  # the user's function is untouched


def test_numbers_are_shorthands_for_timeout_and_bulkhead() -> None:
    p = Policy(timeout=2.5, bulkhead=3, name="orders")
    assert isinstance(p.timeout, Timeout)
    assert p.timeout.seconds == 2.5
    assert isinstance(p.bulkhead, Bulkhead)
    assert p.bulkhead.max_concurrent == 3
    assert repr(p) == "Policy(name='orders', stages=bulkhead -> timeout)"
    s = p.stats()
    assert s.retry is None
    assert s.timeout is not None
    assert s.bulkhead is not None


def test_stats_gather_the_components(clock: ManualClock) -> None:
    p = Policy(retry=Retry(attempts=2, backoff=0.0), bulkhead=2)
    p.call(lambda: None)
    s = p.stats()
    assert s.retry is not None
    assert s.retry.calls == 1
    assert s.bulkhead is not None
    assert s.bulkhead.accepted == 1


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"retry": 3}, "retry"),
        ({"breaker": object()}, "breaker"),
        ({"rate_limit": object(), "rate_tier": "api"}, "rate_limit"),
        ({"rate_limit": FakeLimiter([])}, "rate_tier"),
        ({"rate_limit": FakeLimiter([]), "rate_tier": ""}, "rate_tier"),
        ({"rate_tier": "api"}, "rate_tier"),
        ({"rate_key": 5}, "rate_key"),
        ({"rate_cost": -1}, "rate_cost"),
        ({"rate_block": "yes"}, "rate_block"),
        ({"rate_max_wait": -1}, "rate_max_wait"),
        ({"bulkhead": 0}, "bulkhead"),
        ({"bulkhead": "4"}, "bulkhead"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": "1s"}, "timeout"),
        ({"fallback": "default"}, "fallback"),
        ({"fallback_on": "ConnectionError"}, "fallback_on"),
        ({"name": ""}, "name"),
        ({"clock": None}, "clock"),
        ({"sleep": 1}, "sleep"),
        ({"async_sleep": 1}, "async_sleep"),
    ],
)
def test_bad_configuration_names_the_parameter(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ConfigError) as info:
        Policy(**kwargs)
    assert info.value.parameter == parameter


def test_decorating_a_non_callable_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Policy()(3)  # type: ignore[call-overload]


def test_timeouts_count_as_attempt_failures(clock: ManualClock) -> None:
    p = Policy(
        retry=Retry(attempts=2, backoff=0.0, on=CallTimeoutError),
        timeout=Timeout(1.0, sync_mode="cooperative", clock=clock),
    )
    ticks = []

    def slow() -> None:
        ticks.append(1)
        clock.advance(2.0)
        check_deadline()

    with pytest.raises(CallTimeoutError):
        p.call(slow)
    assert len(ticks) == 2
