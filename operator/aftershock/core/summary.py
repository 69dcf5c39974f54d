"""``ChaosExperiment.status.summary``: aggregate of an experiment's finished runs.

Decisions:
- Only terminal runs count; Skipped runs are excluded (they never ran), active ones are reported
  in ``status.active`` instead. So ``runs`` = Completed + Aborted + Errored.
- passed/failed count Completed runs by verdict; errored counts Errored runs. Aborted runs are in
  ``runs`` but in none of the three.
- worstSeverity is taken over every counted run that carries a severity (an aborted run whose
  revert failed is critical and must show); None / omitted when no run has one.
- Recovery percentiles use nearest-rank over Completed runs with a recovery time (a value that
  really occurred, no interpolation); None / omitted when there is no data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aftershock.core.phases import RunPhase
from aftershock.core.severity import Severity, Verdict, worst


@dataclass(frozen=True)
class RunResult:
    """The parts of one ChaosRun's status the summary needs. Strings are coerced to the enums."""

    phase: RunPhase
    verdict: Verdict | None = None
    severity: Severity | None = None
    recovery_seconds: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "phase", RunPhase(self.phase))
        if self.verdict is not None:
            object.__setattr__(self, "verdict", Verdict(self.verdict))
        if self.severity is not None:
            object.__setattr__(self, "severity", Severity(self.severity))

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> RunResult:
        """From a ChaosRun ``status`` dict (camelCase keys); a missing phase means Pending."""
        rs = status.get("recoverySeconds")
        return cls(
            phase=RunPhase(status.get("phase") or RunPhase.PENDING),
            verdict=Verdict(status["verdict"]) if status.get("verdict") else None,
            severity=Severity(status["severity"]) if status.get("severity") else None,
            recovery_seconds=float(rs) if rs is not None else None,
        )


@dataclass(frozen=True)
class Summary:
    runs: int = 0
    passed: int = 0
    failed: int = 0
    errored: int = 0
    worst_severity: Severity | None = None
    recovery_p50: float | None = None
    recovery_p95: float | None = None
    recovery_max: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """camelCase, as ``status.summary``; worstSeverity/recoverySeconds omitted without data."""
        out: dict[str, Any] = {
            "runs": self.runs,
            "passed": self.passed,
            "failed": self.failed,
            "errored": self.errored,
        }
        if self.worst_severity is not None:
            out["worstSeverity"] = self.worst_severity.value
        if self.recovery_max is not None:
            out["recoverySeconds"] = {
                "p50": self.recovery_p50,
                "p95": self.recovery_p95,
                "max": self.recovery_max,
            }
        return out


def percentile(values: Sequence[float], p: int) -> float | None:
    """Nearest-rank percentile (p in 1..100): the smallest value with at least p% of data <= it."""
    if not 1 <= p <= 100:
        raise ValueError(f"percentile must be in 1..100, got {p}")
    if not values:
        return None
    ordered = sorted(values)
    rank = (p * len(ordered) + 99) // 100  # ceil(p/100 * n) in integers: no float edge cases
    return ordered[rank - 1]


_COUNTED = frozenset({RunPhase.COMPLETED, RunPhase.ABORTED, RunPhase.ERRORED})


def summarize(runs: Sequence[RunResult]) -> Summary:
    counted = [r for r in runs if r.phase in _COUNTED]
    completed = [r for r in counted if r.phase is RunPhase.COMPLETED]
    severities = [r.severity for r in counted if r.severity is not None]
    times = [r.recovery_seconds for r in completed if r.recovery_seconds is not None]
    return Summary(
        runs=len(counted),
        passed=sum(1 for r in completed if r.verdict is Verdict.PASSED),
        failed=sum(1 for r in completed if r.verdict is Verdict.FAILED),
        errored=sum(1 for r in counted if r.phase is RunPhase.ERRORED),
        worst_severity=worst(severities) if severities else None,
        recovery_p50=percentile(times, 50),
        recovery_p95=percentile(times, 95),
        recovery_max=max(times) if times else None,
    )
