"""The dead-man's switch, running beside the handlers: finds fault artifacts (NetworkPolicies, pod
labels, Litmus ChaosEngines) by the `aftershock.dev/run` label and removes those whose run is gone,
finished or overdue."""

from __future__ import annotations

import logging
import threading

from aftershock.core import litmus
from aftershock.core.naming import LABEL_RUN, LABEL_RUN_NAMESPACE
from aftershock.core.sweep import Artifact, RunFacts, to_remove
from aftershock.core.times import parse_time
from aftershock.core.watch_scope import Scope
from aftershock.kube import Kube, Obj, forbidden, now

log = logging.getLogger(__name__)


def _artifact(kind: str, obj: Obj) -> Artifact:
    meta = obj["metadata"]
    labels = meta["labels"]
    return Artifact(kind, meta["namespace"], meta["name"], labels[LABEL_RUN], labels.get(LABEL_RUN_NAMESPACE))


def _litmus_engines(kube: Kube, scope: Scope) -> list[Obj]:
    """Our ChaosEngines; none when Litmus is not installed or the operator may not read them
    (Helm: litmus.enabled=false), so the other artifacts are still swept."""
    try:
        return kube.list_foreign(litmus.GROUP, litmus.VERSION, "chaosengines", scope, LABEL_RUN)
    except Exception as exc:
        if forbidden(exc) is None:
            raise
        return []


def sweep_once(kube: Kube, grace_seconds: float = 5, scope: Scope = None) -> int:
    """One pass over the scope's namespaces (None: the whole cluster)."""
    artifacts = [_artifact("NetworkPolicy", p) for p in kube.list_network_policies(LABEL_RUN, scope)]
    artifacts += [_artifact("PodLabel", p) for p in kube.list_pods_in(scope, LABEL_RUN)]
    artifacts += [_artifact("ChaosEngine", e) for e in _litmus_engines(kube, scope)]
    if not artifacts:
        return 0
    runs = {
        r["metadata"]["uid"]: RunFacts(
            (r.get("status") or {}).get("phase"), parse_time((r.get("status") or {}).get("deadline"))
        )
        for r in kube.list_in("ChaosRun", scope)
    }
    removals = to_remove(artifacts, runs, now(), grace_seconds, scope)
    for removal in removals:
        artifact = removal.artifact
        log.warning(
            "sweeper: removing %s %s/%s: %s", artifact.kind, artifact.namespace, artifact.name, removal.reason
        )
        if artifact.kind == "NetworkPolicy":
            kube.delete_network_policy(artifact.namespace, artifact.name)
        elif artifact.kind == "ChaosEngine":  # Litmus stops it (and reverts) on stop and on deletion
            engines = (litmus.GROUP, litmus.VERSION, "chaosengines", artifact.namespace, artifact.name)
            kube.merge_patch_foreign(*engines, {"spec": {"engineState": "stop"}})
            kube.delete_foreign(*engines)
        else:
            kube.patch_pod_labels(
                artifact.namespace, artifact.name, None, {LABEL_RUN: None, LABEL_RUN_NAMESPACE: None}
            )
    return len(removals)


class Sweeper:
    """Calls sweep_once every `interval` seconds on a daemon thread until stopped."""

    def __init__(self, kube: Kube, interval: float, scope: Scope = None) -> None:
        self.kube = kube
        self.interval = interval
        self.scope = scope
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="aftershock-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                sweep_once(self.kube, scope=self.scope)
            except Exception:  # keep sweeping; a failed pass is retried next interval
                log.exception("sweeper pass failed")
            self._stop.wait(self.interval)
