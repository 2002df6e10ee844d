"""The state machine is a table; the docs' diagram is drawn from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sentia_core.breaker import BreakerState, IllegalTransitionError, Trigger, state_diagram
from sentia_core.breaker._state import TRANSITIONS, next_state

DOC = Path(__file__).resolve().parents[2] / "docs" / "breaker.md"


def test_states_are_string_valued() -> None:
    assert [s.value for s in BreakerState] == [
        "closed",
        "open",
        "half_open",
        "forced_open",
        "disabled",
    ]
    assert BreakerState("half_open") is BreakerState.HALF_OPEN
    assert BreakerState.OPEN == "open"
    assert str(BreakerState.FORCED_OPEN) == "forced_open"


@pytest.mark.parametrize(
    ("state", "trigger", "target"),
    [
        (BreakerState.CLOSED, Trigger.TRIP, BreakerState.OPEN),
        (BreakerState.OPEN, Trigger.TIMEOUT_ELAPSED, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, Trigger.TRIAL_SUCCEEDED, BreakerState.CLOSED),
        (BreakerState.HALF_OPEN, Trigger.TRIAL_FAILED, BreakerState.OPEN),
    ],
)
def test_automatic_transitions(state: BreakerState, trigger: Trigger, target: BreakerState) -> None:
    assert next_state(state, trigger) is target


@pytest.mark.parametrize("state", list(BreakerState))
def test_manual_triggers_apply_from_every_state(state: BreakerState) -> None:
    assert next_state(state, Trigger.FORCE_OPEN) is BreakerState.FORCED_OPEN
    assert next_state(state, Trigger.DISABLE) is BreakerState.DISABLED
    assert next_state(state, Trigger.RESET) is BreakerState.CLOSED


@pytest.mark.parametrize(
    ("state", "trigger"),
    [
        (BreakerState.OPEN, Trigger.TRIP),
        (BreakerState.CLOSED, Trigger.TIMEOUT_ELAPSED),
        (BreakerState.CLOSED, Trigger.TRIAL_SUCCEEDED),
        (BreakerState.OPEN, Trigger.TRIAL_FAILED),
        (BreakerState.FORCED_OPEN, Trigger.TIMEOUT_ELAPSED),
        (BreakerState.DISABLED, Trigger.TRIP),
    ],
)
def test_illegal_transitions_raise(state: BreakerState, trigger: Trigger) -> None:
    with pytest.raises(IllegalTransitionError) as info:
        next_state(state, trigger)
    assert info.value.state is state and info.value.trigger is trigger


def test_only_the_listed_transitions_exist() -> None:
    automatic = {
        (s, t)
        for (s, t) in TRANSITIONS
        if t not in (Trigger.FORCE_OPEN, Trigger.DISABLE, Trigger.RESET)
    }
    assert len(automatic) == 4
    assert len(TRANSITIONS) == 4 + 3 * len(BreakerState)


def test_diagram_has_one_arrow_per_non_loop_transition() -> None:
    text = state_diagram()
    assert text.startswith("stateDiagram-v2\n")
    arrows = re.findall(r"^    (\w+) --> (\w+): (\w+)$", text, re.MULTILINE)
    expected = {(s.value, t.value, tr.value) for (s, tr), t in TRANSITIONS.items() if s is not t}
    assert set(arrows) == expected
    assert len(arrows) == len(expected)


def test_docs_page_contains_the_generated_diagram() -> None:
    page = DOC.read_text()
    match = re.search(r"```mermaid\n(.*?)```", page, re.DOTALL)
    assert match, "docs/breaker.md must contain the mermaid state diagram"
    assert match.group(1) == state_diagram(), (
        "docs/breaker.md is out of date: paste sentia_core.breaker.state_diagram() into it"
    )
