"""metav1.Condition lists as plain dicts, merged the way Kubernetes expects.

``lastTransitionTime`` must mean "when the status last changed", not "when we last wrote it":
tools (kstatus, kubectl wait, dashboards) use it to tell how long something has been broken. So
`set_condition` keeps the old time when only reason/message/observedGeneration change.
Validation mirrors the API server's rules so a bad condition fails in unit tests, not as a
rejected status patch in production.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aftershock.core.phases import RunPhase

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
SUSPENDED = "Suspended"

TRUE = "True"
FALSE = "False"
UNKNOWN = "Unknown"
_STATUSES = frozenset({TRUE, FALSE, UNKNOWN})

_REASON = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
_TYPE = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                   r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$")  # fmt: skip
_MAX_TYPE = 316
_MAX_REASON = 1024
_MAX_MESSAGE = 32768


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with second precision, as metav1.Time serialises."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"time must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    type_: str,
    status: bool | str,
    reason: str,
    message: str = "",
    *,
    observed_generation: int | None = None,
) -> dict[str, Any]:
    """Build a condition without lastTransitionTime (`set_condition` fills it). bool -> True/False."""
    if isinstance(status, bool):
        status = TRUE if status else FALSE
    new: dict[str, Any] = {"type": type_, "status": status, "reason": reason, "message": message}
    if observed_generation is not None:
        new["observedGeneration"] = observed_generation
    _validate(new)
    return new


def _validate(cond: Mapping[str, Any]) -> None:
    type_ = cond.get("type")
    if not isinstance(type_, str) or len(type_) > _MAX_TYPE or not _TYPE.match(type_):
        raise ValueError(f"condition type {type_!r} is not a valid (optionally prefixed) CamelCase name")
    if cond.get("status") not in _STATUSES:
        raise ValueError(
            f"condition {type_} status must be True, False or Unknown, got {cond.get('status')!r}"
        )
    reason = cond.get("reason")
    if not isinstance(reason, str) or len(reason) > _MAX_REASON or not _REASON.match(reason):
        raise ValueError(f"condition {type_} reason {reason!r} must be a non-empty CamelCase identifier")
    message = cond.get("message", "")
    if not isinstance(message, str) or len(message) > _MAX_MESSAGE:
        raise ValueError(f"condition {type_} message must be a string of at most {_MAX_MESSAGE} characters")
    gen = cond.get("observedGeneration")
    if gen is not None and (isinstance(gen, bool) or not isinstance(gen, int) or gen < 0):
        raise ValueError(f"condition {type_} observedGeneration must be an integer >= 0, got {gen!r}")


def get_condition(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> dict[str, Any] | None:
    """A copy of the condition of `type_`, or None."""
    for cond in conditions or ():
        if cond.get("type") == type_:
            return dict(cond)
    return None


def is_true(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> bool:
    found = get_condition(conditions, type_)
    return found is not None and found.get("status") == TRUE


def set_condition(
    conditions: Sequence[Mapping[str, Any]] | None, new: Mapping[str, Any], now: datetime
) -> list[dict[str, Any]]:
    """Return a new list with `new` merged in by type; the input is not modified.

    lastTransitionTime is kept from the existing condition when the status is unchanged (and it
    had one), otherwise set to `now`; a lastTransitionTime in `new` is ignored. Other conditions
    keep their order; a new type is appended.
    """
    _validate(new)
    stamp = format_time(now)
    merged: dict[str, Any] = {k: v for k, v in new.items() if k != "lastTransitionTime"}
    merged.setdefault("message", "")
    result: list[dict[str, Any]] = []
    replaced = False
    for cond in conditions or ():
        if cond.get("type") != new["type"]:
            result.append(dict(cond))
            continue
        if replaced:  # a duplicate type in the input: drop it, the API server would reject it
            continue
        keep = cond.get("status") == new["status"] and cond.get("lastTransitionTime")
        merged["lastTransitionTime"] = cond["lastTransitionTime"] if keep else stamp
        result.append(merged)
        replaced = True
    if not replaced:
        merged["lastTransitionTime"] = stamp
        result.append(merged)
    return result


def remove_condition(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> list[dict[str, Any]]:
    """A new list without conditions of `type_`."""
    return [dict(c) for c in conditions or () if c.get("type") != type_]


def _run_reason(phase: RunPhase, reason: str | None) -> str:
    """The run's own reason when it is a valid condition reason, else the phase's name."""
    if reason and len(reason) <= _MAX_REASON and _REASON.match(reason):
        return reason
    return str(phase)


def run_conditions(
    phase: RunPhase | str,
    reason: str | None,
    message: str | None,
    generation: int | None,
    previous: Sequence[Mapping[str, Any]] | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """A ChaosRun's Ready, Reconciling and Stalled conditions for the phase it is entering.

    kstatus reads them (and nothing else of ours): Reconciling True while the run is active
    (InProgress), Stalled True when it Errored (Failed: the chaos could not be carried out),
    Ready True once it finished otherwise (Current) — Aborted and Skipped too: the run reached its
    end and the operator has nothing left to do; the verdict says how it went. The True condition
    carries the run's reason and message (the reason falls back to the phase when it is not a
    valid condition reason), the others name the phase. Other condition types in `previous` are
    kept, and lastTransitionTime only moves when a condition's status does.
    """
    phase = RunPhase(phase)
    why = _run_reason(phase, reason)
    text = (message or f"the run is {phase}")[:_MAX_MESSAGE]
    finished = phase.is_terminal
    truth = {  # always in this order, so a run's first write lists them like every later one
        READY: finished and phase is not RunPhase.ERRORED,
        RECONCILING: not finished,
        STALLED: phase is RunPhase.ERRORED,
    }
    result = [dict(c) for c in previous or ()]
    for type_, value in truth.items():
        # Ready False explains itself like the True condition does; a False Reconciling or
        # Stalled only names the phase.
        explained = value or type_ == READY
        new = condition(
            type_,
            value,
            why if explained else str(phase),
            text if explained else "",
            observed_generation=generation,
        )
        result = set_condition(result, new, now)
    return result
