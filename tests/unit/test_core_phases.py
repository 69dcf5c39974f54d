from __future__ import annotations

import itertools

import pytest

from aftershock.core.phases import (
    TERMINAL,
    TRANSITIONS,
    InvalidTransition,
    RunPhase,
    can_transition,
    check_transition,
    is_terminal,
    next_after,
)

P = RunPhase

ALLOWED = {
    (P.PENDING, P.INJECTING),
    (P.PENDING, P.SKIPPED),
    (P.PENDING, P.ERRORED),
    (P.PENDING, P.ABORTED),
    (P.PENDING, P.COMPLETED),  # a dry run
    (P.INJECTING, P.OBSERVING),
    (P.INJECTING, P.REVERTING),
    (P.INJECTING, P.ERRORED),
    (P.INJECTING, P.ABORTED),
    (P.OBSERVING, P.REVERTING),
    (P.OBSERVING, P.COMPLETED),
    (P.OBSERVING, P.ABORTED),
    (P.OBSERVING, P.ERRORED),
    (P.REVERTING, P.COMPLETED),
    (P.REVERTING, P.ABORTED),
    (P.REVERTING, P.ERRORED),
}


def test_phase_values_are_design_strings() -> None:
    assert [p.value for p in RunPhase] == [
        "Pending",
        "Injecting",
        "Observing",
        "Reverting",
        "Completed",
        "Aborted",
        "Skipped",
        "Errored",
    ]


def test_terminal_set() -> None:
    assert frozenset({P.COMPLETED, P.ABORTED, P.SKIPPED, P.ERRORED}) == TERMINAL
    assert all(is_terminal(p) for p in TERMINAL)
    assert not any(is_terminal(p) for p in set(RunPhase) - TERMINAL)
    assert is_terminal("Completed")


def test_transition_table_covers_every_phase() -> None:
    assert set(TRANSITIONS) == set(RunPhase)


@pytest.mark.parametrize(("a", "b"), list(itertools.product(RunPhase, RunPhase)))
def test_exhaustive_transition_matrix(a: RunPhase, b: RunPhase) -> None:
    assert can_transition(a, b) is ((a, b) in ALLOWED)


def test_terminal_phases_never_change() -> None:
    for a in TERMINAL:
        assert not any(can_transition(a, b) for b in RunPhase)


def test_same_phase_is_not_a_transition() -> None:
    assert not any(can_transition(p, p) for p in RunPhase)


def test_cannot_skip_back_to_injecting() -> None:
    # Re-injecting after observing would hit the system twice.
    assert not can_transition(P.OBSERVING, P.INJECTING)
    assert not can_transition(P.REVERTING, P.INJECTING)


def test_strings_accepted() -> None:
    assert can_transition("Pending", "Injecting")
    assert not can_transition("Completed", "Pending")


def test_unknown_phase_raises() -> None:
    with pytest.raises(ValueError):
        can_transition("Running", "Completed")


def test_check_transition() -> None:
    assert check_transition("Observing", "Completed") is P.COMPLETED
    with pytest.raises(InvalidTransition, match="cannot change from Completed to Injecting"):
        check_transition(P.COMPLETED, P.INJECTING)


def test_invalid_transition_is_value_error() -> None:
    assert issubclass(InvalidTransition, ValueError)


@pytest.mark.parametrize(
    ("phase", "has_revert", "expected"),
    [
        (P.PENDING, True, P.INJECTING),
        (P.INJECTING, True, P.OBSERVING),
        (P.OBSERVING, True, P.REVERTING),
        (P.OBSERVING, False, P.COMPLETED),
        (P.REVERTING, True, P.COMPLETED),
        (P.COMPLETED, True, None),
        (P.ABORTED, False, None),
        (P.SKIPPED, False, None),
        (P.ERRORED, True, None),
    ],
)
def test_next_after(phase: RunPhase, has_revert: bool, expected: RunPhase | None) -> None:
    assert next_after(phase, has_revert=has_revert) is expected


def test_next_after_is_always_a_legal_transition() -> None:
    for phase in RunPhase:
        for has_revert in (True, False):
            nxt = next_after(phase, has_revert=has_revert)
            if nxt is not None:
                assert can_transition(phase, nxt)


def test_happy_paths_reach_completed() -> None:
    for has_revert, expected_path in (
        (True, [P.PENDING, P.INJECTING, P.OBSERVING, P.REVERTING, P.COMPLETED]),
        (False, [P.PENDING, P.INJECTING, P.OBSERVING, P.COMPLETED]),
    ):
        path = [P.PENDING]
        while (nxt := next_after(path[-1], has_revert=has_revert)) is not None:
            path.append(nxt)
        assert path == expected_path


def test_core_reexports_the_api_phases() -> None:
    from aftershock.api import common

    assert RunPhase is common.RunPhase
    assert common.TERMINAL_PHASES == TERMINAL
    assert all(is_terminal(p) == p.is_terminal for p in RunPhase)
