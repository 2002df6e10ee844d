"""Foreign data under a shared breaker's Redis keys (issue 12, item 2).

Whatever sits under a breaker's state, window or permit key, every process
sharing it keeps deciding through Redis (``shared_state == "connected"``):
the key is replaced, counted in ``RedisStateStore.corrupt_keys``, and other
breakers are unaffected.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentia_core.breaker import BreakerState, CircuitBreaker, RedisStateStore
from sentia_core.errors import CircuitOpenError
from sentia_core.testing import ManualClock

from .strategies import foreign_values, write

_hostile = settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _fail() -> None:
    raise RuntimeError("down")


@_hostile
@given(
    family=st.sampled_from([0, 1, 2]),
    value=foreign_values,
    window=st.sampled_from(["count", "time"]),
)
def test_foreign_data_under_a_breaker_key_never_leaves_redis_or_spreads(
    redis_client: Any, family: int, value: tuple[str, Any], window: str
) -> None:
    redis_client.flushdb()
    clock = ManualClock()
    store = RedisStateStore(redis_client, clock=clock)
    kw: dict[str, Any] = {"consecutive_failures": 2, "window_type": window, "clock": clock}
    other = CircuitBreaker("other", state_store=store, **kw)
    for _ in range(2):
        with contextlib.suppress(RuntimeError):
            other.call(_fail)
    assert other.state is BreakerState.OPEN
    write(redis_client, store.keys("victim")[family], value)
    victim = CircuitBreaker("victim", state_store=store, half_open_max_calls=1, **kw)
    for _ in range(3):
        with contextlib.suppress(RuntimeError, CircuitOpenError):
            victim.call(_fail)
    clock.advance(120)
    with contextlib.suppress(RuntimeError, CircuitOpenError):
        victim.call(lambda: "ok")  # a trial call: touches the permits
    assert victim.metrics().shared_state == "connected"
    assert other.metrics().shared_state == "connected"
    victim.reset()
    assert victim.call(lambda: "ok") == "ok"
    for _ in range(2):
        with contextlib.suppress(RuntimeError):
            victim.call(_fail)
    assert victim.state is BreakerState.OPEN  # the shared window works again


def test_a_list_at_the_window_key_is_replaced_and_counted(redis_client: Any) -> None:
    clock = ManualClock()
    store = RedisStateStore(redis_client, clock=clock)
    redis_client.rpush(store.keys("b")[1], b"x")
    b = CircuitBreaker("b", state_store=store, consecutive_failures=2, clock=clock)
    for _ in range(2):
        with contextlib.suppress(RuntimeError):
            b.call(_fail)
    assert b.state is BreakerState.OPEN
    assert b.metrics().shared_state == "connected"
    assert store.corrupt_keys == 1
