"""Rating a run: the severity scale from DESIGN.md turned into findings and a verdict.

`assess` is the only place that decides how bad a run was. Engines and handlers measure
(`RecoveryObservation`); this module judges, so the rules are tested once, without a cluster.

Decisions:
- Every applicable finding is reported, each rated by its own rule; the run's severity is the
  worst of them. A slow recovery with transient probe failures therefore yields a medium and a
  low finding, and the run is medium, exactly as the table reads.
- A run rated ``none`` has no findings at all: findings are problems, not a log.
- Recovery exactly at the objective (or exactly at the timeout) is within it: only *slower*
  than the objective is a finding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# The scale, the verdict and the finding are the API's own types (one class each, so a core
# Finding *is* the Finding a status holds); this module re-exports them with `worst` for its callers.
from aftershock.api.common import Finding, Severity, Verdict, worst

__all__ = [
    "Assessment",
    "Finding",
    "RecoveryObservation",
    "Severity",
    "Verdict",
    "assess",
    "format_seconds",
    "verdict_for",
    "worst",
]


def verdict_for(severity: Severity | str) -> Verdict:
    """Passed for none/low, Failed for medium and worse."""
    return Verdict.PASSED if Severity(severity).rank <= Severity.LOW.rank else Verdict.FAILED


@dataclass(frozen=True, kw_only=True)
class RecoveryObservation:
    """What was measured during one run; the input to `assess`.

    recovered: the target got back to its steady state (at any time, even after the timeout).
    recovery_seconds: injection until recovery; required when recovered, else None.
    objective_seconds / timeout_seconds: the experiment's ``recovery.objective`` / ``timeout``.
    reverted: the fault was removed (faults without a revert step, like podDelete: True).
    revert_error: why the revert failed; only read when ``reverted`` is False.
    outside_damage: description of damage seen beyond the declared targets, None if none.
    probe_failures_transient: probe failures that cleared again before the end.
    probes_failed_at_end: names of steady-state probes still failing when the run ended.
    lost_capacity: description of capacity lost during the fault (e.g. "2 of 3 pods Ready for
        4.1s"), None if none.
    not_recovered_reason: why the target is considered not recovered.
    observed: the last state seen when the run gave up (e.g. "1/3 pods Ready").
    """

    recovered: bool
    recovery_seconds: float | None
    objective_seconds: float
    timeout_seconds: float
    reverted: bool = True
    revert_error: str | None = None
    outside_damage: str | None = None
    probe_failures_transient: int = 0
    probes_failed_at_end: Sequence[str] = field(default_factory=tuple)
    lost_capacity: str | None = None
    not_recovered_reason: str | None = None
    observed: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "probes_failed_at_end", tuple(self.probes_failed_at_end))
        if self.recovered and self.recovery_seconds is None:
            raise ValueError("recovered is True but recovery_seconds is missing")
        if not self.recovered and self.recovery_seconds is not None:
            raise ValueError("recovery_seconds is set but recovered is False")
        if self.recovery_seconds is not None and self.recovery_seconds < 0:
            raise ValueError(f"recovery_seconds must be >= 0, got {self.recovery_seconds}")
        if self.objective_seconds < 0:
            raise ValueError(f"objective_seconds must be >= 0, got {self.objective_seconds}")
        if self.timeout_seconds < 0:
            raise ValueError(f"timeout_seconds must be >= 0, got {self.timeout_seconds}")
        if self.probe_failures_transient < 0:
            raise ValueError(f"probe_failures_transient must be >= 0, got {self.probe_failures_transient}")


@dataclass(frozen=True)
class Assessment:
    """The judgement of one run: severity = worst finding, verdict derived from it."""

    severity: Severity
    verdict: Verdict
    findings: tuple[Finding, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity.value,
            "verdict": self.verdict.value,
            "findings": [f.to_json() for f in self.findings],
        }


def format_seconds(seconds: float) -> str:
    """Human duration for evidence: 7.4 -> "7.4s", 5.0 -> "5s", at most millisecond precision."""
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return f"{'0' if text in ('', '-0') else text}s"


def assess(obs: RecoveryObservation) -> Assessment:
    """Rate one run by the DESIGN.md severity scale. Findings are ordered worst first."""
    findings: list[Finding] = []
    objective = format_seconds(obs.objective_seconds)
    timeout = format_seconds(obs.timeout_seconds)
    in_time = (
        obs.recovered and obs.recovery_seconds is not None and obs.recovery_seconds <= obs.timeout_seconds
    )
    context = (
        f"recovered in {format_seconds(obs.recovery_seconds)} (objective {objective})"
        if obs.recovered and obs.recovery_seconds is not None
        else f"not recovered within the {timeout} timeout"
    )

    if not obs.reverted:
        findings.append(
            Finding(
                severity=Severity.CRITICAL,
                title="Fault could not be reverted",
                detail="the revert failed, the fault may still be active: "
                f"{obs.revert_error or 'no error recorded'}",
            )
        )
    if obs.outside_damage:
        findings.append(
            Finding(
                severity=Severity.CRITICAL,
                title="Damage beyond the declared targets",
                detail=f"observed outside the targets: {obs.outside_damage}",
            )
        )
    if not in_time:
        if obs.recovered and obs.recovery_seconds is not None:
            detail = (
                f"recovered only after {format_seconds(obs.recovery_seconds)}, beyond the {timeout} timeout"
            )
        else:
            reason = obs.not_recovered_reason or "no reason recorded"
            detail = f"not recovered within the {timeout} timeout: {reason}"
        if obs.observed:
            detail += f"; last observed: {obs.observed}"
        findings.append(
            Finding(severity=Severity.HIGH, title="Target did not recover within the timeout", detail=detail)
        )
    if obs.probes_failed_at_end:
        names = ", ".join(obs.probes_failed_at_end)
        count = len(obs.probes_failed_at_end)
        findings.append(
            Finding(
                severity=Severity.HIGH,
                title="Steady-state probe stayed failed",
                detail=f"{count} probe{'s' if count != 1 else ''} still failing at the end of the run: {names}",
            )
        )
    if in_time and obs.recovery_seconds is not None and obs.recovery_seconds > obs.objective_seconds:
        over = format_seconds(obs.recovery_seconds - obs.objective_seconds)
        findings.append(
            Finding(
                severity=Severity.MEDIUM,
                title="Recovery slower than objective",
                detail=f"recovered in {format_seconds(obs.recovery_seconds)}, objective {objective} ({over} over)",
            )
        )
    if obs.probe_failures_transient:
        n = obs.probe_failures_transient
        findings.append(
            Finding(
                severity=Severity.LOW,
                title="Transient probe failures",
                detail=f"probes failed {n} time{'s' if n != 1 else ''} during the run and passed again; {context}",
            )
        )
    if obs.lost_capacity:
        findings.append(
            Finding(
                severity=Severity.LOW,
                title="Capacity lost during the fault",
                detail=f"{obs.lost_capacity}; {context}",
            )
        )

    findings.sort(key=lambda f: -f.severity.rank)  # stable: rule order within a severity
    severity = worst(f.severity for f in findings)
    return Assessment(severity=severity, verdict=verdict_for(severity), findings=tuple(findings))
