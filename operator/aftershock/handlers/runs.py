"""ChaosRun handlers: an asyncio daemon per active run drives it (runs/driver.py); deletion aborts
and reverts. A daemon holds no thread: each API call borrows one from the run I/O pool."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from typing import Any

import kopf

from aftershock import GROUP, VERSION
from aftershock.api.common import RunPhase
from aftershock.engines.policy_gate import WATCH
from aftershock.handlers.context import get_context
from aftershock.handlers.startup import ready
from aftershock.metrics import RECONCILE_ERRORS
from aftershock.runs.base import Stop, deleting
from aftershock.runs.driver import RunDriver


def _active(status: kopf.Status, **_: Any) -> bool:
    phase = status.get("phase")
    return not phase or not RunPhase(phase).is_terminal


def daemon_stop(stopped: kopf.DaemonStopped) -> Stop:
    """Deletion and shutdown from kopf's flag; waits end early on either, or on the kill switch."""

    def deleted() -> bool:
        return bool(stopped) and bool(
            stopped.reason and stopped.reason & kopf.DaemonStoppingReason.RESOURCE_DELETED
        )

    def exiting() -> bool:
        return bool(stopped) and not deleted()

    async def wait(seconds: float) -> None:
        loop = asyncio.get_running_loop()
        policy_changed = asyncio.Event()

        def wake() -> None:
            loop.call_soon_threadsafe(policy_changed.set)

        forget = WATCH.listen(wake)
        waiters = {
            asyncio.ensure_future(stopped.wait(seconds)),
            asyncio.ensure_future(policy_changed.wait()),
        }
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            forget()
            for waiter in waiters:
                waiter.cancel()
                with contextlib.suppress(BaseException):
                    await waiter

    return Stop(deleted=deleted, exiting=exiting, wait=wait)


# kopf cancels an async daemon at once unless it is given a backoff: the driver must be allowed to
# finish what it is doing (an abort reverts first, a Litmus stop can take a minute), so it is only
# signalled, and cancelled only if it has not returned two minutes later
@kopf.daemon(GROUP, VERSION, "chaosruns", when=_active, cancellation_backoff=120, cancellation_timeout=10)
async def drive_run(
    name: str, namespace: str | None, body: kopf.Body, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    assert namespace, "ChaosRun is namespaced"
    await ready()
    try:
        await RunDriver(get_context().run_env(), namespace, name).drive(
            daemon_stop(stopped), copy.deepcopy(dict(body))
        )
    except Exception:
        RECONCILE_ERRORS.labels("ChaosRun", "drive").inc()
        raise


# optional: a finished run needs no finalizer (only the daemon of an active run holds one), so
# deleting a namespace never waits on finished runs, even when the operator no longer watches it
@kopf.on.delete(GROUP, VERSION, "chaosruns", optional=True)
async def run_deleted(name: str, namespace: str | None, status: kopf.Status, **_: Any) -> None:
    """Abort a run deleted while active (also when no daemon is running for it), then release it."""
    assert namespace, "ChaosRun is namespaced"
    phase = status.get("phase")
    if phase and RunPhase(phase).is_terminal:
        return
    await ready()
    await RunDriver(get_context().run_env(), namespace, name).drive(deleting())
