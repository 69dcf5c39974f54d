"""The kinds the shared cache can hold, and how a watched scope splits them into informers.

One informer per kind and watched namespace (or one cluster-wide per kind): the number of watch
connections is fixed by the configuration, never by the number of objects or runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aftershock import GROUP, VERSION
from aftershock.core.watch_scope import Scope


@dataclass(frozen=True)
class KindSpec:
    """Where a kind lives in the API. `pinned`: watched only in one given namespace (the operator's
    Leases), whatever the scope."""

    kind: str
    group: str  # "" for the core group
    version: str
    plural: str
    namespaced: bool = True
    pinned: bool = False
    # what the operator reads of `spec` and `status` (None: all of it). The cache keeps only that:
    # 5,000 pods and their workloads' pod templates are most of the operator's memory otherwise
    spec_fields: tuple[str, ...] | None = None
    status_fields: tuple[str, ...] | None = None
    spec_drop: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


KINDS: dict[str, KindSpec] = {
    spec.kind: spec
    for spec in (
        KindSpec(
            "Pod",
            "",
            "v1",
            "pods",
            spec_fields=("nodeName",),
            status_fields=("phase", "conditions", "startTime"),
        ),
        KindSpec("ReplicaSet", "apps", "v1", "replicasets", spec_drop=("template",)),
        KindSpec("Deployment", "apps", "v1", "deployments", spec_drop=("template",)),
        KindSpec("StatefulSet", "apps", "v1", "statefulsets", spec_drop=("template", "volumeClaimTemplates")),
        KindSpec("DaemonSet", "apps", "v1", "daemonsets", spec_drop=("template",)),
        KindSpec("PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets"),
        KindSpec("ChaosRun", GROUP, VERSION, "chaosruns"),
        KindSpec("ChaosPolicy", GROUP, VERSION, "chaospolicies", namespaced=False),
        KindSpec("Lease", "coordination.k8s.io", "v1", "leases", pinned=True),
    )
}

DEFAULT_KINDS: tuple[str, ...] = (
    "Pod",
    "ReplicaSet",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "PodDisruptionBudget",
    "ChaosRun",
    "ChaosPolicy",
)
"""Everything but Lease, which is added when the cache is given the operator's namespace."""


@dataclass(frozen=True)
class Partition:
    """What one informer fills: a kind in one namespace, or everywhere (`namespace` None).
    Cluster-scoped kinds always have one partition with namespace None."""

    kind: str
    namespace: str | None

    def covers(self, namespace: str | None) -> bool:
        """Whether this partition holds every object of its kind in `namespace` (None: in every
        namespace)."""
        return self.namespace is None or self.namespace == namespace


def plan(kinds: Iterable[str], scope: Scope, lease_namespace: str | None = None) -> tuple[Partition, ...]:
    """The informers for `kinds` in `scope`: namespaced kinds are watched per namespace when the
    scope names them (never cluster-wide, so the namespaced RBAC mode suffices), cluster-wide when
    the scope is None. Lease (pinned) is watched only in `lease_namespace`, and is added when that
    is given."""
    names = list(dict.fromkeys(kinds))
    if lease_namespace is not None and "Lease" not in names:
        names.append("Lease")
    partitions: list[Partition] = []
    for name in names:
        spec = KINDS.get(name)
        if spec is None:
            raise ValueError(f"the cache cannot hold {name!r}; known kinds: {', '.join(KINDS)}")
        if spec.pinned:
            if lease_namespace is None:
                raise ValueError(f"{name} is watched only in the operator's namespace: pass lease_namespace")
            partitions.append(Partition(name, lease_namespace))
        elif not spec.namespaced or scope is None:
            partitions.append(Partition(name, None))
        else:
            partitions.extend(Partition(name, ns) for ns in dict.fromkeys(scope))
    return tuple(partitions)
