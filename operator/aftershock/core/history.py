"""Run history: which finished runs the history limits remove, and how the summary outlives them.

``status.summary`` is computed from the runs that exist, so deleting old runs would silently
shrink it. Before a run is deleted its result is *folded* into ``status.history`` (RetiredTotals),
and the summary is the `combine` of those totals with the live runs.

Decisions:
- History limits work like CronJob's: only terminal runs are candidates; "successful" means
  Completed with verdict Passed, every other terminal run (Failed, Aborted, Errored, Skipped)
  is failed history. Each class keeps its newest `limit` runs. A phase this build does not know
  is treated as active: never delete what is not understood.
- Runs without a finish time sort as the oldest of their class (they are most likely leftovers).
- Counting rules are `core.summary`'s (it is called, not re-implemented), so folded and live
  runs are counted alike.
- Recovery samples keep the most recent 200 retired values: percentiles stay meaningful and the
  status small. p50/p95/max over retired runs therefore cover those 200 plus all live runs.
- Folding is idempotent through the names of the 50 most recently folded runs. The caller folds,
  writes status.history, and only then deletes: a crash in between re-folds the same names (a
  no-op) as long as fewer than 50 runs are folded per status write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from aftershock.core.phases import RunPhase
from aftershock.core.severity import Severity, Verdict, worst
from aftershock.core.summary import RunResult, Summary, percentile, summarize

__all__ = [
    "MAX_FOLDED_NAMES",
    "MAX_RECOVERY_SAMPLES",
    "RetiredTotals",
    "RunInfo",
    "combine",
    "fold",
    "runs_to_delete",
]

MAX_RECOVERY_SAMPLES: Final = 200
MAX_FOLDED_NAMES: Final = 50

_OLDEST: Final = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RunInfo:
    """What the history limits need to know about one run."""

    name: str
    phase: str
    verdict: str | None = None
    finished: datetime | None = None


def _terminal(phase: str) -> bool:
    try:
        return RunPhase(phase).is_terminal
    except ValueError:
        return False


def _age_key(run: RunInfo) -> tuple[datetime, str]:
    return (run.finished or _OLDEST, run.name)


def runs_to_delete(runs: Sequence[RunInfo], successful_limit: int, failed_limit: int) -> list[str]:
    """Names of the finished runs beyond the history limits, oldest first; active runs never."""
    if successful_limit < 0 or failed_limit < 0:
        raise ValueError(f"history limits must not be negative, got {successful_limit} and {failed_limit}")
    for run in runs:
        if run.finished is not None and (run.finished.tzinfo is None or run.finished.utcoffset() is None):
            raise ValueError(f"finished time of run {run.name} must be timezone-aware")
    finished = [r for r in runs if _terminal(r.phase)]
    successful = [r for r in finished if r.phase == RunPhase.COMPLETED and r.verdict == Verdict.PASSED]
    failed = [r for r in finished if not (r.phase == RunPhase.COMPLETED and r.verdict == Verdict.PASSED)]
    doomed: list[RunInfo] = []
    for group, limit in ((successful, successful_limit), (failed, failed_limit)):
        newest_first = sorted(group, key=_age_key, reverse=True)
        doomed.extend(newest_first[limit:])
    return [r.name for r in sorted(doomed, key=_age_key)]


@dataclass(frozen=True)
class RetiredTotals:
    """Totals of runs already deleted by the history limits (``status.history``)."""

    runs: int = 0
    passed: int = 0
    failed: int = 0
    errored: int = 0
    worst_severity: Severity | None = None
    recovery_samples: tuple[float, ...] = ()
    folded_names: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """camelCase, as the API's RetiredHistory (``foldedRuns`` holds `folded_names`)."""
        out: dict[str, Any] = {
            "runs": self.runs,
            "passed": self.passed,
            "failed": self.failed,
            "errored": self.errored,
            "recoverySamples": list(self.recovery_samples),
            "foldedRuns": list(self.folded_names),
        }
        if self.worst_severity is not None:
            out["worstSeverity"] = self.worst_severity.value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RetiredTotals:
        """From ``status.history``; missing keys mean zero/empty, so an absent history is empty."""
        data = data or {}
        severity = data.get("worstSeverity")
        return cls(
            runs=int(data.get("runs") or 0),
            passed=int(data.get("passed") or 0),
            failed=int(data.get("failed") or 0),
            errored=int(data.get("errored") or 0),
            worst_severity=Severity(severity) if severity else None,
            recovery_samples=tuple(float(v) for v in data.get("recoverySamples") or ())[
                -MAX_RECOVERY_SAMPLES:
            ],
            folded_names=tuple(str(n) for n in data.get("foldedRuns") or ())[-MAX_FOLDED_NAMES:],
        )


def _name(run: Mapping[str, Any]) -> str:
    name = (run.get("metadata") or {}).get("name")
    if not name:
        raise ValueError("a ChaosRun object with metadata.name is needed")
    return str(name)


def _result(run: Mapping[str, Any]) -> RunResult:
    return RunResult.from_status(run.get("status") or {})


def _worse(a: Severity | None, b: Severity | None) -> Severity | None:
    present = [s for s in (a, b) if s is not None]
    return worst(present) if present else None


def fold(retired: RetiredTotals | None, run: Mapping[str, Any]) -> RetiredTotals:
    """Add one finished ChaosRun (the whole object: metadata.name and status) to the totals.

    Folding a name already folded returns the totals unchanged. Folding an active run is a bug
    in the caller (it would vanish from the summary) and raises ValueError.
    """
    base = retired or RetiredTotals()
    name = _name(run)
    if name in base.folded_names:
        return base
    result = _result(run)
    if not result.phase.is_terminal:
        raise ValueError(f"run {name} is {result.phase}, not finished; only finished runs are folded")
    one = summarize([result])  # the summary's own counting rules, applied to this one run
    samples = base.recovery_samples
    if one.recovery_max is not None:
        samples = (*samples, one.recovery_max)[-MAX_RECOVERY_SAMPLES:]
    return RetiredTotals(
        runs=base.runs + one.runs,
        passed=base.passed + one.passed,
        failed=base.failed + one.failed,
        errored=base.errored + one.errored,
        worst_severity=_worse(base.worst_severity, one.worst_severity),
        recovery_samples=samples,
        folded_names=(*base.folded_names, name)[-MAX_FOLDED_NAMES:],
    )


def combine(retired: RetiredTotals | None, live_runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``status.summary`` over retired totals and the ChaosRun objects that still exist.

    Live runs whose names were already folded are left out (deleted-but-still-listed runs are
    not counted twice). Without retired totals this is exactly ``summarize(...).to_dict()``.
    """
    folded = set(retired.folded_names) if retired else set()
    results = [_result(r) for r in live_runs if _name(r) not in folded]
    live = summarize(results)
    if retired is None:
        return live.to_dict()
    # Recovery samples of live runs by the summary's rule, one run at a time.
    times = list(retired.recovery_samples)
    times.extend(t for t in (summarize([r]).recovery_max for r in results) if t is not None)
    return Summary(
        runs=retired.runs + live.runs,
        passed=retired.passed + live.passed,
        failed=retired.failed + live.failed,
        errored=retired.errored + live.errored,
        worst_severity=_worse(retired.worst_severity, live.worst_severity),
        recovery_p50=percentile(times, 50),
        recovery_p95=percentile(times, 95),
        recovery_max=max(times) if times else None,
    ).to_dict()
