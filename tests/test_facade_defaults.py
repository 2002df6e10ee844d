"""Issue 15: the facade's defaults and wiring as a service author meets them.

The monitor runs by default and leaks no thread; per-call outcomes reach the
monitor as counters, not events; sync timeouts stay in the caller's thread by
default; protect() handles the errors it should and no others; async code
gets a cache.
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sentia_core import Sentia
from sentia_core.errors import CallTimeoutError, CircuitOpenError, ConfigError
from sentia_core.policies import OutcomeRules, http_status, is_transient, remaining_time
from sentia_core.testing import ManualClock

QUIET = {"monitor": {"system_metrics": False}}


def _wait_for(condition: Callable[[], bool], limit: float = 10.0) -> bool:
    """Wait (bounded) until ``condition()`` holds; returns whether it did."""
    step = threading.Event()
    for _ in range(int(limit / 0.01)):
        if condition():
            return True
        step.wait(0.01)
    return condition()


def _monitor_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sentia-monitor" and t.is_alive()]


def _samples(app: Sentia, metric: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in app.monitor.prometheus_text().splitlines():
        if line.startswith(metric):
            series, value = line.rsplit(" ", 1)
            out[series] = float(value)
    return out


@pytest.fixture
def app(clock: ManualClock) -> Iterator[Sentia]:
    with Sentia(QUIET, clock=clock, start_monitor=False) as s:
        yield s


# ---------------------------------------------------------------- 1. monitor by default


def test_the_readme_snippet_gets_component_metrics_and_evaluated_rules() -> None:
    before = set(_monitor_threads())
    # the default sampler, ticking on its own (sooner than the default 10 s)
    with Sentia({"monitor": {"system_metrics": False, "sample_interval": 0.05}}) as app:
        assert app.monitor.running

        @app.protect("payments", timeout=2.0, retries=2)
        def charge(order_id: str) -> dict[str, str]:
            return {"order": order_id}

        @app.cache.cached(ttl=300, tags=("catalog",))
        def product(product_id: int) -> dict[str, int]:
            return {"id": product_id}

        assert charge("o-1") == {"order": "o-1"}
        product(1)
        product(1)
        # The sampler ticks on its own: the rules get evaluated and the
        # component metrics collected without anyone calling tick().
        assert _wait_for(lambda: all(s.evaluated_at is not None for s in app.monitor.alerts()))
        assert _wait_for(
            lambda: 'breaker_open{breaker="payments"}' in app.monitor.prometheus_text()
        )
        text = app.monitor.prometheus_text()
        assert 'cache_hits_total{cache="default"} 1' in text
        assert 'breaker_open{breaker="payments"}' in text
        assert "cache_items" in text
    assert set(_monitor_threads()) <= before  # close() stopped it


def test_the_monitor_can_be_turned_off_for_tests() -> None:
    with Sentia(QUIET, start_monitor=False) as app:
        assert not app.monitor.running
    with Sentia({**QUIET, "monitor": {"enabled": False, "system_metrics": False}}) as app:
        assert not app.monitor.running
    with Sentia({"monitor": {"enabled": False}}, start_monitor=True) as app:
        assert app.monitor.running  # the argument wins over the file


def test_a_facade_nobody_closes_stops_its_thread_when_collected() -> None:
    before = set(_monitor_threads())
    app = Sentia(QUIET)
    app.breaker("x")
    app.protect("y")(lambda: 1)()
    ours = set(_monitor_threads()) - before
    assert len(ours) == 1
    del app
    gc.collect()
    assert not any(t.is_alive() for t in ours)


def test_close_is_idempotent_and_stops_everything() -> None:
    app = Sentia(QUIET)
    thread = next(iter(set(_monitor_threads())))
    app.close()
    app.close()
    assert not app.monitor.running
    assert not thread.is_alive() or thread not in _monitor_threads()


# ---------------------------------------------------------------- 2. counters, not events


def test_calls_through_the_facade_send_no_per_call_events(app: Sentia) -> None:
    breaker = app.breaker("partner")
    call = breaker(lambda: 1)
    for _ in range(50):
        call()
    # The breaker stays on its lock-free path: nobody wants per-call events.
    assert breaker._core.fast is not None
    app.monitor.tick()
    assert not any("BreakerCallOutcome" in s for s in _samples(app, "sentia_events_total"))


def test_per_call_outcomes_reach_the_monitor_as_counters(app: Sentia, clock: ManualClock) -> None:
    @app.protect("flaky", fallback=lambda exc: "cached")
    def flaky() -> str:
        raise ConnectionError("down")

    for _ in range(12):
        assert flaky() == "cached"
    app.monitor.tick()
    rejected = _samples(app, "breaker_rejected_total")
    fallbacks = _samples(app, "policy_fallbacks_total")
    opened = _samples(app, "breaker_opened_total")
    assert fallbacks == {'policy_fallbacks_total{policy="flaky"}': 12.0}
    assert opened == {'breaker_opened_total{breaker="flaky"}': 1.0}
    assert rejected == {'breaker_rejected_total{breaker="flaky"}': 7.0}
    # State changes still arrive as events.
    events = _samples(app, "sentia_events_total")
    assert any("BreakerStateChanged" in s for s in events)
    # A second tick adds only what happened since (counters by delta).
    assert flaky() == "cached"
    app.monitor.tick()
    assert _samples(app, "breaker_rejected_total") == {
        'breaker_rejected_total{breaker="flaky"}': 8.0
    }


def test_a_listener_that_asks_for_outcomes_still_gets_them(app: Sentia) -> None:
    breaker = app.breaker("audited")
    seen: list[str] = []
    unsubscribe = breaker.add_listener(lambda e: seen.append(type(e).__name__))
    breaker(lambda: 1)()
    assert seen == ["BreakerCallOutcome"]
    unsubscribe()
    unsubscribe()  # twice is harmless and does not unbalance the count
    assert breaker._core.fast is not None


# ---------------------------------------------------------------- 3. sync timeouts


def test_a_sqlite_connection_works_inside_a_protected_call_with_a_timeout(app: Sentia) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.execute("INSERT INTO t VALUES (41)")

    @app.protect("db", timeout=1.0)
    def read() -> int:
        (value,) = conn.execute("SELECT x + 1 FROM t").fetchone()
        return int(value)

    assert read() == 42  # the default "deadline" mode runs it in this thread
    conn.close()


def test_the_deadline_is_readable_by_the_function(app: Sentia, clock: ManualClock) -> None:
    seen: list[float | None] = []
    threads: list[threading.Thread] = []

    @app.protect("db", timeout="2s")
    def work() -> None:
        seen.append(remaining_time())
        threads.append(threading.current_thread())

    work()
    assert seen == [2.0]
    assert threads == [threading.current_thread()]


def test_thread_mode_is_explicit_and_runs_elsewhere(app: Sentia) -> None:
    threads: list[threading.Thread] = []

    @app.protect("slow", timeout=5.0, timeout_mode="thread")
    def work() -> None:
        threads.append(threading.current_thread())

    work()
    assert threads and threads[0] is not threading.current_thread()


def test_timeout_mode_comes_from_the_service_config(clock: ManualClock) -> None:
    config = {**QUIET, "services": {"legacy": {"timeout": 5, "timeout_mode": "thread"}}}
    with Sentia(config, clock=clock, start_monitor=False) as app:
        policy = app.protect("legacy")
        assert policy.timeout is not None and policy.timeout.sync_mode == "thread"
        assert app.protect("other", timeout=1).timeout.sync_mode == "cooperative"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=r"services\.legacy\.timeout_mode"):
        Sentia({"services": {"legacy": {"timeout_mode": "fork"}}}, start_monitor=False)


def test_a_deadline_overrun_is_counted_not_raised(app: Sentia, clock: ManualClock) -> None:
    policy = app.protect("db", timeout=1.0)

    @policy
    def slow() -> str:
        clock.advance(3.0)  # ignores its deadline: it cannot be interrupted inline
        return "late"

    assert slow() == "late"
    assert policy.timeout is not None and policy.timeout.stats().overruns == 1


# ---------------------------------------------------------------- 4. what protect() handles


class Status(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status_code = status


class Response:
    def __init__(self, status: int) -> None:
        self.status_code = status


def _counting(outcomes: list[Any]) -> tuple[Callable[[], Any], list[int]]:
    calls = [0]

    def call() -> Any:
        calls[0] += 1
        outcome = outcomes[min(calls[0], len(outcomes)) - 1]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return call, calls


@pytest.fixture
def quick_retries(clock: ManualClock) -> Iterator[Sentia]:
    with Sentia(QUIET, clock=clock, start_monitor=False) as s:
        yield s


def test_a_bug_is_neither_retried_nor_hidden_by_the_fallback(quick_retries: Sentia) -> None:
    call, calls = _counting([TypeError("bug")])
    protected = quick_retries.protect("partner", retries=3, fallback=lambda exc: "fallback")(call)
    with pytest.raises(TypeError):
        protected()
    assert calls == [1]


@pytest.mark.parametrize(
    "error",
    [
        ConnectionError("reset"),
        TimeoutError(),
        CallTimeoutError(1.0, "t"),
        Status(503),
        Status(429),
    ],
)
def test_transient_errors_are_retried_by_default(quick_retries: Sentia, error: Exception) -> None:
    call, calls = _counting([error, "ok"])
    assert quick_retries.protect("partner", retries=2)(call)() == "ok"
    assert calls == [2]


def test_our_own_rate_limit_denial_is_retried_after_its_hint(clock: ManualClock) -> None:
    config = {**QUIET, "rate_limits": {"partner": "1/second"}}
    with Sentia(config, clock=clock, start_monitor=False) as app:
        calls = [0]

        @app.protect("partner", retries=1, rate_limit="partner")
        def call() -> str:
            calls[0] += 1
            return "ok"

        assert call() == "ok"
        assert call() == "ok"  # denied, waited retry_after on the clock, allowed
        assert calls == [2]
        assert clock.monotonic() >= 1.0


def test_a_result_carrying_503_is_retried(quick_retries: Sentia) -> None:
    call, calls = _counting([Response(503), Response(200)])
    result = quick_retries.protect("partner", retries=2)(call)()
    assert result.status_code == 200 and calls == [2]


def test_a_500_is_not_retried_but_the_fallback_covers_it(quick_retries: Sentia) -> None:
    call, calls = _counting([Status(500)])
    protected = quick_retries.protect("partner", retries=2, fallback=lambda exc: "fallback")(call)
    assert protected() == "fallback"
    assert calls == [1]


def test_partner_429s_do_not_open_the_breaker(quick_retries: Sentia) -> None:
    protected = quick_retries.protect("partner")(_counting([Status(429)])[0])
    for _ in range(20):
        with pytest.raises(Status):
            protected()
    metrics = quick_retries.breaker("partner").metrics()
    assert metrics.state.value == "closed" and metrics.failures == 0


def test_rules_as_types_predicates_and_names(quick_retries: Sentia) -> None:
    class PartnerDown(Exception):
        pass

    call, calls = _counting([PartnerDown(), ValueError("x"), "ok"])
    protected = quick_retries.protect(
        "partner",
        retries=3,
        retry_on=(PartnerDown, lambda e: isinstance(e, ValueError) and str(e) == "x"),
    )(call)
    assert protected() == "ok" and calls == [3]
    call, calls = _counting([Status(500), "ok"])
    assert quick_retries.protect("p2", retries=1, retry_on="http:500")(call)() == "ok"
    # A breaker told to ignore ValueError never opens on it.
    bad = quick_retries.protect("p3", ignore_exceptions=ValueError)(_counting([ValueError()])[0])
    for _ in range(10):
        with pytest.raises(ValueError):
            bad()
    assert quick_retries.breaker("p3").metrics().failures == 0


def test_the_same_rules_from_services_config(clock: ManualClock) -> None:
    config = {
        **QUIET,
        "services": {
            "partner": {
                "retries": 2,
                "retry_on": ["KeyError"],
                "fallback_on": ["LookupError"],
                "record_exceptions": ["ConnectionError"],
            }
        },
    }
    with Sentia(config, clock=clock, start_monitor=False) as app:
        call, calls = _counting([KeyError("a"), KeyError("b"), KeyError("c")])
        assert app.protect("partner", fallback=lambda exc: "fb")(call)() == "fb"
        assert calls == [3]
        # Only ConnectionError counts as a failure of that breaker.
        assert app.breaker("partner").metrics().failures == 0


def test_bad_rules_fail_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"services\.partner\.retry_on\[0\]"):
        Sentia({"services": {"partner": {"retry_on": ["not a name"]}}}, start_monitor=False)
    with Sentia(
        {"services": {"partner": {"retry_on": ["NoSuchError"]}}}, start_monitor=False
    ) as app:
        with pytest.raises(ConfigError, match=r"services\.partner\.retry_on"):
            app.protect("partner")
        with pytest.raises(ConfigError, match="retry_on"):
            app.protect("other", retry_on=42)


def test_conflicting_breaker_rules_for_one_name_fail_clearly(quick_retries: Sentia) -> None:
    quick_retries.protect("partner", ignore_exceptions=ValueError)
    quick_retries.protect("partner", ignore_exceptions=ValueError)  # same rules: fine
    with pytest.raises(ConfigError, match="already exists with other rules"):
        quick_retries.protect("partner", ignore_exceptions=KeyError)


def test_an_open_circuit_is_not_retried_and_is_covered_by_the_fallback(
    quick_retries: Sentia,
) -> None:
    quick_retries.breaker("partner").force_open()
    call, calls = _counting(["ok"])
    protected = quick_retries.protect("partner", retries=3, fallback=type)(call)
    assert protected() is CircuitOpenError
    assert calls == [0]


def test_http_status_reading_is_defensive() -> None:
    class Raises:
        @property
        def status_code(self) -> int:
            raise RuntimeError("no")

    class Wrapped(Exception):
        def __init__(self) -> None:
            self.response = Response(502)

    assert http_status(Raises()) is None
    assert http_status(Wrapped()) == 502
    assert http_status(Response(True)) is None  # type: ignore[arg-type]
    assert http_status(Response(99)) is None
    assert is_transient(Wrapped()) and not is_transient(TypeError())
    assert OutcomeRules(statuses=frozenset({503})).matches_result(Response(503))


# ---------------------------------------------------------------- 5. async caches


def test_async_cache_is_an_async_tiered_cache_of_the_same_namespace(app: Sentia) -> None:
    from sentia_core import AsyncTieredCache

    assert isinstance(app.async_cache, AsyncTieredCache)
    assert app.async_cache is app.named_async_cache("default")
    assert app.named_async_cache("users").namespace == app.named_cache("users").namespace

    async def scenario() -> None:
        await app.async_cache.set("k", 1, tags=("t",))
        assert await app.async_cache.get("k") == 1
        app.cache.set("k", 2, tags=("t",))
        # An invalidation through one twin drops the other's entry too.
        app.cache.invalidate_tags("t")
        assert await app.async_cache.get("k") is None
        await app.async_cache.set("j", 3)
        app.cache.set("j", 3)
        await app.async_cache.delete("j")
        assert app.cache.get("j") is None
        await app.aclose()

    asyncio.run(scenario())


def test_async_cache_shares_redis_with_the_sync_one(redis_url: str) -> None:
    async def scenario() -> None:
        async with Sentia({**QUIET, "redis_url": redis_url, "namespace": "f15"}) as app:
            app.cache.set("shared", {"v": 1})
            assert await app.async_cache.get("shared") == {"v": 1}
            await app.async_cache.set("other", [1, 2])
            assert app.cache.get("other") == [1, 2]

    asyncio.run(scenario())
