"""CircuitBreaker behaviour on the sync paths: the spec, rule by rule."""

from __future__ import annotations

import pytest

from sentia_core.breaker import BreakerState, CircuitBreaker
from sentia_core.errors import CircuitOpenError, ConfigError
from sentia_core.testing import ManualClock

from .conftest import Boom, Recorder, fail, ok


def trip(breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        with pytest.raises(Boom):
            breaker.call(fail)


# -- opening rules -----------------------------------------------------------


def test_consecutive_failures_open_the_breaker(clock: ManualClock) -> None:
    b = CircuitBreaker("db", consecutive_failures=3, failure_rate_threshold=None, clock=clock)
    trip(b, 2)
    assert b.state is BreakerState.CLOSED
    trip(b, 1)
    assert b.state is BreakerState.OPEN


def test_a_success_resets_the_consecutive_count(clock: ManualClock) -> None:
    b = CircuitBreaker("db", consecutive_failures=3, failure_rate_threshold=None, clock=clock)
    for _ in range(5):
        trip(b, 2)
        b.call(ok)
    assert b.state is BreakerState.CLOSED
    assert b.metrics().consecutive_failures == 0


def test_failure_rate_counts_only_after_minimum_calls(clock: ManualClock) -> None:
    b = CircuitBreaker(
        "db",
        consecutive_failures=None,
        failure_rate_threshold=0.5,
        minimum_calls=4,
        window_size=10,
        clock=clock,
    )
    trip(b, 3)  # 100 % failures, but only 3 calls
    assert b.state is BreakerState.CLOSED
    b.call(ok)  # 4 calls, 75 %: the rule is evaluated on the next failure
    trip(b, 1)
    assert b.state is BreakerState.OPEN
    m = b.metrics()
    assert (m.calls, m.failures, m.failure_rate) == (5, 4, 0.8)


def test_failure_rate_below_threshold_stays_closed(clock: ManualClock) -> None:
    b = CircuitBreaker(
        "db",
        consecutive_failures=None,
        failure_rate_threshold=0.5,
        minimum_calls=10,
        window_size=10,
        clock=clock,
    )
    for _ in range(5):
        b.call(ok)
        b.call(ok)
        trip(b, 1)
    assert b.state is BreakerState.CLOSED  # 5 of 15 failed; 3 of the last 10
    assert b.metrics().calls == 10


def test_failure_rate_threshold_is_inclusive(clock: ManualClock) -> None:
    b = CircuitBreaker(
        "db",
        consecutive_failures=None,
        failure_rate_threshold=0.3,
        minimum_calls=10,
        window_size=10,
        clock=clock,
    )
    for _ in range(7):
        b.call(ok)
    trip(b, 3)
    assert b.state is BreakerState.OPEN


def test_slow_calls_open_the_breaker(clock: ManualClock) -> None:
    b = CircuitBreaker(
        "db",
        slow_call_duration=1.0,
        slow_call_rate_threshold=0.5,
        minimum_calls=4,
        window_size=4,
        clock=clock,
    )

    def slow() -> str:
        clock.advance(1.5)
        return "late"

    b.call(ok)
    b.call(ok)
    b.call(slow)
    assert b.state is BreakerState.CLOSED
    b.call(slow)
    assert b.state is BreakerState.OPEN
    m = b.metrics()
    assert (m.slow_calls, m.slow_call_rate, m.failures) == (2, 0.5, 0)


def test_time_window_forgets_old_failures(clock: ManualClock) -> None:
    b = CircuitBreaker(
        "db",
        window_type="time",
        window_size=10,
        minimum_calls=4,
        consecutive_failures=None,
        clock=clock,
    )
    b.call(ok)
    trip(b, 1)
    clock.advance(10)
    assert b.metrics().calls == 0
    b.call(ok)
    b.call(ok)
    b.call(ok)
    trip(b, 1)  # 1 of 4 in the window: the old failure no longer counts
    assert b.state is BreakerState.CLOSED
    trip(b, 2)  # 3 of 6
    assert b.state is BreakerState.OPEN


def test_rules_can_all_be_disabled(clock: ManualClock) -> None:
    b = CircuitBreaker(
        "db", consecutive_failures=None, failure_rate_threshold=None, minimum_calls=1, clock=clock
    )
    trip(b, 200)
    assert b.state is BreakerState.CLOSED


# -- open, half-open, recovery -----------------------------------------------


def test_open_rejects_at_once_with_retry_after(clock: ManualClock) -> None:
    b = CircuitBreaker("payments", consecutive_failures=1, reset_timeout=30, clock=clock)
    trip(b, 1)
    clock.advance(10)
    calls = []
    with pytest.raises(CircuitOpenError) as info:
        b.call(lambda: calls.append(1))
    assert calls == []
    err = info.value
    assert (err.breaker, err.retry_after, err.state) == ("payments", 20.0, "open")
    assert b.metrics().rejected == 1


def test_half_open_after_reset_timeout_then_close_on_success(
    clock: ManualClock, recorder: Recorder
) -> None:
    b = CircuitBreaker("db", consecutive_failures=1, reset_timeout=5, clock=clock)
    b.add_listener(recorder)
    trip(b, 1)
    clock.advance(5)
    assert b.call(ok) == "ok"
    assert b.state is BreakerState.CLOSED
    assert recorder.transitions == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert b.metrics().calls == 0  # closing starts a fresh window


def test_a_failed_trial_reopens(clock: ManualClock) -> None:
    b = CircuitBreaker("db", consecutive_failures=1, reset_timeout=5, clock=clock)
    trip(b, 1)
    clock.advance(5)
    trip(b, 1)
    assert b.state is BreakerState.OPEN
    assert b.metrics().times_opened == 2
    assert b.metrics().retry_after == 5.0


def test_state_property_reports_half_open_when_timeout_passed(clock: ManualClock) -> None:
    b = CircuitBreaker("db", consecutive_failures=1, reset_timeout=5, clock=clock)
    trip(b, 1)
    clock.advance(4.999)
    assert b.state is BreakerState.OPEN
    clock.advance(0.001)
    assert b.state is BreakerState.HALF_OPEN


def test_success_threshold_needs_several_trials(clock: ManualClock) -> None:
    b = CircuitBreaker(
        "db",
        consecutive_failures=1,
        reset_timeout=5,
        half_open_max_calls=1,
        success_threshold=3,
        clock=clock,
    )
    trip(b, 1)
    clock.advance(5)
    b.call(ok)
    b.call(ok)
    assert b.state is BreakerState.HALF_OPEN
    b.call(ok)
    assert b.state is BreakerState.CLOSED


def test_half_open_admits_only_max_calls_concurrently(clock: ManualClock) -> None:
    b = CircuitBreaker(
        "db", consecutive_failures=1, reset_timeout=5, half_open_max_calls=2, clock=clock
    )
    trip(b, 1)
    clock.advance(5)
    inner_errors: list[CircuitOpenError] = []

    def nested_trial() -> str:
        try:
            b.call(ok)
        except CircuitOpenError as e:
            inner_errors.append(e)
        return "outer"

    # The outer trial holds one permit, the first nested one takes the second,
    # a third one (nested inside the second) is rejected.
    def level2() -> object:
        return b.call(nested_trial)

    assert b.call(level2) == "outer"
    assert len(inner_errors) == 1
    assert inner_errors[0].state == "half_open"


def test_reset_timeout_grows_on_repeated_trips_and_is_capped(clock: ManualClock) -> None:
    b = CircuitBreaker(
        "db",
        consecutive_failures=1,
        reset_timeout=10,
        reset_timeout_multiplier=2,
        max_reset_timeout=35,
        clock=clock,
    )
    trip(b, 1)
    opens = []
    for _ in range(4):
        opens.append(b.metrics().retry_after)
        clock.advance(opens[-1])
        trip(b, 1)  # the trial fails: open again, for longer
    assert opens == [10, 20, 35, 35]
    clock.advance(35)
    b.call(ok)
    assert b.state is BreakerState.CLOSED
    trip(b, 1)
    assert b.metrics().retry_after == 10  # closing resets the growth


# -- what counts -------------------------------------------------------------


class Transient(Exception):
    pass


def test_ignored_exceptions_do_not_count(clock: ManualClock, recorder: Recorder) -> None:
    b = CircuitBreaker("db", consecutive_failures=2, ignore_exceptions=(Transient,), clock=clock)
    b.add_listener(recorder)

    def transient() -> None:
        raise Transient

    for _ in range(5):
        with pytest.raises(Transient):
            b.call(transient)
    assert b.state is BreakerState.CLOSED
    assert b.metrics().calls == 0
    assert recorder.outcomes == ["ignored"] * 5


def test_unrecorded_exceptions_count_as_successes(clock: ManualClock) -> None:
    b = CircuitBreaker(
        "db", consecutive_failures=2, record_exceptions=(ConnectionError,), clock=clock
    )
    for _ in range(3):
        with pytest.raises(KeyError):
            b.call(lambda: {}["missing"])
    m = b.metrics()
    assert (m.state, m.calls, m.failures) == (BreakerState.CLOSED, 3, 0)

    def refused() -> None:
        raise ConnectionRefusedError

    for _ in range(2):
        with pytest.raises(ConnectionRefusedError):
            b.call(refused)
    assert b.state is BreakerState.OPEN


def test_exception_predicates(clock: ManualClock) -> None:
    b = CircuitBreaker(
        "http",
        consecutive_failures=1,
        record_exceptions=(lambda e: getattr(e, "status", 0) >= 500,),
        clock=clock,
    )

    class HTTPError(Exception):
        def __init__(self, status: int) -> None:
            self.status = status

    def get(status: int) -> None:
        raise HTTPError(status)

    with pytest.raises(HTTPError):
        b.call(get, 404)
    assert b.state is BreakerState.CLOSED
    with pytest.raises(HTTPError):
        b.call(get, 503)
    assert b.state is BreakerState.OPEN


def test_result_predicate_counts_a_503_as_failure(clock: ManualClock) -> None:
    b = CircuitBreaker(
        "http",
        consecutive_failures=2,
        failure_predicate=lambda response: response["status"] >= 500,
        clock=clock,
    )
    assert b.call(lambda: {"status": 503}) == {"status": 503}
    b.call(lambda: {"status": 503})
    assert b.state is BreakerState.OPEN


def test_base_exceptions_are_ignored_by_default(clock: ManualClock) -> None:
    b = CircuitBreaker("db", consecutive_failures=1, clock=clock)

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        b.call(interrupted)
    assert b.state is BreakerState.CLOSED


def test_a_raising_predicate_propagates_and_releases_the_permit(clock: ManualClock) -> None:
    def broken(_: object) -> bool:
        raise RuntimeError("predicate bug")

    b = CircuitBreaker(
        "db",
        consecutive_failures=1,
        reset_timeout=1,
        failure_predicate=broken,
        record_exceptions=(Boom,),
        clock=clock,
    )
    trip(b, 1)
    clock.advance(1)
    with pytest.raises(RuntimeError, match="predicate bug"):
        b.call(ok)
    assert b.metrics().half_open_in_flight == 0
    assert b.state is BreakerState.HALF_OPEN


# -- entry points ------------------------------------------------------------


def test_decorator_keeps_the_function_identity(clock: ManualClock) -> None:
    b = CircuitBreaker("db", clock=clock)

    @b
    def fetch(key: str, *, default: int = 0) -> tuple[str, int]:
        """Fetch a thing."""
        return key, default

    assert fetch("a", default=2) == ("a", 2)
    assert fetch.__name__ == "fetch" and fetch.__doc__ == "Fetch a thing."
    assert fetch.__wrapped__ is not None  # type: ignore[attr-defined]


def test_decorated_function_is_rejected_when_open(clock: ManualClock) -> None:
    b = CircuitBreaker("db", consecutive_failures=1, clock=clock)
    calls: list[int] = []

    @b
    def work() -> None:
        calls.append(1)
        raise Boom

    with pytest.raises(Boom):
        work()
    with pytest.raises(CircuitOpenError):
        work()
    assert calls == [1]


def test_with_block_is_not_run_while_open(clock: ManualClock) -> None:
    b = CircuitBreaker("db", consecutive_failures=1, clock=clock)
    with pytest.raises(Boom), b:
        raise Boom
    ran = []
    with pytest.raises(CircuitOpenError), b:
        ran.append(1)
    assert ran == []


def test_with_block_records_outcomes(clock: ManualClock, recorder: Recorder) -> None:
    b = CircuitBreaker("db", consecutive_failures=2, clock=clock)
    b.add_listener(recorder)
    with b:
        pass
    with pytest.raises(Boom), b:
        raise Boom
    assert recorder.outcomes == ["success", "failure"]
    assert b.metrics().failures == 1


def test_nested_with_blocks_of_two_breakers(clock: ManualClock) -> None:
    outer = CircuitBreaker("outer", consecutive_failures=1, clock=clock)
    inner = CircuitBreaker("inner", consecutive_failures=1, clock=clock)
    with pytest.raises(Boom), outer, inner:
        raise Boom
    assert outer.state is BreakerState.OPEN and inner.state is BreakerState.OPEN


def test_fallback_is_called_when_rejected(clock: ManualClock) -> None:
    b = CircuitBreaker(
        "db",
        consecutive_failures=1,
        fallback=lambda key: f"cached:{key}",
        clock=clock,
    )

    @b
    def fetch(key: str) -> str:
        raise Boom

    with pytest.raises(Boom):
        fetch("a")  # a failure is not a rejection: it propagates
    assert fetch("a") == "cached:a"
    assert b.call(fetch, "b") == "cached:b"


# -- manual control ----------------------------------------------------------


def test_force_open_rejects_everything(clock: ManualClock) -> None:
    b = CircuitBreaker("db", clock=clock)
    b.force_open()
    clock.advance(10_000)
    with pytest.raises(CircuitOpenError) as info:
        b.call(ok)
    assert info.value.state == "forced_open" and info.value.retry_after == 0.0
    b.reset()
    assert b.call(ok) == "ok"


def test_disable_lets_everything_through_and_records_nothing(clock: ManualClock) -> None:
    b = CircuitBreaker("db", consecutive_failures=1, clock=clock)
    b.disable()
    trip(b, 10)
    assert b.state is BreakerState.DISABLED
    assert b.metrics().calls == 0


def test_reset_empties_the_window(clock: ManualClock, recorder: Recorder) -> None:
    b = CircuitBreaker("db", consecutive_failures=3, clock=clock)
    b.add_listener(recorder)
    trip(b, 2)
    b.reset()
    assert b.metrics().calls == 0
    trip(b, 2)
    assert b.state is BreakerState.CLOSED
    assert recorder.transitions == []  # reset while closed is not a transition


def test_a_call_admitted_before_reset_does_not_land_in_the_new_window(clock: ManualClock) -> None:
    b = CircuitBreaker("db", consecutive_failures=1, clock=clock)

    def reset_then_fail() -> None:
        b.reset()
        raise Boom

    with pytest.raises(Boom):
        b.call(reset_then_fail)
    assert b.state is BreakerState.CLOSED
    assert b.metrics().calls == 0


# -- observation -------------------------------------------------------------


def test_events_carry_details(clock: ManualClock, recorder: Recorder) -> None:
    b = CircuitBreaker("payments", consecutive_failures=1, reset_timeout=5, clock=clock)
    b.add_listener(recorder)
    trip(b, 1)
    with pytest.raises(CircuitOpenError):
        b.call(ok)
    changed = recorder.events[0]  # the transition is emitted before the call's outcome
    assert changed.source == "breaker:payments"
    assert changed.at == clock.time()
    assert changed.breaker == "payments"  # type: ignore[attr-defined]
    assert "1 consecutive failures" in changed.reason  # type: ignore[attr-defined]
    assert recorder.outcomes == ["failure", "rejected"]


def test_unsubscribe_stops_events(clock: ManualClock, recorder: Recorder) -> None:
    b = CircuitBreaker("db", clock=clock)
    unsubscribe = b.add_listener(recorder)
    b.call(ok)
    unsubscribe()
    b.call(ok)
    assert recorder.outcomes == ["success"]


def test_a_failing_listener_does_not_break_the_call(clock: ManualClock) -> None:
    b = CircuitBreaker("db", clock=clock)

    def broken(_: object) -> None:
        raise RuntimeError("listener bug")

    b.add_listener(broken)
    assert b.call(ok) == "ok"


def test_history_is_bounded(clock: ManualClock) -> None:
    b = CircuitBreaker("db", consecutive_failures=1, reset_timeout=1, history_size=3, clock=clock)
    for _ in range(4):
        trip(b, 1)
        clock.advance(1)
        b.call(ok)
    history = b.metrics().history
    assert len(history) == 3
    assert [(h.from_state.value, h.to_state.value) for h in history] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert b.metrics().last_transition_at == history[-1].at


def test_metrics_snapshot(clock: ManualClock) -> None:
    b = CircuitBreaker("db", consecutive_failures=None, minimum_calls=4, window_size=4, clock=clock)
    b.call(ok)
    trip(b, 1)
    m = b.metrics()
    assert m.name == "db"
    assert (m.state, m.calls, m.failures, m.failure_rate) == (BreakerState.CLOSED, 2, 1, 0.5)
    assert (m.rejected, m.times_opened, m.last_transition_at) == (0, 0, None)
    assert m.shared_state == "local" and m.shared_state_error is None
    assert b.stats() == b.metrics()
    with pytest.raises(AttributeError):
        m.calls = 3  # type: ignore[misc]


def test_repr_names_the_breaker() -> None:
    assert repr(CircuitBreaker("db")) == "CircuitBreaker(name='db', state='closed')"


# -- configuration -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"name": ""}, "name"),
        ({"failure_rate_threshold": 1.5}, "failure_rate_threshold"),
        ({"failure_rate_threshold": 0}, "failure_rate_threshold"),
        ({"failure_rate_threshold": float("nan")}, "failure_rate_threshold"),
        ({"consecutive_failures": 0}, "consecutive_failures"),
        ({"minimum_calls": 0}, "minimum_calls"),
        ({"minimum_calls": 101}, "minimum_calls"),
        ({"window_type": "sliding"}, "window_type"),
        ({"window_size": 0}, "window_size"),
        ({"window_size": 2.5}, "window_size"),
        ({"slow_call_duration": -1}, "slow_call_duration"),
        ({"slow_call_rate_threshold": 0}, "slow_call_rate_threshold"),
        ({"reset_timeout": 0}, "reset_timeout"),
        ({"reset_timeout": float("inf")}, "reset_timeout"),
        ({"reset_timeout_multiplier": 0.5}, "reset_timeout_multiplier"),
        ({"max_reset_timeout": 10}, "max_reset_timeout"),
        ({"half_open_max_calls": 0}, "half_open_max_calls"),
        ({"success_threshold": 0}, "success_threshold"),
        ({"half_open_timeout": -5}, "half_open_timeout"),
        ({"record_exceptions": (int,)}, "record_exceptions"),
        ({"ignore_exceptions": ("x",)}, "ignore_exceptions"),
        ({"ignore_exceptions": 3}, "ignore_exceptions"),
        ({"failure_predicate": 3}, "failure_predicate"),
        ({"fallback": "x"}, "fallback"),
        ({"history_size": -1}, "history_size"),
        ({"clock": object()}, "clock"),
        ({"consecutive_failures": True}, "consecutive_failures"),
    ],
)
def test_invalid_configuration_names_the_parameter(kwargs: dict, parameter: str) -> None:
    with pytest.raises(ConfigError) as info:
        CircuitBreaker(**kwargs)
    assert info.value.parameter == parameter
    assert isinstance(info.value, ValueError)


def test_minimum_calls_may_exceed_size_of_a_time_window() -> None:
    b = CircuitBreaker(window_type="time", window_size=5, minimum_calls=1000)
    assert b.config.minimum_calls == 1000


def test_a_long_reset_timeout_raises_the_default_cap() -> None:
    assert CircuitBreaker(reset_timeout=3600).config.max_reset_timeout == 3600
    assert CircuitBreaker(reset_timeout=60).config.max_reset_timeout == 600


def test_a_single_exception_type_is_accepted() -> None:
    b = CircuitBreaker(record_exceptions=OSError, consecutive_failures=1)
    assert b.config.record_types == (OSError,)


def test_with_blocks_of_two_breakers_may_exit_out_of_order(clock: ManualClock) -> None:
    a = CircuitBreaker("a", consecutive_failures=1, clock=clock)
    b = CircuitBreaker("b", consecutive_failures=1, clock=clock)
    a.__enter__()
    b.__enter__()
    a.__exit__(Boom, Boom(), None)  # a's block ends first, with a failure
    b.__exit__(None, None, None)
    assert a.state is BreakerState.OPEN
    assert b.state is BreakerState.CLOSED and b.metrics().calls == 1


def test_exit_without_enter_is_ignored(clock: ManualClock) -> None:
    b = CircuitBreaker("db", clock=clock)
    b.__exit__(None, None, None)
    assert b.metrics().calls == 0


def test_rejections_by_other_policies_do_not_count_by_default(clock) -> None:  # type: ignore[no-untyped-def]
    from sentia_core.errors import BulkheadFullError, RateLimitExceeded

    b = CircuitBreaker("partner", consecutive_failures=2, clock=clock)

    def denied() -> None:
        raise RateLimitExceeded("api", "k", 1.0)

    def full() -> None:
        raise BulkheadFullError("partner")

    for fn in (denied, full, denied, full):
        with pytest.raises((RateLimitExceeded, BulkheadFullError)):
            b.call(fn)
    assert b.state is BreakerState.CLOSED
    counting = CircuitBreaker("strict", consecutive_failures=2, ignore_exceptions=(), clock=clock)
    for _ in range(2):
        with pytest.raises(RateLimitExceeded):
            counting.call(denied)
    assert counting.state is BreakerState.OPEN
