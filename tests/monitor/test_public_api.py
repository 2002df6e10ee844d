"""The monitor's public surface is exactly what __all__ says."""

from __future__ import annotations

import sentia_core.monitor as monitor


def _isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions
    if name.isupper():
        return (0, name)
    return (1, name) if name[0].isupper() else (2, name)


def test_all_is_sorted_and_complete() -> None:
    assert monitor.__all__ == sorted(monitor.__all__, key=_isort_key)
    public = {n for n in dir(monitor) if not n.startswith("_")}
    assert set(monitor.__all__) == public


def test_contract_names_exist() -> None:
    for name in ("PerformanceMonitor", "AlertRule", "QuantileSketch", "default_rules"):
        assert name in monitor.__all__


def test_public_callables_are_documented() -> None:
    for name in monitor.__all__:
        obj = getattr(monitor, name)
        if callable(obj):
            assert obj.__doc__, name
    for name, member in vars(monitor.PerformanceMonitor).items():
        if not name.startswith("_") and callable(member):
            assert member.__doc__, f"PerformanceMonitor.{name}"
