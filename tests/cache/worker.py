"""A cache in another process, driven over a pipe (for test_cross_process.py).

The child opens TieredCaches on a real Redis and answers commands; its loader
reads the "database": plain Redis keys ``db:<key>`` outside every cache
namespace, and counts its runs in ``db:loads:<key>``.
"""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Any


def serve(url: str, conn: Connection) -> None:
    """The child's main loop: ``(command, args)`` in, ``("ok" | "error", result)`` out."""
    import redis

    from sentia_core.cache import TieredCache

    db = redis.Redis.from_url(url)
    caches: dict[str, TieredCache] = {}

    def loader(key: str, gate: bool) -> Any:
        def load() -> Any:
            db.incr(f"db:loads:{key}")
            if gate:  # hold the load until the test opens the gate
                deadline = time.monotonic() + 30
                while not db.exists("db:gate") and time.monotonic() < deadline:
                    time.sleep(0.002)
            value = db.get(f"db:{key}")
            return value.decode() if value is not None else None

        return load

    conn.send(("ok", "ready"))
    while True:
        command, args = conn.recv()
        if command == "stop":
            break
        try:
            if command == "open":
                name, options = args
                caches[name] = TieredCache(redis=url, **options)
                result: Any = None
            else:
                cache = caches[args[0]]
                rest = args[1:]
                if command == "get_or_set":
                    key, tags, gate = rest
                    result = cache.get_or_set(key, loader(key, gate), tags=tags)
                elif command == "stats":
                    s = cache.stats()
                    result = {
                        "l1_hits": s.l1_hits,
                        "backend_hits": s.backend_hits,
                        "loader_calls": s.loader_calls,
                        "remote_coalesced": s.remote_coalesced,
                        "applied": s.redis.messages_applied if s.redis else 0,
                    }
                else:  # get, set, delete, invalidate_tags, invalidate_pattern
                    result = getattr(cache, command)(*rest)
            conn.send(("ok", result))
        except Exception as exc:  # the test sees it as an error reply
            conn.send(("error", repr(exc)))
    for cache in caches.values():
        cache.close()


class Worker:
    """The test side: a child process running :func:`serve`."""

    def __init__(self, url: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=serve, args=(url, child), daemon=True)
        self.proc.start()
        child.close()
        assert self.call_raw(("ping", ())) is not None

    def call_raw(self, message: tuple[str, tuple[Any, ...]]) -> Any:
        if message[0] == "ping":
            if not self.conn.poll(60):
                raise TimeoutError("worker did not start")
            return self.conn.recv()[1]
        self.conn.send(message)
        if not self.conn.poll(60):
            raise TimeoutError(f"worker did not answer {message[0]}")
        status, result = self.conn.recv()
        if status != "ok":
            raise RuntimeError(f"worker failed {message[0]}: {result}")
        return result

    def __call__(self, command: str, *args: Any) -> Any:
        return self.call_raw((command, args))

    def stop(self) -> None:
        try:
            self.conn.send(("stop", ()))
        finally:
            self.proc.join(10)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join(5)
