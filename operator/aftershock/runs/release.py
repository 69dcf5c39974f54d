"""Letting go: what `helm uninstall` (and an upgrade that drops watched namespaces) needs done
before the operator and its permissions disappear.

Without it, every scheduled experiment and active run keeps aftershock's finalizer with nobody
left to release it: deleting them hangs, and so does deleting the CRDs or the namespace. And an
active fault would stay in place. So, in this order:

1. stop the operator (scale its Deployment to 0 and wait until its pods are gone), or it would put
   the finalizers straight back;
2. abort every active run in the released namespaces, reverting its fault (the same bounded revert
   as when a run is deleted);
3. remove aftershock's finalizer from the experiments and runs there — nobody else's;
4. on uninstall, delete the default ChaosPolicy the operator created (as Helm would delete an
   object of its chart); a policy of that name someone else made stays.

Every step is idempotent, so a hook that is retried does no harm.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from aftershock.api.common import RunPhase
from aftershock.api.run import ChaosRun
from aftershock.cluster.io import io_pool
from aftershock.core.naming import FINALIZER
from aftershock.core.selectors import to_label_selector
from aftershock.core.watch_scope import Release
from aftershock.engines.default_policy import ensure_default_policy
from aftershock.kube import Conflict, Kube, NotFound, Obj
from aftershock.runs.base import RunEnv
from aftershock.runs.driver import RunDriver

log = logging.getLogger(__name__)

RELEASED_REASON = "OperatorReleased"


class ReleaseError(RuntimeError):
    """Releasing could not be completed; the message says what is left."""


@dataclass
class Report:
    aborted: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    operator_stopped: bool = False
    default_policy: str | None = None  # what happened to it, when asked to remove it

    def summary(self) -> str:
        return (
            f"operator stopped: {'yes' if self.operator_stopped else 'not needed'}; "
            f"active runs aborted: {len(self.aborted)}; finalizers removed: {len(self.released)}"
        )


def stop_operator(kube: Kube, namespace: str, name: str, timeout: float) -> bool:
    """Scale the operator's Deployment to 0 and wait until none of its pods is left (a terminating
    pod may still be writing). False when there is no such Deployment."""
    deployment = kube.find_deployment(namespace, name)
    if deployment is None:
        return False
    if (deployment.get("spec") or {}).get("replicas") != 0:
        kube.scale_deployment(namespace, name, 0)
    selector = to_label_selector((deployment.get("spec") or {}).get("selector"))
    give_up = time.monotonic() + timeout
    while kube.list_pods(namespace, selector):
        if time.monotonic() > give_up:
            raise ReleaseError(
                f"the operator's pods ({namespace}, {selector}) were still there after {timeout:.0f} s; "
                "nothing was released"
            )
        time.sleep(0.5)
    return True


def abort_run(kube: Kube, obj: Obj, reason: str, message: str) -> None:
    """Revert and journal one active run as Aborted (the same bounded revert as a deletion)."""
    meta = obj["metadata"]
    env = RunEnv(
        kube=kube,
        io=io_pool("aftershock-release", "AFTERSHOCK_RELEASE_THREADS", 2),
        identity="aftershock-release",
    )
    try:
        asyncio.run(
            RunDriver(env, meta["namespace"], meta["name"]).abort(
                obj, ChaosRun.from_body(obj), reason, message
            )
        )
    finally:
        env.io.shutdown()


def _in_scope(kube: Kube, kind: str, release: Release) -> list[Obj]:
    return [o for o in kube.list_in(kind, release.only) if release.covers(o["metadata"]["namespace"])]


def _is_active(obj: Obj) -> bool:
    phase = (obj.get("status") or {}).get("phase")
    return not phase or not RunPhase(phase).is_terminal


def release(
    kube: Kube,
    release: Release,
    *,
    deployment: tuple[str, str] | None = None,
    stop_timeout: float = 120,
    default_policy: str | None = None,
    why: str = "the operator was uninstalled or stopped watching this namespace",
) -> Report:
    report = Report()
    if release.nothing:
        return report
    if deployment is not None:
        report.operator_stopped = stop_operator(kube, *deployment, timeout=stop_timeout)
    for obj in _in_scope(kube, "ChaosRun", release):
        if not _is_active(obj):
            continue
        meta = obj["metadata"]
        abort_run(kube, obj, RELEASED_REASON, f"{why} while the run was active")
        report.aborted.append(f"{meta['namespace']}/{meta['name']}")
    for kind in ("ChaosRun", "ChaosExperiment"):
        for obj in _in_scope(kube, kind, release):
            if _remove_finalizer(kube, kind, obj):
                report.released.append(f"{kind} {obj['metadata']['namespace']}/{obj['metadata']['name']}")
    if default_policy:
        report.default_policy = ensure_default_policy(kube, default_policy, None).reason
    log.info("released: %s", report.summary())
    return report


def _remove_finalizer(kube: Kube, kind: str, obj: Obj, attempts: int = 5) -> bool:
    meta = obj["metadata"]
    for _ in range(attempts):
        try:
            return kube.remove_finalizer(kind, obj, FINALIZER)
        except Conflict:
            try:
                obj = kube.get(kind, meta["namespace"], meta["name"])
            except NotFound:
                return False
    raise ReleaseError(f"{kind} {meta['namespace']}/{meta['name']} kept changing; its finalizer is still set")
