"""What every handler needs, built once at startup: the API facade, the shared cache, this
operator's Lease, the run environment, the scheduler and the I/O pools."""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass, field

from aftershock.cluster.cache import ClusterCache
from aftershock.cluster.io import Io
from aftershock.cluster.lease import OperatorLease
from aftershock.core.naming import LABEL_EXPERIMENT
from aftershock.core.watch_scope import Scope
from aftershock.kube import Kube, Obj
from aftershock.runs.base import RunEnv
from aftershock.scheduling.scheduler import Scheduler


def default_identity() -> str:
    """Unique per operator process: the pod name in a cluster, host and pid elsewhere.

    A restarted process gets a new identity and takes its runs over once the old identity's Lease
    has lapsed; two processes never share one, so they never both believe they own a run.
    """
    return (
        os.environ.get("AFTERSHOCK_OPERATOR_ID")
        or os.environ.get("POD_NAME")
        or f"{socket.gethostname()}-{os.getpid()}"
    )


NAMESPACES_ENV = "AFTERSHOCK_NAMESPACES"
"""The `--namespace` patterns, one per line (a pattern may itself hold commas)."""


@functools.cache
def namespace_patterns() -> tuple[str, ...]:
    return tuple(p for p in os.environ.get(NAMESPACES_ENV, "").split("\n") if p)


@dataclass
class OperatorContext:
    kube: Kube
    operator_namespace: str | None
    identity: str
    scope: Scope = None  # the namespaces to read in (None: the whole cluster)
    cache: ClusterCache | None = None
    lease: OperatorLease | None = None
    runs: RunEnv | None = None
    scheduler: Scheduler | None = None
    admission_io: Io | None = None
    admission_kube: Kube | None = None  # a short retry budget: the webhook answers within a timeout
    pools: list[Io] = field(default_factory=list)

    def runs_of(self, namespace: str, experiment: str) -> list[Obj]:
        """An experiment's runs from the watch cache (no API call)."""
        assert self.cache is not None, "the cache is built at startup"
        return self.cache.list("ChaosRun", namespace, {"matchLabels": {LABEL_EXPERIMENT: experiment}})

    def run_env(self) -> RunEnv:
        if self.runs is None:
            raise RuntimeError("the run environment is not initialised (startup handler did not run)")
        return self.runs


_context: OperatorContext | None = None


def set_context(context: OperatorContext) -> None:
    global _context
    _context = context


def get_context() -> OperatorContext:
    if _context is None:
        raise RuntimeError("the operator context is not initialised (startup handler did not run)")
    return _context
