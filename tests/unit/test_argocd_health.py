"""docs/argocd-health.lua, run by a real Lua interpreter (lupa) over sample objects, as Argo CD would."""

from __future__ import annotations

from typing import Any

import pytest
from lupa import LuaRuntime

from tests.support.tools import REPO

SCRIPT = (REPO / "docs" / "argocd-health.lua").read_text()


def health(obj: dict[str, Any]) -> tuple[str, str]:
    lua = LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(SCRIPT)
    return str(result["status"]), str(result["message"])


def cond(type_: str, status: str = "True", reason: str = "", message: str = "") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def experiment(
    *conditions: dict[str, str], generation: int = 3, observed: int | None = 3, **spec: Any
) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": list(conditions)}
    if observed is not None:
        status["observedGeneration"] = observed
    return {
        "apiVersion": "aftershock.dev/v1alpha1",
        "kind": "ChaosExperiment",
        "metadata": {"name": "e", "generation": generation},
        "spec": spec,
        "status": status,
    }


def run(phase: str | None, **status: Any) -> dict[str, Any]:
    if phase is not None:
        status["phase"] = phase
    return {
        "apiVersion": "aftershock.dev/v1alpha1",
        "kind": "ChaosRun",
        "metadata": {"name": "e-1", "generation": 1},
        "spec": {"experiment": "e"},
        "status": {"observedGeneration": 1, **status},
    }


def test_ready_is_healthy() -> None:
    status, message = health(
        experiment(cond("Ready", message="next run at 10:00"), cond("Reconciling", "False"))
    )
    assert (status, message) == ("Healthy", "next run at 10:00")


def test_reconciling_is_progressing() -> None:
    status, message = health(experiment(cond("Ready", "False"), cond("Reconciling", reason="RunActive")))
    assert (status, message) == ("Progressing", "RunActive")


def test_stalled_is_degraded_even_if_ready_says_otherwise() -> None:
    status, message = health(
        experiment(cond("Ready", "True"), cond("Stalled", message="no ChaosPolicy allows this experiment"))
    )
    assert status == "Degraded" and "no ChaosPolicy" in message


def test_suspended_condition_or_spec_is_suspended() -> None:
    assert health(experiment(cond("Suspended", reason="Suspended"), cond("Ready", "False")))[0] == "Suspended"
    assert health(experiment(cond("Ready", "True"), suspend=True))[0] == "Suspended"


def test_stale_observed_generation_is_progressing() -> None:
    status, message = health(experiment(cond("Ready", "True"), generation=4, observed=3))
    assert status == "Progressing" and "generation 4" in message


def test_no_status_or_no_conditions_yet_is_progressing() -> None:
    bare = experiment()
    del bare["status"]
    assert health(bare)[0] == "Progressing"
    assert health(experiment(observed=None))[0] == "Progressing"


def test_ready_false_without_other_conditions_is_degraded() -> None:
    assert health(experiment(cond("Ready", "False", message="target missing")))[0] == "Degraded"


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (run("Completed", verdict="Passed", severity="none"), "Healthy"),
        (run("Completed", verdict="Passed", severity="low"), "Healthy"),
        (run("Completed", verdict="Failed", severity="high"), "Degraded"),
        (run("Errored", message="no workload matched"), "Degraded"),
        (run("Aborted", message="experiment deleted"), "Degraded"),
        (run("Skipped", message="outside every window"), "Suspended"),
        (run("Pending"), "Progressing"),
        (run("Injecting"), "Progressing"),
        (run("Observing"), "Progressing"),
        (run("Reverting"), "Progressing"),
        (run(None), "Progressing"),
    ],
    ids=lambda v: (
        v
        if isinstance(v, str)
        else (v["status"].get("phase") or "none") + "-" + str(v["status"].get("verdict", ""))
    ),
)
def test_run_phases(sample: dict[str, Any], expected: str) -> None:
    assert health(sample)[0] == expected


def test_run_messages_carry_the_verdict_and_reason() -> None:
    assert health(run("Completed", verdict="Failed", severity="high")) == (
        "Degraded",
        "Failed (severity high)",
    )
    assert health(run("Errored", message="RBAC denied")) == ("Degraded", "Errored: RBAC denied")
