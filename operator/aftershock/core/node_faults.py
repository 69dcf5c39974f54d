"""Node faults decided without the API server: which nodes may be touched, which pods a drain or a
NoExecute taint puts off them, whether those pods may be put off (collateral), and what a finished
node fault found about the target's spread.

A node is shared: draining it evicts every pod on it, other teams' included. So before anything is
touched the run lists the pods that would go, and every one of them must be somebody the policy
lets chaos reach (``nodeFaults.collateralNamespaces``), within its workload's blast radius and its
PodDisruptionBudget. Pods nobody would replace (no controller) are never evicted: that would be a
deletion for good, which `kubectl drain` also refuses without --force.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aftershock.api.common import Finding, Severity
from aftershock.core import policy as core_policy
from aftershock.core.policy import Policies
from aftershock.core.selectors import matches

CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
TAINT_PREFIX = "chaos.aftershock.dev/"
TERMINAL_PHASES = ("Succeeded", "Failed")


def litmus_taint(spec: str) -> tuple[str, str, str]:
    """Litmus node-taint's TAINTS env ("key=value:effect") as litmus-go reads it: (key, value,
    effect), value "node-taint" and effect NoExecute when left out."""
    label, _, effect = spec.partition(":")
    key, sep, value = label.partition("=")
    return key, value if sep else "node-taint", effect or "NoExecute"


def taint_key(run_uid: str) -> str:
    """The run's own taint key: no pod tolerates it by name, and it says whose it is."""
    return f"{TAINT_PREFIX}{run_uid}"


def node_refusal(name: str, labels: Mapping[str, str], policies: Policies) -> str | None:
    """Why a node may not be touched by a node fault (None: it may)."""
    for label in CONTROL_PLANE_LABELS:
        if label in labels:
            return f"node {name} is a control-plane node ({label}): node faults never touch it"
    for policy_name, spec in policies:
        if matches(spec.nodes.deny.to_json(), labels):
            return f"node {name} is excluded by ChaosPolicy {policy_name} (spec.nodes.deny {spec.nodes.deny.to_query()})"
    return None


@dataclass(frozen=True)
class PodOnNode:
    """The part of a pod on a node that decides whether a node fault puts it off, and whose it is."""

    namespace: str
    name: str
    uid: str
    node: str
    owner_kind: str  # the controller's kind ("" for a bare pod)
    owner_name: str
    owner_uid: str
    labels: Mapping[str, str]
    mirror: bool = False  # a static pod's mirror: the kubelet owns it, eviction means nothing
    finished: bool = False  # Succeeded or Failed: nothing to put off
    terminating: bool = False
    tolerations: tuple[Mapping[str, Any], ...] = ()

    @property
    def daemon(self) -> bool:
        return self.owner_kind == "DaemonSet"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def pod_on_node(pod: Mapping[str, Any]) -> PodOnNode:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    owner = next((o for o in meta.get("ownerReferences") or [] if o.get("controller")), None) or {}
    return PodOnNode(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        uid=str(meta.get("uid") or ""),
        node=str(spec.get("nodeName") or ""),
        owner_kind=str(owner.get("kind") or ""),
        owner_name=str(owner.get("name") or ""),
        owner_uid=str(owner.get("uid") or ""),
        labels=dict(meta.get("labels") or {}),
        mirror=MIRROR_ANNOTATION in (meta.get("annotations") or {}),
        finished=str((pod.get("status") or {}).get("phase") or "") in TERMINAL_PHASES,
        terminating=bool(meta.get("deletionTimestamp")),
        tolerations=tuple(spec.get("tolerations") or ()),
    )


def tolerates(tolerations: Iterable[Mapping[str, Any]], key: str, effect: str, value: str = "") -> bool:
    """Whether a pod with these tolerations stays on a node tainted `key`=`value` with `effect`.
    A NoExecute toleration with tolerationSeconds only delays the eviction: it does not count."""
    for toleration in tolerations:
        if toleration.get("effect") not in (None, "", effect):
            continue
        if effect == "NoExecute" and toleration.get("tolerationSeconds") is not None:
            continue
        operator = toleration.get("operator") or "Equal"
        tolerated_key = toleration.get("key") or ""
        if operator == "Exists" and tolerated_key in ("", key):
            return True
        if operator == "Equal" and tolerated_key == key and (toleration.get("value") or "") == value:
            return True
    return False


def displaced_by_drain(pods: Iterable[PodOnNode]) -> list[PodOnNode]:
    """The pods a drain evicts: all but DaemonSet pods, mirror pods and finished or leaving ones."""
    return [p for p in pods if not (p.daemon or p.mirror or p.finished or p.terminating)]


def displaced_by_taint(pods: Iterable[PodOnNode], key: str, effect: str, value: str = "") -> list[PodOnNode]:
    """The pods a taint evicts: none for NoSchedule; for NoExecute every one that does not tolerate it."""
    if effect != "NoExecute":
        return []
    return [
        p
        for p in pods
        if not (p.mirror or p.finished or p.terminating or tolerates(p.tolerations, key, effect, value))
    ]


@dataclass(frozen=True)
class WorkloadHit:
    """A workload that loses pods to the node fault: its label (Deployment ns/name), its desired
    count, how many of its pods are put off, and whether it is the run's own target."""

    key: str  # the controller's uid
    label: str
    desired: int
    hit: int
    target: bool


@dataclass(frozen=True)
class PdbHit:
    """A PodDisruptionBudget covering displaced pods: namespace/name, what it allows now, how many."""

    name: str
    disruptions_allowed: int
    hit: int


def collateral_problem(
    displaced: Sequence[PodOnNode],
    *,
    target_owners: set[str],
    namespace_refusal: Callable[[str], str | None],
    any_namespace: bool,
) -> str | None:
    """Why the pods a node fault would put off may not be put off (None: they may).

    `target_owners`: the controller uids of the target workload's pods; `namespace_refusal(ns)`:
    why the policy does not allow chaos in a namespace; `any_namespace`: collateralNamespaces any.
    """
    bare = [p.key for p in displaced if not p.owner_kind]
    if bare:
        return (
            f"{_pods(bare)} on the node{'s' if len({p.node for p in displaced}) > 1 else ''} "
            f"{'has' if len(bare) == 1 else 'have'} no controller: evicting "
            f"{'it' if len(bare) == 1 else 'them'} would delete {'it' if len(bare) == 1 else 'them'}"
            " for good (kubectl drain refuses that too); nothing was touched"
        )
    if any_namespace:
        return None
    refused: dict[str, tuple[str, list[str]]] = {}
    for pod in displaced:
        if pod.owner_uid in target_owners:
            continue
        if pod.namespace not in refused:
            reason = namespace_refusal(pod.namespace)
            if reason is None:
                continue
            refused[pod.namespace] = (reason, [])
        refused[pod.namespace][1].append(pod.key)
    if not refused:
        return None
    parts = [f"{_pods(keys)} in namespace {ns} ({reason})" for ns, (reason, keys) in sorted(refused.items())]
    return (
        "the node fault would also evict "
        + "; ".join(parts)
        + ": ChaosPolicy nodeFaults.collateralNamespaces is optedIn, so every pod a node fault puts off must"
        " be in a namespace chaos is allowed in; nothing was touched"
    )


def radius_problem(policies: Policies, hits: Sequence[WorkloadHit]) -> str | None:
    """The first workload the node fault would hit beyond its own blast radius (None: none)."""
    for hit in hits:
        cap, sentence = core_policy.pod_cap(policies, total_pods=hit.desired)
        if hit.hit > cap:
            whose = "the target" if hit.target else "collateral"
            return (
                f"draining would put {hit.hit} pods of {hit.label} ({whose}) off their node, more than its"
                f" cap of {cap}: {sentence} Nothing was touched"
            )
    return None


def pdb_problem(hits: Sequence[PdbHit], *, evicts_through_api: bool) -> str | None:
    """Whether a PodDisruptionBudget forbids the fault.

    A drain evicts through the Eviction API, which honours the budget and lets the drain wait for
    replacements: refused only when a budget allows no disruption at all now (the drain could
    only wait out its give-up time). A NoExecute taint's evictions bypass budgets, so then every
    budget must allow all of its pods that would go at once."""
    for hit in hits:
        if evicts_through_api and hit.disruptions_allowed <= 0:
            return (
                f"PodDisruptionBudget {hit.name} allows no disruption now ({hit.hit} of its pods are on"
                " the node): the drain could evict none of them; nothing was touched"
            )
        if not evicts_through_api and hit.hit > hit.disruptions_allowed:
            return (
                f"a NoExecute taint would evict {hit.hit} pods covered by PodDisruptionBudget {hit.name},"
                f" which allows {max(hit.disruptions_allowed, 0)} disruption(s) now (taint evictions do not"
                " wait for budgets); nothing was touched"
            )
    return None


def pdb_hits(
    pdbs: Sequence[tuple[str, Mapping[str, Any], int]], displaced: Sequence[PodOnNode]
) -> list[PdbHit]:
    """`pdbs`: (namespace/name, selector, disruptionsAllowed); the budgets that cover displaced pods."""
    hits = []
    for name, selector, allowed in pdbs:
        namespace = name.split("/", 1)[0]
        count = sum(1 for p in displaced if p.namespace == namespace and matches(selector, p.labels))
        if count:
            hits.append(PdbHit(name, allowed, count))
    return hits


def spread_findings(
    target_pods_by_node: Mapping[str, int], label: str, desired: int, drained: set[str]
) -> list[Finding]:
    """A "no spread" finding when the drained nodes held every replica of the target workload:
    one node's loss took it down completely."""
    on_drained = sum(count for node, count in target_pods_by_node.items() if node in drained)
    if desired <= 0 or on_drained < desired:
        return []
    where = ", ".join(f"{node}: {count}" for node, count in sorted(target_pods_by_node.items()) if count)
    nodes = sorted(n for n in drained if target_pods_by_node.get(n))
    return [
        Finding(
            severity=Severity.HIGH,
            title=f"no spread: every replica of {label} was on {', '.join(nodes)}",
            detail=f"all {desired} desired replicas ran on the drained node{'s' if len(nodes) > 1 else ''}"
            f" ({where}), so losing {'it' if len(nodes) == 1 else 'them'} left none Ready: spread the"
            " replicas (topologySpreadConstraints on kubernetes.io/hostname, or pod anti-affinity) and"
            " add a PodDisruptionBudget",
        )
    ]


def no_room_findings(pending: Mapping[str, str], label: str) -> list[Finding]:
    """A finding when replacements of the displaced pods could not be scheduled anywhere else
    (`pending`: pod name → the scheduler's message): the cluster had no room to absorb a node."""
    if not pending:
        return []
    example = next(iter(sorted(pending.items())))
    return [
        Finding(
            severity=Severity.HIGH,
            title=f"no room: {len(pending)} pod(s) of {label} stayed Pending",
            detail=f"after their node was drained or tainted, {len(pending)} replacement pod(s) could not be"
            f" scheduled on any other node (e.g. {example[0]}: {example[1]}): keep spare capacity for the"
            " loss of a node (N+1), or let the workload tolerate it",
        )
    ]


def pods_by_node(pods: Iterable[PodOnNode]) -> dict[str, int]:
    counts: Counter[str] = Counter(p.node for p in pods if p.node)
    return dict(counts)


def group_by_owner(pods: Iterable[PodOnNode]) -> dict[str, list[PodOnNode]]:
    grouped: dict[str, list[PodOnNode]] = defaultdict(list)
    for pod in pods:
        grouped[pod.owner_uid].append(pod)
    return dict(grouped)


def _pods(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
    return f"pod {shown}" if len(keys) == 1 else f"pods {shown}"
