"""The breaker's public surface is exactly what __all__ says."""

from __future__ import annotations

import sentia_core.breaker as breaker


def test_all_is_sorted_and_complete() -> None:
    assert breaker.__all__ == sorted(breaker.__all__)
    public = {n for n in dir(breaker) if not n.startswith("_")}
    assert set(breaker.__all__) == public


def test_contract_names_exist() -> None:
    for name in (
        "CircuitBreaker",
        "BreakerState",
        "BreakerMetrics",
        "BreakerStateChanged",
        "BreakerCallOutcome",
    ):
        assert name in breaker.__all__
