"""Targets: StatefulSet and DaemonSet pods, the namespace rule, and `kubectl explain`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.support.chaos import Chaos, experiment
from tests.support.cluster import Cluster
from tests.support.operator import OperatorProcess
from tests.support.policies import OPT_IN
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, is_ready, pods_of


@pytest.fixture
def chaos(api: client.ApiClient, namespace: str, operator: OperatorProcess) -> Chaos:
    return Chaos(api, namespace)


def _pod_template(app: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": "registry.invalid/aftershock/fake:1"}]},
    }


def _finished(chaos: Chaos, name: str) -> dict[str, Any]:
    return wait_for(lambda: chaos.finished_run(name), timeout=90, message=f"a finished run of {name}")


def test_statefulset_pod_is_deleted_and_replaced_under_the_same_name(
    api: client.ApiClient, namespace: str, chaos: Chaos
) -> None:
    client.AppsV1Api(api).create_namespaced_stateful_set(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": {"name": "db", "labels": {"app": "db"}},
            "spec": {
                "replicas": 2,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": _pod_template("db"),
            },
        },
    )
    before = wait_for(
        lambda: (p := [x for x in pods_of(api, namespace, "db") if is_ready(x)]) and len(p) == 2 and p,
        timeout=90,
        message="2 Ready StatefulSet pods",
    )
    chaos.create_experiment(experiment("sts", app="db", kind="StatefulSet"))
    run = _finished(chaos, "sts")
    status = run["status"]
    assert status["phase"] == "Completed" and status["verdict"] == "Passed", status
    victim = status["targets"][0]
    after = {p.metadata.name: p for p in pods_of(api, namespace, "db")}
    # same name, new pod: the UID precondition made sure exactly the recorded pod was deleted
    assert victim["name"] in after
    assert after[victim["name"]].metadata.uid != victim["uid"]
    assert victim["uid"] in {p.metadata.uid for p in before}


def test_daemonset_pod_is_deleted_and_replaced(api: client.ApiClient, namespace: str, chaos: Chaos) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_daemon_set(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "agent", "labels": {"app": "agent"}},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {
                    **_pod_template("agent"),
                    "spec": {
                        **_pod_template("agent")["spec"],
                        "nodeSelector": {"type": "kwok"},
                    },
                },
            },
        },
    )

    def steady() -> bool:
        ds = apps.read_namespaced_daemon_set("agent", namespace)
        desired = ds.status.desired_number_scheduled or 0
        ready = [p for p in pods_of(api, namespace, "agent") if is_ready(p)]
        return desired > 0 and len(ready) == desired

    wait_for(steady, timeout=90, message="DaemonSet pods Ready on every node")
    chaos.create_experiment(experiment("ds", app="agent", kind="DaemonSet"))
    status = _finished(chaos, "ds")["status"]
    assert status["phase"] == "Completed" and status["verdict"] == "Passed", status
    assert status["targets"][0]["uid"] not in {p.metadata.uid for p in pods_of(api, namespace, "agent")}


def _admissions(operator: OperatorProcess, webhook: str, answer: str) -> float:
    """aftershock_admission_seconds_count for one webhook and answer (0 before the first)."""
    wanted = f'aftershock_admission_seconds_count{{answer="{answer}",webhook="{webhook}"}} '
    lines = [line for line in operator.metrics().splitlines() if line.startswith(wanted)]
    return float(lines[0].split()[-1]) if lines else 0.0


def test_target_in_another_namespace_is_refused_and_untouched(
    api: client.ApiClient, namespace: str, chaos: Chaos, operator: OperatorProcess, cluster: Cluster
) -> None:
    core = client.CoreV1Api(api)
    other = f"{namespace}-other"[:63]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other, labels=OPT_IN)))
    try:
        client.AppsV1Api(api).create_namespaced_deployment(other, deployment("victim", replicas=1))
        wait_for(
            lambda: any(is_ready(p) for p in pods_of(api, other, "victim")), timeout=60, message="Ready pod"
        )
        before = {p.metadata.uid for p in pods_of(api, other, "victim")}
        body = experiment("elsewhere", app="victim")
        body["spec"]["target"]["namespace"] = other
        refusals = _admissions(operator, "experiments", "refused")
        with pytest.raises(ApiException) as refused:
            chaos.create_experiment(body)
        assert refused.value.status == 403
        assert "does not allow cross-namespace targets" in json.loads(refused.value.body)["message"]
        if cluster.local:  # the webhook refused it, and its time is counted
            assert _admissions(operator, "experiments", "refused") == refusals + 1
        assert chaos.runs() == []
        assert {p.metadata.uid for p in pods_of(api, other, "victim")} == before
    finally:
        core.delete_namespace(other)


def test_operator_exposes_every_documented_metric(operator: OperatorProcess) -> None:
    text = operator.metrics()
    for name, kind in (
        ("aftershock_runs_total", "counter"),
        ("aftershock_recovery_seconds", "histogram"),
        ("aftershock_recovery_detection_lag_seconds", "histogram"),
        ("aftershock_active_faults", "gauge"),
        ("aftershock_injections_total", "counter"),
        ("aftershock_reconcile_errors_total", "counter"),
        ("aftershock_api_requests_total", "counter"),
        ("aftershock_admission_seconds", "histogram"),
    ):
        assert f"# TYPE {name} {kind}" in text, name


def test_kubectl_explain_describes_the_fields(cluster: Cluster, crds: None) -> None:
    out = cluster.kubectl("explain", "chaosexperiment.spec.recovery").stdout
    assert "Recovery time objective, e.g. 30s" in out
    assert "high-severity finding" in out
    target = cluster.kubectl("explain", "chaosexperiment.spec.target.mode").stdout
    assert "percent" in target
