"""Validated breaker configuration and the rules that classify an outcome."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, cast

from sentia_core._validate import (
    check_callable,
    check_choice,
    check_fraction,
    check_int,
    check_name,
    check_positive,
)
from sentia_core.errors import ConfigError

__all__ = ["DEFAULT_MAX_RESET_TIMEOUT", "BreakerConfig", "ExceptionRule", "ResultPredicate"]

#: The cap of a growing reset timeout when ``max_reset_timeout`` is not given
#: (or ``reset_timeout`` itself, when that is longer), seconds.
DEFAULT_MAX_RESET_TIMEOUT = 600.0


class ResultPredicate(Protocol):
    """Decides whether a returned value counts as a failure (an HTTP 503, say)."""

    def __call__(self, result: Any, /) -> bool: ...


#: An entry of ``record_exceptions`` / ``ignore_exceptions``: an exception
#: type (subclasses match) or a predicate taking the exception.
ExceptionRule = type[BaseException] | Callable[[BaseException], bool]


def _split_rules(
    parameter: str, rules: Iterable[ExceptionRule] | type[BaseException]
) -> tuple[tuple[type[BaseException], ...], tuple[Callable[[BaseException], bool], ...]]:
    if isinstance(rules, type):
        rules = (rules,)
    try:
        items = tuple(rules)
    except TypeError:
        raise ConfigError(parameter, rules, "must be exception types or predicates") from None
    types: list[type[BaseException]] = []
    preds: list[Callable[[BaseException], bool]] = []
    for rule in items:
        if isinstance(rule, type):
            if not issubclass(rule, BaseException):
                raise ConfigError(parameter, rule, "a type here must be an exception class")
            types.append(rule)
        elif callable(rule):
            preds.append(rule)
        else:
            raise ConfigError(parameter, rule, "must be an exception type or a predicate")
    return tuple(types), tuple(preds)


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """Every setting of a breaker, validated (see :class:`CircuitBreaker` for meanings)."""

    name: str
    failure_rate_threshold: float | None
    consecutive_failures: int | None
    minimum_calls: int
    window_type: str
    window_size: int
    slow_call_duration: float | None
    slow_call_rate_threshold: float
    reset_timeout: float
    reset_timeout_multiplier: float
    max_reset_timeout: float
    half_open_max_calls: int
    success_threshold: int
    half_open_timeout: float
    record_types: tuple[type[BaseException], ...]
    record_predicates: tuple[Callable[[BaseException], bool], ...]
    ignore_types: tuple[type[BaseException], ...]
    ignore_predicates: tuple[Callable[[BaseException], bool], ...]
    failure_predicate: ResultPredicate | None
    history_size: int

    @classmethod
    def build(
        cls,
        name: object,
        *,
        failure_rate_threshold: object,
        consecutive_failures: object,
        minimum_calls: object,
        window_type: object,
        window_size: object,
        slow_call_duration: object,
        slow_call_rate_threshold: object,
        reset_timeout: object,
        reset_timeout_multiplier: object,
        max_reset_timeout: object,
        half_open_max_calls: object,
        success_threshold: object,
        half_open_timeout: object,
        record_exceptions: Any,
        ignore_exceptions: Any,
        failure_predicate: object,
        history_size: object,
    ) -> BreakerConfig:
        """Validate every argument; raises :class:`ConfigError` naming the first bad one."""
        name = check_name("name", name)
        rate = None
        if failure_rate_threshold is not None:
            rate = check_fraction("failure_rate_threshold", failure_rate_threshold)
            if rate == 0.0:
                raise ConfigError(
                    "failure_rate_threshold", failure_rate_threshold, "must be greater than 0"
                )
        consecutive = None
        if consecutive_failures is not None:
            consecutive = check_int("consecutive_failures", consecutive_failures, minimum=1)
        wtype = str(check_choice("window_type", window_type, ("count", "time")))
        wsize = check_int("window_size", window_size, minimum=1)
        minimum = check_int("minimum_calls", minimum_calls, minimum=1)
        if wtype == "count" and minimum > wsize:
            raise ConfigError(
                "minimum_calls",
                minimum_calls,
                f"a count window of {wsize} calls can never hold {minimum} calls",
            )
        slow = None
        if slow_call_duration is not None:
            slow = check_positive("slow_call_duration", slow_call_duration)
        slow_rate = check_fraction("slow_call_rate_threshold", slow_call_rate_threshold)
        if slow_rate == 0.0:
            raise ConfigError(
                "slow_call_rate_threshold", slow_call_rate_threshold, "must be greater than 0"
            )
        reset = check_positive("reset_timeout", reset_timeout)
        mult = check_positive("reset_timeout_multiplier", reset_timeout_multiplier)
        if mult < 1.0:
            raise ConfigError(
                "reset_timeout_multiplier", reset_timeout_multiplier, "must be at least 1"
            )
        if max_reset_timeout is None:
            max_reset = max(DEFAULT_MAX_RESET_TIMEOUT, reset)
        else:
            max_reset = check_positive("max_reset_timeout", max_reset_timeout)
        if max_reset < reset:
            raise ConfigError(
                "max_reset_timeout", max_reset_timeout, f"must be >= reset_timeout ({reset:g})"
            )
        half_open = check_int("half_open_max_calls", half_open_max_calls, minimum=1)
        successes = half_open
        if success_threshold is not None:
            successes = check_int("success_threshold", success_threshold, minimum=1)
        reclaim = reset
        if half_open_timeout is not None:
            reclaim = check_positive("half_open_timeout", half_open_timeout)
        rtypes, rpreds = _split_rules("record_exceptions", record_exceptions)
        itypes, ipreds = _split_rules("ignore_exceptions", ignore_exceptions)
        predicate: ResultPredicate | None = None
        if failure_predicate is not None:
            predicate = cast(
                ResultPredicate, check_callable("failure_predicate", failure_predicate)
            )
        history = check_int("history_size", history_size, minimum=0)
        return cls(
            name=name,
            failure_rate_threshold=rate,
            consecutive_failures=consecutive,
            minimum_calls=minimum,
            window_type=wtype,
            window_size=wsize,
            slow_call_duration=slow,
            slow_call_rate_threshold=slow_rate,
            reset_timeout=reset,
            reset_timeout_multiplier=mult,
            max_reset_timeout=max_reset,
            half_open_max_calls=half_open,
            success_threshold=successes,
            half_open_timeout=reclaim,
            record_types=rtypes,
            record_predicates=rpreds,
            ignore_types=itypes,
            ignore_predicates=ipreds,
            failure_predicate=predicate,
            history_size=history,
        )

    def reset_timeout_for(self, trips: int) -> float:
        """The open duration after ``trips`` consecutive trips (1 = the first)."""
        if self.reset_timeout_multiplier == 1.0 or trips <= 1:
            return self.reset_timeout
        try:
            grown = self.reset_timeout * self.reset_timeout_multiplier ** (trips - 1)
        except OverflowError:
            return self.max_reset_timeout
        return min(grown, self.max_reset_timeout)
