"""Before a node fault is injected: which nodes, and who else loses pods (runs/targeting.py calls
this for engines that displace pods).

The nodes are those the target's Ready pods run on, less the ones no node fault may touch
(control-plane nodes, the policies' `nodes.deny`, nodes another run's node fault holds); `mode`
and `value` pick among them. Then every pod on the picked nodes is listed — live, in every
namespace, because a node is shared — and the pods the fault would put off are checked against
the policies (core/node_faults.py): their namespaces (`nodeFaults.collateralNamespaces`), each
workload's blast radius, their PodDisruptionBudgets. A refusal here touches nothing; what is
allowed is journaled as `status.displaced` before the first node is touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aftershock.api.common import Finding
from aftershock.api.policy import CollateralNamespaces
from aftershock.api.run import MAX_DISPLACED, ChaosRun, DisplacedPod
from aftershock.core import node_faults
from aftershock.core import policy as core_policy
from aftershock.core.naming import LABEL_RUN
from aftershock.core.node_faults import PodOnNode, WorkloadHit
from aftershock.core.policy import Policies
from aftershock.core.targets import TargetSelectionError, select_targets
from aftershock.engines.base import distinct_nodes
from aftershock.engines.registry import FaultEngine
from aftershock.engines.workloads import Workload, owner_uids, workload_from
from aftershock.kube import NotFound, Obj
from aftershock.runs.base import Abort, RunEnv


class Refused(Exception):
    """A policy forbids the node fault as planned: the run is Skipped, nothing touched."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class NodePlan:
    nodes: list[str]
    prior: dict[str, bool]  # node → cordoned before the run
    displaced: list[DisplacedPod]
    chosen: list[Obj]  # the target's Ready pods on the picked nodes (for the shared budgets)
    findings: list[Finding] = field(default_factory=list)


async def plan(
    env: RunEnv,
    run: ChaosRun,
    engine: FaultEngine,
    target_ns: str,
    policies: Policies,
    ready: list[Obj],
    workloads: list[Workload],
    given: list[str] | None = None,
    given_pods: list[Obj] | None = None,
) -> NodePlan:
    """`given`: the nodes the engine picked itself (Litmus, from `given_pods`), each of which must
    be one a node fault may touch; None: pick among the nodes here, by mode and value."""
    spec = run.spec
    assert spec.target is not None and spec.fault is not None
    uid = run.uid or run.name
    nodes: dict[str, Obj] = {}
    refusals: list[str] = []
    for name in given if given is not None else distinct_nodes(ready):
        node = await env.io(env.kube.find_node, name)
        if node is None:
            continue
        labels = node["metadata"].get("labels") or {}
        refusal = node_faults.node_refusal(name, labels, policies)
        holder = labels.get(LABEL_RUN)
        if refusal is None and holder not in (None, uid):
            refusal = f"node {name} is under a node fault of another run (uid {holder})"
        if refusal is None:
            nodes[name] = node
        else:
            refusals.append(refusal)
    if given is not None and refusals:
        raise Refused("NodeNotAllowed", f"{'; '.join(refusals)}; nothing was touched")
    if not nodes:
        raise Refused(
            "NodeNotAllowed",
            "no node the target's Ready pods run on may be touched"
            + (f": {'; '.join(refusals)}" if refusals else "")
            + "; nothing was touched",
        )
    try:
        picked = (
            list(given)
            if given is not None
            else select_targets(
                sorted(nodes),
                str(spec.target.mode),
                spec.target.value,
                seed=uid,
                key=lambda n: n,
                what=f"nodes running Ready pods of the target in {target_ns}",
            )
        )
    except TargetSelectionError as exc:
        raise Abort("NoTargets", f"{exc.reason}; nothing was injected") from exc
    except ValueError as exc:
        raise Abort("InvalidTarget", str(exc)) from exc
    on_nodes = (
        [
            node_faults.pod_on_node(p)
            for name in picked
            for p in await env.io(env.kube.list_pods_on_node, name)
        ]
        if engine.displaces(spec.fault)
        else []
    )
    going = engine.displaced(spec.fault, on_nodes, uid)
    if len(going) > MAX_DISPLACED:
        raise Refused(
            "TooManyPods",
            f"the node fault would put {len(going)} pods off their nodes, more than one run records"
            f" ({MAX_DISPLACED}); nothing was touched",
        )
    view = env.cluster()
    target_owners = {o for w in workloads for o in owner_uids(view, w)}
    await _check_collateral(env, run, engine, policies, going, target_owners)
    owners = await _owners(env, going, workloads, view, target_owners)
    hits = [
        WorkloadHit(key, label, desired, len(pods), key in target_owners)
        for key, pods in node_faults.group_by_owner(going).items()
        for label, desired in [owners.get(key, (_bare_label(pods[0]), 0))]
        if desired > 0
    ]
    problem = node_faults.radius_problem(policies, hits)
    if problem is not None:
        raise Refused("BlastRadiusExceeded", problem)
    if core_policy.must_respect_disruption_budgets(policies):
        pdbs: list[tuple[str, Any, int]] = []
        for namespace in sorted({p.namespace for p in going}):
            for pdb in await env.io(env.kube.list_pdbs, namespace):
                selector = (pdb.get("spec") or {}).get("selector")
                if selector is not None:
                    allowed = int((pdb.get("status") or {}).get("disruptionsAllowed") or 0)
                    pdbs.append((f"{namespace}/{pdb['metadata']['name']}", selector, allowed))
        problem = node_faults.pdb_problem(
            node_faults.pdb_hits(pdbs, going), evicts_through_api=engine.paced_by_budgets
        )
        if problem is not None:
            raise Refused("DisruptionBudget", problem)
    displaced = [
        DisplacedPod(
            namespace=p.namespace,
            name=p.name,
            uid=p.uid,
            node=p.node,
            owner=owners.get(p.owner_uid, (_bare_label(p), 0))[0],
            collateral=p.owner_uid not in target_owners,
        )
        for p in going
    ]
    findings: list[Finding] = []
    for workload in workloads:
        mine = owner_uids(view, workload)
        counts = node_faults.pods_by_node(
            node_faults.pod_on_node(p) for p in ready if node_faults.pod_on_node(p).owner_uid in mine
        )
        if any(p.owner_uid in mine for p in going):
            label = f"{workload.kind} {workload.namespace}/{workload.name}"
            findings += node_faults.spread_findings(counts, label, workload.desired, set(picked))
    return NodePlan(
        nodes=list(picked),
        prior={n: bool((nodes[n].get("spec") or {}).get("unschedulable")) for n in picked},
        displaced=displaced,
        chosen=given_pods
        if given_pods is not None
        else [p for p in ready if (p.get("spec") or {}).get("nodeName") in set(picked)],
        findings=findings,
    )


async def _check_collateral(
    env: RunEnv,
    run: ChaosRun,
    engine: FaultEngine,
    policies: Policies,
    going: list[PodOnNode],
    target_owners: set[str],
) -> None:
    assert run.spec.fault is not None
    kind = engine.policy_kind(run.spec.fault)
    verdicts: dict[str, str | None] = {}
    for namespace in sorted({p.namespace for p in going if p.owner_uid not in target_owners}):
        labels = await env.namespace_labels.get(env.io, env.kube, namespace)
        decision = core_policy.check_static(
            policies,
            experiment_namespace=namespace,
            target_namespace=namespace,
            target_namespace_labels=labels or {},
            fault_kind=kind,
            operator_namespace=env.operator_namespace,
        )
        verdicts[namespace] = None if decision.allowed else decision.message
    problem = node_faults.collateral_problem(
        going,
        target_owners=target_owners,
        namespace_refusal=lambda ns: verdicts.get(ns),
        any_namespace=bool(policies)
        and all(spec.node_faults.collateral_namespaces is CollateralNamespaces.ANY for _, spec in policies),
    )
    if problem is not None:
        raise Refused("CollateralNotAllowed", problem)


async def _owners(
    env: RunEnv, going: list[PodOnNode], workloads: list[Workload], view: Any, target_owners: set[str]
) -> dict[str, tuple[str, int]]:
    """Controller uid → (the workload in words, its desired count), for the pods that go: the
    target's from the cache, everyone else's read (their namespaces may be outside what we watch)."""
    found: dict[str, tuple[str, int]] = {}
    for workload in workloads:
        for owner in owner_uids(view, workload):
            found[owner] = (f"{workload.kind} {workload.namespace}/{workload.name}", workload.desired)
    for pod in going:
        if pod.owner_uid in found or not pod.owner_kind:
            continue
        found[pod.owner_uid] = await _resolve(env, pod)
    return found


async def _resolve(env: RunEnv, pod: PodOnNode) -> tuple[str, int]:
    kind, name = pod.owner_kind, pod.owner_name
    try:
        if kind == "ReplicaSet":
            rs = await env.io(env.kube.get_workload, "ReplicaSet", pod.namespace, name)
            parent = next(
                (o for o in rs["metadata"].get("ownerReferences") or [] if o.get("controller")), None
            )
            if parent is not None and parent.get("kind") == "Deployment":
                kind, name = "Deployment", str(parent["name"])
            else:
                return f"ReplicaSet {pod.namespace}/{name}", workload_from("ReplicaSet", rs).desired
        if kind in ("Deployment", "StatefulSet", "DaemonSet"):
            obj = await env.io(env.kube.get_workload, kind, pod.namespace, name)
            return f"{kind} {pod.namespace}/{name}", workload_from(kind, obj).desired
    except NotFound:
        pass
    return f"{kind} {pod.namespace}/{name}", 0  # a controller we cannot size: no per-workload cap


def _bare_label(pod: PodOnNode) -> str:
    return f"{pod.owner_kind or 'Pod'} {pod.namespace}/{pod.owner_name or pod.name}"
