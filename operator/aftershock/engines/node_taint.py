"""Native node taint: a taint with this run's own key (``chaos.aftershock.dev/<run uid>``) on the
nodes the chosen pods run on, removed at the revert. NoSchedule keeps new pods off; NoExecute also
makes Kubernetes' taint manager evict the pods already there that do not tolerate it — without
consulting PodDisruptionBudgets, which is why the run checks them before tainting (runs/node_plan.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from aftershock.api.experiment import Fault, TaintEffect
from aftershock.api.run import TargetRecord
from aftershock.core.node_faults import PodOnNode, displaced_by_taint, taint_key
from aftershock.engines.base import InjectContext, Permission
from aftershock.engines.node_marks import PATCH_NODES, NodeEngine, mark
from aftershock.kube import now

DELETE_ANYWHERE = Permission("delete", "", "pods", namespaced=False)


def _effect(fault: Fault) -> str:
    return str(fault.node_taint.effect) if fault.node_taint else TaintEffect.NO_SCHEDULE.value


class NodeTaintEngine(NodeEngine):
    kind = "nodeTaint"

    def damage(self, fault: Fault) -> tuple[Permission, ...]:
        """A taint changes a cluster-scoped object; a NoExecute one removes pods in any namespace."""
        if _effect(fault) == TaintEffect.NO_EXECUTE.value:
            return (PATCH_NODES, DELETE_ANYWHERE)
        return (PATCH_NODES,)

    def describe(self, fault: Fault) -> str:
        return f"taint the nodes the target pods run on ({_effect(fault)})"

    def displaced(self, fault: Fault, pods: Sequence[PodOnNode], run_uid: str) -> list[PodOnNode]:
        return displaced_by_taint(pods, taint_key(run_uid), _effect(fault))

    def inject(self, ctx: InjectContext, target: TargetRecord) -> dt.datetime | None:
        stamp = now()
        prior = mark(
            ctx.kube,
            target.name,
            ctx.run_uid,
            ctx.run_namespace,
            cordon=False,
            taint_effect=_effect(ctx.fault),
        )
        return None if prior is None else stamp
