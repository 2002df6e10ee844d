"""The names users import from ``sentia_core`` are the contract (DESIGN.md)."""

from __future__ import annotations

import importlib

import sentia_core

#: DESIGN.md's public surface; every one must be importable from the top level.
CONTRACT = {
    "CircuitBreaker",
    "BreakerState",
    "CircuitOpenError",
    "retry",
    "Retry",
    "Timeout",
    "Bulkhead",
    "RateLimiter",
    "RateLimitExceeded",
    "Policy",
    "Hedge",
    "AdaptiveBulkhead",
    "Chaos",
    "TieredCache",
    "AsyncTieredCache",
    "ServiceRegistry",
    "Instance",
    "NoHealthyInstanceError",
    "QueryOptimizer",
    "PerformanceMonitor",
    "AlertRule",
    "Sentia",
    "SentiaError",
}


def test_all_is_sorted_and_unique() -> None:
    names = [n for n in sentia_core.__all__ if n != "__version__"]
    assert names == sorted(names, key=lambda n: (n[0].islower(), n))
    assert len(set(sentia_core.__all__)) == len(sentia_core.__all__)


def test_every_exported_name_exists() -> None:
    for name in sentia_core.__all__:
        assert hasattr(sentia_core, name), name


def test_the_design_contract_is_exported() -> None:
    missing = CONTRACT - set(sentia_core.__all__)
    assert not missing, f"missing from sentia_core.__all__: {sorted(missing)}"


def test_nothing_private_is_exported() -> None:
    assert not [n for n in sentia_core.__all__ if n.startswith("_") and n != "__version__"]


def test_subpackages_have_sorted_all() -> None:
    for sub in ("breaker", "policies", "cache", "registry", "sql", "monitor"):
        mod = importlib.import_module(f"sentia_core.{sub}")
        assert list(mod.__all__) == sorted(mod.__all__, key=lambda n: (n.upper() != n, n)) or (
            list(mod.__all__) == sorted(mod.__all__)
        ), sub
        for name in mod.__all__:
            assert hasattr(mod, name), f"sentia_core.{sub}.{name}"
