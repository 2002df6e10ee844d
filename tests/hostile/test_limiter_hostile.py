"""Foreign data under rate-limiter keys, and a full Redis (issue 12, items 2 and 10).

One caller's key holding anything -- another type, bytes, a number without a
TTL -- concerns that caller only: its decision is made as for no state, the
key is repaired (rewritten with a TTL) and counted in ``corrupt_keys``, and
no limiter-wide back-off starts, so every other caller keeps its own budget
in fail-open and fail-closed mode alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentia_core import _redis
from sentia_core.policies import RateLimiter
from tests._servers import RedisServer

from .strategies import foreign_values, write

_hostile = settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _key(caller: str, algorithm: str) -> str:
    return _redis.key("sentia", f"rl:api:{caller}", "g" if algorithm == "gcra" else "w")


@_hostile
@given(
    value=foreign_values,
    algorithm=st.sampled_from(["gcra", "sliding_window"]),
    fail_open=st.booleans(),
)
def test_one_poisoned_caller_key_affects_no_other_caller(
    redis_client: Any, value: tuple[str, Any], algorithm: str, fail_open: bool
) -> None:
    redis_client.flushdb()
    limiter = RateLimiter(
        {"api": "3/minute"},
        redis=redis_client,
        algorithm=algorithm,  # type: ignore[arg-type]
        fail_open=fail_open,
    )
    try:
        assert [limiter.hit("api", "busy").allowed for _ in range(3)] == [True] * 3
        write(redis_client, _key("poisoned", algorithm), value)
        for _ in range(3):
            limiter.hit("api", "poisoned")  # never raises
        # the poisoned caller is limited again from a clean state
        assert not limiter.hit("api", "poisoned").allowed
        assert not limiter.hit("api", "busy").allowed  # over budget: still denied
        assert limiter.hit("api", "fresh").allowed  # a new caller: still allowed
        s = limiter.stats()
        assert s.redis_errors == 0 and s.fail_open_decisions == s.fail_closed_decisions == 0
        assert redis_client.pttl(_key("poisoned", algorithm)) > 0  # repaired with a TTL
    finally:
        limiter.close()


@pytest.mark.parametrize("fail_open", [True, False])
def test_a_list_at_one_callers_key_is_counted_and_starts_no_back_off(
    redis_client: Any, fail_open: bool
) -> None:
    # issue 12: fail-open let a caller over its 3/minute budget through 3 more
    # times, fail-closed denied every new caller, and each hit re-armed it
    limiter = RateLimiter({"api": "3/minute"}, redis=redis_client, fail_open=fail_open)
    try:
        for _ in range(3):
            limiter.hit("api", "over")
        redis_client.rpush(_key("victim", "gcra"), b"x")
        assert limiter.hit("api", "victim").allowed
        assert [limiter.hit("api", "over").allowed for _ in range(3)] == [False] * 3
        assert limiter.hit("api", "new").allowed
        s = limiter.stats()
        assert (s.corrupt_keys, s.redis_errors) == (1, 0)
    finally:
        limiter.close()


# -- a full Redis (OOM) ---------------------------------------------------------------


@pytest.fixture
def full_redis() -> Iterator[RedisServer]:
    server = RedisServer("--maxmemory-policy", "noeviction")
    yield server
    server.stop()


def _fill(client: Any) -> None:
    """Make the server refuse writes: well above a maxmemory set afterwards."""
    import redis

    client.set("fill", b"x" * (4 * 1024 * 1024))
    client.config_set("maxmemory", str(1024 * 1024))
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        client.set("probe", b"1")


@pytest.mark.redis
@pytest.mark.parametrize("fail_open", [True, False])
def test_a_full_redis_decides_from_its_state_read_only(
    full_redis: RedisServer, fail_open: bool
) -> None:
    # issue 12, item 10: fail-closed denied most decisions while Redis was full
    import redis

    client = redis.Redis(host="127.0.0.1", port=full_redis.port)
    limiter = RateLimiter({"api": "3/minute"}, redis=client, fail_open=fail_open)
    try:
        for _ in range(3):
            assert limiter.hit("api", "over").allowed
        assert limiter.hit("api", "under").allowed
        _fill(client)
        assert not limiter.hit("api", "over").allowed  # over budget: denied
        assert limiter.hit("api", "under").allowed  # within budget: allowed
        assert limiter.hit("api", "new").allowed
        s = limiter.stats()
        assert s.oom_decisions == 2  # the denial wrote nothing: Redis answered it
        assert s.redis_errors == 0 and s.fail_open_decisions == s.fail_closed_decisions == 0
    finally:
        limiter.close()
        client.close()


def test_the_async_twin_repairs_a_poisoned_key_the_same_way() -> None:
    import asyncio

    import fakeredis

    async def run() -> Any:
        client = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
        limiter = RateLimiter({"api": "3/minute"}, redis=client)
        for _ in range(3):
            await limiter.ahit("api", "over")
        await client.rpush(_key("victim", "gcra"), b"x")
        assert (await limiter.ahit("api", "victim")).allowed
        assert not (await limiter.ahit("api", "over")).allowed
        ttl = await client.pttl(_key("victim", "gcra"))
        await limiter.aclose()
        await client.aclose()
        return limiter.stats(), ttl

    stats, ttl = asyncio.run(run())
    assert (stats.corrupt_keys, stats.redis_errors) == (1, 0) and ttl > 0
