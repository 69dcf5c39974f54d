from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from aftershock.api.common import Finding as ApiFinding
from aftershock.api.run import ChaosRunStatus
from aftershock.core.severity import (
    Assessment,
    Finding,
    RecoveryObservation,
    Severity,
    Verdict,
    assess,
    format_seconds,
    verdict_for,
    worst,
)

ORDER = [Severity.NONE, Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL]


def obs(**kw: Any) -> RecoveryObservation:
    """A clean run (recovered in 2s, objective 5s, timeout 60s), overridden by kw."""
    base: dict[str, Any] = {
        "recovered": True,
        "recovery_seconds": 2.0,
        "objective_seconds": 5.0,
        "timeout_seconds": 60.0,
    }
    base.update(kw)
    return RecoveryObservation(**base)


# --- Severity ---------------------------------------------------------------------------------


def test_severity_values_are_the_design_strings() -> None:
    assert [s.value for s in Severity] == ["none", "low", "medium", "high", "critical"]


def test_severity_rank_follows_scale() -> None:
    assert [s.rank for s in ORDER] == [0, 1, 2, 3, 4]


def test_severity_compares_by_rank_not_alphabetically() -> None:
    # Alphabetically "critical" < "none"; by rank it is the other way round.
    assert Severity.CRITICAL > Severity.NONE
    assert Severity.NONE < Severity.LOW < Severity.MEDIUM < Severity.HIGH < Severity.CRITICAL
    assert Severity.HIGH >= Severity.HIGH
    assert Severity.LOW <= Severity.LOW
    assert not Severity.MEDIUM < Severity.LOW


def test_severity_sorted_and_max_use_rank() -> None:
    assert sorted([Severity.CRITICAL, Severity.NONE, Severity.MEDIUM]) == [
        Severity.NONE,
        Severity.MEDIUM,
        Severity.CRITICAL,
    ]
    assert max(Severity.LOW, Severity.HIGH, Severity.CRITICAL, Severity.NONE) is Severity.CRITICAL


def test_severity_compares_with_valid_plain_strings() -> None:
    assert Severity.NONE < "critical"
    assert Severity.HIGH > "medium"


def test_severity_comparison_with_unknown_string_raises() -> None:
    with pytest.raises(ValueError):
        _ = Severity.LOW < "bogus"


def test_severity_comparison_with_non_string_raises() -> None:
    with pytest.raises(TypeError):
        _ = Severity.LOW < 3


def test_severity_is_a_str_and_hashable() -> None:
    assert isinstance(Severity.HIGH, str)
    assert str(Severity.HIGH) == "high"
    assert {"high": 1}[Severity.HIGH] == 1


# --- worst / verdict --------------------------------------------------------------------------


def test_worst_of_empty_is_none() -> None:
    assert worst([]) is Severity.NONE


@pytest.mark.parametrize("i", range(len(ORDER)))
def test_worst_picks_highest(i: int) -> None:
    assert worst(ORDER[: i + 1]) is ORDER[i]
    assert worst(reversed(ORDER[: i + 1])) is ORDER[i]


def test_worst_accepts_strings_and_generators() -> None:
    assert worst(s for s in ["low", "high", "medium"]) is Severity.HIGH


def test_worst_rejects_unknown() -> None:
    with pytest.raises(ValueError):
        worst(["low", "catastrophic"])


@pytest.mark.parametrize(
    ("severity", "verdict"),
    [
        (Severity.NONE, Verdict.PASSED),
        (Severity.LOW, Verdict.PASSED),
        (Severity.MEDIUM, Verdict.FAILED),
        (Severity.HIGH, Verdict.FAILED),
        (Severity.CRITICAL, Verdict.FAILED),
    ],
)
def test_verdict_for(severity: Severity, verdict: Verdict) -> None:
    assert verdict_for(severity) is verdict
    assert verdict_for(severity.value) is verdict


def test_verdict_values() -> None:
    assert [v.value for v in Verdict] == ["Passed", "Failed"]
    assert Verdict("Passed") is Verdict.PASSED


# --- Finding ----------------------------------------------------------------------------------


def test_finding_wire_shape() -> None:
    f = Finding(
        severity=Severity.MEDIUM,
        title="Recovery slower than objective",
        detail="recovered in 7.4s, objective 5s",
    )
    assert f.to_json() == {
        "severity": "medium",
        "title": "Recovery slower than objective",
        "detail": "recovered in 7.4s, objective 5s",
    }


def test_finding_is_the_api_finding() -> None:
    """One type from rating to status: what assess returns is what ChaosRun status holds."""
    assert Finding is ApiFinding
    status = ChaosRunStatus(findings=list(assess(obs(recovered=False, recovery_seconds=None)).findings))
    assert ChaosRunStatus.model_validate(status.to_json()) == status


def test_finding_roundtrip_and_coercion() -> None:
    f = Finding(severity=Severity.HIGH, title="t", detail="d")
    assert Finding.model_validate(f.to_json()) == f
    coerced = Finding(severity="low", title="t", detail="d")  # type: ignore[arg-type]
    assert coerced.severity is Severity.LOW


def test_finding_is_frozen() -> None:
    f = Finding(severity=Severity.LOW, title="t", detail="d")
    with pytest.raises(ValidationError):
        f.title = "x"  # type: ignore[misc]


def test_finding_rejects_unknown_severity() -> None:
    with pytest.raises(ValidationError):
        Finding(severity="severe", title="t", detail="d")  # type: ignore[arg-type]


# --- format_seconds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [(7.4, "7.4s"), (5.0, "5s"), (5, "5s"), (0, "0s"), (300.0, "300s"), (1.23456, "1.235s"), (0.0004, "0s")],
)
def test_format_seconds(value: float, text: str) -> None:
    assert format_seconds(value) == text


# --- RecoveryObservation validation -----------------------------------------------------------


def test_observation_defaults() -> None:
    o = obs()
    assert o.reverted is True
    assert o.probe_failures_transient == 0
    assert o.probes_failed_at_end == ()
    assert o.revert_error is None and o.outside_damage is None and o.lost_capacity is None


def test_observation_copies_probe_list() -> None:
    names = ["http"]
    o = obs(probes_failed_at_end=names)
    names.append("later")
    assert o.probes_failed_at_end == ("http",)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"recovered": True, "recovery_seconds": None}, "recovery_seconds is missing"),
        ({"recovered": False, "recovery_seconds": 3.0}, "recovered is False"),
        ({"recovery_seconds": -1.0}, "recovery_seconds must be >= 0"),
        ({"objective_seconds": -1.0}, "objective_seconds"),
        ({"timeout_seconds": -1.0}, "timeout_seconds"),
        ({"probe_failures_transient": -1}, "probe_failures_transient"),
    ],
)
def test_observation_rejects_inconsistent_input(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        obs(**kw)


def test_observation_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        RecoveryObservation(True, 1.0, 5.0, 60.0)  # type: ignore[call-arg]


# --- assess: each rung of the scale -----------------------------------------------------------


def test_clean_run_is_none_passed_without_findings() -> None:
    a = assess(obs())
    assert a == Assessment(Severity.NONE, Verdict.PASSED, ())


def test_recovery_exactly_at_objective_is_within_it() -> None:
    a = assess(obs(recovery_seconds=5.0, objective_seconds=5.0))
    assert a.severity is Severity.NONE
    assert a.findings == ()


def test_instant_recovery_is_none() -> None:
    assert assess(obs(recovery_seconds=0.0, objective_seconds=0.0)).severity is Severity.NONE


def test_slower_than_objective_is_medium_with_evidence() -> None:
    a = assess(obs(recovery_seconds=7.4, objective_seconds=5.0))
    assert a.severity is Severity.MEDIUM
    assert a.verdict is Verdict.FAILED
    (f,) = a.findings
    assert f.severity is Severity.MEDIUM
    assert f.title == "Recovery slower than objective"
    assert f.detail == "recovered in 7.4s, objective 5s (2.4s over)"


def test_just_over_objective_is_medium() -> None:
    a = assess(obs(recovery_seconds=5.001, objective_seconds=5.0))
    assert a.severity is Severity.MEDIUM
    assert "recovered in 5.001s, objective 5s" in a.findings[0].detail


def test_transient_probe_failures_within_objective_is_low_passed() -> None:
    a = assess(obs(recovery_seconds=2.5, probe_failures_transient=3))
    assert a.severity is Severity.LOW
    assert a.verdict is Verdict.PASSED
    (f,) = a.findings
    assert f.title == "Transient probe failures"
    assert "failed 3 times" in f.detail
    assert "recovered in 2.5s (objective 5s)" in f.detail


def test_single_transient_failure_is_singular() -> None:
    (f,) = assess(obs(probe_failures_transient=1)).findings
    assert "failed 1 time during" in f.detail


def test_lost_capacity_is_low_with_evidence() -> None:
    a = assess(obs(lost_capacity="2 of 3 pods Ready for 1.8s"))
    assert a.severity is Severity.LOW
    assert a.verdict is Verdict.PASSED
    (f,) = a.findings
    assert f.title == "Capacity lost during the fault"
    assert f.detail == "2 of 3 pods Ready for 1.8s; recovered in 2s (objective 5s)"


def test_not_recovered_is_high_and_says_why() -> None:
    a = assess(
        obs(
            recovered=False,
            recovery_seconds=None,
            timeout_seconds=300.0,
            not_recovered_reason="replacement pod stuck in ImagePullBackOff",
            observed="2/3 pods Ready",
        )
    )
    assert a.severity is Severity.HIGH
    assert a.verdict is Verdict.FAILED
    (f,) = a.findings
    assert f.title == "Target did not recover within the timeout"
    assert "300s timeout" in f.detail
    assert "replacement pod stuck in ImagePullBackOff" in f.detail
    assert "last observed: 2/3 pods Ready" in f.detail


def test_not_recovered_without_reason_says_so() -> None:
    (f,) = assess(obs(recovered=False, recovery_seconds=None)).findings
    assert f.detail == "not recovered within the 60s timeout: no reason recorded"


def test_recovered_after_timeout_is_high_not_medium() -> None:
    a = assess(obs(recovery_seconds=90.0, timeout_seconds=60.0, objective_seconds=5.0))
    assert a.severity is Severity.HIGH
    assert [f.severity for f in a.findings] == [Severity.HIGH]
    assert a.findings[0].detail == "recovered only after 90s, beyond the 60s timeout"


def test_recovery_exactly_at_timeout_is_within_timeout() -> None:
    a = assess(obs(recovery_seconds=60.0, timeout_seconds=60.0, objective_seconds=5.0))
    assert a.severity is Severity.MEDIUM
    assert [f.title for f in a.findings] == ["Recovery slower than objective"]


def test_probe_stayed_failed_is_high_even_if_recovered_fast() -> None:
    a = assess(obs(probes_failed_at_end=["checkout-http", "error-rate"]))
    assert a.severity is Severity.HIGH
    (f,) = a.findings
    assert f.title == "Steady-state probe stayed failed"
    assert f.detail == "2 probes still failing at the end of the run: checkout-http, error-rate"


def test_single_probe_stayed_failed_is_singular() -> None:
    (f,) = assess(obs(probes_failed_at_end=["p"])).findings
    assert f.detail.startswith("1 probe still failing")


def test_not_reverted_is_critical_with_error() -> None:
    a = assess(obs(reverted=False, revert_error="NetworkPolicy delete: 403 Forbidden"))
    assert a.severity is Severity.CRITICAL
    assert a.verdict is Verdict.FAILED
    (f,) = a.findings
    assert f.title == "Fault could not be reverted"
    assert "403 Forbidden" in f.detail


def test_not_reverted_without_error_says_so() -> None:
    (f,) = assess(obs(reverted=False)).findings
    assert "no error recorded" in f.detail


def test_revert_error_ignored_when_reverted() -> None:
    assert assess(obs(reverted=True, revert_error="first attempt timed out")).findings == ()


def test_outside_damage_is_critical() -> None:
    a = assess(obs(outside_damage="pod payments-7f9 in namespace shop deleted (not a target)"))
    assert a.severity is Severity.CRITICAL
    (f,) = a.findings
    assert f.title == "Damage beyond the declared targets"
    assert "payments-7f9" in f.detail


def test_empty_strings_are_not_findings() -> None:
    assert assess(obs(outside_damage="", lost_capacity="")).findings == ()


# --- assess: combinations ---------------------------------------------------------------------


def test_all_findings_reported_worst_first() -> None:
    a = assess(
        obs(
            recovered=False,
            recovery_seconds=None,
            reverted=False,
            revert_error="boom",
            outside_damage="node drained",
            probes_failed_at_end=["p"],
            probe_failures_transient=2,
            lost_capacity="0/3 Ready",
        )
    )
    assert a.severity is Severity.CRITICAL
    assert [f.severity for f in a.findings] == [
        Severity.CRITICAL,
        Severity.CRITICAL,
        Severity.HIGH,
        Severity.HIGH,
        Severity.LOW,
        Severity.LOW,
    ]
    assert a.findings[0].title == "Fault could not be reverted"
    assert a.findings[2].title == "Target did not recover within the timeout"
    # Low findings name the missing recovery as context.
    assert "not recovered within the 60s timeout" in a.findings[4].detail


def test_slow_with_transient_failures_is_medium_and_keeps_low_evidence() -> None:
    a = assess(obs(recovery_seconds=8.0, probe_failures_transient=4))
    assert a.severity is Severity.MEDIUM
    assert a.verdict is Verdict.FAILED
    assert [f.severity for f in a.findings] == [Severity.MEDIUM, Severity.LOW]


def test_slow_and_probe_stayed_failed_is_high() -> None:
    a = assess(obs(recovery_seconds=8.0, probes_failed_at_end=["p"]))
    assert a.severity is Severity.HIGH
    assert [f.severity for f in a.findings] == [Severity.HIGH, Severity.MEDIUM]


def test_severity_is_always_worst_finding_and_verdict_consistent() -> None:
    cases = [
        obs(),
        obs(probe_failures_transient=1),
        obs(recovery_seconds=9.0),
        obs(probes_failed_at_end=["x"]),
        obs(reverted=False),
    ]
    for case in cases:
        a = assess(case)
        assert a.severity is worst(f.severity for f in a.findings)
        assert a.verdict is verdict_for(a.severity)
        for f in a.findings:
            assert f.detail  # every finding carries evidence


def test_assessment_to_dict() -> None:
    a = assess(obs(recovery_seconds=7.4))
    assert a.to_dict() == {
        "severity": "medium",
        "verdict": "Failed",
        "findings": [
            {
                "severity": "medium",
                "title": "Recovery slower than objective",
                "detail": "recovered in 7.4s, objective 5s (2.4s over)",
            }
        ],
    }


def test_core_reexports_the_api_scale() -> None:
    # One class per concept: what core rates is exactly what the status models hold.
    from aftershock.api import common

    assert Severity is common.Severity
    assert Verdict is common.Verdict
    assert worst is common.worst
