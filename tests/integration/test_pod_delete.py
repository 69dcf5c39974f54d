"""The walking skeleton end to end: ChaosExperiment → ChaosRun → pod delete → measured recovery."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.support.chaos import Chaos, experiment
from tests.support.cluster import Cluster
from tests.support.nodes import kwok_nodes
from tests.support.operator import OperatorProcess
from tests.support.podwatch import PodDeletions
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, is_ready, pods_of, ready_pods


def _time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _steady(api: client.ApiClient, namespace: str, app: str, replicas: int) -> list[client.V1Pod]:
    return wait_for(
        lambda: (p := ready_pods(api, namespace, app)) and len(p) == replicas and p,
        timeout=60,
        message=f"{replicas} Ready pods of {app}",
    )


def _finished(chaos: Chaos, name: str, timeout: float = 90) -> dict[str, Any]:
    return wait_for(lambda: chaos.finished_run(name), timeout=timeout, message=f"a finished run of {name}")


@pytest.fixture
def chaos(api: client.ApiClient, namespace: str, operator: OperatorProcess) -> Chaos:
    return Chaos(api, namespace)


def test_one_pod_deleted_recovers_passed_with_measured_time(
    api: client.ApiClient, namespace: str, chaos: Chaos, operator: OperatorProcess
) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(namespace, deployment("checkout", replicas=3))
    before = _steady(api, namespace, "checkout", 3)
    before_uids = {p.metadata.uid for p in before}

    with PodDeletions(api, namespace) as deletions:
        chaos.create_experiment(experiment("kill-one", app="checkout"))
        run = _finished(chaos, "kill-one")

    status = run["status"]
    assert status["phase"] == "Completed", status
    assert status["verdict"] == "Passed" and status["severity"] == "none", status
    assert status.get("findings", []) == []
    # exactly one pod was deleted: its uid is gone, the rest are untouched
    assert len(status["targets"]) == 1
    victim = status["targets"][0]
    assert victim["uid"] in before_uids
    after = pods_of(api, namespace, "checkout")
    after_uids = {p.metadata.uid for p in after}
    assert victim["uid"] not in after_uids
    assert before_uids - after_uids == {victim["uid"]}
    replacement = next(p for p in after if p.metadata.uid not in before_uids)
    assert is_ready(replacement)
    for key in ("injectedAt", "unhealthyAt", "recoveredAt"):
        assert victim.get(key), key

    # recoverySeconds agrees with the ground truth within 1 s
    ready_at = next(c.last_transition_time for c in replacement.status.conditions if c.type == "Ready")
    deleted_at = deletions.deleted[victim["uid"]]
    truth = (ready_at - deleted_at).total_seconds()
    assert abs(status["recoverySeconds"] - truth) <= 1.0, (status["recoverySeconds"], truth)
    # and with the sub-second truth of the watch (Ready seen minus deletion seen)
    precise = (deletions.ready[replacement.metadata.uid] - deleted_at).total_seconds()
    assert abs(status["recoverySeconds"] - precise) <= 0.5, (status["recoverySeconds"], precise)
    assert status["recoverySeconds"] > 0

    # the run is owned by the experiment and named after its slot
    assert run["metadata"]["ownerReferences"][0]["kind"] == "ChaosExperiment"
    assert run["metadata"]["name"].startswith("kill-one-")

    # the experiment reflects the run
    def experiment_updated() -> dict[str, Any] | None:
        exp = chaos.get("chaosexperiments", "kill-one")
        st = exp.get("status") or {}
        return exp if (st.get("lastRun") or {}).get("name") == run["metadata"]["name"] else None

    exp = wait_for(experiment_updated, timeout=30, message="experiment status with lastRun")
    st = exp["status"]
    assert st["observedGeneration"] == exp["metadata"]["generation"]
    assert st["lastRun"]["verdict"] == "Passed"
    assert st["summary"]["runs"] == 1 and st["summary"]["passed"] == 1
    assert st["summary"]["recoverySeconds"]["max"] == pytest.approx(status["recoverySeconds"])
    conditions = {c["type"]: c["status"] for c in st["conditions"]}
    assert conditions == {"Ready": "True", "Reconciling": "False", "Stalled": "False"}

    # a Kubernetes Event for each transition (those of a run under way are posted 2 s late, with
    # their true time, so a run that recovered within a second may end before they appear)
    wanted = {"Pending", "Injecting", "Observing", "Completed"}
    wait_for(
        lambda: wanted <= {e.reason for e in chaos.events_for(api, run["metadata"]["name"])},
        timeout=15,
        message="an Event for each transition",
    )

    # metrics: runs by verdict and severity, recovery histogram
    text = operator.metrics()
    assert (
        'aftershock_runs_total{fault="podDelete",phase="Completed",severity="none",verdict="Passed"}' in text
    )
    assert "aftershock_recovery_seconds_bucket" in text
    assert victim["name"] not in text  # no pod names as labels


@pytest.fixture
def isolated_node(api: client.ApiClient) -> Iterator[str]:
    """A kwok node of the test's own, so that tainting it disturbs nothing else."""
    name = f"kwok-iso-{uuid.uuid4().hex[:6]}"
    with kwok_nodes(api, [name], labels={"aftershock.dev/isolated": name}):
        yield name


def test_replacement_that_cannot_be_scheduled_fails_high(
    api: client.ApiClient, namespace: str, chaos: Chaos, isolated_node: str
) -> None:
    core = client.CoreV1Api(api)
    client.AppsV1Api(api).create_namespaced_deployment(
        namespace, deployment("pinned", replicas=2, node_selector={"aftershock.dev/isolated": isolated_node})
    )
    _steady(api, namespace, "pinned", 2)
    # no room left for a replacement: the only node it may use refuses new pods
    core.patch_node(
        isolated_node,
        {"spec": {"taints": [{"key": "aftershock.dev/full", "value": "yes", "effect": "NoSchedule"}]}},
    )
    chaos.create_experiment(experiment("stuck", app="pinned", objective="2s", timeout="8s"))
    run = _finished(chaos, "stuck")
    status = run["status"]
    assert status["phase"] == "Completed"
    assert status["verdict"] == "Failed" and status["severity"] == "high", status
    assert "recoverySeconds" not in status
    finding = status["findings"][0]
    assert finding["severity"] == "high"
    assert "8s" in finding["detail"]
    assert "cannot be scheduled" in finding["detail"] and "taint" in finding["detail"], finding


def test_recovery_slower_than_objective_is_medium(
    api: client.ApiClient, namespace: str, chaos: Chaos
) -> None:
    client.AppsV1Api(api).create_namespaced_deployment(
        namespace, deployment("sluggish", replicas=2, ready_delay="5s")
    )
    _steady(api, namespace, "sluggish", 2)
    chaos.create_experiment(experiment("slow", app="sluggish", objective="2s", timeout="40s"))
    run = _finished(chaos, "slow")
    status = run["status"]
    assert status["phase"] == "Completed"
    assert status["verdict"] == "Failed" and status["severity"] == "medium", status
    assert status["recoverySeconds"] > 2
    detail = status["findings"][0]["detail"]
    assert "objective 2s" in detail and f"{status['recoverySeconds']:g}"[:3] in detail, detail


@pytest.mark.parametrize(
    ("mode", "value", "replicas", "expected"),
    [("percent", 50, 4, 2), ("fixed", 2, 3, 2), ("all", None, 3, 3), ("percent", 10, 3, 1)],
)
def test_modes_delete_the_right_number_of_pods(
    api: client.ApiClient,
    namespace: str,
    chaos: Chaos,
    mode: str,
    value: int | None,
    replicas: int,
    expected: int,
) -> None:
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("fleet", replicas=replicas))
    before = {p.metadata.uid for p in _steady(api, namespace, "fleet", replicas)}
    chaos.create_experiment(experiment("modes", app="fleet", mode=mode, value=value))
    run = _finished(chaos, "modes")
    status = run["status"]
    assert status["phase"] == "Completed", status
    assert len(status["targets"]) == expected
    gone = before - {p.metadata.uid for p in pods_of(api, namespace, "fleet")}
    assert gone == {t["uid"] for t in status["targets"]}


def test_selector_matching_nothing_errors_and_deletes_nothing(
    api: client.ApiClient, namespace: str, chaos: Chaos
) -> None:
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("bystander", replicas=2))
    before = {p.metadata.uid for p in _steady(api, namespace, "bystander", 2)}
    chaos.create_experiment(experiment("nothing", app="does-not-exist"))
    run = _finished(chaos, "nothing")
    status = run["status"]
    assert status["phase"] == "Errored"
    assert status["reason"] == "NoTargetWorkload"
    assert "app=does-not-exist" in status["message"] and "nothing was injected" in status["message"]
    assert "verdict" not in status
    assert {p.metadata.uid for p in pods_of(api, namespace, "bystander")} == before


def test_deleting_experiment_while_observing_aborts_and_leaves_nothing(
    api: client.ApiClient, namespace: str, chaos: Chaos
) -> None:
    client.AppsV1Api(api).create_namespaced_deployment(
        namespace, deployment("patient", replicas=2, ready_delay="20s")
    )
    _steady(api, namespace, "patient", 2)
    chaos.create_experiment(experiment("doomed", app="patient", objective="5s", timeout="60s"))

    def observing() -> dict[str, Any] | None:
        runs = chaos.runs("doomed")
        return runs[0] if runs and (runs[0].get("status") or {}).get("phase") == "Observing" else None

    run = wait_for(observing, timeout=30, message="the run to be Observing")
    run_name = run["metadata"]["name"]
    client.CustomObjectsApi(api).delete_namespaced_custom_object(
        "aftershock.dev", "v1alpha1", namespace, "chaosexperiments", "doomed", propagation_policy="Foreground"
    )
    wait_for(lambda: not chaos.runs(), timeout=60, message="the run to be gone")
    wait_for(
        lambda: (
            not client.CustomObjectsApi(api).list_namespaced_custom_object(
                "aftershock.dev", "v1alpha1", namespace, "chaosexperiments"
            )["items"]
        ),
        timeout=60,
        message="the experiment to be gone",
    )
    events = chaos.events_for(api, run_name)
    aborted = [e for e in events if e.reason == "Aborted"]
    assert aborted, [(e.reason, e.message) for e in events]
    assert "deleted" in aborted[0].message
    assert not any(e.reason == "Completed" for e in events)


def test_run_printer_columns(cluster: Cluster, api: client.ApiClient, namespace: str, chaos: Chaos) -> None:
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("columns", replicas=1))
    _steady(api, namespace, "columns", 1)
    chaos.create_experiment(experiment("cols", app="columns"))
    _finished(chaos, "cols")
    runs_table = cluster.kubectl("get", "crun", "-n", namespace).stdout
    header = runs_table.splitlines()[0]
    for column in ("EXPERIMENT", "PHASE", "VERDICT", "SEVERITY", "AGE"):
        assert column in header, header
    assert "Completed" in runs_table and "Passed" in runs_table
    exp_table = wait_for(
        lambda: (out := cluster.kubectl("get", "chaos", "-n", namespace).stdout) and "Passed" in out and out,
        timeout=30,
        message="experiment columns",
    )
    assert "READY" in exp_table and "True" in exp_table
