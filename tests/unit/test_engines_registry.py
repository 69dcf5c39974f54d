"""The fault-engine registry: one entry per API fault kind, agreeing with the API and the CRD on
what is sustained, declaring damage and artifacts, and failing closed on unknown kinds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from aftershock.api.common import KNOWN_FAULT_KINDS, NODE_FAULT_KINDS
from aftershock.api.experiment import FAULT_KINDS, SUSTAINED_FAULT_KINDS, Fault
from aftershock.core import litmus as core_litmus
from aftershock.core.naming import LABEL_RUN, LABEL_RUN_NAMESPACE, LABEL_TARGET_OF
from aftershock.engines.base import ArtifactFinder, EngineError, Permission, TargetUnit
from aftershock.engines.litmus import LitmusEngine
from aftershock.engines.network_partition import NetworkPartitionEngine
from aftershock.engines.pod_delete import PodDeleteEngine
from aftershock.engines.registry import (
    REGISTRY,
    UnknownFault,
    artifact_finders,
    build,
    engine_for,
    engine_of,
    manual_cleanup,
    target_records,
)

CRDS = Path(__file__).resolve().parents[2] / "crds"


def pod_delete() -> Fault:
    return Fault.model_validate({"podDelete": {"gracePeriodSeconds": 0}})


def partition(direction: str = "Both") -> Fault:
    return Fault.model_validate({"duration": "30s", "networkPartition": {"direction": direction}})


def litmus(experiment: str = "pod-delete", **extra: Any) -> Fault:
    spec = {"experiment": experiment, **(extra or {"chaosServiceAccount": "litmus"})}
    return Fault.model_validate({"duration": "30s", "litmus": spec})


def toxiproxy() -> Fault:
    spec = {"endpoint": "http://toxiproxy.shop.svc:8474", "proxy": "redis", "toxics": [{"type": "latency"}]}
    return Fault.model_validate({"duration": "30s", "toxiproxy": spec})


def one_fault_per_kind() -> dict[str, Fault]:
    return {
        "podDelete": pod_delete(),
        "networkPartition": partition(),
        "litmus": litmus(),
        "toxiproxy": toxiproxy(),
        "nodeDrain": Fault.model_validate({"duration": "30s", "nodeDrain": {}}),
        "nodeTaint": Fault.model_validate({"duration": "30s", "nodeTaint": {"effect": "NoExecute"}}),
    }


def every_fault() -> list[Fault]:
    """One fault of every kind, and every Litmus experiment."""
    nodes = [one_fault_per_kind()[k] for k in ("nodeDrain", "nodeTaint")]
    return [pod_delete(), partition(), toxiproxy(), *nodes, *(litmus(name) for name in core_litmus.CATALOG)]


# --- one table, agreeing with the API ------------------------------------------------------------


def test_every_api_fault_kind_has_exactly_one_engine_and_nothing_else_has() -> None:
    assert sorted(REGISTRY) == sorted(FAULT_KINDS)
    for kind, engine in REGISTRY.items():
        assert engine.kind == kind
    assert set(one_fault_per_kind()) == set(FAULT_KINDS)  # the samples below cover every kind


def test_two_engines_for_one_kind_are_refused() -> None:
    with pytest.raises(ValueError, match="two fault engines for podDelete"):
        build([PodDeleteEngine(), PodDeleteEngine()])


def test_sustained_kinds_agree_with_the_api_and_its_duration_rule() -> None:
    """The API cannot import engines: its SUSTAINED_FAULT_KINDS (which makes fault.duration
    required) must name exactly the engines that hold and revert their fault."""
    assert {kind for kind, engine in REGISTRY.items() if engine.sustained} == set(SUSTAINED_FAULT_KINDS)
    for engine in REGISTRY.values():
        if engine.self_timed:
            assert engine.sustained, f"{engine.kind} ends the fault itself, so it is held first"


def test_the_generated_crd_offers_exactly_the_registered_kinds() -> None:
    crd = yaml.safe_load((CRDS / "chaosexperiments.aftershock.dev.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    fault = schema["properties"]["spec"]["properties"]["fault"]["properties"]
    assert set(fault) - set(Fault.SETTINGS) == set(REGISTRY)


def test_policy_kinds_are_known_to_the_policy_and_agree_with_the_api() -> None:
    for fault in every_fault():
        engine = engine_of(fault)
        assert engine.policy_kind(fault) in KNOWN_FAULT_KINDS
        assert engine.policy_kind(fault) == fault.policy_kind, fault
    assert LitmusEngine().policy_kind(litmus("node-drain")) == "litmusNode"
    assert LitmusEngine().policy_kind(litmus("pod-network-latency")) == "litmus"


# --- unknown kinds fail closed --------------------------------------------------------------------


def test_unknown_kind_fails_closed_with_a_clear_error() -> None:
    with pytest.raises(UnknownFault) as raised:
        engine_for("nodeReboot")
    error = raised.value
    assert isinstance(error, EngineError)  # a run that meets it ends Errored, nothing touched
    assert error.reason == "UnsupportedFault" and error.kind == "nodeReboot"
    assert "nodeReboot is not supported" in error.message
    assert "litmus, networkPartition, nodeDrain, nodeTaint, podDelete" in error.message


def test_a_kind_the_api_knows_but_the_table_lacks_fails_closed() -> None:
    partial = build([PodDeleteEngine()])
    with pytest.raises(UnknownFault, match="networkPartition"):
        engine_of(partition(), partial)
    assert manual_cleanup("networkPartition", "u", partial) == ""


# --- damage --------------------------------------------------------------------------------------


def test_damage_tables() -> None:
    """What the author must be able to do by hand, per fault (the SubjectAccessReview's input)."""
    expected = {
        "podDelete": (Permission("delete", "", "pods"),),
        "networkPartition": (
            Permission("create", "networking.k8s.io", "networkpolicies"),
            Permission("patch", "", "pods"),
        ),
        "litmus": (Permission("create", "litmuschaos.io", "chaosengines"),),
        # nothing in the Kubernetes API: where toxics may go is the endpoint rules' business
        "toxiproxy": (),
        # cluster-wide: a node is shared, its pods may be in any namespace
        "nodeDrain": (
            Permission("patch", "", "nodes", namespaced=False),
            Permission("create", "", "pods", subresource="eviction", namespaced=False),
        ),
        "nodeTaint": (
            Permission("patch", "", "nodes", namespaced=False),
            Permission("delete", "", "pods", namespaced=False),
        ),
    }
    for kind, fault in one_fault_per_kind().items():
        assert engine_for(kind).damage(fault) == expected[kind], kind
        assert engine_for(kind).grants(fault) == ()
    node = litmus("node-cpu-hog")
    assert LitmusEngine().damage(node) == (
        Permission("create", "litmuschaos.io", "chaosengines"),
        Permission("patch", "", "nodes", namespaced=False),
    )


def test_node_faults_declare_cluster_scoped_damage() -> None:
    """Nodes are cluster-wide: a node fault's review must not be satisfiable by a namespace Role."""
    for fault in every_fault():
        engine = engine_of(fault)
        reaches_nodes = engine.policy_kind(fault) in NODE_FAULT_KINDS
        cluster_scoped = [p for p in engine.damage(fault) if not p.namespaced]
        assert bool(cluster_scoped) == reaches_nodes, fault
        assert not cluster_scoped or any(p.resource == "nodes" for p in cluster_scoped)


def test_provisioning_a_service_account_is_a_grant_the_author_must_hold() -> None:
    fault = litmus("pod-network-latency", provisionServiceAccount=True)
    grants = {(p.verb, p.group, p.resource) for p in LitmusEngine().grants(fault)}
    assert {
        ("create", "", "serviceaccounts"),
        ("create", "rbac.authorization.k8s.io", "roles"),
        ("create", "rbac.authorization.k8s.io", "rolebindings"),
    } <= grants
    assert ("delete", "", "pods") in grants  # and every rule the provisioned Role would grant


def test_permission_descriptions() -> None:
    assert (
        Permission("create", "", "pods", "eviction").describe("shop")
        == "create pods/eviction in namespace shop"
    )
    assert Permission("patch", "", "nodes", namespaced=False).describe("shop") == "patch nodes"


# --- artifacts -----------------------------------------------------------------------------------


def test_every_sustained_kind_declares_how_its_artifacts_are_found_and_removed() -> None:
    for kind, engine in REGISTRY.items():
        if engine.sustained:
            assert engine.artifacts, f"{kind} holds a fault but declares nothing the sweeper could find"
        for finder in engine.artifacts:
            assert callable(finder.find) and callable(finder.remove)
            assert "{uid}" in finder.by_hand and finder.label in finder.by_hand
            assert finder.label in (LABEL_RUN, LABEL_TARGET_OF)
    assert [f.kind for f in artifact_finders()] == [
        "NetworkPolicy",
        "PodLabel",
        "ChaosEngine",
        "PodTargetLabel",
        "ToxiproxyToxic",
        "NodeMark",
    ]


def test_artifact_finders_are_taken_once_per_kind() -> None:
    kinds = [f.kind for f in artifact_finders(build([NetworkPartitionEngine(), LitmusEngine()]))]
    assert kinds == ["NetworkPolicy", "PodLabel", "ChaosEngine", "PodTargetLabel"]
    assert [f.kind for f in artifact_finders(build([PodDeleteEngine()]))] == []


def test_found_objects_become_sweeper_artifacts_and_unlabelled_ones_are_skipped() -> None:
    objects = [
        {
            "metadata": {
                "name": "a",
                "namespace": "shop",
                "labels": {LABEL_RUN: "u1", LABEL_RUN_NAMESPACE: "ops"},
            }
        },
        {"metadata": {"name": "b", "namespace": "shop", "labels": {LABEL_RUN: "u2"}}},
        {"metadata": {"name": "c", "namespace": "shop", "labels": {}}},
    ]
    finder = ArtifactFinder(
        "Thing", find=lambda kube, scope: objects, remove=lambda kube, a: None, by_hand=""
    )
    found = finder.artifacts(None, None)  # type: ignore[arg-type]
    assert [(a.kind, a.namespace, a.name, a.run_uid, a.run_namespace) for a in found] == [
        ("Thing", "shop", "a", "u1", "ops"),
        ("Thing", "shop", "b", "u2", None),
    ]


def test_manual_cleanup_names_every_artifact_of_the_kind() -> None:
    text = manual_cleanup("networkPartition", "1234")
    assert "kubectl delete networkpolicy" in text and "aftershock.dev/run=1234" in text
    assert "kubectl label pod" in text
    assert "kubectl delete chaosengine" in manual_cleanup("litmus", "1234")
    assert manual_cleanup("podDelete", "1234") == ""


# --- targets and descriptions --------------------------------------------------------------------


def _pod(name: str, node: str | None) -> dict[str, Any]:
    spec = {"nodeName": node} if node else {}
    return {"metadata": {"name": name, "uid": f"uid-{name}"}, "spec": spec}


def test_target_units() -> None:
    for fault in (pod_delete(), partition(), litmus("pod-network-latency")):
        assert engine_of(fault).target_unit(fault) is TargetUnit.PODS
    for name, spec in core_litmus.CATALOG.items():
        fault = litmus(name)
        unit = engine_of(fault).target_unit(fault)
        assert unit is (TargetUnit.NODES if spec.node_env else TargetUnit.PODS), name


def test_target_records_are_pods_or_the_nodes_they_run_on() -> None:
    chosen = [_pod("a", "n2"), _pod("b", "n1"), _pod("c", "n2"), _pod("d", None)]
    records = target_records(engine_of(partition()), partition(), chosen, "shop")
    assert [(r.kind, r.name, r.namespace, r.uid) for r in records] == [
        ("Pod", name, "shop", f"uid-{name}") for name in "abcd"
    ]
    many = litmus("node-cpu-hog")
    assert [(r.kind, r.name, r.namespace) for r in target_records(LitmusEngine(), many, chosen, "shop")] == [
        ("Node", "n2", None),
        ("Node", "n1", None),
    ]
    single = litmus("node-drain")
    assert LitmusEngine().node_targets(single, chosen) == ["n2"]
    assert PodDeleteEngine().node_targets(pod_delete(), chosen) == ["n2", "n1"]


def test_every_fault_has_a_description_for_people() -> None:
    assert engine_of(pod_delete()).describe(pod_delete()) == "delete the target pods (grace period 0 s)"
    assert "incoming traffic" in engine_of(partition("Ingress")).describe(partition("Ingress"))
    assert "NetworkPolicy" in engine_of(partition()).describe(partition())
    assert "pod-network-latency" in LitmusEngine().describe(litmus("pod-network-latency"))
    for fault in every_fault():
        assert engine_of(fault).describe(fault)
