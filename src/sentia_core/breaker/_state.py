"""The breaker's state machine, as data.

Theory of operation: :data:`TRANSITIONS` maps ``(state, trigger)`` to the next
state. Nothing else decides where a breaker goes: the in-process core calls
:func:`next_state`, the Redis store's Lua script is generated from the same
table (see ``_store.py``), and the diagram in ``docs/breaker.md`` is rendered
from it by :func:`state_diagram` (a test checks that the page matches).
A pair missing from the table is illegal and raises
:class:`IllegalTransitionError`: a bug, never a user error.
"""

from __future__ import annotations

import enum

from sentia_core.errors import SentiaError

__all__ = [
    "TRANSITIONS",
    "BreakerState",
    "IllegalTransitionError",
    "Trigger",
    "next_state",
    "state_diagram",
]


class BreakerState(str, enum.Enum):
    """Where a breaker is; the value is the lower-case name used in events and Redis."""

    CLOSED = "closed"
    """Calls flow; outcomes are recorded in the sliding window."""
    OPEN = "open"
    """Calls are rejected at once until ``reset_timeout`` has passed."""
    HALF_OPEN = "half_open"
    """A few trial calls probe the dependency; the rest are rejected."""
    FORCED_OPEN = "forced_open"
    """Manually opened (:meth:`CircuitBreaker.force_open`): every call is rejected."""
    DISABLED = "disabled"
    """Manually disabled (:meth:`CircuitBreaker.disable`): calls pass, nothing is recorded."""

    def __str__(self) -> str:
        return self.value


class Trigger(str, enum.Enum):
    """What can move a breaker from one state to another."""

    TRIP = "trip"
    """An opening rule fired (failure rate, slow-call rate, consecutive failures)."""
    TIMEOUT_ELAPSED = "reset_timeout_elapsed"
    """``reset_timeout`` passed while open: time to probe."""
    TRIAL_SUCCEEDED = "trials_succeeded"
    """``success_threshold`` trial calls succeeded."""
    TRIAL_FAILED = "trial_failed"
    """A trial call failed (or was slow)."""
    FORCE_OPEN = "force_open"
    """:meth:`CircuitBreaker.force_open`."""
    DISABLE = "disable"
    """:meth:`CircuitBreaker.disable`."""
    RESET = "reset"
    """:meth:`CircuitBreaker.reset`: closed, with an empty window."""

    def __str__(self) -> str:
        return self.value


class IllegalTransitionError(SentiaError, RuntimeError):
    """A trigger that the table does not allow in the current state (a bug)."""

    def __init__(self, state: BreakerState, trigger: Trigger) -> None:
        self.state = state
        self.trigger = trigger
        super().__init__(f"no transition from {state.value!r} on {trigger.value!r}")


_S = BreakerState
_T = Trigger

_MANUAL = {_T.FORCE_OPEN: _S.FORCED_OPEN, _T.DISABLE: _S.DISABLED, _T.RESET: _S.CLOSED}

#: (state, trigger) -> next state. The only place transitions are defined.
TRANSITIONS: dict[tuple[BreakerState, Trigger], BreakerState] = {
    (_S.CLOSED, _T.TRIP): _S.OPEN,
    (_S.OPEN, _T.TIMEOUT_ELAPSED): _S.HALF_OPEN,
    (_S.HALF_OPEN, _T.TRIAL_SUCCEEDED): _S.CLOSED,
    (_S.HALF_OPEN, _T.TRIAL_FAILED): _S.OPEN,
    **{(state, trigger): target for state in _S for trigger, target in _MANUAL.items()},
}


def next_state(state: BreakerState, trigger: Trigger) -> BreakerState:
    """The state ``trigger`` leads to from ``state``.

    Raises:
        IllegalTransitionError: the table has no such transition.
    """
    try:
        return TRANSITIONS[state, trigger]
    except KeyError:
        raise IllegalTransitionError(state, trigger) from None


def state_diagram() -> str:
    """The state diagram as Mermaid ``stateDiagram-v2`` text, drawn from :data:`TRANSITIONS`.

    Every non-looping entry becomes one arrow labelled with its trigger;
    self-loops (``reset`` while closed, ...) are listed in a note instead,
    to keep the picture readable.
    """
    lines = ["stateDiagram-v2", f"    [*] --> {_S.CLOSED.value}"]
    loops: list[str] = []
    for (state, trigger), target in TRANSITIONS.items():
        if state is target:
            loops.append(f"{trigger.value} in {state.value}")
            continue
        lines.append(f"    {state.value} --> {target.value}: {trigger.value}")
    if loops:
        lines.append(f"    note right of {_S.CLOSED.value}")
        lines.append("        self-loops (state kept, window or counters reset):")
        lines.extend(f"        {loop}" for loop in loops)
        lines.append("    end note")
    return "\n".join(lines) + "\n"
