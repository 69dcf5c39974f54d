"""ChaosRun handlers: a daemon per active run drives it (engines/runner.py), which refreshes the
owning experiment's status when a run starts and ends; deletion aborts and reverts."""

from __future__ import annotations

from typing import Any

import kopf

from aftershock import GROUP, VERSION
from aftershock.api.common import RunPhase
from aftershock.engines.policy_gate import WATCH
from aftershock.engines.runner import RunDriver, Stop
from aftershock.handlers.context import get_context
from aftershock.handlers.experiment_status import refresh_experiment_status
from aftershock.metrics import RECONCILE_ERRORS


def _active(status: kopf.Status, **_: Any) -> bool:
    phase = status.get("phase")
    return not phase or not RunPhase(phase).is_terminal


def _driver(namespace: str | None, name: str) -> RunDriver:
    assert namespace, "ChaosRun is namespaced"
    ctx = get_context()
    return RunDriver(
        ctx.kube,
        namespace,
        name,
        identity=ctx.identity,
        operator_namespace=ctx.operator_namespace,
        poll_seconds=ctx.poll_seconds,
        on_change=lambda experiment: refresh_experiment_status(ctx.kube, namespace, experiment),
        suspended=WATCH.suspended,
        scope=ctx.scope,
    )


@kopf.daemon(GROUP, VERSION, "chaosruns", when=_active, cancellation_timeout=30)
def drive_run(name: str, namespace: str | None, stopped: kopf.DaemonStopped, **_: Any) -> None:
    driver = _driver(namespace, name)
    stop = Stop(
        deleted=lambda: (
            bool(stopped)
            and bool(stopped.reason and stopped.reason & kopf.DaemonStoppingReason.RESOURCE_DELETED)
        ),
        exiting=lambda: (
            bool(stopped)
            and not bool(stopped.reason and stopped.reason & kopf.DaemonStoppingReason.RESOURCE_DELETED)
        ),
        wait=stopped.wait,
    )
    try:
        driver.drive(stop)
    except Exception:
        RECONCILE_ERRORS.labels("ChaosRun", "drive").inc()
        raise


# optional: a finished run needs no finalizer (only the daemon of an active run holds one), so
# deleting a namespace never waits on finished runs, even when the operator no longer watches it
@kopf.on.delete(GROUP, VERSION, "chaosruns", optional=True)
def run_deleted(name: str, namespace: str | None, status: kopf.Status, **_: Any) -> None:
    """Abort a run deleted while active (also when no daemon is running for it), then release it."""
    phase = status.get("phase")
    if phase and RunPhase(phase).is_terminal:
        return
    _driver(namespace, name).drive(Stop(deleted=lambda: True, exiting=lambda: False, wait=lambda _t: None))
