"""Admission's pure parts: a fault kind without an engine is refused before anything is looked up,
and the SubjectAccessReview asks for exactly what the fault's engine declares."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from aftershock.api.experiment import Fault
from aftershock.cluster.store import NotSynced
from aftershock.core.litmus import rules_for
from aftershock.engines.admission import Refused, check_experiment, engine_or_refuse, required_permissions
from aftershock.engines.litmus import rule_permissions
from aftershock.engines.pod_delete import PodDeleteEngine
from aftershock.engines.registry import REGISTRY, build, engine_of

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
ONLY_POD_DELETE = build([PodDeleteEngine()])


class Untouchable:
    """A Kube stand-in that fails the test if admission asks the cluster anything."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"admission called kube.{name} for a fault it must refuse first")


def spec(fault: dict[str, Any], **target: Any) -> dict[str, Any]:
    return {
        "target": {"kind": "Deployment", "selector": {"matchLabels": {"app": "shop"}}, **target},
        "fault": fault,
    }


PARTITION = {"duration": "30s", "networkPartition": {}}


def test_an_experiment_whose_fault_has_no_engine_is_refused_before_anything_else() -> None:
    with pytest.raises(Refused) as refused:
        check_experiment(
            Untouchable(),  # type: ignore[arg-type]
            spec(PARTITION),
            namespace="shop",
            user={"username": "alice"},
            operator_namespace=None,
            now=NOW,
            registry=ONLY_POD_DELETE,
        )
    message = str(refused.value)
    assert "fault kind networkPartition cannot be used" in message
    assert "no fault engine for it" in message and "podDelete" in message


def test_engine_or_refuse() -> None:
    fault = Fault.model_validate(PARTITION)
    assert engine_or_refuse(fault) is REGISTRY["networkPartition"]
    with pytest.raises(Refused, match="networkPartition"):
        engine_or_refuse(fault, ONLY_POD_DELETE)


def _needed(fault: dict[str, Any], *, cross_namespace: bool) -> set[tuple[str, str, str, bool]]:
    model = Fault.model_validate(fault)
    return {
        (p.verb, p.group, p.resource, p.namespaced)
        for p in required_permissions(engine_of(model), model, cross_namespace=cross_namespace)
    }


def test_in_its_own_namespace_too_the_author_needs_the_engines_damage() -> None:
    # an aftershock.dev role must not stand in for rights on pods (issue 12, class 3)
    assert _needed({"podDelete": {}}, cross_namespace=False) == {("delete", "", "pods", True)}
    assert _needed(PARTITION, cross_namespace=False) == {
        ("create", "networking.k8s.io", "networkpolicies", True),
        ("patch", "", "pods", True),
    }
    pod_litmus = {"duration": "30s", "litmus": {"experiment": "pod-delete", "chaosServiceAccount": "sa"}}
    assert _needed(pod_litmus, cross_namespace=False) == {("create", "litmuschaos.io", "chaosengines", True)}


def test_across_namespaces_the_author_needs_the_engines_damage() -> None:
    assert _needed({"podDelete": {}}, cross_namespace=True) == {("delete", "", "pods", True)}
    assert _needed(PARTITION, cross_namespace=True) == {
        ("create", "networking.k8s.io", "networkpolicies", True),
        ("patch", "", "pods", True),
    }


def test_node_faults_are_reviewed_even_in_their_own_namespace_and_cluster_wide() -> None:
    node = {"duration": "30s", "litmus": {"experiment": "node-drain", "chaosServiceAccount": "sa"}}
    assert _needed(node, cross_namespace=False) == {
        ("create", "litmuschaos.io", "chaosengines", True),
        ("patch", "", "nodes", False),
    }


def test_what_a_run_would_grant_is_always_reviewed_rule_by_rule() -> None:
    provisioned = {"duration": "30s", "litmus": {"experiment": "pod-delete", "provisionServiceAccount": True}}
    needed = _needed(provisioned, cross_namespace=False)
    assert {
        ("create", "", "serviceaccounts", True),
        ("create", "rbac.authorization.k8s.io", "roles", True),
        ("create", "rbac.authorization.k8s.io", "rolebindings", True),
        ("create", "litmuschaos.io", "chaosengines", True),
    } <= needed
    # the author must hold every rule the provisioned Role grants: no escalation through it
    role_rules = {
        (verb, group, resource.partition("/")[0], True)
        for rule in rules_for("pod-delete")
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert role_rules and role_rules <= needed
    assert ("delete", "", "pods", True) in needed and ("create", "batch", "jobs", True) in needed
    assert _needed(provisioned, cross_namespace=True) == needed


def test_rule_permissions_split_subresources() -> None:
    rules = [{"apiGroups": [""], "resources": ["pods/log", "events"], "verbs": ["get", "create"]}]
    found = {(p.verb, p.resource, p.subresource) for p in rule_permissions(rules)}
    assert found == {
        ("get", "pods", "log"),
        ("create", "pods", "log"),
        ("get", "events", None),
        ("create", "events", None),
    }


# --- cache for "yes", live reads for anything else ---------------------------------------------

OPT_IN = {"aftershock.dev/chaos": "enabled"}
POLICY = {
    "apiVersion": "aftershock.dev/v1alpha1",
    "kind": "ChaosPolicy",
    "metadata": {"name": "p"},
    "spec": {
        "namespaces": {"selector": {"matchLabels": OPT_IN}},
        "allowedFaults": ["podDelete"],
        "blastRadius": {"maxPodsPercent": 100},
    },
}
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "shop", "namespace": "shop", "uid": "d1", "labels": {"app": "shop"}},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "shop"}}},
    "status": {"replicas": 2, "readyReplicas": 2},
}


class Cluster:
    """Live reads: what the API server answers, counted."""

    def __init__(self, policies: list[dict[str, Any]], workloads: list[dict[str, Any]]) -> None:
        self._policies, self._workloads, self.lists = policies, workloads, 0

    def find_namespace_labels(self, name: str) -> dict[str, str]:
        return dict(OPT_IN)

    def can_i(self, *_: Any, **__: Any) -> bool:
        return True

    def list_policies(self) -> list[dict[str, Any]]:
        self.lists += 1
        return self._policies

    def list_workloads(self, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        self.lists += 1
        return self._workloads


class Cached:
    def __init__(self, policies: list[dict[str, Any]] | None, workloads: list[dict[str, Any]]) -> None:
        self._policies, self._workloads = policies, workloads

    def policies(self) -> list[dict[str, Any]]:
        if self._policies is None:
            raise NotSynced("the cache has not listed ChaosPolicy yet")
        return self._policies

    def list_workloads(self, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        return self._workloads


def _admit(live: Cluster, cached: Cached) -> list[str]:
    return check_experiment(
        live,  # type: ignore[arg-type]
        spec({"podDelete": {}}),
        namespace="shop",
        user={"username": "alice"},
        operator_namespace=None,
        now=NOW,
        cached=cached,
    ).warnings


def test_a_clean_answer_from_the_cache_asks_the_api_server_for_no_list() -> None:
    live = Cluster([POLICY], [DEPLOYMENT])
    assert _admit(live, Cached([POLICY], [DEPLOYMENT])) == []
    assert live.lists == 0


def test_a_policy_the_cache_has_not_seen_yet_is_found_live() -> None:
    live = Cluster([POLICY], [DEPLOYMENT])
    assert _admit(live, Cached([], [DEPLOYMENT])) == []  # no "no policy" warning: live has one
    assert live.lists == 2


def test_no_workload_matching_yet_is_advice_taken_from_the_cache() -> None:
    live = Cluster([POLICY], [DEPLOYMENT])
    warnings = _admit(live, Cached([POLICY], []))
    assert len(warnings) == 1 and "no Deployment in namespace shop matches" in warnings[0], warnings
    assert live.lists == 0


def test_a_refusal_from_the_cache_is_decided_again_live() -> None:
    stale = {**POLICY, "spec": {**POLICY["spec"], "allowedFaults": ["networkPartition"]}}
    assert _admit(Cluster([POLICY], [DEPLOYMENT]), Cached([stale], [DEPLOYMENT])) == []
    with pytest.raises(Refused, match="podDelete"):  # and stands when the API server agrees
        _admit(Cluster([stale], [DEPLOYMENT]), Cached([stale], [DEPLOYMENT]))


def test_a_cache_that_cannot_answer_falls_back_to_live_reads() -> None:
    live = Cluster([POLICY], [DEPLOYMENT])
    assert _admit(live, Cached(None, [DEPLOYMENT])) == []
    assert live.lists == 2
