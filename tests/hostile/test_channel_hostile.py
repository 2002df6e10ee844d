"""Arbitrary messages on a live invalidation channel (issue 12, items 1 and 3).

Anyone who can PUBLISH can at most make caches drop entries: whatever is
sent, the subscription stays up, nothing reaches a caller, the statistics
stay sane, and every message is either applied or counted as malformed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from sentia_core.cache import TieredCache
from tests.waiting import eventually

from .strategies import channel_messages

CHANNEL = b"h:invalidate"


@pytest.fixture
def listening(redis_client: Any) -> Iterator[TieredCache]:
    cache = TieredCache(redis=redis_client, namespace="h", heartbeat_interval=0.2)
    cache.set("warm", 1)  # starts the listener
    assert eventually(lambda: cache.stats().redis.channel_up)  # type: ignore[union-attr]
    yield cache
    cache.close()


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=channel_messages)
def test_no_message_drops_the_subscription_or_corrupts_statistics(
    redis_client: Any, listening: TieredCache, message: bytes
) -> None:
    before = listening.stats().redis
    assert before is not None

    def handled(stats: Any) -> int:  # own messages are neither (they are skipped)
        return int(stats.malformed + stats.messages_applied)

    redis_client.publish(CHANNEL, message)
    # every message is applied or counted as malformed: wait for this one
    assert eventually(lambda: handled(listening.stats().redis) > handled(before))
    after = listening.stats().redis
    assert after is not None
    assert after.channel_up and after.channel_downs == before.channel_downs
    if after.last_delay is not None:
        assert math.isfinite(after.last_delay) and 0.0 <= after.last_delay <= 86400.0
    listening.set("probe", 2)
    assert listening.get("probe") == 2  # the cache works on


def test_the_messages_of_issue_12_are_malformed_and_flush_nothing(
    redis_client: Any, listening: TieredCache
) -> None:
    import json

    listening.set("kept", 1)
    base = {"v": 1, "p": "attacker", "k": "keys", "d": ["x"]}
    bad = [
        {**base, "s": 1, "t": 10**400},
        {**base, "s": 2, "t": -5},
        {**base, "s": 3, "t": 1, "k": "pattern", "d": ["*a" * 7 + "*b" + "x" * 1024]},
    ]
    before = listening.stats().redis
    assert before is not None
    for body in bad:
        redis_client.publish(CHANNEL, json.dumps(body).encode())
    assert eventually(
        lambda: listening.stats().redis.malformed == before.malformed + 3  # type: ignore[union-attr]
    )
    after = listening.stats().redis
    assert after is not None
    assert after.l1_flushes == before.l1_flushes and after.channel_up
    assert after.last_delay == before.last_delay
    assert listening.stats().items >= 1 and listening.get("kept") == 1
