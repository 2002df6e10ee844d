"""Construction-time validation shared by every component.

Each helper returns the (normalized) value or raises :class:`ConfigError`
naming the parameter, so invalid configuration fails at construction and never
later, on a request path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

from .errors import ConfigError, NotCallableError

__all__ = [
    "check_callable",
    "check_choice",
    "check_fraction",
    "check_int",
    "check_name",
    "check_non_negative",
    "check_optional_positive",
    "check_positive",
]

T = TypeVar("T")


def _number(parameter: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(parameter, value, "must be a number")
    v = float(value)
    if math.isnan(v):
        raise ConfigError(parameter, value, "must not be NaN")
    return v


def check_positive(parameter: str, value: object, *, allow_inf: bool = False) -> float:
    """A number > 0 (finite unless ``allow_inf``)."""
    v = _number(parameter, value)
    if v <= 0:
        raise ConfigError(parameter, value, "must be greater than 0")
    if math.isinf(v) and not allow_inf:
        raise ConfigError(parameter, value, "must be finite")
    return v


def check_optional_positive(parameter: str, value: object) -> float | None:
    """``None`` or a finite number > 0."""
    return None if value is None else check_positive(parameter, value)


def check_non_negative(parameter: str, value: object, *, allow_inf: bool = False) -> float:
    """A number >= 0 (finite unless ``allow_inf``)."""
    v = _number(parameter, value)
    if v < 0:
        raise ConfigError(parameter, value, "must not be negative")
    if math.isinf(v) and not allow_inf:
        raise ConfigError(parameter, value, "must be finite")
    return v


def check_fraction(parameter: str, value: object) -> float:
    """A number in the closed range 0..1."""
    v = _number(parameter, value)
    if not 0.0 <= v <= 1.0:
        raise ConfigError(parameter, value, "must be between 0 and 1")
    return v


def check_int(parameter: str, value: object, *, minimum: int = 0) -> int:
    """An ``int`` (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(parameter, value, "must be an integer")
    if value < minimum:
        raise ConfigError(parameter, value, f"must be at least {minimum}")
    return value


def check_name(parameter: str, value: object) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise ConfigError(parameter, value, "must be a non-empty string")
    return value


def check_choice(parameter: str, value: T, choices: tuple[T, ...]) -> T:
    """One of ``choices``."""
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ConfigError(parameter, value, f"must be one of {allowed}")
    return value


def check_callable(parameter: str, value: object) -> Callable[..., object]:
    """Something callable (a :class:`NotCallableError` otherwise, a ConfigError and a TypeError)."""
    if not callable(value):
        raise NotCallableError(parameter, value, "must be callable")
    return value
