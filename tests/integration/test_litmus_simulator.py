"""The Litmus test doubles behave as Litmus 3.x documents: the stand-in CRDs and the simulator.

The operator's Litmus engine is tested against these, so they are tested first, against the
contract in the simulator's docstring (status values, result naming and labels, the finalizer,
engineState stop, no status subresource).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.cluster import Cluster
from tests.support.litmus.crds import CRD_NAMES, install
from tests.support.litmus.objects import Litmus
from tests.support.litmus.simulator import (
    ENGINES,
    EXPERIMENTS,
    FINALIZER,
    GROUP,
    RESULTS,
    VERSION,
    LitmusSimulator,
    Outcome,
    litmus_experiment,
    release_engines,
)
from tests.support.waiting import wait_for

Body = dict[str, Any]


@pytest.fixture(scope="module")
def litmus_crds(cluster: Cluster, api: client.ApiClient) -> bool:
    """The Litmus CRDs, installed for this module and left installed; True if they are the real ones."""
    return install(cluster, api)


@pytest.fixture
def simulator(api: client.ApiClient, namespace: str, litmus_crds: bool) -> Iterator[LitmusSimulator]:
    sim = LitmusSimulator(api, namespace).start()
    yield sim
    sim.stop()
    assert not sim.errors, sim.errors
    release_engines(api, namespace)  # no Litmus left to remove its finalizer: let the namespace go


@pytest.fixture
def litmus(api: client.ApiClient, namespace: str) -> Litmus:
    return Litmus(api, namespace)


def engine(
    name: str,
    experiment: str = "pod-delete",
    *,
    env: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    finalizers: list[str] | None = None,
) -> Body:
    """A ChaosEngine like the one the operator creates: one experiment, env given per experiment."""
    env = {"TOTAL_CHAOS_DURATION": "10", **(env or {})}
    metadata: Body = {"name": name, "labels": labels or {}}
    if finalizers:
        metadata["finalizers"] = finalizers
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ChaosEngine",
        "metadata": metadata,
        "spec": {
            "engineState": "active",
            "jobCleanUpPolicy": "retain",
            "chaosServiceAccount": "litmus-admin",
            "experiments": [
                {
                    "name": experiment,
                    "spec": {"components": {"env": [{"name": k, "value": v} for k, v in env.items()]}},
                }
            ],
        },
    }


def looked_again(sim: LitmusSimulator) -> None:
    """Wait until the simulator has made a whole pass over what exists now (so it had its chance)."""
    start = sim.ticks
    wait_for(lambda: sim.ticks >= start + 2, timeout=10, message="two more simulator passes")


def test_crds_established_namespaced_without_status_subresource(
    api: client.ApiClient, litmus_crds: bool, litmus: Litmus
) -> None:
    ext = client.ApiextensionsV1Api(api)
    for name in CRD_NAMES:
        crd = ext.read_custom_resource_definition(name)
        assert any(c.type == "Established" and c.status == "True" for c in crd.status.conditions), name
        assert crd.spec.group == "litmuschaos.io" and crd.spec.scope == "Namespaced"
        [version] = crd.spec.versions
        assert (version.name, version.served, version.storage) == ("v1alpha1", True, True)
        # no /status endpoint: status is written on the main resource
        assert not (version.subresources and version.subresources.status), name
        if not litmus_crds:
            assert crd.metadata.labels.get("aftershock.dev/test-stand-in") == "true"

    # the validated ChaosEngine fields refuse what Litmus refuses
    for bad in (
        {"engineState": "paused"},
        {"appinfo": {"appkind": "Deployment"}},
        {"jobCleanUpPolicy": "keep"},
    ):
        body = engine(f"bad-{len(str(bad))}")
        body["spec"].update(bad)
        with pytest.raises(ApiException) as refused:
            litmus.create(ENGINES, body)
        assert refused.value.status == 422, bad
    # unknown spec fields are kept, not pruned (e.g. the removed annotationCheck)
    body = engine("keeps-unknown")
    body["spec"]["annotationCheck"] = "false"
    assert litmus.create(ENGINES, body)["spec"]["annotationCheck"] == "false"


def test_engine_runs_to_completed_pass_and_deletes_the_target_pod(
    api: client.ApiClient, namespace: str, simulator: LitmusSimulator, litmus: Litmus
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(
        namespace,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "victim", "labels": {"app": "victim"}},
            "spec": {"containers": [{"name": "app", "image": "registry.invalid/aftershock/fake:1"}]},
        },
    )
    litmus.create(EXPERIMENTS, litmus_experiment("pod-delete"))
    created = litmus.create(
        ENGINES,
        engine("run-1", env={"TARGET_PODS": "victim"}, labels={"example.com/owner": "r1"}),
    )
    uid = created["metadata"]["uid"]

    done = litmus.engine_when("run-1", "completed")
    assert done["spec"]["engineState"] == "stop"  # Litmus flips it itself
    assert done["metadata"]["finalizers"] == [FINALIZER]  # kept on a completed engine
    [entry] = done["status"]["experiments"]
    assert entry["name"] == "pod-delete" and entry["runner"] == "run-1-runner"
    assert (entry["status"], entry["verdict"]) == ("Completed", "Pass")
    assert (
        entry["experimentPod"].startswith("pod-delete-")
        and len(entry["experimentPod"]) == len("pod-delete-") + 6
    )
    assert entry["lastUpdateTime"]

    result = litmus.get(RESULTS, "run-1-pod-delete")
    assert result is not None
    labels = result["metadata"]["labels"]
    assert (
        labels["chaosUID"] == uid and labels["name"] == "pod-delete" and labels["example.com/owner"] == "r1"
    )
    assert not result["metadata"].get("ownerReferences") and not result["metadata"].get("finalizers")
    assert result["spec"] == {"engine": "run-1", "experiment": "pod-delete"}
    assert result["status"]["experimentStatus"] == {
        "phase": "Completed",
        "verdict": "Pass",
        "probeSuccessPercentage": "100",
    }
    assert result["status"]["history"] == {"passedRuns": 1, "failedRuns": 0, "stoppedRuns": 0}

    # pod-delete really deleted the pod named in TARGET_PODS
    wait_for(
        lambda: not any(p.metadata.name == "victim" for p in core.list_namespaced_pod(namespace).items),
        timeout=30,
        message="the target pod deleted",
    )
    assert simulator.seen == {uid: "run-1"}


def test_result_is_reused_by_the_next_engine_of_the_same_name(
    simulator: LitmusSimulator, litmus: Litmus
) -> None:
    litmus.create(EXPERIMENTS, litmus_experiment("pod-delete"))
    first = litmus.create(ENGINES, engine("again"))["metadata"]["uid"]
    litmus.engine_when("again", "completed")

    # deleting a completed engine: Litmus removes its finalizer, the engine goes, the result stays
    litmus.delete(ENGINES, "again")
    litmus.gone(ENGINES, "again")
    assert litmus.get(RESULTS, "again-pod-delete") is not None

    second = litmus.create(ENGINES, engine("again"))["metadata"]["uid"]
    litmus.engine_when("again", "completed")
    result = litmus.get(RESULTS, "again-pod-delete")
    assert result is not None
    assert result["metadata"]["labels"]["chaosUID"] == second != first
    assert result["status"]["history"]["passedRuns"] == 2
    assert simulator.seen == {first: "again", second: "again"}


def test_failed_probes_and_error_outcomes_per_engine(simulator: LitmusSimulator, litmus: Litmus) -> None:
    simulator.set_outcome(
        lambda e: Outcome.ERROR if e["metadata"]["name"] == "broken" else Outcome.FAIL_PROBES
    )
    litmus.create(EXPERIMENTS, litmus_experiment("pod-network-latency"))
    litmus.create(ENGINES, engine("probes", "pod-network-latency"))
    litmus.create(ENGINES, engine("broken", "pod-network-latency"))

    probes = litmus.engine_when("probes", "completed")
    assert probes["status"]["experiments"][0]["verdict"] == "Fail"
    result = litmus.get(RESULTS, "probes-pod-network-latency")
    assert result is not None
    assert result["status"]["experimentStatus"] == {
        "phase": "Completed_With_Probe_Failure",
        "verdict": "Fail",
        "probeSuccessPercentage": "50",
    }
    assert sorted(p["status"]["verdict"] for p in result["status"]["probeStatuses"]) == ["Failed", "Passed"]
    assert result["status"]["history"]["failedRuns"] == 1

    broken = litmus.engine_when("broken", "completed")
    assert broken["status"]["experiments"][0]["verdict"] == "Error"
    result = litmus.get(RESULTS, "broken-pod-network-latency")
    assert result is not None
    status = result["status"]["experimentStatus"]
    assert (status["phase"], status["verdict"]) == ("Error", "Error")
    assert status["errorOutput"]["errorCode"] == "TARGET_SELECTION_ERROR" and status["errorOutput"]["reason"]


def test_engine_state_stop_while_running_aborts(simulator: LitmusSimulator, litmus: Litmus) -> None:
    simulator.set_outcome(Outcome.HANG)
    litmus.create(EXPERIMENTS, litmus_experiment("pod-delete"))
    uid = litmus.create(ENGINES, engine("halt"))["metadata"]["uid"]

    def running() -> Body | None:
        current = litmus.get(ENGINES, "halt") or {}
        entries = (current.get("status") or {}).get("experiments") or [{}]
        return current if entries[0].get("status") == "Running" else None

    current = wait_for(running, timeout=30, message="the experiment Running")
    assert current["status"]["engineStatus"] == "initialized"
    assert current["status"]["experiments"][0]["verdict"] == "Awaited"
    assert FINALIZER in current["metadata"]["finalizers"]
    result = litmus.get(RESULTS, "halt-pod-delete")
    assert result is not None and result["metadata"]["labels"]["chaosUID"] == uid
    assert result["status"]["experimentStatus"] == {
        "phase": "Running",
        "verdict": "Awaited",
        "probeSuccessPercentage": "Awaited",
    }

    litmus.patch(ENGINES, "halt", {"spec": {"engineState": "stop"}})
    stopped = litmus.engine_when("halt", "stopped")
    entry = stopped["status"]["experiments"][0]
    assert (entry["status"], entry["verdict"]) == ("Forcefully Aborted", "Stopped")
    assert FINALIZER not in (stopped["metadata"].get("finalizers") or [])
    result = litmus.get(RESULTS, "halt-pod-delete")
    assert result is not None
    status = result["status"]
    assert (status["experimentStatus"]["phase"], status["experimentStatus"]["verdict"]) == (
        "Stopped",
        "Stopped",
    )
    assert status["history"]["stoppedRuns"] == 1


def test_no_litmus_finalizer_when_the_engine_already_has_one(
    simulator: LitmusSimulator, litmus: Litmus
) -> None:
    ours = "aftershock.dev/test-hold"
    litmus.create(EXPERIMENTS, litmus_experiment("pod-delete"))
    litmus.create(ENGINES, engine("held", finalizers=[ours]))
    done = litmus.engine_when("held", "completed")
    assert done["metadata"]["finalizers"] == [ours]

    # deletion: Litmus does its abort steps (engineStatus stopped) and leaves other finalizers alone
    litmus.delete(ENGINES, "held")
    stopped = litmus.engine_when("held", "stopped")
    assert stopped["metadata"]["deletionTimestamp"] and stopped["metadata"]["finalizers"] == [ours]
    litmus.patch(ENGINES, "held", {"metadata": {"finalizers": None}})
    litmus.gone(ENGINES, "held")


def test_dead_litmus_keeps_its_finalizer_after_delete(simulator: LitmusSimulator, litmus: Litmus) -> None:
    simulator.set_outcome(Outcome.DEAD)
    litmus.create(EXPERIMENTS, litmus_experiment("pod-delete"))
    litmus.create(ENGINES, engine("orphan", env={"TOTAL_CHAOS_DURATION": "1"}))
    initialized = litmus.engine_when("orphan", "initialized")
    assert initialized["metadata"]["finalizers"] == [FINALIZER]

    looked_again(simulator)
    assert litmus.get(RESULTS, "orphan-pod-delete") is None  # it never started the experiment

    litmus.delete(ENGINES, "orphan")
    looked_again(simulator)
    left = litmus.get(ENGINES, "orphan")
    assert left is not None and left["metadata"]["deletionTimestamp"]
    assert left["metadata"]["finalizers"] == [FINALIZER]
    assert left["status"]["engineStatus"] == "initialized"

    litmus.patch(ENGINES, "orphan", {"metadata": {"finalizers": None}})
    litmus.gone(ENGINES, "orphan")


def test_missing_chaos_experiment(simulator: LitmusSimulator, litmus: Litmus) -> None:
    litmus.create(ENGINES, engine("lost", "pod-delete"))  # no ChaosExperiment pod-delete here
    done = litmus.engine_when("lost", "completed")
    entry = done["status"]["experiments"][0]
    assert (entry["status"], entry["verdict"]) == ("ChaosExperiment Not Found", "Fail")
    assert done["spec"]["engineState"] == "stop"
    looked_again(simulator)
    assert litmus.get(RESULTS, "lost-pod-delete") is None


def test_pause_and_resume(simulator: LitmusSimulator, litmus: Litmus) -> None:
    litmus.create(EXPERIMENTS, litmus_experiment("pod-delete"))
    simulator.pause()
    litmus.create(ENGINES, engine("later"))
    looked_again(simulator)
    untouched = litmus.get(ENGINES, "later")
    assert (
        untouched is not None and not untouched.get("status") and not untouched["metadata"].get("finalizers")
    )
    simulator.resume()
    litmus.engine_when("later", "completed")
