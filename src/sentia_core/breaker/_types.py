"""The breaker's value objects: events it emits and the metrics snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sentia_core._events import Event

from ._state import BreakerState

__all__ = ["BreakerCallOutcome", "BreakerMetrics", "BreakerStateChanged", "Outcome", "SharedState"]

#: How a call counted: ``"slow"`` is a call that succeeded but took at least
#: ``slow_call_duration``; a call that failed *and* was slow is a ``"failure"``.
Outcome = Literal["success", "failure", "slow", "ignored", "rejected"]

#: ``"local"``: no state store; ``"connected"``: the last store operation
#: worked; ``"unavailable"``: the store failed and the breaker runs on its
#: local state until the store answers again.
SharedState = Literal["local", "connected", "unavailable"]


@dataclass(frozen=True, slots=True)
class BreakerStateChanged(Event):
    """The breaker moved from one state to another.

    Attributes:
        breaker: the breaker's name.
        from_state: the state before.
        to_state: the state after.
        reason: why, for people (``"failure rate 0.60 >= 0.50 over 10 calls"``).
    """

    breaker: str
    from_state: BreakerState
    to_state: BreakerState
    reason: str


@dataclass(frozen=True, slots=True)
class BreakerCallOutcome(Event):
    """One call through the breaker finished (or was rejected).

    Attributes:
        breaker: the breaker's name.
        outcome: ``"success"``, ``"failure"``, ``"slow"``, ``"ignored"`` or ``"rejected"``.
        duration: seconds the call took (0.0 for a rejected call).
    """

    breaker: str
    outcome: Outcome
    duration: float


@dataclass(frozen=True, slots=True)
class BreakerMetrics:
    """A consistent snapshot of one breaker, from :meth:`CircuitBreaker.metrics`.

    Attributes:
        name: the breaker's name.
        state: the current state.
        calls: calls in the sliding window.
        failures: failed calls in the window.
        slow_calls: slow calls in the window (failed or not).
        failure_rate: ``failures / calls`` (0.0 when the window is empty).
        slow_call_rate: ``slow_calls / calls`` (0.0 when the window is empty).
        consecutive_failures: failures since the last success.
        rejected: calls rejected since the breaker was made.
        times_opened: how many times it went to OPEN (by a rule or a failed trial).
        last_transition_at: wall-clock time of the last transition, or None.
        retry_after: seconds until an open breaker admits a trial call (0.0 otherwise).
        current_reset_timeout: the reset timeout the next trip will use (it grows
            with ``reset_timeout_multiplier`` over repeated trips).
        half_open_in_flight: trial calls running now.
        shared_state: ``"local"``, ``"connected"`` or ``"unavailable"`` (see :data:`SharedState`).
        shared_state_error: the last store error, when ``shared_state`` is ``"unavailable"``.
        store_errors: how many store operations failed since the breaker was made.
        history: the last ``history_size`` transitions, oldest first.
    """

    name: str
    state: BreakerState
    calls: int
    failures: int
    slow_calls: int
    failure_rate: float
    slow_call_rate: float
    consecutive_failures: int
    rejected: int
    times_opened: int
    last_transition_at: float | None
    retry_after: float
    current_reset_timeout: float
    half_open_in_flight: int
    shared_state: SharedState
    shared_state_error: str | None
    store_errors: int
    history: tuple[BreakerStateChanged, ...]
