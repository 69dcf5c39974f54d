"""Native node drain: cordon the nodes the chosen pods run on, then evict the pods recorded as
theirs to put off (status.displaced) through the Eviction API, so PodDisruptionBudgets decide the
pace — as `kubectl drain` does. Evictions a budget refuses are asked again while the fault is held
(`tend`), until `giveUpAfter`; whatever is still on the node then is a finding. The nodes are
uncordoned at the revert (only those this run cordoned: engines/node_marks.py).

Only recorded pods are evicted, by UID: a pod that arrived after the collateral check was made is
left where it is, and a same-named replacement is never touched.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from aftershock.api.common import Finding, Severity
from aftershock.api.experiment import Fault
from aftershock.api.run import DisplacedPod, TargetRecord
from aftershock.core.node_faults import PodOnNode, displaced_by_drain
from aftershock.engines.base import InjectContext, Permission
from aftershock.engines.node_marks import PATCH_NODES, NodeEngine, mark, unmark
from aftershock.kube import Kube, now

log = logging.getLogger(__name__)

EVICT_ANYWHERE = Permission("create", "", "pods", subresource="eviction", namespaced=False)


def _still_there(kube: Kube, node: str, recorded: Sequence[DisplacedPod]) -> list[DisplacedPod]:
    """The recorded pods of a node that are still on it and not yet leaving."""
    live = {
        str(p["metadata"]["uid"])
        for p in kube.list_pods_on_node(node)
        if not p["metadata"].get("deletionTimestamp")
    }
    return [d for d in recorded if d.node == node and d.uid in live]


def evict(kube: Kube, node: str, recorded: Sequence[DisplacedPod], grace: int | None) -> dict[str, str]:
    """Evict the recorded pods still on the node; what refused, by pod (namespace/name → why)."""
    refused = {}
    for pod in _still_there(kube, node, recorded):
        why = kube.evict_pod(pod.namespace, pod.name, pod.uid, grace)
        if why is not None:
            refused[f"{pod.namespace}/{pod.name}"] = why
    return refused


class NodeDrainEngine(NodeEngine):
    kind = "nodeDrain"
    paced_by_budgets = True

    def damage(self, fault: Fault) -> tuple[Permission, ...]:
        """Cordoning changes a cluster-scoped object and the evictions may reach any namespace the
        node's pods are in: the author must be allowed both cluster-wide."""
        return (PATCH_NODES, EVICT_ANYWHERE)

    def describe(self, fault: Fault) -> str:
        return "drain the nodes the target pods run on (cordon, then evict their pods)"

    def displaced(self, fault: Fault, pods: Sequence[PodOnNode], run_uid: str) -> list[PodOnNode]:
        return displaced_by_drain(pods)

    def _grace(self, ctx: InjectContext) -> int | None:
        return ctx.fault.node_drain.grace_period_seconds if ctx.fault.node_drain else None

    def inject(self, ctx: InjectContext, target: TargetRecord) -> dt.datetime | None:
        prior = mark(ctx.kube, target.name, ctx.run_uid, ctx.run_namespace, cordon=True, taint_effect=None)
        if prior is None:
            return None  # the node is gone: nothing to drain
        stamp = now()
        refused = evict(ctx.kube, target.name, ctx.displaced, self._grace(ctx))
        if refused:
            log.info(
                "run %s/%s: evictions refused for now on %s: %s",
                ctx.run_namespace,
                ctx.run_name,
                target.name,
                refused,
            )
        return stamp

    def tend(self, ctx: InjectContext) -> bool:
        """Ask again for the evictions a budget refused, until giveUpAfter has passed."""
        assert ctx.fault.node_drain is not None
        started = [t.injected_at for t in ctx.targets if t.injected_at is not None]
        if not started or now() > min(started) + ctx.fault.node_drain.give_up_delta:
            return False
        left = 0
        for target in ctx.targets:
            if target.kind == "Node" and target.injected_at is not None:
                left += len(evict(ctx.kube, target.name, ctx.displaced, self._grace(ctx)))
        return left > 0

    def revert(self, ctx: InjectContext) -> Sequence[Finding]:
        findings: list[Finding] = []
        for target in ctx.targets:
            if target.kind != "Node":
                continue
            if target.injected_at is not None:
                stayed = _still_there(ctx.kube, target.name, ctx.displaced)
                if stayed:
                    findings.append(_not_drained(target.name, stayed, ctx))
            unmark(ctx.kube, target.name, ctx.run_uid)
        return findings


def _not_drained(node: str, stayed: Sequence[DisplacedPod], ctx: InjectContext) -> Finding:
    give_up = ctx.fault.node_drain.give_up_after if ctx.fault.node_drain else "?"
    names = ", ".join(f"{p.namespace}/{p.name}" for p in stayed[:10])
    more = f" and {len(stayed) - 10} more" if len(stayed) > 10 else ""
    return Finding(
        severity=Severity.LOW,
        title=f"node {node} could not be drained completely",
        detail=f"{len(stayed)} pod(s) stayed on it because their eviction was refused (a"
        f" PodDisruptionBudget) until the drain gave up after {give_up} or the fault ended: {names}{more}."
        " A budget that never lets a pod go blocks node maintenance too: allow at least one disruption",
    )
