"""What a node fault puts on a node, and how it comes off again — also after a crash, and never
more than this run put there.

One merge patch, under a resourceVersion precondition, both changes the node and says whose the
change is: the label ``aftershock.dev/run=<run uid>`` (how the sweeper and the kill switch find the
node), the annotation ``aftershock.dev/cordoned-by=<run uid>`` only when this run flipped
``spec.unschedulable`` (a node someone else had cordoned stays cordoned), and the taint
``chaos.aftershock.dev/<run uid>``. Reading the node and writing the patch are one step: a
concurrent change makes the patch fail (409) and the node is read again, so the record of the
prior state is never stale. A node already carrying another run's label is not touched: two node
faults never share a node.

What the marks cannot tell: someone who cordons a node that this run had already cordoned changes
nothing visible, and that node is uncordoned at the revert (as `kubectl uncordon` after a drain).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aftershock import GROUP
from aftershock.api.common import Finding
from aftershock.api.experiment import Fault
from aftershock.core.naming import LABEL_RUN, LABEL_RUN_NAMESPACE
from aftershock.core.node_faults import PodOnNode, taint_key
from aftershock.core.sweep import Artifact
from aftershock.core.watch_scope import Scope
from aftershock.engines.base import (
    ArtifactFinder,
    EngineError,
    InjectContext,
    Native,
    Permission,
    TargetUnit,
    distinct_nodes,
)
from aftershock.kube import Kube, Obj, forbidden

log = logging.getLogger(__name__)

CORDONED_BY = f"{GROUP}/cordoned-by"
ATTEMPTS = 5


def mark(
    kube: Kube, node: str, run_uid: str, run_namespace: str, *, cordon: bool, taint_effect: str | None
) -> bool | None:
    """Put this run's marks on a node (idempotent); whether it was cordoned before (None: gone)."""
    for _ in range(ATTEMPTS):
        obj = kube.find_node(node)
        if obj is None:
            return None
        meta, spec = obj["metadata"], obj.get("spec") or {}
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        holder = labels.get(LABEL_RUN)
        unschedulable = bool(spec.get("unschedulable"))
        if holder and holder != run_uid:
            raise EngineError(
                "NodeBusy",
                f"node {node} is under a node fault of another run (uid {holder}): two node faults never"
                " share a node; nothing was done to it",
            )
        key = taint_key(run_uid)
        taints: list[Any] = list(spec.get("taints") or [])
        has_taint = any(t.get("key") == key for t in taints)
        if holder == run_uid and (taint_effect is None or has_taint):
            return unschedulable and annotations.get(CORDONED_BY) != run_uid  # an earlier attempt did it
        patch: Obj = {
            "metadata": {
                "resourceVersion": meta["resourceVersion"],
                "labels": {LABEL_RUN: run_uid, LABEL_RUN_NAMESPACE: run_namespace},
            },
            "spec": {},
        }
        if cordon and not unschedulable:
            patch["metadata"]["annotations"] = {CORDONED_BY: run_uid}
            patch["spec"]["unschedulable"] = True
        if taint_effect is not None and not has_taint:
            patch["spec"]["taints"] = [*taints, {"key": key, "effect": taint_effect}]
        if kube.patch_node(node, patch):
            return unschedulable
    raise EngineError(
        "NodeContention", f"node {node} kept changing while it was being marked; nothing was done"
    )


def unmark(kube: Kube, node: str, run_uid: str) -> bool:
    """Take this run's marks off a node: uncordon only if this run cordoned it, remove only its own
    taint (idempotent); whether anything changed."""
    key = taint_key(run_uid)
    for _ in range(ATTEMPTS):
        obj = kube.find_node(node)
        if obj is None:
            return False
        meta, spec = obj["metadata"], obj.get("spec") or {}
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        taints = list(spec.get("taints") or [])
        kept = [t for t in taints if t.get("key") != key]
        cordoned_by_us = annotations.get(CORDONED_BY) == run_uid
        labelled = labels.get(LABEL_RUN) == run_uid
        if not (labelled or cordoned_by_us or len(kept) != len(taints)):
            return False
        patch: Obj = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "spec": {}}
        if labelled:
            patch["metadata"]["labels"] = {LABEL_RUN: None, LABEL_RUN_NAMESPACE: None}
        if cordoned_by_us:
            patch["metadata"]["annotations"] = {CORDONED_BY: None}
            patch["spec"]["unschedulable"] = None
        if len(kept) != len(taints):
            patch["spec"]["taints"] = kept or None
        if kube.patch_node(node, patch):
            return True
    raise RuntimeError(f"node {node} kept changing while this run's marks were being removed")


def _find(kube: Kube, scope: Scope) -> list[Obj]:
    """Nodes carrying a run's label (cluster-scoped: the run's namespace decides whose they are).
    An operator without rights on nodes runs no node faults: it finds none."""
    del scope
    try:
        return kube.list_nodes(LABEL_RUN)
    except Exception as exc:
        if forbidden(exc) is None:
            raise
        return []


def _remove(kube: Kube, artifact: Artifact) -> None:
    unmark(kube, artifact.name, artifact.run_uid)


NODE_MARKS = ArtifactFinder(
    kind="NodeMark",
    find=_find,
    remove=_remove,
    by_hand=(
        "for n in $(kubectl get nodes -l aftershock.dev/run={uid} -o name); do"
        " kubectl taint $n chaos.aftershock.dev/{uid}- ;"
        " [ \"$(kubectl get $n -o jsonpath='{{.metadata.annotations.aftershock\\.dev/cordoned-by}}')\" = {uid} ]"
        " && kubectl uncordon $n ;"
        " kubectl annotate $n aftershock.dev/cordoned-by- ; kubectl label $n aftershock.dev/run- aftershock.dev/run-namespace- ;"
        " done"
    ),
)

PATCH_NODES = Permission("patch", "", "nodes", namespaced=False)


class NodeEngine(Native):
    """What the native node faults share: they act on the nodes of the chosen pods, hold the fault,
    expect the workload to heal while it is held, and leave marks on the nodes."""

    sustained = True
    picks_nodes = True
    heals_while_held = True
    artifacts = (NODE_MARKS,)

    def target_unit(self, fault: Fault) -> TargetUnit:
        return TargetUnit.NODES

    def node_targets(self, fault: Fault, pods: Sequence[Any]) -> list[str]:
        return distinct_nodes(pods)

    def revert(self, ctx: InjectContext) -> Sequence[Finding]:
        for target in ctx.targets:
            if target.kind == "Node":
                unmark(ctx.kube, target.name, ctx.run_uid)
        return ()

    def displaces(self, fault: Fault) -> bool:
        return True

    def displaced(self, fault: Fault, pods: Sequence[PodOnNode], run_uid: str) -> list[PodOnNode]:
        raise NotImplementedError
