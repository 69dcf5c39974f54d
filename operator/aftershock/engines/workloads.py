"""Reading target workloads and their pods: which pods belong to a workload, how many it wants,
and how healthy it is now. Shared by every engine, so severity means the same for all of them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

from aftershock.core.recovery import PodState
from aftershock.core.selectors import to_label_selector
from aftershock.core.times import parse_time
from aftershock.kube import Kube, Obj


class WorkloadLister(Protocol):
    def list_workloads(self, kind: str, namespace: str, label_selector: str) -> list[Obj]: ...


class WorkloadReads(WorkloadLister, Protocol):
    """Where workloads and pods are read from: the watch-fed cache in the operator, or the API."""

    def list_replicasets(self, namespace: str, label_selector: str) -> list[Obj]: ...
    def list_pods(self, namespace: str, label_selector: str) -> list[Obj]: ...


@dataclass(frozen=True)
class Workload:
    kind: str
    namespace: str
    name: str
    uid: str
    pod_selector: dict[str, Any]
    desired: int


def workload_from(kind: str, obj: Obj) -> Workload:
    spec, status, meta = obj.get("spec", {}), obj.get("status") or {}, obj["metadata"]
    if kind == "DaemonSet":
        desired = int(status.get("desiredNumberScheduled") or 0)
    else:
        replicas = spec.get("replicas")
        desired = 1 if replicas is None else int(replicas)
    return Workload(
        kind=kind,
        namespace=meta["namespace"],
        name=meta["name"],
        uid=meta["uid"],
        pod_selector=spec.get("selector") or {},
        desired=desired,
    )


def find_workloads(
    kube: WorkloadLister, kind: str, namespace: str, selector: dict[str, Any]
) -> list[Workload]:
    objs = kube.list_workloads(kind, namespace, to_label_selector(selector))
    return sorted((workload_from(kind, o) for o in objs), key=lambda w: w.name)


def refresh(kube: Kube, workload: Workload) -> Workload:
    return workload_from(workload.kind, kube.get_workload(workload.kind, workload.namespace, workload.name))


def _controller_uid(obj: Obj) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref["uid"])
    return None


def owner_uids(kube: WorkloadReads, workload: Workload) -> set[str]:
    """UIDs of the objects that directly control the workload's pods (its ReplicaSets for a
    Deployment, the workload itself otherwise)."""
    if workload.kind != "Deployment":
        return {workload.uid}
    selector = to_label_selector(workload.pod_selector)
    return {
        rs["metadata"]["uid"]
        for rs in kube.list_replicasets(workload.namespace, selector)
        if _controller_uid(rs) == workload.uid
    }


def pods_of(kube: WorkloadReads, workload: Workload, owners: set[str] | None = None) -> list[Obj]:
    """Pods controlled by the workload (through its ReplicaSets for a Deployment).

    Ownership, not labels alone, decides: another workload whose pods happen to carry the same
    labels must never be counted, let alone deleted. `owners` may be passed from `owner_uids`
    when polling, to spare a list call per look.
    """
    pods = kube.list_pods(workload.namespace, to_label_selector(workload.pod_selector))
    owners = owners if owners is not None else owner_uids(kube, workload)
    return sorted((p for p in pods if _controller_uid(p) in owners), key=lambda p: p["metadata"]["name"])


def is_ready(pod: Obj) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def ready_since(pod: Obj) -> dt.datetime | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready" and cond.get("status") == "True":
            return parse_time(cond.get("lastTransitionTime"))
    return None


def pod_states(pods: list[Obj], deleted_uids: set[str]) -> list[PodState]:
    return [
        PodState(
            uid=p["metadata"]["uid"],
            ready=is_ready(p),
            ready_since=ready_since(p),
            deleted=p["metadata"]["uid"] in deleted_uids,
        )
        for p in pods
    ]


def why_not_ready(pods: list[Obj]) -> str:
    """A short explanation from the pods that are not Ready (scheduling messages first)."""
    reasons = []
    for pod in pods:
        if is_ready(pod):
            continue
        name = pod["metadata"]["name"]
        conditions = (pod.get("status") or {}).get("conditions") or []
        scheduled = next((c for c in conditions if c.get("type") == "PodScheduled"), None)
        if scheduled and scheduled.get("status") == "False":
            reasons.append(
                f"pod {name} cannot be scheduled: {scheduled.get('message') or scheduled.get('reason')}"
            )
        elif pod["metadata"].get("deletionTimestamp"):
            reasons.append(f"pod {name} is terminating")
        else:
            phase = (pod.get("status") or {}).get("phase", "Pending")
            reasons.append(f"pod {name} is {phase} and not Ready")
    return "; ".join(reasons[:5]) or "no pods were created to replace the deleted ones"
