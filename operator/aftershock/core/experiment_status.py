"""An experiment's status computed from its runs: pure, so it can be recomputed at any time and
always agrees with the runs that exist, plus the totals of runs already garbage-collected."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from aftershock.core import conditions as cond
from aftershock.core.history import RetiredTotals, combine
from aftershock.core.phases import RunPhase, is_terminal
from aftershock.core.policy import Reason

POLICY_REASONS = frozenset(
    {str(reason) for reason in Reason if reason is not Reason.ALLOWED}
    | {"TargetNamespaceNotFound", "DisruptionBudget"}
)
"""Reasons of a Skipped run that mean a ChaosPolicy (not the schedule) stands in the way."""


def _phase(run: Mapping[str, Any]) -> RunPhase | None:
    phase = (run.get("status") or {}).get("phase")
    return RunPhase(phase) if phase else None


def _finished_key(run: Mapping[str, Any]) -> tuple[str, str]:
    status = run.get("status") or {}
    return (str(status.get("completionTime") or ""), str(run["metadata"]["name"]))


def experiment_status(
    runs: Sequence[Mapping[str, Any]],
    *,
    generation: int | None,
    previous_conditions: Sequence[Mapping[str, Any]] | None,
    now: datetime,
    stalled_reason: str | None = None,
    stalled_message: str = "",
    retired: Mapping[str, Any] | None = None,
    suspended: bool = False,
    scheduled: bool = False,
) -> dict[str, Any]:
    """The status fields derived from the runs: active, lastRun, summary, times and conditions.

    kstatus semantics: Reconciling while a run is active, Stalled when the operator cannot make
    progress (and says why), Ready when it is idle and caught up with the latest generation;
    Suspended mirrors spec.suspend.
    """
    totals = RetiredTotals.from_dict(retired) if retired else None
    folded = set(totals.folded_names) if totals else set()
    live = [r for r in runs if r["metadata"]["name"] not in folded]
    active = sorted(
        (r for r in live if not is_terminal(_phase(r) or RunPhase.PENDING)),
        key=lambda r: r["metadata"]["name"],
    )
    finished = sorted((r for r in live if is_terminal(_phase(r) or RunPhase.PENDING)), key=_finished_key)
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "active": [{"name": r["metadata"]["name"]} for r in active],
    }
    if finished:
        last = finished[-1]
        last_status = last.get("status") or {}
        status["lastRun"] = {
            k: v
            for k, v in {
                "name": last["metadata"]["name"],
                "phase": last_status.get("phase"),
                "verdict": last_status.get("verdict"),
                "severity": last_status.get("severity"),
                "recoverySeconds": last_status.get("recoverySeconds"),
                "completionTime": last_status.get("completionTime"),
            }.items()
            if v is not None
        }
    passed = [r for r in finished if (r.get("status") or {}).get("verdict") == "Passed"]
    if passed:
        status["lastSuccessfulTime"] = _finished_key(passed[-1])[0] or None
    status["summary"] = combine(totals, live)

    conditions = [dict(c) for c in previous_conditions or []]
    if not stalled_reason and finished and not active:
        last_status = finished[-1].get("status") or {}
        if last_status.get("phase") == "Skipped" and last_status.get("reason") in POLICY_REASONS:
            # a policy stops this experiment: say so where kstatus looks, not only on the run
            stalled_reason = str(last_status["reason"])
            stalled_message = str(last_status.get("message") or "")

    def put(type_: str, value: bool, reason: str, message: str = "") -> None:
        nonlocal conditions
        conditions = cond.set_condition(
            conditions, cond.condition(type_, value, reason, message, observed_generation=generation), now
        )

    if stalled_reason:
        put(cond.STALLED, True, stalled_reason, stalled_message)
        put(cond.READY, False, stalled_reason, stalled_message)
        put(cond.RECONCILING, False, stalled_reason)
    elif active:
        names = ", ".join(r["metadata"]["name"] for r in active)
        put(cond.RECONCILING, True, "RunActive", f"run {names} is in progress")
        put(cond.READY, False, "RunActive", f"run {names} is in progress")
        put(cond.STALLED, False, "RunActive")
    else:
        if finished:
            message = f"last run {status['lastRun']['name']} ended {status['lastRun']['phase']}"
        else:
            message = "waiting for the next slot" if scheduled else "waiting for the first run"
        put(cond.READY, True, "Idle", message)
        put(cond.RECONCILING, False, "Idle")
        put(cond.STALLED, False, "Idle")
    if suspended:
        put(cond.SUSPENDED, True, "Suspended", "spec.suspend is true: no new runs are started")
    elif any(c.get("type") == cond.SUSPENDED for c in conditions):
        put(cond.SUSPENDED, False, "Resumed", "spec.suspend is false")
    status["conditions"] = conditions
    return {k: v for k, v in status.items() if v is not None}
