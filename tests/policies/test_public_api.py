"""The public surface of sentia_core.policies: sorted, importable, and nothing private leaks."""

from __future__ import annotations

import sentia_core.policies as policies

OURS = {
    "AIMDLimit",
    "AdaptiveBulkhead",
    "AdaptiveBulkheadStats",
    "AdaptiveEvent",
    "Chaos",
    "ChaosDecision",
    "ChaosEvent",
    "ChaosStats",
    "Gradient2Limit",
    "Hedge",
    "HedgeAttempt",
    "HedgeEvent",
    "HedgeStats",
    "LatencySource",
    "LatencyWindow",
    "LimitAlgorithm",
    "VegasLimit",
    "current_hedge_attempt",
    "is_injected",
    "Attempt",
    "Backoff",
    "BreakerLike",
    "BudgetStats",
    "Bulkhead",
    "BulkheadEvent",
    "BulkheadStats",
    "Deadline",
    "ExponentialBackoff",
    "FixedBackoff",
    "LinearBackoff",
    "Policy",
    "PolicyEvent",
    "PolicyStats",
    "RateDecisionLike",
    "RateLimiterLike",
    "Retry",
    "RetryBudget",
    "RetryBudgetLike",
    "RetryDecision",
    "RetryEvent",
    "RetryStats",
    "Timeout",
    "TimeoutEvent",
    "TimeoutStats",
    "check_deadline",
    "current_deadline",
    "deadline",
    "parse_retry_after",
    "remaining_time",
    "retry",
}


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert policies.__all__ == sorted(policies.__all__)
    for name in policies.__all__:
        assert getattr(policies, name) is not None
        assert not name.startswith("_")


def test_retry_timeout_bulkhead_and_policy_names_are_exported() -> None:
    assert set(policies.__all__) >= OURS


def test_public_classes_and_functions_are_documented() -> None:
    for name in OURS:
        assert (getattr(policies, name).__doc__ or "").strip(), name
