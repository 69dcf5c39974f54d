"""What every handler needs, built once at startup: the API facade and operator settings."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from aftershock.core.watch_scope import Scope
from aftershock.kube import Kube


def default_identity() -> str:
    """Unique per operator process: the pod name in a cluster, host and pid elsewhere.

    A restarted process gets a new identity and takes its runs over once their heartbeat is
    stale; two processes never share one, so they never both believe they own a run.
    """
    return (
        os.environ.get("AFTERSHOCK_OPERATOR_ID")
        or os.environ.get("POD_NAME")
        or f"{socket.gethostname()}-{os.getpid()}"
    )


@dataclass
class OperatorContext:
    kube: Kube
    operator_namespace: str | None
    identity: str
    poll_seconds: float = 0.25
    scope: Scope = None  # the namespaces to read in (None: the whole cluster)


_context: OperatorContext | None = None


def set_context(context: OperatorContext) -> None:
    global _context
    _context = context


def get_context() -> OperatorContext:
    if _context is None:
        raise RuntimeError("the operator context is not initialised (startup handler did not run)")
    return _context
