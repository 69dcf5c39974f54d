"""The run's mark on its target pods, for faults whose means select pods by label: aftershock's own
NetworkPolicy (`aftershock.dev/run=<run uid>`), or Litmus's pod-network-partition, which builds
its NetworkPolicy from the engine's app label (`aftershock.dev/target-of=<run uid>`: Litmus copies
the engine's labels, `aftershock.dev/run` among them, onto its own pods). The mark is how such a
fault hits exactly the pods the run chose: set under a UID precondition (a same-named replacement
is never marked), removed at revert, and found by the sweeper and the kill switch after a crash
even when the run is gone (the finders below)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aftershock.api.run import TargetRecord
from aftershock.core.naming import LABEL_RUN, LABEL_RUN_NAMESPACE, LABEL_TARGET_OF
from aftershock.core.sweep import Artifact
from aftershock.core.watch_scope import Scope
from aftershock.engines.base import ArtifactFinder
from aftershock.kube import Kube, Obj


@dataclass(frozen=True)
class Mark:
    key: str  # the label whose value is the run's uid

    def selector(self, run_uid: str) -> str:
        """The label selector of the run's marked pods."""
        return f"{self.key}={run_uid}"

    @property
    def unmark(self) -> dict[str, str | None]:
        return {self.key: None, LABEL_RUN_NAMESPACE: None}

    def put(self, kube: Kube, target: TargetRecord, run_uid: str, run_namespace: str) -> bool:
        """Mark exactly this pod (its UID); False when it is gone or replaced."""
        assert target.namespace and target.uid, "pod targets are recorded with namespace and uid"
        return kube.patch_pod_labels(
            target.namespace, target.name, target.uid, {self.key: run_uid, LABEL_RUN_NAMESPACE: run_namespace}
        )

    def put_all(self, kube: Kube, targets: Iterable[TargetRecord], run_uid: str, run_namespace: str) -> int:
        """Mark every pod target; returns how many are marked (gone ones are not)."""
        return sum(self.put(kube, t, run_uid, run_namespace) for t in targets if t.kind == "Pod")

    def remove_run(self, kube: Kube, run_uid: str, namespace: str | None = None) -> int:
        """Remove the run's mark from every pod carrying it (in `namespace`, None: anywhere)."""
        scope = (namespace,) if namespace else None
        changed = 0
        for pod in kube.list_pods_in(scope, self.selector(run_uid)):
            meta = pod["metadata"]
            if kube.patch_pod_labels(meta["namespace"], meta["name"], meta["uid"], self.unmark):
                changed += 1
        return changed

    def finder(self, kind: str) -> ArtifactFinder:
        def find(kube: Kube, scope: Scope) -> list[Obj]:
            return kube.list_pods_in(scope, self.key)

        def remove(kube: Kube, artifact: Artifact) -> None:
            kube.patch_pod_labels(artifact.namespace, artifact.name, None, self.unmark)

        return ArtifactFinder(
            kind=kind,
            find=find,
            remove=remove,
            by_hand=f"kubectl label pod --all-namespaces -l {self.key}={{uid}} {self.key}- {LABEL_RUN_NAMESPACE}-",
            label=self.key,
        )


RUN_MARK = Mark(LABEL_RUN)
TARGET_MARK = Mark(LABEL_TARGET_OF)
POD_LABELS = RUN_MARK.finder("PodLabel")
TARGET_LABELS = TARGET_MARK.finder("PodTargetLabel")
