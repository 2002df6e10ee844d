"""Shared state through Redis: one contract, run on fakeredis, a real
redis-server and a real 3-node Redis Cluster.

Two ``CircuitBreaker`` objects with their own ``RedisStateStore`` stand for
two processes. The store takes the test's ManualClock instead of Redis
``TIME`` so that reset timeouts need no sleeping; ``test_store_real.py``
checks the server-time path.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import pytest

from sentia_core.breaker import (
    BreakerState,
    CircuitBreaker,
    RedisStateStore,
    StoreRequest,
)
from sentia_core.breaker._state import TRANSITIONS
from sentia_core.breaker._store import LUA_SCRIPT
from sentia_core.errors import CircuitOpenError, ConfigError
from sentia_core.testing import ManualClock

from .conftest import Boom, Recorder, fail, ok


@pytest.fixture(
    params=[
        "fakeredis",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.redis),
    ]
)
def client(request: pytest.FixtureRequest) -> Any:
    fixture = {"fakeredis": "fake_redis", "redis": "real_redis", "cluster": "cluster_client"}
    return request.getfixturevalue(fixture[request.param])


def process(
    client: Any, clock: ManualClock, name: str = "payments", **kwargs: Any
) -> CircuitBreaker:
    """One 'process': its own breaker object and store, sharing Redis."""
    store = RedisStateStore(client, clock=clock, sync_interval=1.0, retry_interval=5.0)
    kwargs.setdefault("reset_timeout", 10)
    return CircuitBreaker(name, state_store=store, clock=clock, **kwargs)


def trip(b: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        with pytest.raises(Boom):
            b.call(fail)


def test_a_trip_in_one_process_opens_the_other(client: Any, clock: ManualClock) -> None:
    a = process(client, clock, consecutive_failures=3)
    b = process(client, clock, consecutive_failures=3)
    assert b.call(ok) == "ok"
    trip(a, 3)
    assert a.state is BreakerState.OPEN
    clock.advance(1)  # b refreshes its mirror on its next call
    b.call(ok)  # admitted locally (CLOSED mirror), its record returns OPEN
    calls: list[int] = []
    with pytest.raises(CircuitOpenError) as info:
        b.call(lambda: calls.append(1))
    assert calls == [] and info.value.retry_after == pytest.approx(9.0)
    assert b.state is BreakerState.OPEN


def test_failures_from_both_processes_count_together(client: Any, clock: ManualClock) -> None:
    a = process(client, clock, consecutive_failures=None, minimum_calls=4, window_size=10)
    b = process(client, clock, consecutive_failures=None, minimum_calls=4, window_size=10)
    a.call(ok)
    trip(b, 1)
    a.call(ok)
    assert a.metrics().calls == 3 and b.state is BreakerState.CLOSED
    trip(b, 1)  # 2 of 4 across both processes: 0.5 >= 0.5
    assert b.state is BreakerState.OPEN
    m = b.metrics()
    assert (m.calls, m.failures, m.shared_state) == (4, 2, "connected")


def test_consecutive_failures_are_shared(client: Any, clock: ManualClock) -> None:
    a = process(client, clock, consecutive_failures=4)
    b = process(client, clock, consecutive_failures=4)
    trip(a, 2)
    trip(b, 1)
    assert b.state is BreakerState.CLOSED
    trip(a, 1)
    assert a.state is BreakerState.OPEN


def test_only_one_trial_across_processes(client: Any, clock: ManualClock) -> None:
    a = process(client, clock, consecutive_failures=1)
    b = process(client, clock, consecutive_failures=1)
    trip(a, 1)
    clock.advance(10)
    probed: list[str] = []

    def trial() -> str:
        # While a's trial runs, b is refused: the permit is shared.
        with pytest.raises(CircuitOpenError) as info:
            b.call(ok)
        probed.append(info.value.state)
        return "fine"

    assert a.call(trial) == "fine"
    assert probed == ["half_open"]
    assert a.state is BreakerState.CLOSED
    assert b.call(ok) == "ok"
    assert b.state is BreakerState.CLOSED


def test_failed_trial_reopens_for_everyone_with_growing_timeout(
    client: Any, clock: ManualClock
) -> None:
    a = process(
        client, clock, consecutive_failures=1, reset_timeout_multiplier=3, max_reset_timeout=60
    )
    b = process(
        client, clock, consecutive_failures=1, reset_timeout_multiplier=3, max_reset_timeout=60
    )
    trip(a, 1)
    clock.advance(10)
    trip(b, 1)  # b's trial fails: open again for 30 s
    with pytest.raises(CircuitOpenError) as info:
        a.call(ok)
    assert info.value.retry_after == pytest.approx(30.0)
    clock.advance(30)
    trip(a, 1)
    with pytest.raises(CircuitOpenError) as info:
        b.call(ok)
    assert info.value.retry_after == pytest.approx(60.0)  # 90 capped at 60


def test_manual_control_reaches_every_process(client: Any, clock: ManualClock) -> None:
    a = process(client, clock)
    b = process(client, clock)
    b.call(ok)
    a.force_open()
    clock.advance(1)
    b.call(ok)  # its record brings back the shared state
    with pytest.raises(CircuitOpenError) as info:
        b.call(ok)
    assert info.value.state == "forced_open"
    a.reset()
    with pytest.raises(CircuitOpenError):
        b.call(ok)  # b's mirror is refreshed only every sync_interval
    clock.advance(1)
    assert b.call(ok) == "ok"
    a.disable()
    clock.advance(1)
    b.call(ok)
    clock.advance(1)
    trip(b, 10)
    assert b.state is BreakerState.DISABLED


def test_transitions_seen_through_the_store_are_events(
    client: Any, clock: ManualClock, recorder: Recorder
) -> None:
    a = process(client, clock, consecutive_failures=1)
    b = process(client, clock, consecutive_failures=1)
    b.call(ok)
    b.add_listener(recorder)
    trip(a, 1)
    clock.advance(1)
    b.call(ok)
    assert recorder.transitions == [("closed", "open")]
    reason = recorder.changes[0].reason
    assert reason.startswith("shared state: 1 consecutive failures")
    assert b.metrics().times_opened == 1


def test_time_window_is_shared(client: Any, clock: ManualClock) -> None:
    kw: dict[str, Any] = {
        "window_type": "time",
        "window_size": 10,
        "minimum_calls": 4,
        "consecutive_failures": None,
    }
    a = process(client, clock, **kw)
    b = process(client, clock, **kw)
    trip(a, 1)
    b.call(ok)
    clock.advance(10)  # both fall out of the window
    a.call(ok)
    b.call(ok)
    trip(a, 1)
    assert a.metrics().calls == 3
    trip(b, 1)
    assert b.state is BreakerState.OPEN


def test_slow_calls_are_shared(client: Any, clock: ManualClock) -> None:
    kw: dict[str, Any] = {
        "slow_call_duration": 1.0,
        "slow_call_rate_threshold": 0.5,
        "minimum_calls": 2,
        "window_size": 2,
    }
    a = process(client, clock, **kw)
    b = process(client, clock, **kw)

    def slow() -> str:
        clock.advance(2)
        return "late"

    a.call(ok)
    b.call(slow)
    assert a.metrics().state is BreakerState.OPEN or b.state is BreakerState.OPEN
    assert b.metrics().slow_calls == 1


def test_keys_are_namespaced_and_hash_tagged(client: Any, clock: ManualClock) -> None:
    store = RedisStateStore(client, namespace="svc", clock=clock)
    b = CircuitBreaker("inventory", state_store=store, clock=clock, consecutive_failures=1)
    trip(b, 1)
    state, window, permits = store.keys("inventory")
    assert (state, window, permits) == (
        "svc:{breaker:inventory}:state",
        "svc:{breaker:inventory}:window",
        "svc:{breaker:inventory}:permits",
    )
    assert client.exists(state) == 1
    assert 0 < client.pttl(state) <= 86_400_000


def test_a_stale_generation_is_not_recorded(client: Any, clock: ManualClock) -> None:
    store = RedisStateStore(client, clock=clock)
    cfg = CircuitBreaker("x", consecutive_failures=1).config
    store.execute(cfg, StoreRequest("manual", trigger="reset"))  # generation 1
    reply = store.execute(cfg, StoreRequest("record", outcome=1, generation=0))
    assert reply.state is BreakerState.CLOSED and reply.calls == 0
    reply = store.execute(cfg, StoreRequest("record", outcome=1, generation=1))
    assert reply.state is BreakerState.OPEN


def test_an_unknown_permit_is_not_a_trial(client: Any, clock: ManualClock) -> None:
    store = RedisStateStore(client, clock=clock)
    cfg = CircuitBreaker("x", consecutive_failures=1, reset_timeout=1).config
    store.execute(cfg, StoreRequest("record", outcome=1, generation=0))
    clock.advance(1)
    granted = store.execute(cfg, StoreRequest("acquire"))
    assert granted.state is BreakerState.HALF_OPEN and granted.permit > 0
    bogus = store.execute(
        cfg, StoreRequest("record", outcome=0, generation=granted.generation, permit=999)
    )
    assert bogus.state is BreakerState.HALF_OPEN
    good = store.execute(
        cfg,
        StoreRequest("record", outcome=0, generation=granted.generation, permit=granted.permit),
    )
    assert good.state is BreakerState.CLOSED


def test_a_lost_shared_permit_expires(client: Any, clock: ManualClock) -> None:
    store = RedisStateStore(client, clock=clock)
    cfg = CircuitBreaker("x", consecutive_failures=1, reset_timeout=1, half_open_timeout=5).config
    store.execute(cfg, StoreRequest("record", outcome=1, generation=0))
    clock.advance(1)
    assert store.execute(cfg, StoreRequest("acquire")).permit > 0
    assert store.execute(cfg, StoreRequest("acquire")).permit == 0
    clock.advance(5)
    assert store.execute(cfg, StoreRequest("acquire")).permit > 0


@pytest.mark.parametrize(
    "corrupt",
    [
        "exploded|NaN|x|-7|||||||||||",
        "closed|1|2",
        "|||||||||||||||||||||||",
        "open|0|9e999|0|0|0|-5|-5|0|77|0|0|0|0|why",
        "\xff\x00 not ours",
    ],
)
def test_corrupt_state_in_redis_does_not_crash_the_caller(
    client: Any, clock: ManualClock, corrupt: str
) -> None:
    store = RedisStateStore(client, clock=clock)
    state_key, window_key, _ = store.keys("x")
    client.set(state_key, corrupt)
    client.set(window_key, "garbage")
    b = CircuitBreaker("x", state_store=store, clock=clock, consecutive_failures=2)
    # Whatever the garbage said, the call runs or is rejected; nothing else
    # reaches the caller.
    with contextlib.suppress(CircuitOpenError):
        assert b.call(ok) == "ok"
    assert b.metrics().shared_state == "connected"
    b.reset()
    assert b.call(ok) == "ok"
    trip(b, 2)
    assert b.state is BreakerState.OPEN
    assert b.metrics().shared_state == "connected"


def test_a_foreign_value_under_the_state_key_is_replaced(client: Any, clock: ManualClock) -> None:
    store = RedisStateStore(client, clock=clock)
    state_key, _, _ = store.keys("x")
    client.hset(state_key, mapping={"state": "open"})
    b = CircuitBreaker("x", state_store=store, clock=clock, consecutive_failures=1)
    assert b.call(ok) == "ok"
    assert b.metrics().shared_state == "connected"
    trip(b, 1)
    assert client.get(state_key).startswith(b"open|")


def test_the_lua_table_is_the_python_table() -> None:
    pairs = re.findall(r'\["(\w+):(\w+)"\] = "(\w+)"', LUA_SCRIPT)
    assert {(s, t): n for s, t, n in pairs} == {
        (s.value, t.value): n.value for (s, t), n in TRANSITIONS.items()
    }


def test_an_illegal_transition_in_lua_raises(client: Any, clock: ManualClock) -> None:
    store = RedisStateStore(client, clock=clock)
    cfg = CircuitBreaker("x").config
    with pytest.raises(Exception, match="no transition"):
        store.execute(cfg, StoreRequest("manual", trigger="trials_succeeded"))


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({}, "redis"),
        ({"redis": "http://localhost"}, "redis"),
        ({"redis": 42}, "redis"),
        ({"redis": "redis://x", "retry_interval": 0}, "retry_interval"),
        ({"redis": "redis://x", "sync_interval": -1}, "sync_interval"),
        ({"redis": "redis://x", "namespace": ""}, "namespace"),
        ({"redis": "redis://x", "key_ttl": 0}, "key_ttl"),
    ],
)
def test_store_configuration_is_validated(kwargs: dict[str, Any], parameter: str) -> None:
    with pytest.raises(ConfigError) as info:
        RedisStateStore(**kwargs)
    assert info.value.parameter == parameter


def test_state_store_must_be_a_store() -> None:
    with pytest.raises(ConfigError) as info:
        CircuitBreaker(state_store="redis://localhost")
    assert info.value.parameter == "state_store"


class CountingStore(RedisStateStore):
    """A RedisStateStore that counts its round trips."""

    trips = 0

    def execute(self, config: Any, request: StoreRequest) -> Any:
        self.trips += 1
        return super().execute(config, request)


def test_a_healthy_breaker_talks_to_redis_once_per_sync_interval(
    client: Any, clock: ManualClock
) -> None:
    store = CountingStore(client, clock=clock, sync_interval=1.0)
    b = CircuitBreaker("quiet", state_store=store, clock=clock, window_size=5, minimum_calls=5)
    for _ in range(5):
        b.call(ok)  # filling the shared window: every success counts
    sent = store.trips
    for _ in range(100):
        b.call(ok)  # a success into a full window of successes changes nothing
    assert store.trips == sent
    clock.advance(1.0)
    b.call(ok)
    assert store.trips == sent + 1  # the periodic refresh
    assert b.metrics().calls == 5


def test_a_quiet_process_learns_of_a_remote_trip_within_sync_interval(
    client: Any, clock: ManualClock
) -> None:
    kw: dict[str, Any] = {"window_size": 4, "minimum_calls": 4, "consecutive_failures": 2}
    a = process(client, clock, **kw)
    b = process(client, clock, **kw)
    for _ in range(4):
        b.call(ok)
    trip(a, 2)
    b.call(ok)  # b's mirror is still CLOSED and clean: admitted, not sent
    clock.advance(1.0)
    b.call(ok)  # the refresh brings the shared OPEN
    with pytest.raises(CircuitOpenError):
        b.call(ok)


def test_every_outcome_is_sent_while_the_shared_window_holds_a_failure(
    client: Any, clock: ManualClock
) -> None:
    store = CountingStore(client, clock=clock)
    b = CircuitBreaker(
        "noisy",
        state_store=store,
        clock=clock,
        window_size=5,
        minimum_calls=5,
        consecutive_failures=None,
    )
    trip(b, 1)
    sent = store.trips
    for _ in range(4):
        b.call(ok)  # the window holds the failure: every success is sent
    assert store.trips == sent + 4
    b.call(ok)  # this one pushes the failure out of the window (still sent)
    assert store.trips == sent + 5
    for _ in range(10):
        b.call(ok)  # clean again: nothing to send
    assert store.trips == sent + 5


# -- an observer sees shared state without making a call (issue 15, item 9) --------
# Process ``b`` never calls: its metrics() (what the facade's health check and
# collector read) must still show the breaker ``a`` opened, and later reset.


def test_metrics_show_a_breaker_opened_elsewhere_without_a_local_call(
    client: Any, clock: ManualClock
) -> None:
    a = process(client, clock, consecutive_failures=2)
    b = process(client, clock, consecutive_failures=2)
    assert b.metrics().state is BreakerState.CLOSED  # b's first look reads the store
    for _ in range(2):
        with pytest.raises(Boom):
            a.call(fail)
    assert a.state is BreakerState.OPEN
    # fresh mirror: no store read yet (at most one per sync_interval)
    assert b.metrics().state is BreakerState.CLOSED
    clock.advance(1.0)
    seen = b.metrics()
    assert seen.state is BreakerState.OPEN
    assert seen.shared_state == "connected"
    assert seen.times_opened == 1
    a.reset()
    clock.advance(1.0)
    assert b.metrics().state is BreakerState.CLOSED
    assert b.call(ok) == "ok"


def test_an_observer_on_a_store_that_is_down_says_unavailable(clock: ManualClock) -> None:
    import redis

    dead = redis.Redis(port=1, socket_connect_timeout=0.2)  # nothing listens on port 1
    b = process(dead, clock)
    m = b.metrics()
    assert m.shared_state == "unavailable" and m.store_errors == 1
    assert m.state is BreakerState.CLOSED  # decides locally
    assert b.metrics().store_errors == 1  # resting for retry_interval: no second attempt


def test_an_async_only_store_is_not_read_from_sync_metrics(
    fake_async_redis: Any, clock: ManualClock
) -> None:
    store = RedisStateStore(async_redis=fake_async_redis, clock=clock)
    b = CircuitBreaker("payments", state_store=store, clock=clock)
    m = b.metrics()
    assert m.shared_state == "connected" and m.store_errors == 0
