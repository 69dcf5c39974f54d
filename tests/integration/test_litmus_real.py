"""Litmus for real: pod-delete and pod-network-latency on a cluster with Litmus 3.x installed.

Collected only with `--kubeconfig PATH --litmus` (see docs/litmus.md). On the local kwok cluster,
test_litmus.py runs real Litmus too, its pods' processes started by the tests' pod executor, with a
stand-in only for litmus-go's helpers (they need a container runtime).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from kubernetes import client

from aftershock.core import litmus
from tests.support.chaos import Chaos, experiment
from tests.support.cluster import Cluster
from tests.support.operator import OperatorProcess
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, ready_pods

pytestmark = pytest.mark.litmus_real

HUB = os.environ.get("AFTERSHOCK_LITMUS_HUB", "https://hub.litmuschaos.io/api/chaos/3.0.0")
SA = "aftershock-litmus"
EXPERIMENTS = ("pod-delete", "pod-network-latency")
# the permissions aftershock would provision for them: a real run also checks that table
RULES: list[dict[str, Any]] = [rule for name in EXPERIMENTS for rule in litmus.rules_for(name)]


@pytest.fixture
def litmus_ready(cluster: Cluster, api: client.ApiClient, namespace: str) -> str:
    missing = [
        name
        for name in (
            "chaosengines.litmuschaos.io",
            "chaosexperiments.litmuschaos.io",
            "chaosresults.litmuschaos.io",
        )
        if not client.ApiextensionsV1Api(api)
        .list_custom_resource_definition(field_selector=f"metadata.name={name}")
        .items
    ]
    assert not missing, f"Litmus 3.x is not installed in this cluster (missing {missing})"
    for name in EXPERIMENTS:
        cluster.kubectl("apply", "-n", namespace, "-f", f"{HUB}?file=faults/kubernetes/{name}/fault.yaml")
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": SA}})
    rbac.create_namespaced_role(namespace, {"metadata": {"name": SA}, "rules": RULES})
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": SA},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SA},
            "subjects": [{"kind": "ServiceAccount", "name": SA, "namespace": namespace}],
        },
    )
    # network helpers are privileged pods in this namespace
    core.patch_namespace(
        namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}}
    )
    body = deployment("web", replicas=2)
    body["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27-alpine"
    client.AppsV1Api(api).create_namespaced_deployment(namespace, body)
    wait_for(lambda: len(ready_pods(api, namespace, "web")) == 2, timeout=300, message="nginx Ready")
    return namespace


@pytest.mark.parametrize(
    ("name", "experiment_name", "env"),
    [
        ("real-delete", "pod-delete", {"FORCE": "true"}),
        ("real-latency", "pod-network-latency", {"NETWORK_LATENCY": "200"}),
    ],
)
def test_litmus_experiment_runs_for_real(
    api: client.ApiClient,
    litmus_ready: str,
    operator: OperatorProcess,
    name: str,
    experiment_name: str,
    env: dict[str, str],
) -> None:
    chaos = Chaos(api, litmus_ready)
    fault = {
        "duration": "30s",
        "litmus": {"experiment": experiment_name, "chaosServiceAccount": SA, "env": env},
    }
    chaos.create_experiment(experiment(name, app="web", fault=fault, objective="60s", timeout="5m"))
    run = wait_for(lambda: chaos.finished_run(name), timeout=900, message=f"{name} finished")
    status = run["status"]
    assert status["phase"] == "Completed", status
    assert status["engine"]["verdict"] == "Pass", status["engine"]
    assert status["recoverySeconds"] is not None
