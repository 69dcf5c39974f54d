"""core/node_faults.py: which nodes a node fault may touch, which pods it puts off them, whether
those pods may go (collateral, blast radius, PodDisruptionBudgets), and the spread finding."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from aftershock.api.common import Severity
from aftershock.api.policy import ChaosPolicySpec
from aftershock.core.node_faults import (
    CONTROL_PLANE_LABELS,
    PdbHit,
    PodOnNode,
    WorkloadHit,
    collateral_problem,
    displaced_by_drain,
    displaced_by_taint,
    group_by_owner,
    litmus_taint,
    node_refusal,
    pdb_hits,
    pdb_problem,
    pod_on_node,
    pods_by_node,
    radius_problem,
    spread_findings,
    taint_key,
    tolerates,
)
from aftershock.core.policy import pod_cap

UID = "0f3c2a7e-1111-2222-3333-444455556666"
KEY = taint_key(UID)


def spec(wire: dict[str, Any] | None = None) -> ChaosPolicySpec:
    return ChaosPolicySpec.model_validate(wire or {})


def pod(
    name: str = "web-1",
    *,
    namespace: str = "shop",
    node: str = "worker-1",
    owner_kind: str = "ReplicaSet",
    owner_uid: str = "rs-web",
    labels: dict[str, str] | None = None,
    tolerations: tuple[dict[str, Any], ...] = (),
    **flags: bool,
) -> PodOnNode:
    return PodOnNode(
        namespace=namespace,
        name=name,
        uid=f"uid-{name}",
        node=node,
        owner_kind=owner_kind,
        owner_name=f"{owner_kind.lower()}-{name}" if owner_kind else "",
        owner_uid=owner_uid if owner_kind else "",
        labels=labels or {},
        tolerations=tolerations,
        **flags,
    )


def bare(name: str, **kw: Any) -> PodOnNode:
    return pod(name, owner_kind="", **kw)


# --- taint_key ------------------------------------------------------------------------------------


def test_taint_key_is_the_runs_own() -> None:
    assert taint_key(UID) == f"chaos.aftershock.dev/{UID}"
    assert taint_key("a") != taint_key("b")


def test_taint_key_is_a_valid_qualified_label_key() -> None:
    # prefix (a DNS subdomain) / name (at most 63 characters): a run uid always fits
    prefix, _, name = KEY.partition("/")
    assert prefix == "chaos.aftershock.dev" and 0 < len(name) <= 63


# --- node_refusal ---------------------------------------------------------------------------------


def test_control_plane_labels_are_the_current_and_the_legacy_one() -> None:
    assert set(CONTROL_PLANE_LABELS) == {
        "node-role.kubernetes.io/control-plane",
        "node-role.kubernetes.io/master",
    }


@pytest.mark.parametrize("label", CONTROL_PLANE_LABELS)
@pytest.mark.parametrize("value", ["", "true"])
def test_control_plane_nodes_are_refused_whatever_the_policy(label: str, value: str) -> None:
    # even a policy whose deny selector matches nothing cannot open a control-plane node
    permissive = spec({"nodes": {"deny": {"matchLabels": {"never": "matches"}}}})
    for policies in ([], [("p", spec())], [("p", permissive)]):
        why = node_refusal("cp-1", {label: value, "kubernetes.io/hostname": "cp-1"}, policies)
        assert why is not None
        assert "cp-1" in why and "control-plane" in why and label in why


def test_worker_node_without_policies_is_allowed() -> None:
    assert node_refusal("worker-1", {"kubernetes.io/hostname": "worker-1"}, []) is None


def test_worker_node_with_the_default_policy_is_allowed() -> None:
    assert node_refusal("worker-1", {"kubernetes.io/os": "linux"}, [("default", spec())]) is None


def test_default_deny_selector_is_the_control_plane_label() -> None:
    assert spec().nodes.deny.to_json()["matchLabels"] == {"node-role.kubernetes.io/control-plane": ""}


def test_policy_deny_by_match_labels_names_the_policy_and_the_selector() -> None:
    policies = [("infra", spec({"nodes": {"deny": {"matchLabels": {"pool": "system"}}}}))]
    why = node_refusal("sys-1", {"pool": "system"}, policies)
    assert why is not None
    assert "sys-1" in why and "ChaosPolicy infra" in why and "spec.nodes.deny" in why and "pool=system" in why
    assert node_refusal("app-1", {"pool": "apps"}, policies) is None
    assert node_refusal("plain", {}, policies) is None


def test_policy_deny_by_match_expressions() -> None:
    deny = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["eu-1a", "eu-1b"]}]}
    policies = [("zones", spec({"nodes": {"deny": deny}}))]
    assert node_refusal("n1", {"zone": "eu-1a"}, policies) is not None
    assert node_refusal("n2", {"zone": "eu-1c"}, policies) is None
    assert node_refusal("n3", {}, policies) is None
    exists = {"matchExpressions": [{"key": "dedicated", "operator": "Exists"}]}
    policies = [("dedicated", spec({"nodes": {"deny": exists}}))]
    assert node_refusal("n4", {"dedicated": "gpu"}, policies) is not None
    assert node_refusal("n5", {"other": "x"}, policies) is None


def test_empty_deny_selector_refuses_every_node() -> None:
    policies = [("closed", spec({"nodes": {"deny": {}}}))]
    why = node_refusal("worker-1", {"kubernetes.io/hostname": "worker-1"}, policies)
    assert why is not None and "ChaosPolicy closed" in why
    assert node_refusal("bare", {}, policies) is not None


def test_every_policy_deny_applies_and_the_first_match_is_named() -> None:
    policies = [
        ("a", spec({"nodes": {"deny": {"matchLabels": {"pool": "system"}}}})),
        ("b", spec({"nodes": {"deny": {"matchLabels": {"tier": "db"}}}})),
    ]
    assert node_refusal("n", {"pool": "apps", "tier": "web"}, policies) is None
    why = node_refusal("n", {"pool": "apps", "tier": "db"}, policies)
    assert why is not None and "ChaosPolicy b" in why
    why = node_refusal("n", {"pool": "system", "tier": "db"}, policies)
    assert why is not None and "ChaosPolicy a" in why


def test_control_plane_reason_wins_over_a_policy_deny() -> None:
    policies = [("closed", spec({"nodes": {"deny": {}}}))]
    why = node_refusal("cp", {"node-role.kubernetes.io/master": ""}, policies)
    assert why is not None and "control-plane" in why and "ChaosPolicy" not in why


# --- pod_on_node ----------------------------------------------------------------------------------


def wire_pod(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {
            "namespace": "shop",
            "name": "web-abc",
            "uid": "u-1",
            "labels": {"app": "web"},
            "ownerReferences": [
                {"kind": "ReplicaSet", "name": "web-5d9", "uid": "rs-1", "controller": True},
            ],
        },
        "spec": {"nodeName": "worker-1"},
        "status": {"phase": "Running"},
    }
    for section, values in over.items():
        body[section] = {**body.get(section, {}), **values}
    return body


def test_pod_on_node_reads_the_wire_form() -> None:
    p = pod_on_node(wire_pod())
    assert (p.namespace, p.name, p.uid, p.node) == ("shop", "web-abc", "u-1", "worker-1")
    assert (p.owner_kind, p.owner_name, p.owner_uid) == ("ReplicaSet", "web-5d9", "rs-1")
    assert p.labels == {"app": "web"}
    assert not (p.mirror or p.finished or p.terminating or p.daemon)
    assert p.tolerations == ()
    assert p.key == "shop/web-abc"


def test_pod_on_node_takes_only_the_controller_owner() -> None:
    refs = [
        {"kind": "ConfigMap", "name": "x", "uid": "cm-1"},
        {"kind": "StatefulSet", "name": "db", "uid": "sts-1", "controller": True},
    ]
    p = pod_on_node(wire_pod(metadata={"ownerReferences": refs}))
    assert (p.owner_kind, p.owner_name, p.owner_uid) == ("StatefulSet", "db", "sts-1")


@pytest.mark.parametrize(
    "refs",
    [
        [],
        None,
        [{"kind": "ReplicaSet", "name": "x", "uid": "rs-1"}],
        [{"kind": "ReplicaSet", "name": "x", "uid": "rs-1", "controller": False}],
    ],
    ids=["empty", "missing", "no-controller-flag", "controller-false"],
)
def test_pod_without_a_controller_is_bare(refs: list[dict[str, Any]] | None) -> None:
    p = pod_on_node(wire_pod(metadata={"ownerReferences": refs}))
    assert (p.owner_kind, p.owner_name, p.owner_uid) == ("", "", "")


def test_pod_on_node_flags() -> None:
    assert pod_on_node(
        wire_pod(metadata={"ownerReferences": [{"kind": "DaemonSet", "name": "d", "controller": True}]})
    ).daemon
    assert pod_on_node(wire_pod(metadata={"annotations": {"kubernetes.io/config.mirror": "abc"}})).mirror
    assert not pod_on_node(wire_pod(metadata={"annotations": {"other": "x"}})).mirror
    assert pod_on_node(wire_pod(status={"phase": "Succeeded"})).finished
    assert pod_on_node(wire_pod(status={"phase": "Failed"})).finished
    for phase in ("Pending", "Running", "Unknown"):
        assert not pod_on_node(wire_pod(status={"phase": phase})).finished
    assert pod_on_node(wire_pod(metadata={"deletionTimestamp": "2024-01-01T00:00:00Z"})).terminating


def test_pod_on_node_keeps_tolerations() -> None:
    tolerations = [{"key": "a", "operator": "Exists", "effect": "NoExecute"}]
    p = pod_on_node(wire_pod(spec={"tolerations": tolerations}))
    assert p.tolerations == tuple(tolerations)


def test_pod_on_node_survives_a_sparse_object() -> None:
    p = pod_on_node({})
    assert (p.namespace, p.name, p.uid, p.node, p.owner_kind) == ("", "", "", "", "")
    assert p.labels == {} and p.tolerations == ()
    assert not (p.mirror or p.finished or p.terminating)
    p = pod_on_node({"metadata": None, "spec": None, "status": None})
    assert p.name == ""


def test_pod_on_node_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        pod_on_node(wire_pod()).node = "elsewhere"  # type: ignore[misc]


# --- tolerates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toleration", "effect", "expected"),
    [
        # Exists with no key tolerates every taint (of the effect, or of all effects)
        ({"operator": "Exists"}, "NoExecute", True),
        ({"operator": "Exists", "key": ""}, "NoSchedule", True),
        ({"operator": "Exists", "effect": "NoExecute"}, "NoExecute", True),
        ({"operator": "Exists", "effect": "NoSchedule"}, "NoExecute", False),
        ({"operator": "Exists", "effect": ""}, "NoExecute", True),
        # Exists with our key, or with another key
        ({"operator": "Exists", "key": KEY}, "NoExecute", True),
        ({"operator": "Exists", "key": "chaos.aftershock.dev/other"}, "NoExecute", False),
        ({"operator": "Exists", "key": "node.kubernetes.io/not-ready"}, "NoExecute", False),
        # Equal (also the default operator) with our key and an empty value
        ({"operator": "Equal", "key": KEY}, "NoExecute", True),
        ({"operator": "Equal", "key": KEY, "value": ""}, "NoExecute", True),
        ({"key": KEY}, "NoExecute", True),
        ({"key": KEY, "operator": None}, "NoExecute", True),
        ({"operator": "Equal", "key": KEY, "value": "yes"}, "NoExecute", False),
        ({"operator": "Equal", "key": "other", "value": ""}, "NoExecute", False),
        # Equal with no key is not a wildcard
        ({"operator": "Equal"}, "NoExecute", False),
        ({"operator": "Equal", "key": ""}, "NoExecute", False),
        # effect mismatch
        ({"operator": "Equal", "key": KEY, "effect": "NoSchedule"}, "NoExecute", False),
        ({"operator": "Equal", "key": KEY, "effect": "PreferNoSchedule"}, "NoExecute", False),
        ({"operator": "Equal", "key": KEY, "effect": "NoExecute"}, "NoSchedule", False),
        ({"operator": "Equal", "key": KEY, "effect": "NoSchedule"}, "NoSchedule", True),
        ({"operator": "Equal", "key": KEY, "effect": None}, "NoExecute", True),
    ],
)
def test_tolerates(toleration: dict[str, Any], effect: str, expected: bool) -> None:
    assert tolerates([toleration], KEY, effect) is expected


def test_tolerates_needs_only_one_matching_toleration() -> None:
    tolerations = [
        {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    ]
    assert not tolerates(tolerations, KEY, "NoExecute")
    assert tolerates([*tolerations, {"operator": "Exists"}], KEY, "NoExecute")


def test_no_tolerations_tolerate_nothing() -> None:
    assert not tolerates([], KEY, "NoExecute")
    assert not tolerates((), KEY, "NoSchedule")


# --- displaced_by_drain ---------------------------------------------------------------------------


def test_drain_puts_off_every_ordinary_pod_including_bare_ones() -> None:
    pods = [pod("a"), pod("b", namespace="other", owner_kind="StatefulSet"), bare("c")]
    assert displaced_by_drain(pods) == pods


@pytest.mark.parametrize(
    "left",
    [
        pod("ds", owner_kind="DaemonSet"),
        pod("mirror", owner_kind="Node", mirror=True),
        bare("static", mirror=True),
        pod("done", finished=True),
        bare("job-done", finished=True),
        pod("leaving", terminating=True),
    ],
    ids=["daemonset", "mirror", "bare-mirror", "finished", "bare-finished", "terminating"],
)
def test_drain_leaves_daemonset_mirror_finished_and_terminating_pods(left: PodOnNode) -> None:
    going = pod("web")
    assert displaced_by_drain([left, going]) == [going]


def test_drain_of_nothing() -> None:
    assert displaced_by_drain([]) == []


def test_drain_ignores_tolerations() -> None:
    tolerant = pod("tolerant", tolerations=({"operator": "Exists"},))
    assert displaced_by_drain([tolerant]) == [tolerant]


# --- displaced_by_taint ---------------------------------------------------------------------------


def test_no_schedule_displaces_none() -> None:
    pods = [pod("a"), bare("b"), pod("c", namespace="other")]
    assert displaced_by_taint(pods, KEY, "NoSchedule") == []
    assert displaced_by_taint(pods, KEY, "PreferNoSchedule") == []


def test_no_execute_displaces_every_pod_that_does_not_tolerate_it() -> None:
    plain = pod("plain")
    other = pod("other-toleration", tolerations=({"key": "dedicated", "operator": "Exists"},))
    wrong_effect = pod("wrong-effect", tolerations=({"operator": "Exists", "effect": "NoSchedule"},))
    everything = pod("tolerates-all", tolerations=({"operator": "Exists"},))
    ours = pod("tolerates-ours", tolerations=({"key": KEY, "operator": "Exists", "effect": "NoExecute"},))
    daemon = pod("ds", owner_kind="DaemonSet")
    loose = bare("bare")
    pods = [plain, other, wrong_effect, everything, ours, daemon, loose]
    # DaemonSet pods are not spared by a taint (only their own tolerations spare them); bare pods
    # are displaced too (collateral_problem refuses them)
    assert displaced_by_taint(pods, KEY, "NoExecute") == [plain, other, wrong_effect, daemon, loose]


def test_no_execute_leaves_mirror_finished_and_terminating_pods() -> None:
    pods = [pod("m", mirror=True), pod("f", finished=True), pod("t", terminating=True)]
    assert displaced_by_taint(pods, KEY, "NoExecute") == []


# --- collateral_problem ---------------------------------------------------------------------------


def refuse(*namespaces: str) -> Any:
    def verdict(ns: str) -> str | None:
        return f"namespace {ns} is not opted in" if ns in namespaces else None

    return verdict


def test_no_pods_no_problem() -> None:
    assert (
        collateral_problem([], target_owners=set(), namespace_refusal=refuse(), any_namespace=False) is None
    )


def test_target_pods_are_never_collateral() -> None:
    pods = [pod("web-1", namespace="shop", owner_uid="rs-web"), pod("web-2", owner_uid="rs-web")]
    # even if the namespace verdict would refuse: the target's own pods are the experiment's business
    assert (
        collateral_problem(
            pods, target_owners={"rs-web"}, namespace_refusal=refuse("shop"), any_namespace=False
        )
        is None
    )


def test_opted_in_refuses_other_pods_in_a_namespace_chaos_may_not_touch() -> None:
    pods = [
        pod("web-1", owner_uid="rs-web"),
        pod("api-1", namespace="payments", owner_uid="rs-api"),
        pod("api-2", namespace="payments", owner_uid="rs-api"),
        pod("cache-1", namespace="cache", owner_uid="sts-cache", owner_kind="StatefulSet"),
        pod("ok-1", namespace="friendly", owner_uid="rs-ok"),
    ]
    why = collateral_problem(
        pods,
        target_owners={"rs-web"},
        namespace_refusal=refuse("payments", "cache"),
        any_namespace=False,
    )
    assert why is not None
    assert (
        "pods payments/api-1, payments/api-2 in namespace payments (namespace payments is not opted in)"
        in why
    )
    assert "pod cache/cache-1 in namespace cache (namespace cache is not opted in)" in why
    assert why.index("namespace cache") < why.index("namespace payments")  # sorted by namespace
    assert "friendly" not in why and "shop/web-1" not in why
    assert "collateralNamespaces is optedIn" in why and "nothing was touched" in why


def test_opted_in_allows_other_pods_in_allowed_namespaces() -> None:
    pods = [pod("web-1", owner_uid="rs-web"), pod("api-1", namespace="payments", owner_uid="rs-api")]
    assert (
        collateral_problem(pods, target_owners={"rs-web"}, namespace_refusal=refuse(), any_namespace=False)
        is None
    )


def test_namespace_refusal_is_asked_once_per_namespace() -> None:
    asked: list[str] = []

    def verdict(ns: str) -> str | None:
        asked.append(ns)
        return None if ns == "ok" else "no"

    pods = [pod(f"p{i}", namespace=ns, owner_uid=f"o{i}") for i, ns in enumerate(["ok", "x", "x", "ok"])]
    assert collateral_problem(pods, target_owners=set(), namespace_refusal=verdict, any_namespace=False)
    assert set(asked) == {"ok", "x"} and asked.count("x") == 1


def test_any_namespace_allows_every_controlled_pod() -> None:
    pods = [pod("web-1", owner_uid="rs-web"), pod("sys-1", namespace="elsewhere", owner_uid="rs-sys")]

    def never_asked(ns: str) -> str | None:
        raise AssertionError(f"asked about {ns}")

    assert (
        collateral_problem(pods, target_owners={"rs-web"}, namespace_refusal=never_asked, any_namespace=True)
        is None
    )


@pytest.mark.parametrize("any_namespace", [False, True], ids=["optedIn", "any"])
def test_bare_pods_are_refused_whatever_the_namespaces(any_namespace: bool) -> None:
    pods = [pod("web-1", owner_uid="rs-web"), bare("debug")]
    why = collateral_problem(
        pods, target_owners={"rs-web"}, namespace_refusal=refuse(), any_namespace=any_namespace
    )
    assert why is not None
    assert "pod shop/debug on the node has no controller" in why
    assert "evicting it would delete it for good" in why and "nothing was touched" in why


def test_bare_pods_message_plural_and_several_nodes() -> None:
    pods = [bare("a", node="n1"), bare("b", node="n2")]
    why = collateral_problem(pods, target_owners=set(), namespace_refusal=refuse(), any_namespace=True)
    assert why is not None
    assert "pods shop/a, shop/b on the nodes have no controller" in why
    assert "evicting them would delete them for good" in why


def test_bare_pods_are_checked_before_namespaces() -> None:
    pods = [bare("a"), pod("b", namespace="closed", owner_uid="o")]
    why = collateral_problem(
        pods, target_owners=set(), namespace_refusal=refuse("closed"), any_namespace=False
    )
    assert why is not None and "no controller" in why and "closed" not in why


def test_long_pod_lists_are_shortened() -> None:
    pods = [bare(f"p{i}") for i in range(8)]
    why = collateral_problem(pods, target_owners=set(), namespace_refusal=refuse(), any_namespace=True)
    assert why is not None
    assert "shop/p0, shop/p1, shop/p2, shop/p3, shop/p4 and 3 more" in why
    assert "shop/p5" not in why


# --- radius_problem -------------------------------------------------------------------------------


def hit(label: str, desired: int, n: int, *, target: bool = False) -> WorkloadHit:
    return WorkloadHit(key=f"uid-{label}", label=label, desired=desired, hit=n, target=target)


def test_radius_within_every_workloads_cap() -> None:
    policies = [("default", spec())]  # 50% of each workload
    hits = [hit("Deployment shop/web", 4, 2, target=True), hit("Deployment other/api", 10, 5)]
    assert radius_problem(policies, hits) is None


def test_radius_is_judged_per_workload_with_pod_cap() -> None:
    policies = [("default", spec())]
    hits = [hit("Deployment shop/web", 4, 2, target=True), hit("Deployment other/api", 3, 2)]
    cap, sentence = pod_cap(policies, total_pods=3)
    assert cap == 1
    why = radius_problem(policies, hits)
    assert why is not None
    assert "2 pods of Deployment other/api (collateral)" in why and "cap of 1" in why
    assert sentence in why and why.endswith("Nothing was touched")


def test_radius_names_the_target_when_the_target_is_over() -> None:
    why = radius_problem([("default", spec())], [hit("StatefulSet shop/db", 3, 3, target=True)])
    assert why is not None and "StatefulSet shop/db (the target)" in why


def test_radius_reports_the_first_workload_over_its_cap() -> None:
    hits = [hit("Deployment a/one", 2, 2), hit("Deployment b/two", 2, 2)]
    why = radius_problem([("default", spec())], hits)
    assert why is not None and "a/one" in why and "b/two" not in why


def test_radius_strictest_policy_and_max_pods() -> None:
    loose = spec({"blastRadius": {"maxPodsPercent": 100}})
    strict = spec({"blastRadius": {"maxPodsPercent": 100, "maxPods": 1}})
    hits = [hit("Deployment shop/web", 10, 2)]
    assert radius_problem([("loose", loose)], hits) is None
    why = radius_problem([("loose", loose), ("strict", strict)], hits)
    assert why is not None and "ChaosPolicy strict" in why and "maxPods" in why


@pytest.mark.parametrize(
    ("percent", "desired", "n", "refused"),
    [
        (50, 1, 1, True),
        (50, 2, 1, False),
        (50, 5, 2, False),
        (50, 5, 3, True),
        (100, 1, 1, False),
        (0, 9, 1, True),
    ],
)
def test_radius_matches_pod_cap(percent: int, desired: int, n: int, refused: bool) -> None:
    policies = [("p", spec({"blastRadius": {"maxPodsPercent": percent}}))]
    cap, _ = pod_cap(policies, total_pods=desired)
    assert (n > cap) is refused
    assert (radius_problem(policies, [hit("Deployment shop/web", desired, n)]) is not None) is refused


def test_radius_without_policies_refuses_any_hit() -> None:
    assert radius_problem([], [hit("Deployment shop/web", 10, 1)]) is not None
    assert radius_problem([], []) is None


# --- pdb_problem ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("allowed", "refused"), [(-1, True), (0, True), (1, False), (5, False)])
def test_drain_refuses_only_a_budget_that_allows_no_disruption(allowed: int, refused: bool) -> None:
    # the Eviction API paces the drain: more pods than the budget allows at once is fine
    hits = [PdbHit("shop/web", allowed, 3)]
    why = pdb_problem(hits, evicts_through_api=True)
    assert (why is not None) is refused
    if why is not None:
        assert "PodDisruptionBudget shop/web allows no disruption now" in why
        assert "3 of its pods" in why and "nothing was touched" in why


@pytest.mark.parametrize(
    ("allowed", "n", "refused"),
    [(0, 1, True), (1, 1, False), (1, 2, True), (2, 2, False), (3, 2, False), (-1, 1, True)],
)
def test_no_execute_refuses_when_more_pods_go_than_the_budget_allows(
    allowed: int, n: int, refused: bool
) -> None:
    why = pdb_problem([PdbHit("shop/web", allowed, n)], evicts_through_api=False)
    assert (why is not None) is refused
    if why is not None:
        assert f"would evict {n} pods covered by PodDisruptionBudget shop/web" in why
        assert f"allows {max(allowed, 0)} disruption(s)" in why
        assert "do not wait for budgets" in why


def test_pdb_problem_names_the_first_budget_that_forbids() -> None:
    hits = [PdbHit("a/fine", 2, 1), PdbHit("b/stuck", 0, 1), PdbHit("c/stuck", 0, 1)]
    for through_api in (True, False):
        why = pdb_problem(hits, evicts_through_api=through_api)
        assert why is not None and "b/stuck" in why and "c/stuck" not in why


def test_pdb_problem_without_budgets() -> None:
    assert pdb_problem([], evicts_through_api=True) is None
    assert pdb_problem([], evicts_through_api=False) is None


# --- pdb_hits -------------------------------------------------------------------------------------


def test_pdb_hits_counts_displaced_pods_a_budget_covers_in_its_namespace() -> None:
    displaced = [
        pod("web-1", labels={"app": "web"}),
        pod("web-2", labels={"app": "web"}),
        pod("api-1", labels={"app": "api"}),
        pod("web-x", namespace="other", labels={"app": "web"}),
    ]
    pdbs = [
        ("shop/web", {"matchLabels": {"app": "web"}}, 1),
        ("shop/api", {"matchExpressions": [{"key": "app", "operator": "In", "values": ["api"]}]}, 0),
        ("shop/none", {"matchLabels": {"app": "db"}}, 0),
        ("other/web", {"matchLabels": {"app": "web"}}, 2),
    ]
    assert pdb_hits(pdbs, displaced) == [
        PdbHit("shop/web", 1, 2),
        PdbHit("shop/api", 0, 1),
        PdbHit("other/web", 2, 1),
    ]


def test_pdb_with_an_empty_selector_covers_its_whole_namespace() -> None:
    displaced = [pod("a", labels={"x": "1"}), pod("b"), pod("c", namespace="other")]
    assert pdb_hits([("shop/all", {}, 1)], displaced) == [PdbHit("shop/all", 1, 2)]


def test_pdb_hits_of_nothing() -> None:
    assert pdb_hits([], [pod("a")]) == []
    assert pdb_hits([("shop/web", {"matchLabels": {"app": "web"}}, 1)], []) == []


def test_pdb_hits_feed_pdb_problem() -> None:
    displaced = [pod("web-1", labels={"app": "web"}), pod("web-2", labels={"app": "web"})]
    hits = pdb_hits([("shop/web", {"matchLabels": {"app": "web"}}, 1)], displaced)
    assert pdb_problem(hits, evicts_through_api=True) is None
    assert pdb_problem(hits, evicts_through_api=False) is not None


# --- spread_findings ------------------------------------------------------------------------------


def test_no_spread_when_every_desired_replica_was_on_the_drained_node() -> None:
    (finding,) = spread_findings({"worker-1": 3}, "Deployment shop/web", 3, {"worker-1"})
    assert finding.severity is Severity.HIGH
    assert finding.title == "no spread: every replica of Deployment shop/web was on worker-1"
    assert "all 3 desired replicas ran on the drained node (worker-1: 3)" in finding.detail
    assert "losing it left none Ready" in finding.detail
    assert "topologySpreadConstraints" in finding.detail and "PodDisruptionBudget" in finding.detail


def test_no_spread_across_several_drained_nodes() -> None:
    (finding,) = spread_findings({"w2": 1, "w1": 2, "w3": 0}, "Deployment shop/web", 3, {"w1", "w2", "w3"})
    assert finding.title.endswith("was on w1, w2")  # sorted, and only nodes that held replicas
    assert "drained nodes (w1: 2, w2: 1)" in finding.detail and "losing them" in finding.detail


def test_spread_finding_only_when_all_desired_replicas_were_on_drained_nodes() -> None:
    assert spread_findings({"w1": 2, "w2": 1}, "Deployment shop/web", 3, {"w1"}) == []
    assert spread_findings({"w1": 2}, "Deployment shop/web", 3, {"w1"}) == []  # one was not Ready
    assert spread_findings({"w1": 3}, "Deployment shop/web", 3, {"w2"}) == []
    assert spread_findings({}, "Deployment shop/web", 3, {"w1"}) == []


def test_spread_finding_counts_surge_replicas_too() -> None:
    assert len(spread_findings({"w1": 4}, "Deployment shop/web", 3, {"w1"})) == 1


@pytest.mark.parametrize("desired", [0, -1])
def test_no_spread_finding_without_desired_replicas(desired: int) -> None:
    assert spread_findings({"w1": 2}, "Deployment shop/web", desired, {"w1"}) == []


def test_spread_finding_for_a_single_replica() -> None:
    (finding,) = spread_findings({"w1": 1}, "StatefulSet shop/db", 1, {"w1"})
    assert "all 1 desired replicas" in finding.detail


# --- pods_by_node and group_by_owner ----------------------------------------------------------------


def test_pods_by_node_counts_and_skips_unscheduled_pods() -> None:
    pods = [pod("a", node="w1"), pod("b", node="w1"), pod("c", node="w2"), pod("d", node="")]
    assert pods_by_node(pods) == {"w1": 2, "w2": 1}
    assert pods_by_node([]) == {}


def test_group_by_owner_keeps_order_and_puts_bare_pods_together() -> None:
    a1, b1, a2 = pod("a1", owner_uid="A"), pod("b1", owner_uid="B"), pod("a2", owner_uid="A")
    x, y = bare("x"), bare("y")
    assert group_by_owner([a1, b1, a2, x, y]) == {"A": [a1, a2], "B": [b1], "": [x, y]}
    assert group_by_owner([]) == {}


def test_a_no_execute_toleration_with_seconds_only_delays_the_eviction() -> None:
    delayed = [{"operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
    assert not tolerates(delayed, taint_key("u"), "NoExecute")
    assert tolerates([{"operator": "Exists", "effect": "NoExecute"}], taint_key("u"), "NoExecute")


def test_litmus_taint_is_read_as_litmus_go_reads_it() -> None:
    assert litmus_taint("") == ("", "node-taint", "NoExecute")
    assert litmus_taint("app=chaos:NoSchedule") == ("app", "chaos", "NoSchedule")
    assert litmus_taint("dedicated") == ("dedicated", "node-taint", "NoExecute")
    assert litmus_taint("k=:NoExecute") == ("k", "", "NoExecute")


def test_a_taint_with_a_value_is_tolerated_only_by_that_value_or_exists() -> None:
    equal = [{"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute"}]
    assert tolerates(equal, "k", "NoExecute", "v") and not tolerates(equal, "k", "NoExecute", "w")
    assert tolerates([{"key": "k", "operator": "Exists"}], "k", "NoExecute", "anything")
