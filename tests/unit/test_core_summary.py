from __future__ import annotations

import pytest

from aftershock.core.phases import RunPhase
from aftershock.core.severity import Severity, Verdict
from aftershock.core.summary import RunResult, Summary, percentile, summarize


def completed(verdict: Verdict, severity: Severity, seconds: float | None) -> RunResult:
    return RunResult(RunPhase.COMPLETED, verdict, severity, seconds)


# --- percentile -------------------------------------------------------------------------------


def test_percentile_empty_is_none() -> None:
    assert percentile([], 50) is None


def test_percentile_single_value() -> None:
    assert percentile([4.2], 50) == 4.2
    assert percentile([4.2], 95) == 4.2
    assert percentile([4.2], 100) == 4.2


@pytest.mark.parametrize(
    ("p", "expected"),
    [(1, 1.0), (10, 1.0), (11, 2.0), (50, 5.0), (51, 6.0), (90, 9.0), (95, 10.0), (100, 10.0)],
)
def test_percentile_nearest_rank_on_ten_values(p: int, expected: float) -> None:
    values = [float(v) for v in range(10, 0, -1)]  # unsorted input
    assert percentile(values, p) == expected


def test_percentile_returns_observed_values_only() -> None:
    assert percentile([1.0, 2.0], 50) == 1.0  # no interpolation (1.5)
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0


def test_p95_of_twenty_is_nineteenth() -> None:
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 95) == 19.0


@pytest.mark.parametrize("p", [0, 101, -1])
def test_percentile_range(p: int) -> None:
    with pytest.raises(ValueError):
        percentile([1.0], p)


# --- RunResult --------------------------------------------------------------------------------


def test_run_result_coerces_strings() -> None:
    r = RunResult("Completed", "Passed", "low", 1.5)  # type: ignore[arg-type]
    assert r.phase is RunPhase.COMPLETED
    assert r.verdict is Verdict.PASSED
    assert r.severity is Severity.LOW


def test_run_result_rejects_unknown_phase() -> None:
    with pytest.raises(ValueError):
        RunResult("Running")  # type: ignore[arg-type]


def test_run_result_from_status() -> None:
    r = RunResult.from_status(
        {"phase": "Completed", "verdict": "Failed", "severity": "medium", "recoverySeconds": 7}
    )
    assert r == RunResult(RunPhase.COMPLETED, Verdict.FAILED, Severity.MEDIUM, 7.0)
    assert isinstance(r.recovery_seconds, float)


def test_run_result_from_empty_status_is_pending() -> None:
    assert RunResult.from_status({}) == RunResult(RunPhase.PENDING)


# --- summarize --------------------------------------------------------------------------------


def test_no_runs() -> None:
    s = summarize([])
    assert s == Summary()
    assert s.to_dict() == {"runs": 0, "passed": 0, "failed": 0, "errored": 0}


def test_counts_and_severity() -> None:
    s = summarize(
        [
            completed(Verdict.PASSED, Severity.NONE, 2.0),
            completed(Verdict.PASSED, Severity.LOW, 3.0),
            completed(Verdict.FAILED, Severity.MEDIUM, 9.0),
            RunResult(RunPhase.ERRORED),
        ]
    )
    assert (s.runs, s.passed, s.failed, s.errored) == (4, 2, 1, 1)
    assert s.worst_severity is Severity.MEDIUM


def test_skipped_and_active_runs_not_counted() -> None:
    s = summarize(
        [
            RunResult(RunPhase.SKIPPED),
            RunResult(RunPhase.PENDING),
            RunResult(RunPhase.OBSERVING, recovery_seconds=1.0),
            completed(Verdict.PASSED, Severity.NONE, 1.0),
        ]
    )
    assert s.runs == 1
    assert s.recovery_max == 1.0


def test_aborted_counts_as_run_but_not_pass_fail_error() -> None:
    s = summarize([RunResult(RunPhase.ABORTED), completed(Verdict.PASSED, Severity.NONE, 1.0)])
    assert (s.runs, s.passed, s.failed, s.errored) == (2, 1, 0, 0)


def test_aborted_run_severity_counts_for_worst() -> None:
    # An abort whose revert failed is critical and must surface in the summary.
    s = summarize(
        [
            RunResult(RunPhase.ABORTED, severity=Severity.CRITICAL),
            completed(Verdict.PASSED, Severity.NONE, 1.0),
        ]
    )
    assert s.worst_severity is Severity.CRITICAL


def test_worst_severity_none_when_no_run_has_one() -> None:
    s = summarize([RunResult(RunPhase.ERRORED), RunResult(RunPhase.ABORTED)])
    assert s.worst_severity is None
    assert "worstSeverity" not in s.to_dict()


def test_worst_severity_none_value_is_reported() -> None:
    s = summarize([completed(Verdict.PASSED, Severity.NONE, 1.0)])
    assert s.worst_severity is Severity.NONE
    assert s.to_dict()["worstSeverity"] == "none"


def test_recovery_percentiles_only_from_completed_runs() -> None:
    runs = [completed(Verdict.PASSED, Severity.NONE, float(v)) for v in range(1, 21)]
    runs.append(RunResult(RunPhase.ABORTED, recovery_seconds=999.0))
    runs.append(completed(Verdict.FAILED, Severity.HIGH, None))  # never recovered
    s = summarize(runs)
    assert (s.recovery_p50, s.recovery_p95, s.recovery_max) == (10.0, 19.0, 20.0)


def test_no_recovery_data_omits_block() -> None:
    s = summarize([completed(Verdict.FAILED, Severity.HIGH, None)])
    assert s.recovery_p50 is None and s.recovery_p95 is None and s.recovery_max is None
    assert "recoverySeconds" not in s.to_dict()


def test_to_dict_camel_case_shape() -> None:
    s = summarize(
        [
            completed(Verdict.PASSED, Severity.LOW, 2.5),
            completed(Verdict.FAILED, Severity.HIGH, 40.0),
            RunResult(RunPhase.ERRORED),
        ]
    )
    assert s.to_dict() == {
        "runs": 3,
        "passed": 1,
        "failed": 1,
        "errored": 1,
        "worstSeverity": "high",
        "recoverySeconds": {"p50": 2.5, "p95": 40.0, "max": 40.0},
    }


def test_completed_without_verdict_is_neither_passed_nor_failed() -> None:
    s = summarize([RunResult(RunPhase.COMPLETED)])
    assert (s.runs, s.passed, s.failed) == (1, 0, 0)
