"""The real servers the suite starts are really there and reachable."""

from __future__ import annotations

import pytest

from sentia_core._redis import make_client


@pytest.mark.redis
def test_real_redis_server_answers(redis_url: str) -> None:
    client = make_client(redis_url)
    assert client.ping() is True
    client.set("k", "v")
    assert client.get("k") == b"v"
    client.close()


@pytest.mark.redis
def test_real_redis_cluster_spreads_slots(cluster_client) -> None:  # type: ignore[no-untyped-def]
    info = cluster_client.cluster_info()
    assert info["cluster_state"] == "ok"
    assert len(cluster_client.get_primaries()) == 3
    cluster_client.set("{a}x", 1)
    assert cluster_client.get("{a}x") == b"1"


@pytest.mark.postgres
def test_real_postgres_answers(postgres_server) -> None:  # type: ignore[no-untyped-def]
    import psycopg

    with psycopg.connect(postgres_server.dsn) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        if postgres_server.has_hypopg:
            conn.execute("create extension if not exists hypopg")
