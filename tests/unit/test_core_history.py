from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aftershock.api.experiment import RetiredHistory
from aftershock.core.history import (
    MAX_FOLDED_NAMES,
    MAX_RECOVERY_SAMPLES,
    RetiredTotals,
    RunInfo,
    combine,
    fold,
    runs_to_delete,
)
from aftershock.core.severity import Severity
from aftershock.core.summary import RunResult, summarize

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def info(name: str, phase: str, verdict: str | None = None, minute: int | None = 0) -> RunInfo:
    return RunInfo(name, phase, verdict, None if minute is None else at(minute))


# --- runs_to_delete -------------------------------------------------------------------------------


def test_keeps_the_newest_of_each_class_and_deletes_oldest_first() -> None:
    runs = [
        info("p1", "Completed", "Passed", 1),
        info("f1", "Completed", "Failed", 2),
        info("p2", "Completed", "Passed", 3),
        info("f2", "Errored", None, 4),
        info("p3", "Completed", "Passed", 5),
        info("f3", "Aborted", None, 6),
    ]
    assert runs_to_delete(runs, successful_limit=1, failed_limit=2) == ["p1", "f1", "p2"]


def test_every_terminal_run_that_did_not_pass_is_failed_history() -> None:
    runs = [
        info("failed", "Completed", "Failed", 1),
        info("aborted", "Aborted", None, 2),
        info("skipped", "Skipped", None, 3),
        info("errored", "Errored", None, 4),
        info("no-verdict", "Completed", None, 5),
        info("passed", "Completed", "Passed", 6),
    ]
    assert runs_to_delete(runs, successful_limit=5, failed_limit=1) == [
        "failed",
        "aborted",
        "skipped",
        "errored",
    ]


def test_zero_limits_delete_every_finished_run_but_never_an_active_one() -> None:
    runs = [
        info("pending", "Pending", minute=None),
        info("injecting", "Injecting", minute=None),
        info("observing", "Observing", minute=None),
        info("reverting", "Reverting", minute=None),
        info("future-phase", "Paused", minute=None),  # unknown: treated as active
        info("b", "Completed", "Passed", 2),
        info("a", "Skipped", None, 1),
    ]
    assert runs_to_delete(runs, 0, 0) == ["a", "b"]
    assert runs_to_delete(runs, 0, 1) == ["b"]
    assert runs_to_delete(runs, 1, 0) == ["a"]


def test_limits_above_the_count_delete_nothing() -> None:
    runs = [info("a", "Completed", "Passed", 1), info("b", "Errored", None, 2)]
    assert runs_to_delete(runs, 5, 10) == []
    assert runs_to_delete([], 0, 0) == []


def test_ties_break_by_name_and_missing_finish_times_are_oldest() -> None:
    runs = [
        info("exp-3", "Completed", "Passed", 7),
        info("exp-2", "Completed", "Passed", 7),
        info("exp-1", "Completed", "Passed", None),
    ]
    assert runs_to_delete(runs, 1, 0) == ["exp-1", "exp-2"]


def test_negative_limits_and_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        runs_to_delete([], -1, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        runs_to_delete([RunInfo("a", "Completed", "Passed", datetime(2025, 1, 1))], 0, 0)


# --- fold and combine -----------------------------------------------------------------------------


def run(
    name: str,
    phase: str,
    verdict: str | None = None,
    severity: str | None = None,
    seconds: float | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if verdict:
        status["verdict"] = verdict
    if severity:
        status["severity"] = severity
    if seconds is not None:
        status["recoverySeconds"] = seconds
    return {"metadata": {"name": name}, "status": status}


def summary_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return summarize([RunResult.from_status(r["status"]) for r in runs]).to_dict()


MIXED = [
    run("passed", "Completed", "Passed", "low", 4.0),
    run("failed", "Completed", "Failed", "medium", 40.0),
    run("timeout", "Completed", "Failed", "high"),
    run("aborted", "Aborted", None, "critical"),
    run("errored", "Errored"),
    run("skipped", "Skipped"),
]


@pytest.mark.parametrize("one", MIXED, ids=lambda r: str(r["metadata"]["name"]))
def test_fold_counts_like_the_summary(one: dict[str, Any]) -> None:
    totals = fold(None, one)
    expected = summary_of([one])
    assert (totals.runs, totals.passed, totals.failed, totals.errored) == (
        expected["runs"],
        expected["passed"],
        expected["failed"],
        expected["errored"],
    )
    assert (totals.worst_severity.value if totals.worst_severity else None) == expected.get("worstSeverity")
    assert totals.folded_names == (one["metadata"]["name"],)


def test_fold_is_idempotent() -> None:
    once = fold(None, MIXED[0])
    assert fold(once, MIXED[0]) is once
    assert fold(fold(once, MIXED[1]), MIXED[0]) == fold(once, MIXED[1])


def test_fold_refuses_active_runs_and_runs_without_a_name() -> None:
    with pytest.raises(ValueError, match="not finished"):
        fold(None, run("live", "Observing"))
    with pytest.raises(ValueError, match=r"metadata\.name"):
        fold(None, {"status": {"phase": "Completed"}})


def test_fold_keeps_bounded_samples_and_names() -> None:
    totals: RetiredTotals | None = None
    for i in range(300):
        totals = fold(totals, run(f"r{i}", "Completed", "Passed", "none", float(i)))
    assert totals is not None
    assert totals.runs == totals.passed == 300
    assert totals.recovery_samples == tuple(float(i) for i in range(100, 300))
    assert len(totals.recovery_samples) == MAX_RECOVERY_SAMPLES
    assert totals.folded_names == tuple(f"r{i}" for i in range(250, 300))
    assert len(totals.folded_names) == MAX_FOLDED_NAMES


def test_dict_round_trip_matches_the_api_model() -> None:
    totals = fold(fold(None, MIXED[0]), MIXED[3])
    data = totals.to_dict()
    assert data == {
        "runs": 2,
        "passed": 1,
        "failed": 0,
        "errored": 0,
        "worstSeverity": "critical",
        "recoverySamples": [4.0],
        "foldedRuns": ["passed", "aborted"],
    }
    assert RetiredHistory.model_validate(data).to_json() == data
    assert RetiredTotals.from_dict(data) == totals
    assert RetiredTotals.from_dict(None) == RetiredTotals() == RetiredTotals.from_dict({})
    assert "worstSeverity" not in RetiredTotals().to_dict()


@pytest.mark.parametrize("retired", [None, RetiredTotals()])
def test_combine_equals_summarize_when_nothing_was_retired(retired: RetiredTotals | None) -> None:
    assert combine(retired, MIXED) == summary_of(MIXED)
    assert combine(retired, []) == summary_of([])


def test_combine_skips_live_runs_already_folded() -> None:
    retired = fold(None, MIXED[1])
    assert combine(retired, MIXED) == summary_of(MIXED)  # "failed" counted once


def test_retired_worst_severity_and_recovery_survive() -> None:
    retired = fold(None, run("bad", "Completed", "Failed", "high", 90.0))
    live = [run("ok", "Completed", "Passed", "none", 3.0)]
    assert combine(retired, live) == {
        "runs": 2,
        "passed": 1,
        "failed": 1,
        "errored": 0,
        "worstSeverity": "high",
        "recoverySeconds": {"p50": 3.0, "p95": 90.0, "max": 90.0},
    }


def test_summary_survives_history_gc() -> None:
    """Run the handler's loop: create runs, apply the limits, fold what is deleted. The combined
    summary must equal the summary of every run that ever existed."""
    rng = random.Random(7)
    outcomes = [
        ("Completed", "Passed", "none"),
        ("Completed", "Passed", "low"),
        ("Completed", "Failed", "medium"),
        ("Completed", "Failed", "high"),
        ("Aborted", None, None),
        ("Errored", None, None),
        ("Skipped", None, None),
    ]
    everything: list[dict[str, Any]] = []
    live: list[dict[str, Any]] = []
    retired: RetiredTotals | None = None
    for i in range(150):
        phase, verdict, severity = rng.choice(outcomes)
        seconds = round(rng.uniform(1, 60), 1) if phase == "Completed" else None
        new = run(f"exp-{1000 + i}", phase, verdict, severity, seconds)
        new["status"]["completionTime"] = at(i)
        everything.append(new)
        live.append(new)
        infos = [
            RunInfo(
                r["metadata"]["name"],
                r["status"]["phase"],
                r["status"].get("verdict"),
                r["status"]["completionTime"],
            )
            for r in live
        ]
        doomed = runs_to_delete(infos, successful_limit=2, failed_limit=3)
        for name in doomed:
            retired = fold(retired, next(r for r in live if r["metadata"]["name"] == name))
        # a crash after the status write but before deleting: folding again changes nothing
        for name in doomed:
            assert fold(retired, next(r for r in live if r["metadata"]["name"] == name)) is retired
        live = [r for r in live if r["metadata"]["name"] not in doomed]
        assert len(live) <= 5
        assert combine(retired, live) == summary_of(everything)
    assert retired is not None and retired.runs > 0
    assert combine(RetiredTotals.from_dict(retired.to_dict()), live) == summary_of(everything)
    assert Severity(combine(retired, live)["worstSeverity"]) is Severity.HIGH
