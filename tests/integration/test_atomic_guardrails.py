"""Atomic guardrails (issue 12, class 4): runs released together are decided as if they came one
after another — also when two operator processes race for them. A burst of hand-made runs against
one Deployment never disrupts more at once than its PodDisruptionBudget, the policy's concurrency
limit or the workload's blast radius allows; the runs left over end Skipped naming the budget."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.support.chaos import GROUP, VERSION, Chaos, experiment
from tests.support.cluster import Cluster
from tests.support.operator import OperatorProcess, solo_operator
from tests.support.policies import extra_policy
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, pods_of, ready_pods

TERMINAL = {"Completed", "Aborted", "Skipped", "Errored"}
BURST = 8


def _operator(cluster: Cluster, tmp_path: Path, namespace: str, identity: str, **env: str) -> OperatorProcess:
    return solo_operator(cluster.kubeconfig, tmp_path, namespace, identity, **env)


def _steady(api: client.ApiClient, ns: str, app: str, replicas: int) -> set[str]:
    client.AppsV1Api(api).create_namespaced_deployment(ns, deployment(app, replicas=replicas))
    ready = wait_for(
        lambda: (found := ready_pods(api, ns, app)) and len(found) == replicas and found,
        timeout=60,
        message=f"{replicas} Ready pods of {app}",
    )
    return {p.metadata.uid for p in ready}


def _burst(chaos: Chaos, ns: str, app: str) -> list[dict[str, Any]]:
    """An experiment whose slots never come (@yearly), and BURST hand-made runs of it created at
    once; returns them once every one has ended."""
    body = experiment("burst", app=app, objective="20s", timeout="45s", extra_spec={"schedule": "@yearly"})
    chaos.create_experiment(body)
    names = [f"burst-{i}" for i in range(BURST)]

    def create(name: str) -> None:
        chaos.objects.create_namespaced_custom_object(
            GROUP,
            VERSION,
            ns,
            "chaosruns",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ChaosRun",
                "metadata": {"name": name},
                "spec": {"experiment": "burst"},
            },
        )

    with ThreadPoolExecutor(BURST) as pool:
        list(pool.map(create, names))

    def all_ended() -> list[dict[str, Any]] | None:
        runs = [chaos.get("chaosruns", n) for n in names]
        return runs if all((r.get("status") or {}).get("phase") in TERMINAL for r in runs) else None

    return wait_for(all_ended, timeout=180, interval=0.5, message="every run of the burst ended")


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _most_pods_at_once(runs: list[dict[str, Any]]) -> int:
    """The most pods disrupted at the same moment, from the journals: each injected target counts
    from its injection until its run ended."""
    edges: list[tuple[dt.datetime, int]] = []
    for run in runs:
        status = run["status"]
        for target in status.get("targets") or []:
            if target.get("injectedAt"):
                edges += [(_time(target["injectedAt"]), 1), (_time(status["completionTime"]), -1)]
    most = current = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):  # an end before a start at the same instant
        current += step
        most = max(most, current)
    return most


def _injected(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in runs if any(t.get("injectedAt") for t in r["status"].get("targets") or [])]


def test_a_burst_never_takes_a_deployment_below_its_pdb(
    cluster: Cluster, api: client.ApiClient, solo_namespace: str, tmp_path: Path
) -> None:
    ns = solo_namespace
    chaos = Chaos(api, ns)
    before = _steady(api, ns, "guarded", 4)
    pdbs = client.PolicyV1Api(api)
    pdbs.create_namespaced_pod_disruption_budget(
        ns,
        {
            "metadata": {"name": "guarded"},
            "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "guarded"}}},
        },
    )
    wait_for(
        lambda: (
            (pdbs.read_namespaced_pod_disruption_budget("guarded", ns).status.disruptions_allowed or 0) == 1
        ),
        timeout=30,
        message="the disruption controller to allow one disruption",
    )
    op = _operator(cluster, tmp_path, ns, "solo-a")
    try:
        # only the PDB binds: the blast radius and concurrency leave room for every run
        with extra_policy(
            api,
            respectDisruptionBudgets=True,
            blastRadius={"maxPodsPercent": 100},
            concurrency={"maxActiveRuns": 200, "maxActiveRunsPerNamespace": 100},
        ):
            runs = _burst(chaos, ns, "guarded")
    finally:
        op.stop()
    injected = _injected(runs)
    assert injected, [r["status"] for r in runs]
    assert _most_pods_at_once(runs) <= 1, [r["status"] for r in injected]
    for run in runs:
        status = run["status"]
        if run in injected:
            assert status["phase"] == "Completed", status
        else:
            assert status["phase"] == "Skipped" and status["reason"] == "DisruptionBudget", status
            assert "PodDisruptionBudget guarded" in status["message"], status
    # only the injected targets were deleted: nothing else of the Deployment was touched
    gone = before - {p.metadata.uid for p in pods_of(api, ns, "guarded")}
    hit = {t["uid"] for r in injected for t in r["status"]["targets"]}
    assert gone <= hit, (gone, hit)


def test_two_replicas_racing_never_exceed_concurrency_or_blast_radius(
    cluster: Cluster, api: client.ApiClient, solo_namespace: str, tmp_path: Path
) -> None:
    ns = solo_namespace
    chaos = Chaos(api, ns)
    before = _steady(api, ns, "racy", 4)
    replicas = [_operator(cluster, tmp_path, ns, name) for name in ("replica-a", "replica-b")]
    try:
        # 50 % of 4 pods: two at once, by blast radius (binding before the four runs per namespace)
        with extra_policy(
            api,
            blastRadius={"maxPodsPercent": 50},
            concurrency={"maxActiveRuns": 200, "maxActiveRunsPerNamespace": 4},
            respectDisruptionBudgets=False,
        ):
            runs = _burst(chaos, ns, "racy")
        _assert_within_two_pods(api, ns, runs, before)
        # every claim is released when its run ends: the ledger empties (nothing left to prune)
        wait_for(lambda: _ledger(api, ns) in (None, "[]"), timeout=20, message="an empty claim ledger")
    finally:
        for replica in replicas:
            replica.stop()


def _assert_within_two_pods(
    api: client.ApiClient, ns: str, runs: list[dict[str, Any]], before: set[str]
) -> None:
    injected = _injected(runs)
    assert injected, [r["status"] for r in runs]
    assert _most_pods_at_once(runs) <= 2, [r["status"] for r in injected]
    for run in runs:
        status = run["status"]
        if run in injected:
            assert status["phase"] == "Completed", (status.get("reason"), status.get("message"), status)
            assert status["claimedBy"] in ("replica-a", "replica-b"), status
        else:
            assert status["phase"] == "Skipped", (status.get("reason"), status.get("message"), status)
            assert status["reason"] in ("ConcurrencyLimit", "BlastRadiusExceeded"), status
            assert "blast radius" in status["message"] or "maxActiveRunsPerNamespace" in status["message"], (
                status
            )
    gone = before - {p.metadata.uid for p in pods_of(api, ns, "racy")}
    assert gone <= {t["uid"] for r in injected for t in r["status"]["targets"]}


def _ledger(api: client.ApiClient, ns: str) -> str | None:
    lease = client.CoordinationV1Api(api).read_namespaced_lease("aftershock-claims", ns)
    claims: str | None = (lease.metadata.annotations or {}).get("aftershock.dev/claims")
    return claims
