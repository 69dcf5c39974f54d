"""The run's mark on its target pods: the label `aftershock.dev/run=<run uid>` (and the run's
namespace), for faults whose means select pods by label — aftershock's own NetworkPolicy, or
Litmus's pod-network-partition, which builds its NetworkPolicy from the engine's app label. The
mark is how such a fault hits exactly the pods the run chose: set under a UID precondition (a
same-named replacement is never marked), removed at revert, and found by the sweeper and the kill
switch after a crash (POD_LABELS) even when the run is gone."""

from __future__ import annotations

from collections.abc import Iterable

from aftershock.api.run import TargetRecord
from aftershock.core.naming import LABEL_RUN, LABEL_RUN_NAMESPACE
from aftershock.core.sweep import Artifact
from aftershock.core.watch_scope import Scope
from aftershock.engines.base import ArtifactFinder
from aftershock.kube import Kube, Obj

UNMARK: dict[str, str | None] = {LABEL_RUN: None, LABEL_RUN_NAMESPACE: None}


def selector(run_uid: str) -> str:
    """The label selector of the run's marked pods."""
    return f"{LABEL_RUN}={run_uid}"


def mark(kube: Kube, target: TargetRecord, run_uid: str, run_namespace: str) -> bool:
    """Mark exactly this pod (its UID); False when it is gone or replaced."""
    assert target.namespace and target.uid, "pod targets are recorded with namespace and uid"
    return kube.patch_pod_labels(
        target.namespace, target.name, target.uid, {LABEL_RUN: run_uid, LABEL_RUN_NAMESPACE: run_namespace}
    )


def mark_all(kube: Kube, targets: Iterable[TargetRecord], run_uid: str, run_namespace: str) -> int:
    """Mark every pod target; returns how many are marked (gone ones are not)."""
    return sum(mark(kube, t, run_uid, run_namespace) for t in targets if t.kind == "Pod")


def unmark_run(kube: Kube, run_uid: str, namespace: str | None = None) -> int:
    """Remove the run's mark from every pod carrying it (in `namespace`, None: anywhere)."""
    scope = (namespace,) if namespace else None
    changed = 0
    for pod in kube.list_pods_in(scope, selector(run_uid)):
        meta = pod["metadata"]
        if kube.patch_pod_labels(meta["namespace"], meta["name"], meta["uid"], UNMARK):
            changed += 1
    return changed


def _find_marked_pods(kube: Kube, scope: Scope) -> list[Obj]:
    return kube.list_pods_in(scope, LABEL_RUN)


def _unmark_pod(kube: Kube, artifact: Artifact) -> None:
    kube.patch_pod_labels(artifact.namespace, artifact.name, None, UNMARK)


POD_LABELS = ArtifactFinder(
    kind="PodLabel",
    find=_find_marked_pods,
    remove=_unmark_pod,
    by_hand="kubectl label pod --all-namespaces -l aftershock.dev/run={uid}"
    " aftershock.dev/run- aftershock.dev/run-namespace-",
)
