"""The dead-man's switch, running beside the handlers: finds the artifacts every fault engine
declares (engines/registry.py: NetworkPolicies, pod labels, Litmus ChaosEngines, ...) by the
`aftershock.dev/run` label and removes those whose run is gone, finished or overdue."""

from __future__ import annotations

import logging
import threading

from aftershock.core.sweep import Artifact, RunFacts, to_remove
from aftershock.core.times import parse_time
from aftershock.core.watch_scope import Scope
from aftershock.engines.base import ArtifactFinder
from aftershock.engines.registry import artifact_finders
from aftershock.kube import Kube, now

log = logging.getLogger(__name__)


def sweep_once(
    kube: Kube,
    grace_seconds: float = 5,
    scope: Scope = None,
    finders: tuple[ArtifactFinder, ...] | None = None,
) -> int:
    """One pass over the scope's namespaces (None: the whole cluster) for every kind of artifact
    the registered engines leave (or `finders`)."""
    by_kind = {f.kind: f for f in (artifact_finders() if finders is None else finders)}
    artifacts: list[Artifact] = []
    for finder in by_kind.values():
        try:
            artifacts += finder.artifacts(kube, scope)
        except Exception:  # one kind that cannot be listed must not keep the others in place
            log.exception("sweeper: could not list %s artifacts", finder.kind)
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
        try:
            by_kind[artifact.kind].remove(kube, artifact)
        except Exception:  # retried next pass; the others are removed now
            log.exception(
                "sweeper: could not remove %s %s/%s", artifact.kind, artifact.namespace, artifact.name
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
