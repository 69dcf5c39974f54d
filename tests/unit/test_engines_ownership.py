"""A 409 on create is "mine" only when the existing object carries the run's label."""

from __future__ import annotations

from typing import Any

import pytest

from aftershock.core.naming import LABEL_RUN, is_dns1123_subdomain
from aftershock.engines.base import ARTIFACT_NAME_TAKEN, EngineError, create_owned
from aftershock.engines.litmus import _result_ours
from aftershock.engines.network_partition import policy_name

RUN = "uid-1"


def labelled(uid: str | None, **extra: str) -> dict[str, Any]:
    labels = {**({LABEL_RUN: uid} if uid else {}), **extra}
    return {"metadata": {"name": "x", "uid": "obj-uid", "labels": labels}}


def test_created_by_this_call() -> None:
    assert create_owned(lambda: True, lambda: pytest.fail("no read needed"), RUN, "x") is True


def test_existing_with_the_runs_label_is_ours() -> None:
    assert create_owned(lambda: False, lambda: labelled(RUN), RUN, "x") is False


@pytest.mark.parametrize(
    "existing", [labelled(None), labelled("uid-2"), {"metadata": {}}], ids=["none", "other", "bare"]
)
def test_existing_without_the_runs_label_ends_the_run(existing: dict[str, Any]) -> None:
    with pytest.raises(EngineError) as error:
        create_owned(lambda: False, lambda: existing, RUN, "a NetworkPolicy named p in namespace shop")
    assert error.value.reason == ARTIFACT_NAME_TAKEN == "ArtifactNameTaken"
    assert "a NetworkPolicy named p in namespace shop already exists and was not made by this run" in str(
        error.value
    )
    assert "left untouched" in error.value.message


def test_deleted_between_create_and_read_is_created_again() -> None:
    answers = iter([False, True])
    assert create_owned(lambda: next(answers), lambda: None, RUN, "x") is True


def test_a_name_that_keeps_flapping_gives_up() -> None:
    with pytest.raises(EngineError, match="kept being created and deleted"):
        create_owned(lambda: False, lambda: None, RUN, "x")


def test_litmus_results_are_deleted_only_when_they_speak_for_the_run() -> None:
    engine = labelled(RUN)
    assert _result_ours(labelled(RUN), None, RUN)
    assert _result_ours(labelled(None, chaosUID="obj-uid"), engine, RUN)
    assert not _result_ours(labelled(None, chaosUID="obj-uid"), None, RUN)  # whose engine? unknown
    assert not _result_ours(labelled(None, chaosUID="other"), engine, RUN)
    assert not _result_ours(labelled(None), engine, RUN)
    assert not _result_ours(labelled("uid-2"), None, RUN)


@pytest.mark.parametrize("run", ["exp-1766131200", "r" * 253, "a" * 241 + "-" + "1" * 11])
@pytest.mark.parametrize("run_namespace", ["shop", "team-a"])
def test_partition_policy_names_are_valid_objects_names(run: str, run_namespace: str) -> None:
    name = policy_name(run, run_namespace, "shop")
    assert is_dns1123_subdomain(name) and name.startswith("aftershock-")
    assert name != policy_name(run[:-1] + "7", run_namespace, "shop")  # never another run's policy


def test_partition_policy_name_of_a_short_run_in_its_own_namespace() -> None:
    assert policy_name("exp-1766131200", "shop", "shop") == "aftershock-exp-1766131200"
