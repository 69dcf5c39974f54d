"""Native node faults end to end: nodeDrain and nodeTaint on kwok nodes of each test's own pool,
with the real scheduler, disruption controller and taint manager doing their parts."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.support.chaos import Chaos, experiment
from tests.support.cluster import Cluster
from tests.support.nodes import CordonWatch, Pool, node_pool
from tests.support.operator import OperatorProcess, solo_operator
from tests.support.policies import OPT_IN, apply_policy, extra_policy, permissive
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, is_ready, pods_of, ready_pods

Body = dict[str, Any]
RUN_LABEL = "aftershock.dev/run"
CORDONED_BY = "aftershock.dev/cordoned-by"
TAINT_PREFIX = "chaos.aftershock.dev/"


def drain(duration: str = "6s", give_up: str = "1m") -> Body:
    return {"duration": duration, "nodeDrain": {"gracePeriodSeconds": 0, "giveUpAfter": give_up}}


def deploy(
    api: client.ApiClient, namespace: str, pool: Pool, app: str, replicas: int, *, spread: bool = True
) -> None:
    body = pool.place(deployment(app, replicas=replicas), spread=spread)
    client.AppsV1Api(api).create_namespaced_deployment(namespace, body)
    wait_for(lambda: len(ready_pods(api, namespace, app)) == replicas, timeout=60, message=f"{app} Ready")


def nodes_of(api: client.ApiClient, namespace: str, app: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for pod in ready_pods(api, namespace, app):
        counts[pod.spec.node_name] = counts.get(pod.spec.node_name, 0) + 1
    return counts


def finished(chaos: Chaos, name: str, timeout: float = 90) -> Body:
    run: Body = wait_for(
        lambda: chaos.finished_run(name), timeout=timeout, message=f"a finished run of {name}"
    )
    return run


def unmarked(node: client.V1Node) -> bool:
    labels = node.metadata.labels or {}
    annotations = node.metadata.annotations or {}
    taints = node.spec.taints or []
    return (
        RUN_LABEL not in labels
        and CORDONED_BY not in annotations
        and not any(t.key.startswith(TAINT_PREFIX) for t in taints)
    )


class ReadyFloor:
    """The fewest Ready (and not terminating) pods of an app seen at any moment, from a watch."""

    def __init__(self, api: client.ApiClient, namespace: str, app: str) -> None:
        self.core = client.CoreV1Api(api)
        self.namespace, self.app = namespace, app
        self.ready: dict[str, bool] = {}
        self.floor: int | None = None
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with contextlib.suppress(Exception):
            selector = f"app={self.app}"
            listed = self.core.list_namespaced_pod(self.namespace, label_selector=selector)
            self.ready = {p.metadata.uid: is_ready(p) for p in listed.items}
            self.floor = sum(self.ready.values())
            for event in self._watch.stream(
                self.core.list_namespaced_pod,
                self.namespace,
                label_selector=selector,
                resource_version=listed.metadata.resource_version,
                timeout_seconds=300,
            ):
                pod = event["object"]
                if event["type"] == "DELETED":
                    self.ready.pop(pod.metadata.uid, None)
                else:
                    self.ready[pod.metadata.uid] = is_ready(pod)
                count = sum(self.ready.values())
                self.floor = count if self.floor is None else min(self.floor, count)

    def __enter__(self) -> ReadyFloor:
        self._thread.start()
        wait_for(lambda: self.floor is not None, timeout=10, message="the pod watch")
        return self

    def __exit__(self, *exc: object) -> None:
        self._watch.stop()


@contextlib.contextmanager
def plain_namespace(api: client.ApiClient, name: str) -> Iterator[str]:
    """A namespace that has not opted in to chaos."""
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")


def test_drain_evicts_through_the_budget_reschedules_and_uncordons(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    chaos = Chaos(api, namespace)
    with node_pool(api, 2) as pool:
        deploy(api, namespace, pool, "web", 4)
        assert sorted(nodes_of(api, namespace, "web").values()) == [2, 2]
        client.PolicyV1Api(api).create_namespaced_pod_disruption_budget(
            namespace,
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": "web"},
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}},
            },
        )
        wait_for(
            lambda: (
                (
                    client.PolicyV1Api(api)
                    .read_namespaced_pod_disruption_budget("web", namespace)
                    .status.disruptions_allowed
                    or 0
                )
                == 1
            ),
            timeout=30,
            message="the budget allowing one disruption",
        )
        before = {p.metadata.uid: p.spec.node_name for p in pods_of(api, namespace, "web")}
        with CordonWatch(api, pool.nodes) as cordons, ReadyFloor(api, namespace, "web") as floor:
            chaos.create_experiment(experiment("drain", app="web", fault=drain()))
            status = finished(chaos, "drain")["status"]
        assert status["phase"] == "Completed" and status["verdict"] == "Passed", status
        [target] = status["targets"]
        drained = target["name"]
        assert target["kind"] == "Node" and target["priorUnschedulable"] is False
        assert target["injectedAt"] and target["recoveredAt"]
        # only that node, cordoned once and uncordoned at the end
        assert cordons.changes == [(drained, True), (drained, False)], cordons.changes
        assert unmarked(pool.node(drained)) and not pool.node(drained).spec.unschedulable
        # exactly its two pods were evicted, and the budget was kept: never two unavailable at once
        evicted = {uid for uid, node in before.items() if node == drained}
        assert {d["uid"] for d in status["displaced"]} == evicted
        assert all(
            not d["collateral"] and d["owner"] == f"Deployment {namespace}/web" for d in status["displaced"]
        )
        assert floor.floor is not None and floor.floor >= 3, floor.floor
        now_on = {p.metadata.uid: p.spec.node_name for p in ready_pods(api, namespace, "web")}
        assert len(now_on) == 4 and not evicted & set(now_on) and drained not in now_on.values()
        assert status["recoverySeconds"] > 0 and not status["collateral"]


def test_every_replica_on_the_drained_node_is_a_finding_and_a_cordon_of_someone_else_stays(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    chaos = Chaos(api, namespace)
    with node_pool(api, 1) as pool:
        packed = pool.nodes[0]
        deploy(api, namespace, pool, "packed", 2, spread=False)
        spare = pool.add()
        client.CoreV1Api(api).patch_node(packed, {"spec": {"unschedulable": True}})  # someone else's cordon
        chaos.create_experiment(experiment("drain", app="packed", fault=drain(duration="3s")))
        status = finished(chaos, "drain")["status"]
        assert status["phase"] == "Completed" and status["verdict"] == "Failed", status
        assert [t["name"] for t in status["targets"]] == [packed]
        assert status["targets"][0]["priorUnschedulable"] is True
        [finding] = [f for f in status["findings"] if f["title"].startswith("no spread")]
        assert finding["severity"] == "high" and packed in finding["title"] and "all 2" in finding["detail"]
        assert status["severity"] == "high"
        node = pool.node(packed)
        assert node.spec.unschedulable is True and unmarked(node)  # still cordoned, as its owner left it
        assert nodes_of(api, namespace, "packed") == {spare: 2}


def test_replacements_with_no_room_elsewhere_are_a_finding(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    chaos = Chaos(api, namespace)
    with node_pool(api, 1) as pool:
        deploy(api, namespace, pool, "alone", 1)
        chaos.create_experiment(experiment("drain", app="alone", fault=drain(duration="10s"), objective="2s"))
        status = finished(chaos, "drain")["status"]
        assert status["phase"] == "Completed" and status["verdict"] == "Failed", status
        [finding] = [f for f in status["findings"] if f["title"].startswith("no room")]
        assert finding["severity"] == "high" and f"Deployment {namespace}/alone" in finding["title"]
        assert "could not be scheduled" in finding["detail"]
        # back on its node once it was uncordoned: recovered, but only after the fault ended
        assert status["recoverySeconds"] >= 10 and len(ready_pods(api, namespace, "alone")) == 1


def test_collateral_in_a_namespace_that_did_not_opt_in_is_refused_before_anything_is_touched(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    chaos = Chaos(api, namespace)
    other = f"{namespace[:50]}-o"
    with node_pool(api, 2) as pool, plain_namespace(api, other):
        deploy(api, namespace, pool, "web", 2)
        deploy(api, other, pool, "theirs", 2)
        before = {
            p.metadata.uid
            for ns in (namespace, other)
            for p in client.CoreV1Api(api).list_namespaced_pod(ns).items
        }
        with CordonWatch(api, pool.nodes) as cordons:
            chaos.create_experiment(experiment("drain", app="web", fault=drain()))
            status = finished(chaos, "drain")["status"]
        assert status["phase"] == "Skipped" and status["reason"] == "CollateralNotAllowed", status
        assert (
            f"namespace {other}" in status["message"]
            and "collateralNamespaces is optedIn" in status["message"]
        )
        assert cordons.changes == []
        after = {
            p.metadata.uid
            for ns in (namespace, other)
            for p in client.CoreV1Api(api).list_namespaced_pod(ns).items
        }
        assert after == before and all(unmarked(pool.node(n)) for n in pool.nodes)
        # once that namespace opts in, its pods may go too: recorded, and their recovery measured
        client.CoreV1Api(api).patch_namespace(other, {"metadata": {"labels": OPT_IN}})
        chaos.create_experiment(experiment("drain-again", app="web", fault=drain()))
        status = finished(chaos, "drain-again")["status"]
        assert status["phase"] == "Completed", status
        collateral = [d for d in status["displaced"] if d["collateral"]]
        assert [d["owner"] for d in collateral] == [f"Deployment {other}/theirs"]
        [recovery] = status["collateral"]
        assert recovery["workload"] == f"Deployment {other}/theirs" and recovery["pods"] == 1
        assert recovery["recovered"] is True and recovery["recoverySeconds"] >= 0
        assert len(ready_pods(api, other, "theirs")) == 2


def test_a_node_fault_a_policy_does_not_list_is_refused_at_admission(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    with extra_policy(api, allowedFaults=["podDelete"]), pytest.raises(ApiException) as info:
        Chaos(api, namespace).create_experiment(experiment("drain", app="web", fault=drain()))
    assert "nodeDrain is a node fault" in (info.value.body or ""), info.value.body


def test_taint_no_execute_evicts_the_pods_and_is_removed(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    chaos = Chaos(api, namespace)
    with node_pool(api, 2) as pool:
        deploy(api, namespace, pool, "web", 2)
        assert sorted(nodes_of(api, namespace, "web").values()) == [1, 1]
        before = {p.metadata.uid: p.spec.node_name for p in pods_of(api, namespace, "web")}
        chaos.create_experiment(
            experiment("taint", app="web", fault={"duration": "8s", "nodeTaint": {"effect": "NoExecute"}})
        )
        run = wait_for(lambda: (chaos.runs("taint") or [None])[0], timeout=30, message="the run")
        key = f"{TAINT_PREFIX}{run['metadata']['uid']}"

        def tainted() -> str | None:
            for name in pool.nodes:
                if any(t.key == key and t.effect == "NoExecute" for t in pool.node(name).spec.taints or []):
                    return name
            return None

        node = wait_for(tainted, timeout=60, message="the run's taint on a node")
        victim = next(uid for uid, n in before.items() if n == node)
        # the taint manager evicts the pod that does not tolerate it; it comes back on the other node
        wait_for(
            lambda: victim not in {p.metadata.uid for p in pods_of(api, namespace, "web")},
            timeout=30,
            message="the pod on the tainted node evicted",
        )
        status = finished(chaos, "taint")["status"]
        # (failed once in CI with a high finding not shown here: the findings are now in the message)
        assert status["phase"] == "Completed" and status["verdict"] == "Passed", status.get("findings")
        assert [d["uid"] for d in status["displaced"]] == [victim]
        assert all(unmarked(pool.node(n)) for n in pool.nodes)
        assert len(ready_pods(api, namespace, "web")) == 2


def test_the_kill_switch_uncordons_within_seconds(
    api: client.ApiClient, namespace: str, operator: OperatorProcess
) -> None:
    chaos = Chaos(api, namespace)
    with node_pool(api, 2) as pool:
        deploy(api, namespace, pool, "web", 2)
        chaos.create_experiment(experiment("held", app="web", fault=drain(duration="120s")))
        drained = wait_for(
            lambda: next((n for n in pool.nodes if pool.node(n).spec.unschedulable), None),
            timeout=60,
            message="a node cordoned",
        )
        body = permissive()
        body["spec"]["suspend"] = True
        apply_policy(api, body)
        try:
            switched = time.monotonic()
            wait_for(lambda: not pool.node(drained).spec.unschedulable, timeout=15, message="uncordoned")
            took = time.monotonic() - switched
            status = finished(chaos, "held", timeout=20)["status"]
        finally:
            apply_policy(api, permissive())
        assert took < 10, took
        assert status["phase"] == "Aborted" and status["reason"] == "PolicySuspended", status
        assert unmarked(pool.node(drained))


def test_operator_killed_mid_drain_then_the_restarted_operator_uncordons(
    cluster: Cluster, api: client.ApiClient, solo_namespace: str, tmp_path: Path
) -> None:
    ns = solo_namespace
    chaos = Chaos(api, ns)
    with node_pool(api, 2) as pool:
        deploy(api, ns, pool, "web", 2)
        # held after the drain, before Observing is journaled: killed there, the run resumes in
        # Injecting with its pods already moved off the node (the node's mark says it is the run's)
        first = solo_operator(cluster.kubeconfig, tmp_path, ns, "first", AFTERSHOCK_FAILPOINTS="Injected=60")
        try:
            chaos.create_experiment(experiment("drain", app="web", fault=drain(duration="8s")))
            drained = wait_for(
                lambda: next((n for n in pool.nodes if pool.node(n).spec.unschedulable), None),
                timeout=60,
                message="a node cordoned",
            )
            wait_for(
                lambda: nodes_of(api, ns, "web") == {next(n for n in pool.nodes if n != drained): 2},
                timeout=60,
                message="its pod evicted and replaced on the other node",
            )
            assert chaos.runs("drain")[0]["status"]["phase"] == "Injecting"
        finally:
            first.stop(signal.SIGKILL)
        assert pool.node(
            drained
        ).spec.unschedulable  # nobody drives the run: the cordon stays until someone does
        second = solo_operator(cluster.kubeconfig, tmp_path, ns, "first")  # the same identity, restarted
        try:
            status = finished(chaos, "drain", timeout=90)["status"]
        finally:
            second.stop()
        assert status["phase"] == "Completed" and status["revertedAt"], status
        node = pool.node(drained)
        assert not node.spec.unschedulable and unmarked(node)
        assert len(chaos.runs("drain")) == 1


def test_the_sweeper_lifts_marks_whose_run_is_gone_and_leaves_other_cordons(
    cluster: Cluster, api: client.ApiClient, solo_namespace: str, tmp_path: Path
) -> None:
    ns = solo_namespace
    gone = "0b5e2a7c-dead-4bee-8a11-000000000001"
    with node_pool(api, 0) as pool:
        orphan, theirs = pool.add(), pool.add()
        core = client.CoreV1Api(api)
        node = core.read_node(orphan)
        core.patch_node(
            orphan,
            {
                "metadata": {
                    "labels": {RUN_LABEL: gone, "aftershock.dev/run-namespace": ns},
                    "annotations": {CORDONED_BY: gone},
                },
                "spec": {
                    "unschedulable": True,
                    "taints": [
                        *(node.spec.taints or []),
                        {"key": f"{TAINT_PREFIX}{gone}", "effect": "NoSchedule"},
                    ],
                },
            },
        )
        core.patch_node(theirs, {"spec": {"unschedulable": True}})
        operator = solo_operator(cluster.kubeconfig, tmp_path, ns, "sweeper")
        try:
            wait_for(lambda: unmarked(pool.node(orphan)), timeout=30, message="the orphaned marks swept")
        finally:
            operator.stop()
        swept = pool.node(orphan)
        assert not swept.spec.unschedulable and [t.key for t in swept.spec.taints or []] == [
            "aftershock.test/pool"
        ]
        assert pool.node(theirs).spec.unschedulable is True  # a cordon aftershock did not make stays
