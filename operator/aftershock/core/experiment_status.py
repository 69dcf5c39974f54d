"""An experiment's status computed from its runs: pure, so it can be recomputed at any time and
always agrees with the runs that exist (no counters to drift after a crash)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from aftershock.core import conditions as cond
from aftershock.core.phases import RunPhase, is_terminal
from aftershock.core.summary import RunResult, summarize


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
) -> dict[str, Any]:
    """The status fields derived from the runs: active, lastRun, summary, times and conditions.

    kstatus semantics: Reconciling while a run is active, Stalled when the operator cannot make
    progress (and says why), Ready when it is idle and caught up with the latest generation.
    """
    active = sorted(
        (r for r in runs if not is_terminal(_phase(r) or RunPhase.PENDING)),
        key=lambda r: r["metadata"]["name"],
    )
    finished = sorted((r for r in runs if is_terminal(_phase(r) or RunPhase.PENDING)), key=_finished_key)
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
    scheduled = [str((r.get("spec") or {}).get("scheduledTime") or "") for r in runs]
    if any(scheduled):
        status["lastScheduleTime"] = max(scheduled)
    status["summary"] = summarize([RunResult.from_status(r.get("status") or {}) for r in runs]).to_dict()

    conditions = [dict(c) for c in previous_conditions or []]
    if stalled_reason:
        conditions = cond.set_condition(
            conditions,
            cond.condition(
                cond.STALLED, True, stalled_reason, stalled_message, observed_generation=generation
            ),
            now,
        )
        conditions = cond.set_condition(
            conditions,
            cond.condition(
                cond.READY, False, stalled_reason, stalled_message, observed_generation=generation
            ),
            now,
        )
        conditions = cond.set_condition(
            conditions,
            cond.condition(cond.RECONCILING, False, stalled_reason, "", observed_generation=generation),
            now,
        )
    elif active:
        names = ", ".join(r["metadata"]["name"] for r in active)
        conditions = cond.set_condition(
            conditions,
            cond.condition(
                cond.RECONCILING,
                True,
                "RunActive",
                f"run {names} is in progress",
                observed_generation=generation,
            ),
            now,
        )
        conditions = cond.set_condition(
            conditions,
            cond.condition(
                cond.READY, False, "RunActive", f"run {names} is in progress", observed_generation=generation
            ),
            now,
        )
        conditions = cond.set_condition(
            conditions,
            cond.condition(cond.STALLED, False, "RunActive", "", observed_generation=generation),
            now,
        )
    else:
        message = (
            f"last run {status['lastRun']['name']} ended {status['lastRun']['phase']}"
            if finished
            else "waiting for the first run"
        )
        conditions = cond.set_condition(
            conditions, cond.condition(cond.READY, True, "Idle", message, observed_generation=generation), now
        )
        conditions = cond.set_condition(
            conditions,
            cond.condition(cond.RECONCILING, False, "Idle", "", observed_generation=generation),
            now,
        )
        conditions = cond.set_condition(
            conditions, cond.condition(cond.STALLED, False, "Idle", "", observed_generation=generation), now
        )
    status["conditions"] = conditions
    return {k: v for k, v in status.items() if v is not None}
