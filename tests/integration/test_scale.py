"""Scale without starving: with hundreds of experiments loaded — scheduled and suspended — the
webhook still admits a new one and the kill switch still reverts a live fault in time. Before the
scheduler and the async runs, every scheduled experiment held an executor thread for life, and
at ~128 of them admission and the kill switch stopped answering."""

from __future__ import annotations

import datetime as dt
import signal
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.integration.test_policy import suite_policy_changed
from tests.support.chaos import Chaos, experiment, our_network_policies, partition
from tests.support.cluster import Cluster
from tests.support.net import free_port
from tests.support.operator import OperatorProcess, start_operator
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, ready_pods

LOADED = 320
SATURATION_WEBHOOK = "aftershock.saturation-test"


def _scheduled(name: str, *, suspend: bool) -> dict[str, Any]:
    body = experiment(name, app="nothing-matches", objective="5s", timeout="10s")
    body["spec"].update({"schedule": "@yearly", "suspend": suspend})
    return body


def test_admission_and_kill_switch_with_hundreds_of_experiments(
    cluster: Cluster, api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    chaos = Chaos(api, namespace)
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(namespace, deployment("held", replicas=2))
    wait_for(lambda: len(ready_pods(api, namespace, "held")) == 2, timeout=60, message="steady state")
    # every one of these goes through the real webhook; half scheduled, half suspended
    for i in range(LOADED):
        chaos.create_experiment(_scheduled(f"load-{i:03d}", suspend=i % 2 == 0))
    assert "aftershock.test" in {
        c.metadata.name
        for c in client.AdmissionregistrationV1Api(api).list_validating_webhook_configuration().items
    }, "the webhook must be in the path of these creates"
    # the scheduler has looked at every scheduled one (status.nextScheduleTime written)
    wait_for(
        lambda: (
            sum(
                1
                for e in chaos.objects.list_namespaced_custom_object(
                    "aftershock.dev", "v1alpha1", namespace, "chaosexperiments"
                )["items"]
                if (e.get("status") or {}).get("nextScheduleTime") or (e.get("spec") or {}).get("suspend")
            )
            >= LOADED
        ),
        timeout=120,
        message="every scheduled experiment planned",
    )
    # a live partition, held long enough that only the kill switch can end it
    chaos.create_experiment(experiment("hold", app="held", fault=partition("5m")))
    wait_for(lambda: len(our_network_policies(api, namespace)) == 1, timeout=30, message="the fault in place")
    # admission answers (a webhook that cannot answer in its timeout fails the create; its
    # latency is measured in benchmarks/admission_killswitch.py, not asserted here)
    created = chaos.create_experiment(experiment("newcomer", app="held", extra_spec={"suspend": True}))
    assert created["metadata"]["name"] == "newcomer"
    with suite_policy_changed(api, suspend=True):
        flipped = dt.datetime.now(dt.UTC)
        wait_for(lambda: our_network_policies(api, namespace) == [], timeout=10, message="the fault reverted")
        run = wait_for(lambda: chaos.finished_run("hold"), timeout=10, message="the run finished")
        assert run["status"]["phase"] == "Aborted" and run["status"]["reason"] == "PolicySuspended", run[
            "status"
        ]
        done = dt.datetime.fromisoformat(run["status"]["completionTime"].replace("Z", "+00:00"))
        assert (done - flipped).total_seconds() < 10
    assert (
        client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector="aftershock.dev/run").items == []
    )
    # and the operator is still healthy
    assert operator.healthy()


def test_a_saturated_run_pool_blocks_neither_admission_nor_the_kill_switch(
    cluster: Cluster, api: client.ApiClient, solo_namespace: str, tmp_path: Path
) -> None:
    """One run thread, parked by a failpoint inside another run: a new experiment is still
    admitted by this operator's webhook, and the kill switch still reverts a live partition."""
    ns = solo_namespace
    chaos = Chaos(api, ns)
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, deployment("held", replicas=2))
    apps.create_namespaced_deployment(ns, deployment("blocked", replicas=1))
    wait_for(
        lambda: len(ready_pods(api, ns, "held")) == 2 and len(ready_pods(api, ns, "blocked")) == 1,
        timeout=60,
        message="steady state",
    )
    op = start_operator(
        cluster.kubeconfig,
        tmp_path / "saturated.log",
        "--namespace",
        ns,
        "--identity",
        "saturated",
        "--webhook-port",
        str(free_port()),
        "--webhook-config",
        SATURATION_WEBHOOK,
        env={"AFTERSHOCK_RUN_THREADS": "1", "AFTERSHOCK_FAILPOINTS": "Observing@blocker=120"},
    )
    try:
        wait_for(lambda: _webhook_serves(api), timeout=30, message="this operator's webhook")
        chaos.create_experiment(experiment("hold", app="held", fault=partition("5m")))
        wait_for(lambda: len(our_network_policies(api, ns)) == 1, timeout=30, message="the fault in place")
        chaos.create_experiment(experiment("blocker", app="blocked"))
        wait_for(
            lambda: "failpoint Observing@blocker" in op.log(), timeout=30, message="the run thread parked"
        )
        # the only run thread sleeps inside the blocker's run; admission has a pool of its own
        created = chaos.create_experiment(experiment("newcomer", app="held", extra_spec={"suspend": True}))
        assert created["metadata"]["name"] == "newcomer"
        with suite_policy_changed(api, suspend=True):
            wait_for(lambda: our_network_policies(api, ns) == [], timeout=10, message="the fault reverted")
            run = wait_for(lambda: chaos.finished_run("hold"), timeout=10, message="the held run finished")
            assert run["status"]["phase"] == "Aborted", run["status"]
            assert run["status"]["reason"] == "PolicySuspended", run["status"]
        assert client.CoreV1Api(api).list_namespaced_pod(ns, label_selector="aftershock.dev/run").items == []
        assert op.healthy()
    finally:
        op.stop(signal.SIGKILL)  # the parked thread would hold a graceful stop for minutes
        admission = client.AdmissionregistrationV1Api(api)
        admission.delete_collection_validating_webhook_configuration(
            field_selector=f"metadata.name={SATURATION_WEBHOOK}"
        )
        admission.delete_collection_mutating_webhook_configuration(
            field_selector=f"metadata.name={SATURATION_WEBHOOK}"
        )


def _webhook_serves(api: client.ApiClient) -> bool:
    configs = (
        client.AdmissionregistrationV1Api(api)
        .list_validating_webhook_configuration(field_selector=f"metadata.name={SATURATION_WEBHOOK}")
        .items
    )
    return bool(configs and configs[0].webhooks)
