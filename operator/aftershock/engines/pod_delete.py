"""Native pod delete: the pod's controller must replace it; nothing to revert."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from aftershock.api.common import Finding
from aftershock.api.experiment import Fault
from aftershock.api.run import TargetRecord
from aftershock.engines.base import InjectContext, Native, Permission
from aftershock.kube import now


class PodDeleteEngine(Native):
    kind = "podDelete"
    sustained = False

    def damage(self, fault: Fault) -> tuple[Permission, ...]:
        return (Permission("delete", "", "pods"),)

    def describe(self, fault: Fault) -> str:
        grace = fault.pod_delete.grace_period_seconds if fault.pod_delete else None
        return "delete the target pods" + (f" (grace period {grace} s)" if grace is not None else "")

    def inject(self, ctx: InjectContext, target: TargetRecord) -> dt.datetime | None:
        assert target.namespace and target.uid, "pod targets are recorded with namespace and uid"
        grace = ctx.fault.pod_delete.grace_period_seconds if ctx.fault.pod_delete else None
        stamp = now()
        deleted = ctx.kube.delete_pod(target.namespace, target.name, target.uid, grace)
        return stamp if deleted else None

    def revert(self, ctx: InjectContext) -> Sequence[Finding]:
        """A deleted pod cannot be undeleted; recovery is its controller's job, which we observe."""
        return ()
