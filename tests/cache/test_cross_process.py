"""Real processes sharing a Redis: one caches, another invalidates, and the first
stops serving the old value (within the propagation bound; polled, never timed).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.waiting import eventually

from .worker import Worker

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def workers(redis_server: Any) -> Iterator[list[Worker]]:
    """Three child processes (started once for the module), each with cache "xp"."""
    client = redis_server.client()
    client.flushall()
    client.close()
    started = [Worker(redis_server.url) for _ in range(3)]
    try:
        for w in started:
            w("open", "xp", {"namespace": "xp"})
            w("open", "lock", {"namespace": "lock", "distributed_lock": True, "max_items": 0})
        yield started
    finally:
        for w in started:
            w.stop()


@pytest.fixture
def db(redis_server: Any) -> Iterator[Any]:
    client = redis_server.client()
    yield client
    client.close()


def _cached_old_value(a: Worker, db: Any, key: str, tags: list[str]) -> None:
    """A caches ``key`` (from the database), then the database changes under it."""
    db.set(f"db:{key}", "old")
    assert a("get_or_set", "xp", key, tags, False) == "old"
    db.set(f"db:{key}", "new")
    before = a("stats", "xp")["l1_hits"]
    assert a("get_or_set", "xp", key, tags, False) == "old"  # served by A's own L1
    assert a("stats", "xp")["l1_hits"] == before + 1


@pytest.mark.parametrize(
    ("key", "how", "args"),
    [
        ("price:1", "delete", ("price:1",)),
        ("price:2", "invalidate_tags", ("prices-2",)),
        ("price:3", "invalidate_pattern", ("price:[3]*",)),
    ],
)
def test_an_invalidation_in_one_process_reaches_another_process_l1(
    workers: list[Worker], db: Any, key: str, how: str, args: tuple[str, ...]
) -> None:
    a, b, _ = workers
    tags = [f"prices-{key[-1]}"]
    _cached_old_value(a, db, key, tags)
    b(how, "xp", *args)  # acknowledged by Redis when it returns
    assert eventually(lambda: a("get_or_set", "xp", key, tags, False) == "new")
    assert a("get", "xp", key) == "new"


def test_an_overwrite_in_one_process_reaches_another_process_l1(
    workers: list[Worker], db: Any
) -> None:
    a, b, _ = workers
    _cached_old_value(a, db, "stock:7", [])
    b("set", "xp", "stock:7", "written by b")
    assert eventually(lambda: a("get", "xp", "stock:7") == "written by b")


def test_processes_missing_the_same_key_run_the_loader_once(workers: list[Worker], db: Any) -> None:
    db.set("db:report", "expensive")
    db.delete("db:gate", "db:loads:report")
    results: list[Any] = []

    def ask(w: Worker) -> None:
        results.append(w("get_or_set", "lock", "report", [], True))

    threads = [threading.Thread(target=ask, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    assert eventually(lambda: db.get("db:loads:report") == b"1")  # one process loads...
    db.set("db:gate", 1)  # ...and, while the others wait on its lock, finishes
    for t in threads:
        t.join(60)
    assert results == ["expensive"] * 3
    assert db.get("db:loads:report") == b"1"
    stats = [w("stats", "lock") for w in workers]
    assert sum(s["loader_calls"] for s in stats) == 1
