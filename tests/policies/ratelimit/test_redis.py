"""The Redis backend: same arithmetic as memory, server time, one round trip, keys, faults.

Fault tests start their own private redis-server and kill it; nothing here
sleeps for timing (back-off runs on a ManualClock; a dead server answers
"connection refused" at once).
"""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import Any

import fakeredis
import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import given, settings
from hypothesis import strategies as st

from sentia_core import _redis
from sentia_core.errors import ConfigError
from sentia_core.policies._ratelimit import Rate, RateLimitBackendFailed, RateLimiter
from sentia_core.testing import ManualClock
from tests._servers import RedisServer

from .strategies import TICK, Step, rates, traces

# -- the Lua scripts compute exactly what the in-memory core computes ------------


def _twin_limiters(
    rate: Rate, algorithm: str, client: Any, burst: int | None
) -> tuple[ManualClock, RateLimiter, RateLimiter]:
    clock = ManualClock()
    kwargs: dict[str, Any] = {"algorithm": algorithm, "clock": clock}
    if burst is not None:
        kwargs["burst"] = burst
    memory = RateLimiter({"t": rate}, **kwargs)
    on_redis = RateLimiter({"t": rate}, redis=client, namespace=uuid.uuid4().hex, **kwargs)
    on_redis._store.time_override = clock.monotonic  # the scripts' ARGV[5]
    return clock, memory, on_redis


def _same_decisions(clock: ManualClock, a: RateLimiter, b: RateLimiter, steps: list[Step]) -> None:
    for step in steps:
        clock.advance(step.ticks * TICK)
        if step.peek:
            assert a.peek("t", "k", step.cost) == b.peek("t", "k", step.cost)
        else:
            assert a.hit("t", "k", step.cost) == b.hit("t", "k", step.cost)
    assert b.stats().redis_errors == 0


@st.composite
def twin_cases(draw: st.DrawFn) -> tuple[Rate, str, int | None, list[Step]]:
    rate = draw(rates())
    algorithm = draw(st.sampled_from(["gcra", "sliding_window"]))
    burst = None if algorithm != "gcra" else draw(st.none() | st.integers(1, 2 * rate.limit))
    return rate, algorithm, burst, draw(traces(rate, max_size=40))


@given(twin_cases())
def test_lua_on_fakeredis_decides_exactly_like_memory(
    case: tuple[Rate, str, int | None, list[Step]],
) -> None:
    rate, algorithm, burst, steps = case
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    _same_decisions(*_twin_limiters(rate, algorithm, client, burst), steps)


@pytest.mark.redis
@settings(max_examples=25)
@given(case=twin_cases())
def test_lua_on_real_redis_decides_exactly_like_memory(
    redis_server: RedisServer, case: tuple[Rate, str, int | None, list[Step]]
) -> None:
    rate, algorithm, burst, steps = case
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)
    try:
        _same_decisions(*_twin_limiters(rate, algorithm, client, burst), steps)
    finally:
        client.close()


# -- server time, not client time ------------------------------------------------


@pytest.mark.redis
@pytest.mark.parametrize("algorithm", ["gcra", "sliding_window"])
def test_clients_with_skewed_clocks_share_one_budget(real_redis: Any, algorithm: str) -> None:
    early, late = ManualClock(start=0.0), ManualClock(start=10**9)
    a = RateLimiter({"api": "6/hour"}, redis=real_redis, clock=early, algorithm=algorithm)  # type: ignore[arg-type]
    b = RateLimiter({"api": "6/hour"}, redis=real_redis, clock=late, algorithm=algorithm)  # type: ignore[arg-type]
    verdicts = []
    for i in range(10):
        limiter = a if i % 2 else b
        verdicts.append(limiter.hit("api", "shared").allowed)
        (early if i % 2 else late).advance(3600.0)  # client clocks leap; Redis time does not
    assert verdicts == [True] * 6 + [False] * 4
    ra, rb = a.peek("api", "shared"), b.peek("api", "shared")
    assert ra.retry_after == pytest.approx(rb.retry_after, abs=1.0)
    assert ra.retry_after > 0


@pytest.mark.redis
@pytest.mark.parametrize("algorithm", ["gcra", "sliding_window"])
def test_the_scripts_ask_redis_for_the_time(real_redis: Any, algorithm: str) -> None:
    limiter = RateLimiter({"api": "10/second"}, redis=real_redis, algorithm=algorithm)  # type: ignore[arg-type]
    assert "redis.call('TIME')" in limiter._tiers["api"].script
    before = real_redis.info("commandstats")
    limiter.hit("api", "k")
    after = real_redis.info("commandstats")
    assert after["cmdstat_time"]["calls"] == before.get("cmdstat_time", {"calls": 0})["calls"] + 1


# -- one round trip, keys, TTLs, NOSCRIPT ----------------------------------------------


def _calls(info: dict[str, Any]) -> dict[str, int]:
    return {k: v["calls"] for k, v in info.items() if k.startswith("cmdstat_")}


@pytest.mark.redis
@pytest.mark.parametrize("algorithm", ["gcra", "sliding_window"])
def test_one_round_trip_per_decision(redis_url: str, algorithm: str) -> None:
    observer = redis.Redis.from_url(redis_url)
    limiter = RateLimiter({"api": "100/minute"}, redis=redis_url, algorithm=algorithm)  # type: ignore[arg-type]
    limiter.hit("api", "warm-up")  # loads the script (NOSCRIPT -> EVAL) once
    before = _calls(observer.info("commandstats"))
    for i in range(20):
        limiter.hit("api", f"k{i % 3}")
        limiter.peek("api", "k0")
    after = _calls(observer.info("commandstats"))
    delta = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    # 40 client commands; inside the scripts: TIME, GET, SET (not client round trips).
    assert delta.pop("cmdstat_evalsha") == 40
    assert delta.pop("cmdstat_info") == 1
    # inside the script, PTTL checks that an existing key can be ours (issue 12)
    assert set(delta) <= {"cmdstat_time", "cmdstat_get", "cmdstat_set", "cmdstat_pttl"}
    limiter.close()
    observer.close()


@pytest.mark.redis
def test_keys_are_hash_tagged_and_expire(real_redis: Any) -> None:
    gcra = RateLimiter({"api": "60/minute"}, redis=real_redis, namespace="svc")
    window = RateLimiter(
        {"api": "60/minute"}, redis=real_redis, namespace="svc", algorithm="sliding_window"
    )
    d = gcra.hit("api", "1.2.3.4", cost=30)
    window.hit("api", "1.2.3.4")
    key_g = _redis.key("svc", "rl:api:1.2.3.4", "g")
    key_w = _redis.key("svc", "rl:api:1.2.3.4", "w")
    assert key_g == "svc:{rl:api:1.2.3.4}:g"
    assert sorted(real_redis.keys("*")) == sorted([key_g.encode(), key_w.encode()])
    assert 0 < real_redis.pttl(key_g) <= math.ceil(d.reset_after * 1000) + 5
    assert real_redis.pttl(key_g) == pytest.approx(30_000, abs=1_000)
    assert 60_000 <= real_redis.pttl(key_w) <= 120_000
    gcra.peek("api", "someone-else")
    assert not real_redis.exists(_redis.key("svc", "rl:api:someone-else", "g"))


@pytest.mark.redis
def test_keys_spread_over_cluster_slots_and_each_stays_in_one(cluster_client: Any) -> None:
    limiter = RateLimiter({"api": "5/hour"}, redis=cluster_client)
    slots = set()
    for i in range(30):
        assert limiter.hit("api", f"user{i}").allowed
        key = _redis.key("sentia", f"rl:api:user{i}", "g")
        slot = cluster_client.keyslot(key)
        assert slot == cluster_client.keyslot(f"{{rl:api:user{i}}}")
        slots.add(cluster_client.get_node_from_key(key).name)
        assert cluster_client.pttl(key) > 0
    assert len(slots) == 3, "keys of different callers should land on every node"
    assert limiter.stats().redis_errors == 0


@pytest.mark.redis
def test_a_flushed_script_cache_is_reloaded_transparently(real_redis: Any) -> None:
    limiter = RateLimiter({"api": "5/hour"}, redis=real_redis)
    assert limiter.hit("api", "k").remaining == 4
    real_redis.script_flush()
    assert limiter.hit("api", "k").remaining == 3
    assert real_redis.script_exists(limiter._tiers["api"].sha) == [True]
    assert limiter.stats().redis_errors == 0


def test_fakeredis_reloads_after_noscript_too(fake_redis: Any) -> None:
    limiter = RateLimiter({"api": "5/hour"}, redis=fake_redis, algorithm="sliding_window")
    assert limiter.hit("api", "k").remaining == 4
    fake_redis.script_flush()
    assert limiter.hit("api", "k").remaining == 3


# -- hostile data never reaches the caller ----------------------------------------


@pytest.mark.parametrize("algorithm", ["gcra", "sliding_window"])
@pytest.mark.parametrize("garbage", [b"garbage", b"nan", b"inf", b"-1 2", b"1e400 x y", b""])
def test_a_corrupt_stored_state_counts_as_none_and_is_overwritten(
    fake_redis: Any, algorithm: str, garbage: bytes
) -> None:
    limiter = RateLimiter({"api": "5/hour"}, redis=fake_redis, algorithm=algorithm)  # type: ignore[arg-type]
    key = _redis.key("sentia", "rl:api:k", "g" if algorithm == "gcra" else "w")
    fake_redis.set(key, garbage)
    assert limiter.hit("api", "k").remaining == 4
    assert fake_redis.get(key) != garbage
    assert limiter.hit("api", "k").remaining == 3
    assert limiter.stats().redis_errors == 0


@pytest.mark.parametrize("fail_open", [True, False])
def test_a_key_of_the_wrong_type_is_repaired_not_a_backend_failure(
    fake_redis: Any, fail_open: bool
) -> None:
    # issue 12, item 2: it was a Redis failure, which started the limiter-wide back-off
    limiter = RateLimiter({"api": "5/hour"}, redis=fake_redis, fail_open=fail_open)
    key = _redis.key("sentia", "rl:api:k", "g")
    fake_redis.hset(key, "x", "y")
    d = limiter.hit("api", "k")
    assert d.allowed and d.remaining == 4  # decided as for no state
    s = limiter.stats()
    assert (s.redis_errors, s.corrupt_keys) == (0, 1)
    assert fake_redis.type(key) == b"string" and fake_redis.pttl(key) > 0


_tokens = st.sampled_from(
    [b"1", b"0", b"2", b"-1", b"nan", b"inf", b"-inf", b"1e999", b"12.5", b"100", b"0.5", b"x", b""]
)
_replies = st.lists(_tokens, max_size=6).map(b" ".join) | st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats()
    | st.binary(max_size=12)
    | st.text(max_size=12)
    | st.sampled_from([b"nan", b"inf", b"-inf", b"1e999", b"1", b"0"]),
    lambda children: st.lists(children, max_size=5),
    max_leaves=8,
)


@settings(max_examples=80)
@given(
    reply=_replies, algorithm=st.sampled_from(["gcra", "sliding_window"]), fail_open=st.booleans()
)
def test_any_reply_is_either_a_valid_decision_or_a_counted_failure(
    reply: Any, algorithm: str, fail_open: bool
) -> None:
    limiter = RateLimiter(
        {"api": "5/minute"},
        redis=fakeredis.FakeRedis(),
        algorithm=algorithm,  # type: ignore[arg-type]
        fail_open=fail_open,
        redis_backoff=0,
    )
    limiter._store.execute = lambda *a, **k: reply
    d = limiter.hit("api", "k")
    stats = limiter.stats()
    if stats.redis_errors:
        assert d.allowed is fail_open
        assert d.retry_after == (0.0 if fail_open else 1.0)
    else:
        assert d.remaining >= 0 and d.retry_after >= 0 and d.reset_after >= 0
        assert not math.isnan(d.retry_after)


def test_a_truthful_reply_decodes() -> None:
    limiter = RateLimiter({"api": "5/minute"}, redis=fakeredis.FakeRedis())
    limiter._store.execute = lambda *a, **k: b"1 100.0 88.0"
    d = limiter.hit("api", "k")
    # 5/minute is one token per 12 s. The script saw tat = 100 at now = 88 (one
    # token spent) and allowed this hit (another): 3 left, full again in 24 s.
    assert d.allowed and d.remaining == 3 and d.reset_after == pytest.approx(24.0)


# -- Redis unreachable: fail open (default) or closed, with a back-off --------------


@pytest.fixture
def private_redis() -> Any:
    server = RedisServer()
    yield server
    server.stop()


@pytest.mark.redis
def test_fail_open_when_redis_dies_then_recovers(private_redis: RedisServer) -> None:
    clock = ManualClock()
    events: list[RateLimitBackendFailed] = []
    limiter = RateLimiter(
        {"api": "2/hour"}, redis=private_redis.url, clock=clock, redis_backoff=5.0
    )
    limiter.listeners.add(
        lambda e: events.append(e) if isinstance(e, RateLimitBackendFailed) else None
    )
    assert limiter.hit("api", "k").remaining == 1
    private_redis.kill()

    d = limiter.hit("api", "k")
    assert d.allowed and d.remaining == 0 and d.retry_after == 0.0
    assert limiter.stats().redis_errors == 1
    for _ in range(5):  # within the back-off: no Redis call at all
        assert limiter.hit("api", "k").allowed
    stats = limiter.stats()
    assert (stats.redis_errors, stats.fail_open_decisions) == (1, 6)
    assert len(events) == 1 and events[0].fail_open and events[0].tier == "api"
    assert "Connection" in events[0].error

    clock.advance(5.0)
    assert limiter.hit("api", "k").allowed
    assert limiter.stats().redis_errors == 2

    private_redis.start()  # same port, empty (no persistence)
    clock.advance(5.0)
    assert limiter.hit("api", "k").remaining == 1
    assert limiter.hit("api", "k").remaining == 0
    assert not limiter.hit("api", "k").allowed
    assert limiter.stats().redis_errors == 2
    limiter.close()


@pytest.mark.redis
def test_fail_closed_denies_with_a_retry_after(private_redis: RedisServer) -> None:
    clock = ManualClock()
    limiter = RateLimiter(
        {"api": "2/hour"},
        redis=private_redis.url,
        clock=clock,
        fail_open=False,
        fail_closed_retry_after=3.5,
    )
    private_redis.kill()
    d = limiter.hit("api", "k")
    assert (d.allowed, d.retry_after, d.remaining) == (False, 3.5, 0)
    assert not limiter.peek("api", "k").allowed
    stats = limiter.stats()
    assert (stats.redis_errors, stats.fail_closed_decisions, stats.denied) == (1, 1, 1)
    limiter.close()


@pytest.mark.redis
async def test_async_fail_open_and_closed(private_redis: RedisServer) -> None:
    clock = ManualClock()
    open_ = RateLimiter({"api": "2/hour"}, redis=private_redis.url, clock=clock)
    closed = RateLimiter({"api": "2/hour"}, redis=private_redis.url, clock=clock, fail_open=False)
    assert (await open_.ahit("api", "k")).remaining == 1
    private_redis.kill()
    assert (await open_.ahit("api", "k")).allowed
    assert not (await closed.ahit("api", "k")).allowed
    assert open_.stats().fail_open_decisions == 1
    assert closed.stats().fail_closed_decisions == 1
    await open_.aclose()
    await closed.aclose()


@pytest.mark.redis
def test_a_hung_redis_times_out_into_the_fail_mode(private_redis: RedisServer) -> None:
    limiter = RateLimiter({"api": "2/hour"}, redis=private_redis.url)
    assert limiter.hit("api", "k").allowed
    private_redis.pause()
    try:
        d = limiter.hit("api", "k")  # waits the 0.25 s socket timeout, once
    finally:
        private_redis.resume()
    assert d.allowed and limiter.stats().redis_errors == 1
    limiter.close()


# -- client kinds -------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["gcra", "sliding_window"])
def test_clients_that_decode_responses_work_too(algorithm: str) -> None:
    client = fakeredis.FakeRedis(decode_responses=True)
    limiter = RateLimiter({"api": "2/hour"}, redis=client, algorithm=algorithm)  # type: ignore[arg-type]
    assert [limiter.hit("api", "k").allowed for _ in range(3)] == [True, True, False]
    assert limiter.stats().redis_errors == 0


@pytest.mark.redis
def test_real_clients_that_decode_responses_work_too(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    limiter = RateLimiter({"api": "2/hour"}, redis=client)
    assert [limiter.hit("api", "k").remaining for _ in range(2)] == [1, 0]
    assert limiter.stats().redis_errors == 0
    client.close()


def test_a_sync_client_serves_async_calls_from_a_thread(fake_redis: Any) -> None:
    limiter = RateLimiter({"api": "2/hour"}, redis=fake_redis)

    async def run() -> list[bool]:
        return [(await limiter.ahit("api", "k")).allowed for _ in range(3)]

    assert asyncio.run(run()) == [True, True, False]
    assert asyncio.run(limiter.areset("api", "k")) is True


async def test_an_async_client_refuses_sync_calls(fake_async_redis: Any) -> None:
    limiter = RateLimiter({"api": "2/hour"}, redis=fake_async_redis)
    assert (await limiter.ahit("api", "k")).allowed
    with pytest.raises(TypeError, match="ahit"):
        limiter.hit("api", "k")
    with pytest.raises(ConfigError) as err:

        @limiter.limit("api")
        def sync_function() -> None: ...

    assert err.value.parameter == "fn"


@pytest.mark.redis
async def test_a_url_serves_sync_and_async(redis_url: str) -> None:
    limiter = RateLimiter({"api": "3/hour"}, redis=redis_url)
    assert limiter.hit("api", "k").remaining == 2
    assert (await limiter.ahit("api", "k")).remaining == 1
    assert await limiter.areset("api", "k")
    async with limiter:
        assert (await limiter.apeek("api", "k")).remaining == 3
    limiter.close()


@pytest.mark.redis
async def test_an_async_cluster_client_works(redis_cluster: Any, cluster_client: Any) -> None:
    client = aioredis.RedisCluster(host="127.0.0.1", port=redis_cluster.nodes[0].port)
    limiter = RateLimiter({"api": "2/hour"}, redis=client, algorithm="sliding_window")
    assert [(await limiter.ahit("api", f"u{i % 2}")).allowed for i in range(6)] == [True] * 4 + [
        False
    ] * 2
    await client.aclose()


def test_bad_redis_arguments_raise_config_error() -> None:
    for bad in ("localhost:6379", 42, object()):
        with pytest.raises(ConfigError) as err:
            RateLimiter({"api": "1/s"}, redis=bad)
        assert err.value.parameter == "redis"
