"""The shared state when Redis misbehaves, and the async store paths.

Redis going away must never reach the caller: the breaker keeps deciding on
its local window, says so in its metrics, and rejoins the shared state when
Redis answers again. Fault tests use a private redis-server they may kill.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from sentia_core.breaker import BreakerState, CircuitBreaker, RedisStateStore, StoreRequest
from sentia_core.breaker._store import parse_reply
from sentia_core.errors import CircuitOpenError
from sentia_core.testing import ManualClock
from tests._servers import RedisServer, free_port

from .conftest import Boom, fail, ok


def trip(b: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        with pytest.raises(Boom):
            b.call(fail)


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


def test_unreachable_redis_leaves_a_working_local_breaker(clock: ManualClock) -> None:
    store = RedisStateStore(f"redis://127.0.0.1:{free_port()}/0", retry_interval=5.0)
    b = CircuitBreaker("db", state_store=store, clock=clock, consecutive_failures=2)
    assert b.call(ok) == "ok"
    m = b.metrics()
    assert m.shared_state == "unavailable"
    assert m.store_errors == 1
    assert m.shared_state_error and "Connection" in m.shared_state_error
    for _ in range(20):
        b.call(ok)
    assert b.metrics().store_errors == 1  # no retry before retry_interval
    trip(b, 2)
    assert b.state is BreakerState.OPEN  # decided locally
    with pytest.raises(CircuitOpenError):
        b.call(ok)
    clock.advance(5)  # retry_interval passed: the next decision tries Redis again
    with pytest.raises(CircuitOpenError):
        b.call(ok)
    assert b.metrics().store_errors == 2
    store.close()


@pytest.mark.redis
def test_redis_going_away_and_coming_back(private_redis: RedisServer, clock: ManualClock) -> None:
    def process() -> CircuitBreaker:
        store = RedisStateStore(private_redis.url, clock=clock, retry_interval=5.0)
        return CircuitBreaker(
            "db", state_store=store, clock=clock, consecutive_failures=3, reset_timeout=30
        )

    a, b = process(), process()
    a.call(ok)
    b.call(ok)
    assert a.metrics().shared_state == "connected"

    private_redis.kill()
    trip(a, 3)  # the store fails: a decides alone, on its local window
    m = a.metrics()
    assert m.state is BreakerState.OPEN
    assert (m.shared_state, m.store_errors) == ("unavailable", 1)
    assert b.call(ok) == "ok"  # b knows nothing of a's trip, and keeps working too
    assert b.metrics().shared_state == "unavailable"

    private_redis.start()
    clock.advance(5)
    b.call(ok)  # retry_interval passed: b reaches Redis again
    assert b.metrics().shared_state == "connected"
    trip(b, 3)
    assert b.state is BreakerState.OPEN
    clock.advance(1)
    with pytest.raises(CircuitOpenError):
        a.call(ok)  # a's local OPEN (30 s) still rejects without asking Redis
    for breaker in (a, b):
        breaker._store.close()  # type: ignore[union-attr]


@pytest.mark.redis
def test_a_paused_redis_times_out_into_local_mode(private_redis: RedisServer) -> None:
    clock = ManualClock()
    store = RedisStateStore(private_redis.url, clock=clock)
    b = CircuitBreaker("db", state_store=store, clock=clock, consecutive_failures=1)
    b.call(ok)
    private_redis.pause()
    try:
        trip(b, 1)  # the record times out after the client's socket timeout
        assert b.state is BreakerState.OPEN
        assert b.metrics().shared_state == "unavailable"
    finally:
        private_redis.resume()
    store.close()


@pytest.mark.redis
def test_store_uses_redis_server_time(real_redis: Any, redis_url: str) -> None:
    store = RedisStateStore(redis_url)
    cfg = CircuitBreaker("t", consecutive_failures=1).config
    before = real_redis.time()
    reply = store.execute(cfg, StoreRequest("record", outcome=1, generation=0))
    after = real_redis.time()
    assert reply.state is BreakerState.OPEN
    assert before[0] + before[1] / 1e6 - 0.001 <= reply.changed_at <= after[0] + after[1] / 1e6
    assert 0 < reply.retry_after <= 60.0
    store.close()


@pytest.mark.redis
async def test_async_calls_share_state_through_a_redis_url(redis_url: str) -> None:
    clock = ManualClock()
    stores = [RedisStateStore(redis_url, clock=clock) for _ in range(2)]
    a, b = (
        CircuitBreaker("api", state_store=s, clock=clock, consecutive_failures=2, reset_timeout=5)
        for s in stores
    )

    async def afail() -> None:
        raise Boom

    async def aok() -> str:
        return "ok"

    assert await b.call_async(aok) == "ok"
    for _ in range(2):
        with pytest.raises(Boom):
            await a.call_async(afail)
    clock.advance(1)
    await b.call_async(aok)
    with pytest.raises(CircuitOpenError):
        async with b:
            pass
    clock.advance(5)
    async with a:  # the shared trial
        with pytest.raises(CircuitOpenError):
            await b.call_async(aok)
    assert a.state is BreakerState.CLOSED
    assert await b.call_async(aok) == "ok"
    for s in stores:
        await s.aclose()


async def test_async_calls_with_a_sync_client_run_it_in_a_thread(fake_redis: Any) -> None:
    clock = ManualClock()
    b = CircuitBreaker(
        "api",
        state_store=RedisStateStore(fake_redis, clock=clock),
        clock=clock,
        consecutive_failures=1,
    )

    async def afail() -> None:
        raise Boom

    with pytest.raises(Boom):
        await b.call_async(afail)
    assert b.metrics().shared_state == "connected"
    assert fake_redis.get("sentia:{breaker:api}:state").startswith(b"open|")


async def test_an_async_only_store_fails_sync_calls_softly(fake_async_redis: Any) -> None:
    clock = ManualClock()
    b = CircuitBreaker(
        "api",
        state_store=RedisStateStore(async_redis=fake_async_redis, clock=clock),
        clock=clock,
    )

    async def aok() -> str:
        return "ok"

    assert await b.call_async(aok) == "ok"
    assert b.metrics().shared_state == "connected"
    assert b.call(lambda: "sync") == "sync"  # no sync client: local, and said so
    assert b.metrics().shared_state == "unavailable"


def test_a_store_whose_replies_are_garbage_is_unavailable(clock: ManualClock) -> None:
    class Garbage:
        retry_interval = 5.0
        sync_interval = 1.0

        def execute(self, config: Any, request: Any) -> Any:
            return parse_reply(b"closed|-1")

        async def execute_async(self, config: Any, request: Any) -> Any:
            return self.execute(config, request)

    b = CircuitBreaker("db", state_store=Garbage(), clock=clock, consecutive_failures=1)
    assert b.call(ok) == "ok"
    assert b.metrics().shared_state == "unavailable"
    assert "ValueError" in (b.metrics().shared_state_error or "")
    trip(b, 1)
    assert b.state is BreakerState.OPEN


@pytest.mark.parametrize(
    "raw",
    [
        None,
        42,
        [b"closed", 0, 0, 0, 0, 0, 0, 0, 0, 0, b""],
        b"closed",
        b"closed|1|2|3",
        b"weird|0|0|0|0|0|0|0|0|0|",
        b"open|-1|0|0|0|0|0|0|0|0|",
        b"open|x|0|0|0|0|0|0|0|0|",
        b"open|1.5|0|0|0|0|0|0|0|0|",
        b"\xff\xfe|0|0|0|0|0|0|0|0|0|",
    ],
)
def test_parse_reply_rejects_foreign_replies(raw: Any) -> None:
    with pytest.raises(ValueError):
        parse_reply(raw)


def test_parse_reply_keeps_pipes_in_the_reason() -> None:
    reply = parse_reply(b"open|3|1500|0|10|6|0|2|1|1750000000123|why | not")
    assert reply.state is BreakerState.OPEN and reply.retry_after == 1.5
    assert (reply.calls, reply.failures, reply.consecutive_failures) == (10, 6, 2)
    assert reply.changed_at == 1750000000.123
    assert reply.reason == "why | not"


def test_a_store_error_during_a_call_never_reaches_the_caller(clock: ManualClock) -> None:
    class Flaky:
        retry_interval = 1.0
        sync_interval = 1.0
        calls = 0

        def execute(self, config: Any, request: Any) -> Any:
            self.calls += 1
            raise ConnectionError("redis went away")

        async def execute_async(self, config: Any, request: Any) -> Any:
            return self.execute(config, request)

    store = Flaky()
    b = CircuitBreaker("db", state_store=store, clock=clock, consecutive_failures=1)
    assert b.call(ok) == "ok"
    assert asyncio.run(b.call_async(asyncio.sleep, 0, "x")) == "x"
    with pytest.raises(Boom):
        b.call(fail)
    assert b.state is BreakerState.OPEN
    assert store.calls == 1
    b.reset()  # manual control still works locally
    assert b.state is BreakerState.CLOSED
