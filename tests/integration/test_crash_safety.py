"""The operator killed with SIGKILL in every phase, and two operators at once: every run still
ends, no slot runs twice, no fault is injected twice, and nothing is left behind."""

from __future__ import annotations

import datetime as dt
import itertools
import signal
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.support.chaos import Chaos, experiment, our_network_policies, partition
from tests.support.cluster import Cluster
from tests.support.identity import service_account_kubeconfig
from tests.support.npwatch import PolicyCreations
from tests.support.operator import (
    REVIEW_KEY_RULE,
    OperatorProcess,
    share_review_key,
    solo_operator,
    start_operator,
)
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, ready_pods

TERMINAL = {"Completed", "Aborted", "Skipped", "Errored"}


def _operator(cluster: Cluster, tmp_path: Path, namespace: str, identity: str, **env: str) -> OperatorProcess:
    return solo_operator(cluster.kubeconfig, tmp_path, namespace, identity, **env)


def _phase(chaos: Chaos, run: str) -> str | None:
    return (chaos.get("chaosruns", run).get("status") or {}).get("phase")


@pytest.mark.parametrize(
    ("phase", "failpoint", "same_identity"),
    [
        # held by the failpoint (a workload not yet steady alone left a window in which the
        # operator could move on between the test seeing Pending and the SIGKILL)
        ("Pending", "Pending=60", True),
        ("Injecting", "Injecting=60", True),
        ("Injected", "Injected=60", True),  # fault applied, not yet journaled
        ("Observing", "", False),  # restarted under a new identity: takes the stale claim over
        ("Reverting", "Reverting=60", True),
    ],
)
def test_sigkill_in_each_phase_then_restart(
    cluster: Cluster,
    api: client.ApiClient,
    solo_namespace: str,
    tmp_path: Path,
    phase: str,
    failpoint: str,
    same_identity: bool,
) -> None:
    ns = solo_namespace
    chaos = Chaos(api, ns)
    # Pending is held open by a workload that is not yet steady (its pods become Ready after 6 s)
    ready_delay = "6s" if phase == "Pending" else None
    client.AppsV1Api(api).create_namespaced_deployment(
        ns, deployment("app", replicas=2, ready_delay=ready_delay)
    )
    if phase != "Pending":
        wait_for(lambda: len(ready_pods(api, ns, "app")) == 2, timeout=60, message="steady state")
    env = {"AFTERSHOCK_FAILPOINTS": failpoint} if failpoint else {}
    first = _operator(cluster, tmp_path, ns, "first", **env)
    with PolicyCreations(api, ns) as creations:
        try:
            chaos.create_experiment(experiment("crash", app="app", fault=partition("6s"), timeout="30s"))
            run_name = wait_for(
                lambda: chaos.runs("crash") and chaos.runs("crash")[0]["metadata"]["name"],
                timeout=30,
                message="the run",
            )
            journal_phase = "Injecting" if phase == "Injected" else phase
            wait_for(
                lambda: _phase(chaos, run_name) == journal_phase, timeout=30, message=f"phase {journal_phase}"
            )
            if phase == "Injected":  # the policy exists, the journal does not know yet
                wait_for(
                    lambda: our_network_policies(api, ns) or None, timeout=15, message="the NetworkPolicy"
                )
        finally:
            first.stop(signal.SIGKILL)
        assert _phase(chaos, run_name) == journal_phase

        second = _operator(cluster, tmp_path, ns, "first" if same_identity else "second")
        try:
            run = wait_for(
                lambda: (
                    (r := chaos.get("chaosruns", run_name)).get("status", {}).get("phase") in TERMINAL and r
                ),
                timeout=90,
                message="the run to reach a terminal phase after the restart",
            )
            wait_for(
                lambda: our_network_policies(api, ns) == [],
                timeout=20,
                message="no NetworkPolicy of ours left",
            )
        finally:
            second.stop()
    status = run["status"]
    assert status["phase"] == "Completed", status
    assert status["verdict"] == "Passed" and "recoverySeconds" in status
    assert status["revertedAt"]
    assert len(chaos.runs("crash")) == 1  # the slot has exactly one run
    assert status["claimedBy"] == ("first" if same_identity else "second")
    # the fault was injected once: one NetworkPolicy object was ever created for the run
    assert [len(uids) for uids in creations.uids_by_run.values()] == [1], creations.uids_by_run
    assert client.CoreV1Api(api).list_namespaced_pod(ns, label_selector="aftershock.dev/run").items == []


def test_two_operators_share_the_work_without_doubling_it(
    cluster: Cluster, api: client.ApiClient, solo_namespace: str, tmp_path: Path
) -> None:
    ns = solo_namespace
    chaos = Chaos(api, ns)
    client.AppsV1Api(api).create_namespaced_deployment(ns, deployment("shared", replicas=2))
    wait_for(lambda: len(ready_pods(api, ns, "shared")) == 2, timeout=60, message="steady state")
    a = _operator(cluster, tmp_path, ns, "operator-a")
    b = _operator(cluster, tmp_path, ns, "operator-b")
    try:
        with PolicyCreations(api, ns) as creations:
            body = experiment("twice", app="shared", fault=partition("2s"), objective="10s", timeout="20s")
            body["spec"].update(
                schedule="@every 5s", successfulRunsHistoryLimit=20, failedRunsHistoryLimit=20
            )
            chaos.create_experiment(body)
            wait_for(lambda: len(chaos.runs("twice")) >= 4, timeout=60, message="4 scheduled runs")
            chaos.objects.patch_namespaced_custom_object(
                "aftershock.dev", "v1alpha1", ns, "chaosexperiments", "twice", {"spec": {"suspend": True}}
            )

            def all_finished() -> list[dict[str, Any]] | None:
                runs = chaos.runs("twice")
                return runs if all((r.get("status") or {}).get("phase") in TERMINAL for r in runs) else None

            runs = wait_for(all_finished, timeout=60, message="every run finished")
            wait_for(lambda: our_network_policies(api, ns) == [], timeout=20, message="no NetworkPolicy left")
    finally:
        a.stop()
        b.stop()
    slots = sorted(int(r["metadata"]["name"].rsplit("-", 1)[1]) for r in runs)
    assert len(slots) >= 4
    assert all(later - earlier == 5 for earlier, later in itertools.pairwise(slots)), slots
    completed = [r for r in runs if r["status"]["phase"] == "Completed"]
    assert len(completed) == len(runs), [(r["metadata"]["name"], r["status"]) for r in runs]
    assert {r["status"]["claimedBy"] for r in runs} <= {"operator-a", "operator-b"}
    # every run's fault was created exactly once, whichever operator claimed it
    uids = {r["metadata"]["uid"] for r in runs}
    assert set(creations.uids_by_run) == uids
    assert all(len(created) == 1 for created in creations.uids_by_run.values()), creations.uids_by_run


def test_run_found_past_its_deadline_after_downtime_is_reverted_and_closed(
    cluster: Cluster, api: client.ApiClient, solo_namespace: str, tmp_path: Path
) -> None:
    ns = solo_namespace
    chaos = Chaos(api, ns)
    client.AppsV1Api(api).create_namespaced_deployment(ns, deployment("late", replicas=1))
    wait_for(lambda: len(ready_pods(api, ns, "late")) == 1, timeout=60, message="steady state")
    first = _operator(cluster, tmp_path, ns, "first", AFTERSHOCK_FAILPOINTS="Observing=120")
    try:
        chaos.create_experiment(
            experiment("overdue", app="late", fault=partition("2s"), objective="2s", timeout="4s")
        )
        run_name = wait_for(
            lambda: (
                (runs := chaos.runs("overdue"))
                and _phase(chaos, runs[0]["metadata"]["name"]) == "Observing"
                and runs[0]["metadata"]["name"]
            ),
            timeout=30,
            message="the run Observing",
        )
    finally:
        first.stop(signal.SIGKILL)
    deadline = chaos.get("chaosruns", run_name)["status"]["deadline"]
    due = dt.datetime.fromisoformat(deadline.replace("Z", "+00:00"))
    wait_for(
        lambda: dt.datetime.now(dt.UTC) > due,
        timeout=60,
        message="the deadline to pass while no operator runs",
    )
    second = _operator(cluster, tmp_path, ns, "first")
    try:
        run = wait_for(
            lambda: (r := chaos.get("chaosruns", run_name)).get("status", {}).get("phase") in TERMINAL and r,
            timeout=60,
            message="the overdue run to be closed",
        )
        wait_for(lambda: our_network_policies(api, ns) == [], timeout=20, message="the fault reverted")
    finally:
        second.stop()
    status = run["status"]
    assert status["phase"] == "Aborted" and status["reason"] == "DeadlineExceeded", status
    assert any(f["title"] == "run closed after its deadline" for f in status["findings"]), status["findings"]
    assert "verdict" not in status


OPERATOR_RULES_WITHOUT_NP_DELETE: list[dict[str, Any]] = [
    {"apiGroups": ["aftershock.dev"], "resources": ["*"], "verbs": ["*"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "delete", "patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
    REVIEW_KEY_RULE,  # its copy of the suite's review key, in this namespace
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": ["get", "list", "watch"]},
    {
        "apiGroups": ["apps"],
        "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"],
        "verbs": ["get", "list", "watch"],
    },
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["get", "list", "watch"],
    },
    # its own Lease (claim liveness), as the chart grants in the release namespace
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    # may create NetworkPolicies, may not delete them: the revert is impossible
    {
        "apiGroups": ["networking.k8s.io"],
        "resources": ["networkpolicies"],
        "verbs": ["get", "list", "watch", "create"],
    },
]


def test_unrevertable_fault_still_releases_the_finalizer_and_says_so(
    cluster: Cluster, api: client.ApiClient, solo_namespace: str, tmp_path: Path
) -> None:
    ns = solo_namespace
    chaos = Chaos(api, ns)
    client.AppsV1Api(api).create_namespaced_deployment(ns, deployment("stuck", replicas=1))
    wait_for(lambda: len(ready_pods(api, ns, "stuck")) == 1, timeout=60, message="steady state")
    with service_account_kubeconfig(
        api, cluster.kubeconfig, ns, OPERATOR_RULES_WITHOUT_NP_DELETE, tmp_path / "restricted.kubeconfig"
    ) as restricted:
        share_review_key(api, ns)
        op = start_operator(
            restricted,
            tmp_path / "restricted.log",
            *("--namespace", ns, "--identity", "restricted", "--sweep-interval", "0"),
            "--review-key-namespace",
            ns,
        )
        try:
            chaos.create_experiment(experiment("sticky", app="stuck", fault=partition("5m")))
            run_name = wait_for(
                lambda: (
                    (runs := chaos.runs("sticky"))
                    and _phase(chaos, runs[0]["metadata"]["name"]) == "Observing"
                    and runs[0]["metadata"]["name"]
                ),
                timeout=30,
                message="the run Observing",
            )
            assert our_network_policies(api, ns)
            chaos.delete("chaosexperiments", "sticky")
            # the finalizer is released within a bounded time although the revert keeps failing
            wait_for(lambda: chaos.runs() == [], timeout=45, message="the run to be released and gone")
        finally:
            op.stop()
    aborted = [e for e in chaos.events_for(api, run_name) if e.reason == "Aborted"]
    assert aborted, [(e.reason, e.message) for e in chaos.events_for(api, run_name)]
    assert "could NOT be reverted" in aborted[0].message and "403" in aborted[0].message, aborted[0].message
    # clean up what the restricted operator could not (the session operator's sweeper would too)
    for policy in our_network_policies(api, ns):
        client.NetworkingV1Api(api).delete_namespaced_network_policy(policy.metadata.name, ns)


def test_rbac_denied_injection_ends_errored_not_retried(
    cluster: Cluster, api: client.ApiClient, solo_namespace: str, tmp_path: Path
) -> None:
    ns = solo_namespace
    chaos = Chaos(api, ns)
    client.AppsV1Api(api).create_namespaced_deployment(ns, deployment("locked", replicas=2))
    steady = wait_for(
        lambda: (found := ready_pods(api, ns, "locked")) and len(found) == 2 and found,
        timeout=60,
        message="steady",
    )
    before = {p.metadata.uid for p in steady}
    no_pod_delete = [
        {**rule, "verbs": [v for v in rule["verbs"] if v != "delete"]}
        if rule["resources"] == ["pods"]
        else rule
        for rule in OPERATOR_RULES_WITHOUT_NP_DELETE
    ]
    with service_account_kubeconfig(
        api, cluster.kubeconfig, ns, no_pod_delete, tmp_path / "no-delete.kubeconfig"
    ) as cfg:
        share_review_key(api, ns)
        op = start_operator(
            cfg,
            tmp_path / "no-delete.log",
            "--namespace",
            ns,
            "--identity",
            "no-delete",
            "--review-key-namespace",
            ns,
        )
        try:
            chaos.create_experiment(experiment("denied", app="locked"))
            run = wait_for(lambda: chaos.finished_run("denied"), timeout=60, message="the run to end")
        finally:
            op.stop()
    status = run["status"]
    assert status["phase"] == "Errored" and status["reason"] == "Forbidden", status
    assert "cannot delete resource" in status["message"] and "pods" in status["message"]
    assert "verdict" not in status  # the system under test is not blamed
    assert {p.metadata.uid for p in ready_pods(api, ns, "locked")} == before
