"""The ChaosRun phase machine.

``status.phase`` is a journal written before each side effect, so after a crash the phase says
what may already have happened. Only the transitions below are legal; a handler that finds any
other one requested has a bug or a stale view and must not act on it. Terminal phases never
change: a finished run is never re-run.
"""

from __future__ import annotations

from aftershock.api.common import TERMINAL_PHASES, RunPhase

__all__ = [
    "TERMINAL",
    "TRANSITIONS",
    "InvalidTransition",
    "RunPhase",
    "can_transition",
    "check_transition",
    "is_terminal",
    "next_after",
]

TERMINAL: frozenset[RunPhase] = TERMINAL_PHASES
"""The phases a run never leaves; the API's set, under the name core has always used."""

TRANSITIONS: dict[RunPhase, frozenset[RunPhase]] = {
    # Pending -> Completed: a dry run records its targets and injects nothing.
    RunPhase.PENDING: frozenset(
        {RunPhase.INJECTING, RunPhase.COMPLETED, RunPhase.SKIPPED, RunPhase.ERRORED, RunPhase.ABORTED}
    ),
    # Injecting -> Reverting: a partial injection failed and what was done must be undone.
    RunPhase.INJECTING: frozenset(
        {RunPhase.OBSERVING, RunPhase.REVERTING, RunPhase.ERRORED, RunPhase.ABORTED}
    ),
    # Observing -> Completed: faults without a revert step (pod delete).
    RunPhase.OBSERVING: frozenset(
        {RunPhase.REVERTING, RunPhase.COMPLETED, RunPhase.ABORTED, RunPhase.ERRORED}
    ),
    RunPhase.REVERTING: frozenset({RunPhase.COMPLETED, RunPhase.ABORTED, RunPhase.ERRORED}),
    RunPhase.COMPLETED: frozenset(),
    RunPhase.ABORTED: frozenset(),
    RunPhase.SKIPPED: frozenset(),
    RunPhase.ERRORED: frozenset(),
}


class InvalidTransition(ValueError):
    """A phase change the machine does not allow."""


def is_terminal(phase: RunPhase | str) -> bool:
    """Function form of ``RunPhase.is_terminal`` that also accepts the phase as a string."""
    return RunPhase(phase).is_terminal


def can_transition(current: RunPhase | str, new: RunPhase | str) -> bool:
    """Whether `current` -> `new` is legal. Staying in the same phase is not a transition (False)."""
    return RunPhase(new) in TRANSITIONS[RunPhase(current)]


def check_transition(current: RunPhase | str, new: RunPhase | str) -> RunPhase:
    """Return `new` as a RunPhase, or raise InvalidTransition with both phases named."""
    if not can_transition(current, new):
        raise InvalidTransition(f"ChaosRun phase cannot change from {current} to {new}")
    return RunPhase(new)


def next_after(current: RunPhase | str, *, has_revert: bool) -> RunPhase | None:
    """The next phase on the happy path; None for terminal phases.

    `has_revert`: whether the fault has a revert step (sustained faults do; pod delete does not).
    """
    phase = RunPhase(current)
    if phase is RunPhase.PENDING:
        return RunPhase.INJECTING
    if phase is RunPhase.INJECTING:
        return RunPhase.OBSERVING
    if phase is RunPhase.OBSERVING:
        return RunPhase.REVERTING if has_revert else RunPhase.COMPLETED
    if phase is RunPhase.REVERTING:
        return RunPhase.COMPLETED
    return None
