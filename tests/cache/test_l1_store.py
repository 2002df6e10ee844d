"""``l1_store``: objects by reference (default) or payloads decoded per hit."""

from __future__ import annotations

from sentia_core.cache import TieredCache


def test_object_mode_returns_the_very_object() -> None:
    cache = TieredCache()
    value = {"items": [1, 2]}
    cache.set("k", value)
    assert cache.get("k") is value


def test_payload_mode_returns_a_fresh_copy_on_every_hit() -> None:
    cache = TieredCache(l1_store="payload")
    value = {"items": [1, 2]}
    cache.set("k", value)
    first = cache.get("k")
    assert first == value
    assert first is not value
    first["items"].append(3)  # the caller's copy, not the cache's
    assert cache.get("k") == {"items": [1, 2]}


def test_payload_mode_compresses_large_values_and_reports_the_ratio() -> None:
    cache = TieredCache(l1_store="payload", compress_threshold=1024)
    cache.set("big", "abc" * 10_000)
    cache.set("small", "abc")
    s = cache.stats()
    assert s.compressed == 1
    assert s.compression_ratio < 0.1
    assert s.bytes < 2_000  # the compressed payload is what L1 holds and counts
    assert cache.get("big") == "abc" * 10_000


def test_object_mode_counts_the_uncompressed_size() -> None:
    cache = TieredCache()
    cache.set("big", "abc" * 10_000)
    s = cache.stats()
    assert s.bytes == 3 + 30_000
    assert (s.compressed, s.compression_ratio) == (0, 1.0)


def test_payload_mode_serves_stale_values_decoded() -> None:
    from sentia_core.testing import ManualClock

    clock = ManualClock()
    cache = TieredCache(l1_store="payload", ttl=1, stale_ttl=10, clock=clock)
    cache.set("k", (1, "x"))
    clock.advance(2)

    def down() -> object:
        raise ConnectionError

    assert cache.get_or_set("k", down) == (1, "x")
