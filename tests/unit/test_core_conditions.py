from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

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
    set_condition,
)

T1 = datetime(2026, 1, 5, 10, 0, 0, tzinfo=UTC)
T2 = T1 + timedelta(minutes=5)
S1 = "2026-01-05T10:00:00Z"
S2 = "2026-01-05T10:05:00Z"


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
