from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from aftershock.api.common import Condition
from aftershock.core.conditions import (
    READY,
    RECONCILING,
    STALLED,
    SUSPENDED,
    condition,
    format_time,
    get_condition,
    is_true,
    remove_condition,
    run_conditions,
    set_condition,
)
from aftershock.core.phases import RunPhase

T1 = datetime(2026, 1, 5, 10, 0, 0, tzinfo=UTC)
T2 = T1 + timedelta(minutes=5)
T3 = T1 + timedelta(minutes=9)
S1 = "2026-01-05T10:00:00Z"
S2 = "2026-01-05T10:05:00Z"
S3 = "2026-01-05T10:09:00Z"


def test_type_constants() -> None:
    assert (READY, RECONCILING, STALLED, SUSPENDED) == ("Ready", "Reconciling", "Stalled", "Suspended")


def test_format_time() -> None:
    assert format_time(T1) == S1
    assert format_time(T1 + timedelta(microseconds=900_000)) == S1  # metav1.Time has seconds
    assert format_time(datetime(2026, 1, 5, 11, 0, 0, tzinfo=timezone(timedelta(hours=1)))) == S1
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(datetime(2026, 1, 5))


def test_condition_builder() -> None:
    assert condition(READY, True, "Scheduled", "next run at 10:30", observed_generation=3) == {
        "type": "Ready",
        "status": "True",
        "reason": "Scheduled",
        "message": "next run at 10:30",
        "observedGeneration": 3,
    }
    assert condition(STALLED, False, "AsExpected") == {
        "type": "Stalled",
        "status": "False",
        "reason": "AsExpected",
        "message": "",
    }
    assert condition(READY, "Unknown", "Starting")["status"] == "Unknown"


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"type_": "ready condition"}, "condition type"),
        ({"type_": ""}, "condition type"),
        ({"status": "Yes"}, "status must be True, False or Unknown"),
        ({"reason": ""}, "reason"),
        ({"reason": "has spaces"}, "reason"),
        ({"reason": "1Starts"}, "reason"),
        ({"message": "x" * 32769}, "message"),
        ({"observed_generation": -1}, "observedGeneration"),
    ],
)
def test_condition_validation(kw: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"type_": READY, "status": True, "reason": "Ok", "message": ""}
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        condition(**args)


def test_prefixed_type_allowed() -> None:
    assert (
        condition("aftershock.dev/PolicyChecked", True, "Allowed")["type"] == "aftershock.dev/PolicyChecked"
    )


def test_set_new_condition_appends_with_now() -> None:
    result = set_condition([], condition(READY, True, "Ok", "fine"), T1)
    assert result == [
        {"type": "Ready", "status": "True", "reason": "Ok", "message": "fine", "lastTransitionTime": S1}
    ]


def test_set_condition_none_list() -> None:
    assert len(set_condition(None, condition(READY, True, "Ok"), T1)) == 1


def test_same_status_keeps_transition_time_but_updates_rest() -> None:
    first = set_condition([], condition(READY, False, "Waiting", "a", observed_generation=1), T1)
    second = set_condition(first, condition(READY, False, "StillWaiting", "b", observed_generation=2), T2)
    assert second == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "StillWaiting",
            "message": "b",
            "observedGeneration": 2,
            "lastTransitionTime": S1,
        }
    ]


def test_status_change_sets_new_transition_time() -> None:
    first = set_condition([], condition(READY, False, "Waiting"), T1)
    second = set_condition(first, condition(READY, True, "Ok"), T2)
    assert second[0]["lastTransitionTime"] == S2
    assert second[0]["status"] == "True"


def test_same_status_without_previous_time_gets_now() -> None:
    existing = [{"type": "Ready", "status": "True", "reason": "Ok", "message": ""}]
    assert set_condition(existing, condition(READY, True, "Ok"), T2)[0]["lastTransitionTime"] == S2


def test_transition_time_in_new_is_ignored() -> None:
    new = {**condition(READY, True, "Ok"), "lastTransitionTime": "1999-01-01T00:00:00Z"}
    assert set_condition([], new, T1)[0]["lastTransitionTime"] == S1


def test_other_conditions_kept_in_order() -> None:
    conds = set_condition([], condition(READY, True, "Ok"), T1)
    conds = set_condition(conds, condition(STALLED, False, "AsExpected"), T1)
    conds = set_condition(conds, condition(RECONCILING, False, "Done"), T1)
    conds = set_condition(conds, condition(STALLED, True, "EngineMissing", "litmus not installed"), T2)
    assert [c["type"] for c in conds] == ["Ready", "Stalled", "Reconciling"]
    assert conds[1]["lastTransitionTime"] == S2
    assert conds[0]["lastTransitionTime"] == S1


def test_input_not_mutated() -> None:
    original = set_condition([], condition(READY, False, "Waiting"), T1)
    snapshot = copy.deepcopy(original)
    result = set_condition(original, condition(READY, True, "Ok"), T2)
    assert original == snapshot
    assert result is not original
    result[0]["reason"] = "Changed"
    assert original[0]["reason"] == "Waiting"


def test_duplicate_types_in_input_collapse() -> None:
    existing = [
        {"type": "Ready", "status": "True", "reason": "A", "message": "", "lastTransitionTime": S1},
        {"type": "Ready", "status": "False", "reason": "B", "message": "", "lastTransitionTime": S1},
    ]
    result = set_condition(existing, condition(READY, True, "C"), T2)
    assert result == [
        {"type": "Ready", "status": "True", "reason": "C", "message": "", "lastTransitionTime": S1}
    ]


def test_set_condition_validates_new() -> None:
    with pytest.raises(ValueError):
        set_condition([], {"type": "Ready", "status": "true", "reason": "Ok", "message": ""}, T1)


def test_missing_message_defaults_empty() -> None:
    result = set_condition([], {"type": "Ready", "status": "True", "reason": "Ok"}, T1)
    assert result[0]["message"] == ""


def test_get_is_true_remove() -> None:
    conds = set_condition([], condition(READY, True, "Ok"), T1)
    conds = set_condition(conds, condition(SUSPENDED, False, "Active"), T1)
    found = get_condition(conds, READY)
    assert found is not None and found["reason"] == "Ok"
    found["reason"] = "mutated"
    assert conds[0]["reason"] == "Ok"  # get returns a copy
    assert get_condition(conds, STALLED) is None
    assert get_condition(None, READY) is None
    assert is_true(conds, READY)
    assert not is_true(conds, SUSPENDED)
    assert not is_true(conds, STALLED)
    assert [c["type"] for c in remove_condition(conds, READY)] == ["Suspended"]
    assert remove_condition(None, READY) == []
    assert len(conds) == 2


# --- ChaosRun conditions (kstatus: Reconciling -> InProgress, Stalled -> Failed, Ready -> Current) ---

RUN_PHASE_CONDITIONS = {
    # phase: (Ready, Reconciling, Stalled)
    RunPhase.PENDING: ("False", "True", "False"),
    RunPhase.INJECTING: ("False", "True", "False"),
    RunPhase.OBSERVING: ("False", "True", "False"),
    RunPhase.REVERTING: ("False", "True", "False"),
    RunPhase.COMPLETED: ("True", "False", "False"),
    RunPhase.ABORTED: ("True", "False", "False"),
    RunPhase.SKIPPED: ("True", "False", "False"),
    RunPhase.ERRORED: ("False", "False", "True"),
}


def _by_type(conds: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in conds}


def test_run_phase_table_covers_every_phase() -> None:
    assert set(RUN_PHASE_CONDITIONS) == set(RunPhase)


@pytest.mark.parametrize(("phase", "expected"), RUN_PHASE_CONDITIONS.items())
def test_run_conditions_per_phase(phase: RunPhase, expected: tuple[str, str, str]) -> None:
    conds = run_conditions(phase, "SomeReason", "what happened", 3, [], T1)
    assert [c["type"] for c in conds] == [READY, RECONCILING, STALLED]
    assert tuple(c["status"] for c in conds) == expected
    for cond in conds:
        assert cond["observedGeneration"] == 3
        assert cond["lastTransitionTime"] == S1
        Condition.model_validate(cond)  # what the API (and the status patch) accepts
        if cond["status"] == "True" or cond["type"] == READY:
            assert (cond["reason"], cond["message"]) == ("SomeReason", "what happened")
        else:
            assert (cond["reason"], cond["message"]) == (str(phase), "")


@pytest.mark.parametrize("phase", list(RunPhase))
def test_run_conditions_accept_the_phase_as_string(phase: RunPhase) -> None:
    assert run_conditions(str(phase), "R", "m", 1, [], T1) == run_conditions(phase, "R", "m", 1, [], T1)


@pytest.mark.parametrize("reason", [None, "", "not a reason", "1Starts", "x" * 1025])
def test_run_conditions_reason_falls_back_to_the_phase(reason: str | None) -> None:
    conds = _by_type(run_conditions(RunPhase.ERRORED, reason, "engine missing", 1, [], T1))
    assert conds[STALLED]["reason"] == "Errored"
    assert conds[READY]["reason"] == "Errored"
    assert conds[STALLED]["message"] == "engine missing"


def test_run_conditions_default_message_names_the_phase() -> None:
    conds = _by_type(run_conditions(RunPhase.OBSERVING, "Observing", None, 1, [], T1))
    assert conds[RECONCILING]["message"] == "the run is Observing"
    assert _by_type(run_conditions(RunPhase.COMPLETED, "Completed", "", 1, [], T1))[READY]["message"] == (
        "the run is Completed"
    )


def test_run_conditions_cap_the_message_at_the_api_limit() -> None:
    conds = _by_type(run_conditions(RunPhase.ERRORED, "Boom", "x" * 40000, 1, [], T1))
    assert len(conds[STALLED]["message"]) == 32768


def test_run_conditions_without_generation() -> None:
    for cond in run_conditions(RunPhase.PENDING, "Accepted", "resolving targets", None, None, T1):
        assert "observedGeneration" not in cond


def test_run_conditions_keep_transition_times_while_the_status_holds() -> None:
    pending = run_conditions(RunPhase.PENDING, "Accepted", "resolving targets", 1, [], T1)
    observing = run_conditions(RunPhase.OBSERVING, "Observing", "watching 1 pod", 2, pending, T2)
    by_type = _by_type(observing)
    # active throughout: nothing transitioned, only reason, message and generation moved on
    assert {c["lastTransitionTime"] for c in observing} == {S1}
    assert by_type[RECONCILING]["reason"] == "Observing"
    assert by_type[RECONCILING]["message"] == "watching 1 pod"
    assert by_type[RECONCILING]["observedGeneration"] == 2
    completed = _by_type(run_conditions(RunPhase.COMPLETED, "Completed", "recovered in 3s", 2, observing, T3))
    assert completed[READY]["lastTransitionTime"] == S3
    assert completed[RECONCILING]["lastTransitionTime"] == S3
    assert completed[STALLED]["lastTransitionTime"] == S1  # False before and after
    # writing the same phase again (a retried patch) changes nothing
    again = run_conditions(
        RunPhase.COMPLETED,
        "Completed",
        "recovered in 3s",
        2,
        list(completed.values()),
        T3 + timedelta(minutes=1),
    )
    assert _by_type(again) == completed


def test_run_conditions_errored_after_active() -> None:
    injecting = run_conditions(RunPhase.INJECTING, "Injecting", "podDelete on a", 1, [], T1)
    errored = _by_type(run_conditions(RunPhase.ERRORED, "RBACDenied", "cannot delete pods", 1, injecting, T2))
    assert errored[STALLED] == {
        "type": "Stalled",
        "status": "True",
        "reason": "RBACDenied",
        "message": "cannot delete pods",
        "observedGeneration": 1,
        "lastTransitionTime": S2,
    }
    assert errored[READY]["lastTransitionTime"] == S1  # False before and after
    assert errored[RECONCILING]["lastTransitionTime"] == S2


def test_run_conditions_keep_other_types_and_do_not_modify_the_input() -> None:
    other = {"type": "aftershock.dev/PolicyChecked", "status": "True", "reason": "Allowed", "message": "",
             "lastTransitionTime": S1}  # fmt: skip
    previous = [other]
    snapshot = copy.deepcopy(previous)
    conds = run_conditions(RunPhase.SKIPPED, "OutsideWindow", "no window open", 1, previous, T2)
    assert previous == snapshot
    assert conds[0] == other
    assert [c["type"] for c in conds[1:]] == [READY, RECONCILING, STALLED]


def test_run_conditions_reject_an_unknown_phase() -> None:
    with pytest.raises(ValueError):
        run_conditions("Running", "Running", "", 1, [], T1)
