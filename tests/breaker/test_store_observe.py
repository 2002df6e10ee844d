"""An observer sees shared state without making a call (issue 15, item 9).

Two breakers with their own store stand for two processes. Process ``b``
never calls: its ``metrics()`` (what the facade's health check and collector
read) must still show the breaker ``a`` opened, and later reset.
"""

from __future__ import annotations

from typing import Any

import pytest

from sentia_core.breaker import BreakerState, CircuitBreaker, RedisStateStore
from sentia_core.testing import ManualClock

from .conftest import Boom, fail, ok


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


def process(client: Any, clock: ManualClock) -> CircuitBreaker:
    store = RedisStateStore(client, clock=clock, sync_interval=1.0, retry_interval=5.0)
    return CircuitBreaker("payments", state_store=store, clock=clock, consecutive_failures=2)


def test_metrics_show_a_breaker_opened_elsewhere_without_a_local_call(
    client: Any, clock: ManualClock
) -> None:
    a, b = process(client, clock), process(client, clock)
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
