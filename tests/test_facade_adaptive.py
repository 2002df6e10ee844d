"""Sentia.protect(adaptive=True): an AdaptiveBulkhead per policy, its limit a monitor gauge."""

from __future__ import annotations

import pytest

from sentia_core import AdaptiveBulkhead, Sentia
from sentia_core.errors import CallTimeoutError
from sentia_core.testing import ManualClock


def test_protect_adaptive_adds_one_adaptive_bulkhead_per_name_and_a_gauge(
    clock: ManualClock,
) -> None:
    with Sentia({"monitor": {"system_metrics": False}}, clock=clock) as app:
        policy = app.protect("partner", adaptive=True, max_concurrent=8)
        assert isinstance(policy.adaptive, AdaptiveBulkhead)
        assert app.protect("partner", adaptive=True).adaptive is policy.adaptive
        assert app.protect("partner").adaptive is None
        assert policy.adaptive.stats().max_limit == 8

        @policy
        def late() -> None:
            raise CallTimeoutError(1.0, "late")

        with pytest.raises(CallTimeoutError):
            late()  # through the whole policy
        for _ in range(9):  # the rest of one window of samples (the breaker would open)
            with pytest.raises(CallTimeoutError):
                policy.adaptive.call(late.__wrapped__)
        limit = policy.adaptive.limit
        assert limit < 8  # the timeout was a drop
        app.monitor.tick()
        text = app.monitor.prometheus_text()
        assert f'adaptive_concurrency_limit{{policy="partner"}} {float(limit)}' in text
