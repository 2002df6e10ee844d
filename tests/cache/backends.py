"""A CacheBackend test double: payloads in a dict, expiring on the test's clock.

It stands in for part 2's Redis L2 so that the seam (qualified keys, payloads
through the codec, fail-open, epochs) is exercised now. ``fail`` makes every
call raise; ``corrupt(key, payload)`` plants hostile bytes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from sentia_core.cache import BackendWrite, StoredValue, compile_glob
from sentia_core.testing import ManualClock


class BackendDown(ConnectionError):
    pass


class DictBackend:
    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.data: dict[str, tuple[bytes, float, tuple[str, ...]]] = {}
        self.fail = False
        self.calls: Counter[str] = Counter()

    def _check(self, op: str) -> None:
        self.calls[op] += 1
        if self.fail:
            raise BackendDown(f"backend down during {op}")

    def _live(self, key: str) -> tuple[bytes, float, tuple[str, ...]] | None:
        item = self.data.get(key)
        if item is None:
            return None
        if item[1] <= self.clock.monotonic():
            del self.data[key]
            return None
        return item

    def get(self, key: str) -> StoredValue | None:
        self._check("get")
        item = self._live(key)
        if item is None:
            return None
        payload, deadline, tags = item
        return StoredValue(payload, deadline - self.clock.monotonic(), tags)

    def get_many(self, keys: Sequence[str]) -> list[StoredValue | None]:
        self._check("get_many")
        out: list[StoredValue | None] = []
        for key in keys:
            item = self._live(key)
            out.append(
                None
                if item is None
                else StoredValue(item[0], item[1] - self.clock.monotonic(), item[2])
            )
        return out

    def set_many(self, writes: Sequence[BackendWrite]) -> None:
        self._check("set_many")
        now = self.clock.monotonic()
        for w in writes:
            assert isinstance(w.payload, bytes)
            deadline = math.inf if w.ttl == math.inf else now + w.ttl
            self.data[w.key] = (w.payload, deadline, w.tags)

    def delete_many(self, keys: Sequence[str]) -> int:
        self._check("delete_many")
        n = 0
        for key in keys:
            if self._live(key) is not None:
                n += 1
            self.data.pop(key, None)
        return n

    def invalidate_tags(self, tags: Sequence[str]) -> int:
        self._check("invalidate_tags")
        wanted = set(tags)
        doomed = [k for k, (_, _, t) in self.data.items() if wanted.intersection(t)]
        for key in doomed:
            del self.data[key]
        return len(doomed)

    def invalidate_pattern(self, pattern: str) -> int:
        self._check("invalidate_pattern")
        match = compile_glob(pattern)
        doomed = [k for k in self.data if match(k)]
        for key in doomed:
            del self.data[key]
        return len(doomed)

    def clear(self, namespace: str) -> int:
        self._check("clear")
        doomed = [k for k in self.data if k.startswith(namespace + ":")]
        for key in doomed:
            del self.data[key]
        return len(doomed)

    def plant(self, key: str, payload: bytes, ttl: float = 60.0) -> None:
        """Write raw bytes under a qualified key, as a hostile process could."""
        self.data[key] = (payload, self.clock.monotonic() + ttl, ())
