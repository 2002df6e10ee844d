"""Every hostile test runs on fakeredis and on the real redis-server."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(params=["fakeredis", pytest.param("real", marks=pytest.mark.redis)])
def redis_client(request: pytest.FixtureRequest) -> Any:
    """A sync client on a fresh fakeredis server, or on the (flushed) real one."""
    if request.param == "fakeredis":
        return request.getfixturevalue("fake_redis")
    return request.getfixturevalue("real_redis")
