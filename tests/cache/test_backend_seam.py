"""The L2 seam: layers asked in order, payloads decoded defensively, failing open."""

from __future__ import annotations

import math
import threading

import pytest

from sentia_core.cache import CacheFault, TieredCache
from sentia_core.testing import ManualClock

from .backends import DictBackend


@pytest.fixture
def backend(clock: ManualClock) -> DictBackend:
    return DictBackend(clock)


def _cache(clock: ManualClock, backend: DictBackend, **kw: object) -> TieredCache:
    return TieredCache(clock=clock, backend=backend, **kw)  # type: ignore[arg-type]


class TestReadPath:
    def test_a_backend_hit_fills_the_l1(self, clock: ManualClock, backend: DictBackend) -> None:
        writer = _cache(clock, backend)
        reader = _cache(clock, backend)
        writer.set("k", {"v": 1})
        assert reader.get("k") == {"v": 1}
        assert backend.calls["get"] == 1
        assert reader.get("k") == {"v": 1}
        assert backend.calls["get"] == 1  # second read served by L1
        s = reader.stats()
        assert (s.hits, s.backend_hits, s.misses) == (2, 1, 0)

    def test_the_l1_copy_gets_the_remaining_ttl(
        self, clock: ManualClock, backend: DictBackend
    ) -> None:
        writer = _cache(clock, backend, ttl=100)
        reader = _cache(clock, backend, ttl=100)
        writer.set("k", 1, ttl=10)
        clock.advance(6)
        assert reader.get("k") == 1
        clock.advance(4)
        assert reader.get("k") is None  # L1 copy expired with the original

    def test_the_l1_ttl_caps_a_long_backend_ttl(
        self, clock: ManualClock, backend: DictBackend
    ) -> None:
        reader = _cache(clock, backend, ttl=5)
        writer = _cache(clock, backend)
        writer.set("k", 1, ttl=math.inf)
        assert reader.get("k") == 1
        backend.data.clear()
        clock.advance(5)
        assert reader.get("k") is None

    def test_get_many_asks_the_backend_once_for_all_l1_misses(
        self, clock: ManualClock, backend: DictBackend
    ) -> None:
        writer = _cache(clock, backend)
        reader = _cache(clock, backend)
        writer.set_many({"a": 1, "b": 2, "c": 3})
        reader.set("a", 1)
        assert reader.get_many(["a", "b", "c", "d"]) == {"a": 1, "b": 2, "c": 3}
        assert backend.calls["get_many"] == 1

    def test_get_or_set_consults_the_backend_before_the_loader(
        self, clock: ManualClock, backend: DictBackend
    ) -> None:
        _cache(clock, backend).set("k", "shared")
        other = _cache(clock, backend)
        assert other.get_or_set("k", lambda: "loaded") == "shared"
        s = other.stats()
        assert (s.loader_calls, s.hits, s.misses) == (0, 1, 0)

    def test_tags_survive_the_trip_through_the_backend(
        self, clock: ManualClock, backend: DictBackend
    ) -> None:
        _cache(clock, backend).set("k", 1, tags=("t",))
        reader = _cache(clock, backend)
        assert reader.get("k") == 1
        backend.data.clear()
        assert reader.invalidate_tags("t") == 1  # the L1 copy knew its tag


class TestHostileBackendData:
    def test_a_corrupt_payload_is_a_counted_miss(
        self, clock: ManualClock, backend: DictBackend
    ) -> None:
        cache = _cache(clock, backend)
        faults: list[CacheFault] = []
        cache.add_listener(lambda e: faults.append(e) if isinstance(e, CacheFault) else None)
        backend.plant("cache:k", b"\x81\x28\xb5\x2f\xfd garbage")
        assert cache.get("k", "default") == "default"
        assert cache.get_or_set("k", lambda: "reloaded") == "reloaded"
        s = cache.stats()
        assert s.corrupt == 2
        assert [f.kind for f in faults] == ["corrupt", "corrupt"]

    def test_an_unsigned_payload_is_rejected_when_signing_is_on(
        self, clock: ManualClock, backend: DictBackend
    ) -> None:
        cache = _cache(clock, backend, secret="s" * 20)
        backend.plant("cache:k", b"\x03forged")
        assert cache.get("k") is None
        assert cache.stats().rejected == 1

    def test_a_pickle_payload_is_never_unpickled_by_a_json_cache(
        self, clock: ManualClock, backend: DictBackend
    ) -> None:
        import pickle

        cache = _cache(clock, backend)
        backend.plant("cache:k", b"\x04" + pickle.dumps(print))
        assert cache.get("k") is None
        assert cache.stats().rejected == 1


class TestFailOpen:
    def test_a_dead_backend_never_reaches_the_caller(
        self, clock: ManualClock, backend: DictBackend
    ) -> None:
        cache = _cache(clock, backend)
        cache.set("warm", 1)
        backend.fail = True
        cache.set("k", 2)
        assert cache.get("k") == 2  # L1 still works
        assert cache.get("warm") == 1
        assert cache.get("cold") is None
        assert cache.get_many(["k", "cold"]) == {"k": 2}
        assert cache.get_or_set("x", lambda: 3) == 3
        cache.set_many({"y": 4})
        assert cache.delete("k") is True
        cache.delete_many(["y"])
        cache.invalidate_tags("t")
        cache.invalidate_pattern("*")
        cache.clear()
        assert cache.stats().backend_errors >= 10

    def test_errors_are_reported_as_faults(self, clock: ManualClock, backend: DictBackend) -> None:
        cache = _cache(clock, backend)
        faults: list[CacheFault] = []
        cache.add_listener(lambda e: faults.append(e) if isinstance(e, CacheFault) else None)
        backend.fail = True
        cache.get("k")
        assert faults
        assert faults[0].kind == "backend"
        assert "BackendDown" in faults[0].error


class TestConsistency:
    def test_a_read_racing_an_invalidation_does_not_refill_the_l1(
        self, clock: ManualClock, backend: DictBackend
    ) -> None:
        cache = _cache(clock, backend)
        _cache(clock, backend).set("k", "old")
        entered, go_on = threading.Event(), threading.Event()
        real_get = backend.get

        def slow_get(key: str) -> object:
            result = real_get(key)
            entered.set()
            assert go_on.wait(10)
            return result

        backend.get = slow_get  # type: ignore[method-assign]
        got: list[object] = []
        t = threading.Thread(target=lambda: got.append(cache.get("k")))
        t.start()
        assert entered.wait(10)
        cache.delete("k")  # acknowledged while the read is in flight
        go_on.set()
        t.join(10)
        assert got == ["old"]  # the read itself may answer with what it saw
        backend.get = real_get  # type: ignore[method-assign]
        assert cache.get("k") is None  # but it did not install it in L1

    def test_namespaces_share_a_backend_without_collisions(
        self, clock: ManualClock, backend: DictBackend
    ) -> None:
        a = _cache(clock, backend, namespace="a")
        b = _cache(clock, backend, namespace="b")
        a.set("k", "A", tags=("t",))
        b.set("k", "B", tags=("t",))
        assert sorted(backend.data) == ["a:k", "b:k"]
        a.invalidate_tags("t")
        assert _cache(clock, backend, namespace="b").get("k") == "B"
        b.invalidate_pattern("*")
        a.set("k", "A")
        b.clear()
        assert sorted(backend.data) == ["a:k"]

    def test_patterns_stay_inside_the_namespace(
        self, clock: ManualClock, backend: DictBackend
    ) -> None:
        a = _cache(clock, backend, namespace="a.b")
        other = _cache(clock, backend, namespace="aXb")
        a.set("k1", 1)
        other.set("k1", 1)
        a.invalidate_pattern("k*")
        assert sorted(backend.data) == ["aXb:k1"]
