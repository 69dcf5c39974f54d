"""Native network partition: a NetworkPolicy that allows nothing, selecting the target pods.

The target pods are marked with the label `aftershock.dev/run=<run uid>` (UID precondition, so a
replacement is never marked) and one NetworkPolicy per run selects that label. Both carry the run
uid, so the sweeper can find and remove them after a crash even when the run is gone (the two
artifact finders below). Revert deletes the policy and removes the label; both steps tolerate
"already done".

The policy's name is derived from the run's, but a name proves nothing: a NetworkPolicy of that
name that does not carry the run's label (a tenant made it first) ends the run Errored
(ArtifactNameTaken) and is never changed or deleted. Revert finds what to remove by the label
alone, and deletes under a UID precondition.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from aftershock.api.common import Finding
from aftershock.api.experiment import Fault
from aftershock.api.run import TargetRecord
from aftershock.core.naming import LABEL_RUN, LABEL_RUN_NAMESPACE, label_value, run_artifact_name
from aftershock.core.sweep import Artifact
from aftershock.core.watch_scope import Scope
from aftershock.engines import pod_marks
from aftershock.engines.base import ArtifactFinder, InjectContext, Native, Permission, create_owned
from aftershock.kube import Kube, Obj, now

LABEL_RUN_NAME = "aftershock.dev/run-name"


def policy_name(run_name: str, run_namespace: str, target_namespace: str) -> str:
    """``aftershock-<run>`` (with a hash of the run's namespace for a target elsewhere), a valid
    object name however long the run's name is."""
    return run_artifact_name(run_name, run_namespace, target_namespace, prefix="aftershock-")


def policy_body(ctx: InjectContext) -> Obj:
    direction = ctx.fault.network_partition.direction if ctx.fault.network_partition else "Both"
    types = ["Ingress", "Egress"] if str(direction) == "Both" else [str(direction)]
    meta: Obj = {
        "name": policy_name(ctx.run_name, ctx.run_namespace, ctx.target_namespace),
        "namespace": ctx.target_namespace,
        "labels": {
            LABEL_RUN: ctx.run_uid,
            LABEL_RUN_NAMESPACE: ctx.run_namespace,
            LABEL_RUN_NAME: label_value(ctx.run_name),
        },
    }
    if ctx.target_namespace == ctx.run_namespace:  # ownerReferences cannot cross namespaces
        meta["ownerReferences"] = [
            {
                "apiVersion": "aftershock.dev/v1alpha1",
                "kind": "ChaosRun",
                "name": ctx.run_name,
                "uid": ctx.run_uid,
                "blockOwnerDeletion": False,
            }
        ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta,
        # no ingress/egress rules: all traffic of the listed types is denied
        "spec": {"podSelector": {"matchLabels": {LABEL_RUN: ctx.run_uid}}, "policyTypes": types},
    }


def _find_policies(kube: Kube, scope: Scope) -> list[Obj]:
    return kube.list_network_policies(LABEL_RUN, scope)


def _remove_policy(kube: Kube, artifact: Artifact) -> None:
    kube.delete_network_policy(artifact.namespace, artifact.name)


NETWORK_POLICIES = ArtifactFinder(
    kind="NetworkPolicy",
    find=_find_policies,
    remove=_remove_policy,
    by_hand="kubectl delete networkpolicy --all-namespaces -l aftershock.dev/run={uid}",
)


def remove_artifacts(kube: Kube, run_uid: str, namespace: str | None = None) -> int:
    """Delete every NetworkPolicy and pod label of one run; returns how many objects changed."""
    changed = 0
    scope = (namespace,) if namespace else None
    for policy in kube.list_network_policies(f"{LABEL_RUN}={run_uid}", scope):
        meta = policy["metadata"]
        if kube.delete_network_policy(meta["namespace"], meta["name"], meta.get("uid")):
            changed += 1
    return changed + pod_marks.RUN_MARK.remove_run(kube, run_uid, namespace)


class NetworkPartitionEngine(Native):
    kind = "networkPartition"
    sustained = True
    artifacts = (NETWORK_POLICIES, pod_marks.POD_LABELS)

    def damage(self, fault: Fault) -> tuple[Permission, ...]:
        return (
            Permission("create", "networking.k8s.io", "networkpolicies"),
            Permission("patch", "", "pods"),
        )

    def describe(self, fault: Fault) -> str:
        direction = fault.network_partition.direction if fault.network_partition else "Both"
        cut = {"Both": "all traffic", "Ingress": "incoming traffic", "Egress": "outgoing traffic"}
        return f"cut {cut.get(str(direction), str(direction))} of the target pods with a NetworkPolicy"

    def inject(self, ctx: InjectContext, target: TargetRecord) -> dt.datetime | None:
        assert target.namespace and target.uid, "pod targets are recorded with namespace and uid"
        body = policy_body(ctx)
        name = body["metadata"]["name"]
        create_owned(
            lambda: ctx.kube.create_network_policy(ctx.target_namespace, body),
            lambda: ctx.kube.find_network_policy(ctx.target_namespace, name),
            ctx.run_uid,
            f"a NetworkPolicy named {name} in namespace {ctx.target_namespace}",
        )
        stamp = now()
        return stamp if pod_marks.RUN_MARK.put(ctx.kube, target, ctx.run_uid, ctx.run_namespace) else None

    def revert(self, ctx: InjectContext) -> Sequence[Finding]:
        remove_artifacts(ctx.kube, ctx.run_uid, ctx.target_namespace)
        return ()
