"""Schedules on a live cluster, network partitions, deletion mid-fault and the sweeper."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import uuid
from typing import Any

import pytest
from kubernetes import client

from tests.support.chaos import Chaos, experiment, our_network_policies, partition
from tests.support.cluster import Cluster
from tests.support.operator import OperatorProcess
from tests.support.tools import REPO
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, ready_pods

TERMINAL = {"Completed", "Aborted", "Skipped", "Errored"}


@pytest.fixture
def chaos(api: client.ApiClient, namespace: str, operator: OperatorProcess) -> Chaos:
    return Chaos(api, namespace)


def _time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _slot(run: dict[str, Any]) -> int:
    return int(run["metadata"]["name"].rsplit("-", 1)[1])


def test_every_5s_creates_runs_on_the_slots_and_keeps_history_limits(
    api: client.ApiClient, namespace: str, chaos: Chaos
) -> None:
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("ticker", replicas=2))
    wait_for(lambda: len(ready_pods(api, namespace, "ticker")) == 2, timeout=60, message="steady state")
    body = experiment("every5", app="ticker", objective="10s", timeout="20s")
    body["spec"].update(schedule="@every 5s", successfulRunsHistoryLimit=2, failedRunsHistoryLimit=1)
    created = chaos.create_experiment(body)
    anchor = int(_time(created["metadata"]["creationTimestamp"]).timestamp())

    def enough_runs() -> dict[str, Any] | None:
        exp = chaos.get("chaosexperiments", "every5")
        summary = (exp.get("status") or {}).get("summary") or {}
        return exp if summary.get("runs", 0) >= 4 else None

    exp = wait_for(enough_runs, timeout=60, message="4 finished runs")
    status = exp["status"]
    # nextScheduleTime is the next slot on the 5 s grid anchored at creation
    next_slot = int(_time(status["nextScheduleTime"]).timestamp())
    assert (next_slot - anchor) % 5 == 0
    last_slot = int(_time(status["lastScheduleTime"]).timestamp())
    assert next_slot - last_slot == 5

    # history limits: at most 2 successful finished runs remain (older ones folded into status.history)
    def limited() -> list[dict[str, Any]] | None:
        runs = chaos.runs("every5")
        finished = [r for r in runs if (r.get("status") or {}).get("phase") in TERMINAL]
        passed = [r for r in finished if r["status"].get("verdict") == "Passed"]
        return runs if len(passed) <= 2 and len(finished) - len(passed) <= 1 else None

    runs = wait_for(limited, timeout=20, message="history limits applied")
    slots = sorted(_slot(r) for r in runs)
    assert len(slots) == len(set(slots)), "a slot has two runs"
    assert all((s - anchor) % 5 == 0 for s in slots), (anchor, slots)
    assert all(r["status"].get("phase") != "Skipped" for r in runs if r.get("status"))
    exp = chaos.get("chaosexperiments", "every5")
    assert exp["status"]["summary"]["runs"] >= 4
    assert exp["status"]["history"]["runs"] >= 2  # the garbage-collected runs are still counted
    chaos.delete("chaosexperiments", "every5")


def test_network_partition_is_held_then_removed(api: client.ApiClient, namespace: str, chaos: Chaos) -> None:
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("web", replicas=3))
    wait_for(lambda: len(ready_pods(api, namespace, "web")) == 3, timeout=60, message="steady state")
    chaos.create_experiment(
        experiment("cut", app="web", mode="fixed", value=2, fault=partition("4s", "Ingress"))
    )

    def policy_in_place() -> list[client.V1NetworkPolicy] | None:
        return our_network_policies(api, namespace) or None

    policies = wait_for(policy_in_place, timeout=30, message="the NetworkPolicy")
    assert len(policies) == 1
    policy = policies[0]
    assert policy.spec.policy_types == ["Ingress"]
    assert not policy.spec.ingress  # no rule: nothing may reach the isolated pods
    run_uid = policy.metadata.labels["aftershock.dev/run"]
    # the policy is created with the first target; each target pod is then marked in turn
    wait_for(
        lambda: (
            len(
                client.CoreV1Api(api)
                .list_namespaced_pod(namespace, label_selector=f"aftershock.dev/run={run_uid}")
                .items
            )
            == 2
        ),
        timeout=10,
        message="both target pods isolated",
    )
    assert policy.metadata.owner_references[0].kind == "ChaosRun"

    run = wait_for(lambda: chaos.finished_run("cut"), timeout=60, message="the run to finish")
    status = run["status"]
    assert status["phase"] == "Completed" and status["verdict"] == "Passed", status
    assert status["revertedAt"] and len(status["targets"]) == 2
    held = (
        _time(status["revertedAt"]) - min(_time(t["injectedAt"]) for t in status["targets"])
    ).total_seconds()
    assert 4 <= held < 10, held
    assert our_network_policies(api, namespace) == []
    assert (
        client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector="aftershock.dev/run").items == []
    )


def test_deleting_the_experiment_mid_fault_removes_the_policy_and_aborts(
    api: client.ApiClient, namespace: str, chaos: Chaos
) -> None:
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("db", replicas=2))
    wait_for(lambda: len(ready_pods(api, namespace, "db")) == 2, timeout=60, message="steady state")
    chaos.create_experiment(experiment("long-cut", app="db", fault=partition("5m")))
    wait_for(lambda: our_network_policies(api, namespace) or None, timeout=30, message="the NetworkPolicy")
    run_name = chaos.runs("long-cut")[0]["metadata"]["name"]
    chaos.delete("chaosexperiments", "long-cut")
    wait_for(
        lambda: our_network_policies(api, namespace) == [], timeout=15, message="the NetworkPolicy to be gone"
    )
    wait_for(lambda: chaos.runs() == [], timeout=30, message="the run to be gone")
    assert (
        client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector="aftershock.dev/run").items == []
    )
    aborted = [e for e in chaos.events_for(api, run_name) if e.reason == "Aborted"]
    assert aborted and "deleted" in aborted[0].message


def test_sweeper_removes_an_orphaned_policy(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    net = client.NetworkingV1Api(api)
    ghost = str(uuid.uuid4())
    net.create_namespaced_network_policy(
        namespace,
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "aftershock-ghost", "labels": {"aftershock.dev/run": ghost}},
            "spec": {
                "podSelector": {"matchLabels": {"aftershock.dev/run": ghost}},
                "policyTypes": ["Ingress"],
            },
        },
    )
    unrelated = net.create_namespaced_network_policy(
        namespace,
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "not-ours"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
        },
    )
    wait_for(lambda: our_network_policies(api, namespace) == [], timeout=30, message="the sweeper")
    # the sweeper touches only what carries our label
    assert net.read_namespaced_network_policy("not-ours", namespace).metadata.uid == unrelated.metadata.uid
    assert "sweeper: removing NetworkPolicy" in operator.log()


def test_manual_run_names_only_the_experiment(api: client.ApiClient, namespace: str, chaos: Chaos) -> None:
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("manual", replicas=2))
    wait_for(lambda: len(ready_pods(api, namespace, "manual")) == 2, timeout=60, message="steady state")
    body = experiment("on-demand", app="manual")
    body["spec"]["suspend"] = True  # only manual runs
    chaos.create_experiment(body)
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "aftershock.dev",
        "v1alpha1",
        namespace,
        "chaosruns",
        {
            "apiVersion": "aftershock.dev/v1alpha1",
            "kind": "ChaosRun",
            "metadata": {"name": "by-hand", "labels": {"aftershock.dev/experiment": "on-demand"}},
            "spec": {"experiment": "on-demand"},
        },
    )
    run = wait_for(
        lambda: (r := chaos.get("chaosruns", "by-hand")).get("status", {}).get("phase") in TERMINAL and r,
        timeout=60,
        message="the manual run to finish",
    )
    assert run["status"]["phase"] == "Completed", run["status"]
    assert run["spec"]["target"]["selector"]["matchLabels"] == {"app": "manual"}  # filled in
    assert run["spec"]["scheduledTime"]


def test_aftershock_trigger_runs_an_experiment_now(
    cluster: Cluster, api: client.ApiClient, namespace: str, chaos: Chaos
) -> None:
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("triggered", replicas=2))
    wait_for(lambda: len(ready_pods(api, namespace, "triggered")) == 2, timeout=60, message="steady state")
    body = experiment("nightly", app="triggered")
    body["spec"].update(schedule="0 3 * * *", timeZone="Europe/Berlin")  # not due for hours
    chaos.create_experiment(body)
    cli = subprocess.run(
        [str(REPO / ".venv" / "bin" / "aftershock"), "trigger", "nightly", "-n", namespace],
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        text=True,
        capture_output=True,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert "chaosrun.aftershock.dev/nightly-" in cli.stdout
    run = wait_for(lambda: chaos.finished_run("nightly"), timeout=60, message="the triggered run")
    assert run["status"]["phase"] == "Completed", run["status"]
    assert run["metadata"]["labels"]["aftershock.dev/trigger"] == "manual"
    missing = subprocess.run(
        [str(REPO / ".venv" / "bin" / "aftershock"), "trigger", "no-such", "-n", namespace],
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        text=True,
        capture_output=True,
        timeout=60,
    )
    assert missing.returncode == 1 and "not found" in missing.stderr
