"""Construction-time validation shared by every component.

Each helper returns the (normalized) value or raises :class:`ConfigError`
naming the parameter, so invalid configuration fails at construction and never
later, on a request path.

Durations: the helpers that check a number of seconds (``check_positive``,
``check_non_negative``, ``check_optional_positive``) also accept a duration
string (``"250ms"``, ``"2s"``, ``"5min"``, ``"1h"``) unless called with
``duration=False`` (measured data, multipliers), through :func:`parse_duration`,
the same parser the configuration file uses, so Python code and TOML accept
the same spellings. NaN is refused everywhere, infinity unless the parameter
allows it, and integers too large for a float are a :class:`ConfigError`,
never an ``OverflowError``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TypeVar

from .errors import ConfigError, NotCallableError

__all__ = [
    "MAX_SECONDS",
    "check_callable",
    "check_choice",
    "check_fraction",
    "check_int",
    "check_name",
    "check_non_negative",
    "check_optional_positive",
    "check_positive",
    "parse_duration",
    "parse_size",
]

T = TypeVar("T")

#: The longest finite duration any setting accepts (about 31.7 years, in seconds):
#: far beyond any sensible TTL or timeout, small enough that ``now + duration``
#: stays exact in a float and every ``int(duration * 1000)`` fits Redis' 64 bits.
MAX_SECONDS = 1e9

_DURATION_UNITS = {
    "ms": 0.001, "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
}  # fmt: skip
_SIZE_UNITS = {
    "b": 1, "kb": 1024, "k": 1024, "kib": 1024, "mb": 1024**2, "m": 1024**2, "mib": 1024**2,
    "gb": 1024**3, "g": 1024**3, "gib": 1024**3,
}  # fmt: skip
# Bounded on purpose: a hostile string is refused before any float() of it.
_QUANTITY = re.compile(r"\s{0,8}([0-9]{0,18}\.?[0-9]{1,18})\s{0,8}([a-zA-Z]{0,8})\s{0,8}\Z")


def _finite(parameter: str, value: int | float) -> float:
    """``float(value)``, refusing NaN and integers beyond the float range."""
    try:
        v = float(value)
    except OverflowError:
        raise ConfigError(parameter, value, "is too large") from None
    if math.isnan(v):
        raise ConfigError(parameter, value, "must not be NaN")
    return v


def parse_duration(parameter: str, value: object) -> float:
    """Seconds from a number or a string such as ``"250ms"``, ``"2s"``, ``"5min"``, ``"1h"``.

    A bare number (or numeric string) is seconds. NaN is refused; ``inf`` is
    returned as is (callers decide whether infinity is allowed).

    Raises:
        ConfigError: naming ``parameter``.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _finite(parameter, value)
    if isinstance(value, str):
        m = _QUANTITY.match(value)
        if m:
            unit = m.group(2).lower() or "s"
            if unit in _DURATION_UNITS:
                return float(m.group(1)) * _DURATION_UNITS[unit]
    raise ConfigError(parameter, value, "expected seconds or a duration like '250ms', '5min', '1h'")


def parse_size(parameter: str, value: object) -> int:
    """Bytes from an integer or a string such as ``"1KB"``, ``"100MB"`` (binary units).

    Raises:
        ConfigError: naming ``parameter``.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        m = _QUANTITY.match(value)
        if m:
            unit = m.group(2).lower() or "b"
            if unit in _SIZE_UNITS:
                return int(float(m.group(1)) * _SIZE_UNITS[unit])
    raise ConfigError(parameter, value, "expected bytes or a size like '1KB', '100MB'")


def _number(parameter: str, value: object, duration: bool = False) -> float:
    if duration and isinstance(value, str):
        return parse_duration(parameter, value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(parameter, value, "must be a number")
    return _finite(parameter, value)


def check_positive(
    parameter: str, value: object, *, allow_inf: bool = False, duration: bool = True
) -> float:
    """A number > 0 (finite unless ``allow_inf``); with ``duration``, also ``"2s"``, ``"5min"``."""
    v = _number(parameter, value, duration)
    if v <= 0:
        raise ConfigError(parameter, value, "must be greater than 0")
    if math.isinf(v) and not allow_inf:
        raise ConfigError(parameter, value, "must be finite")
    return v


def check_optional_positive(
    parameter: str, value: object, *, duration: bool = True
) -> float | None:
    """``None`` or a finite number > 0 (or a duration string, with ``duration``)."""
    return None if value is None else check_positive(parameter, value, duration=duration)


def check_non_negative(
    parameter: str, value: object, *, allow_inf: bool = False, duration: bool = True
) -> float:
    """A number >= 0 (finite unless ``allow_inf``); with ``duration``, also ``"250ms"``."""
    v = _number(parameter, value, duration)
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
