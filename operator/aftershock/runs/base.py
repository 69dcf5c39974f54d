"""What every part of a run's life shares: how it does I/O without holding a thread while it waits,
how it is told to stop, and the two ways a step can give up.

A run is an asyncio task. Its Kubernetes calls are blocking (the official client), so each one is
handed to the run I/O pool (cluster/io.py) for the length of that call only; between calls, and
while it waits for a fault to be held or a workload to recover, a run holds no thread at all.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from aftershock.cluster.io import Io
from aftershock.core.watch_scope import Scope
from aftershock.kube import Kube, Obj, now
from aftershock.runs.namespaces import NamespaceLabels


class ClusterView(Protocol):
    """The watch-fed reads a run decides on (cluster/cache.py); never an API call."""

    def list_workloads(self, kind: str, namespace: str, label_selector: str) -> list[Obj]: ...
    def list_replicasets(self, namespace: str, label_selector: str) -> list[Obj]: ...
    def list_pods(self, namespace: str, label_selector: str) -> list[Obj]: ...
    def list_pdbs(self, namespace: str) -> list[Obj]: ...
    def active_runs(self) -> list[Obj]: ...
    def policies(self) -> list[Obj]: ...
    def get_run(self, namespace: str, name: str) -> Obj | None: ...
    def version(self, namespace: str) -> int: ...
    async def wait_for_change(self, namespace: str, since: int, timeout: float) -> None: ...


class ClaimLiveness(Protocol):
    """Whether the operator holding a claim is alive (its Lease is renewed: cluster/lease.py)."""

    @property
    def reference(self) -> str | None: ...
    def holder_is_live(self, holder: str, lease: str | None, moment: dt.datetime) -> bool: ...
    def valid(self, moment: dt.datetime) -> bool: ...


class AlwaysLive:
    """For one-shot callers (the release command) that only abort and never take runs over."""

    @property
    def reference(self) -> str | None:
        return None

    def holder_is_live(self, holder: str, lease: str | None, moment: dt.datetime) -> bool:
        return True

    def valid(self, moment: dt.datetime) -> bool:
        return True


@dataclass(frozen=True)
class Reviews:
    """How runs prove their author was checked (core/review.py): the stamps' key, or an explicit
    `trust` (an operator run without the webhook, by choice). Neither: every run is refused."""

    key: bytes | None = None
    trust: bool = False


@dataclass
class RunEnv:
    """Everything a run needs from the operator around it, built once per process."""

    kube: Kube
    io: Io
    view: ClusterView | None = None  # None only for callers that abort and never observe
    identity: str = "aftershock"
    operator_namespace: str | None = None
    scope: Scope = None  # the namespaces this operator watches (concurrency is counted there)
    poll_seconds: float = 0.25
    clock: Callable[[], dt.datetime] = now
    suspended: Callable[[], str | None] = lambda: None  # the kill switch: a sentence while active
    # a guardrail this run no longer satisfies (runs/guardrails.py): (namespace, run) → why, or None
    revoked: Callable[[str, str], str | None] = lambda _namespace, _name: None
    claims: ClaimLiveness = field(default_factory=AlwaysLive)
    on_change: Callable[[str, str], Awaitable[None]] | None = None  # (namespace, experiment)
    urgent_io: Io | None = None  # aborts and reverts (kill switch, deletion): never behind `io`
    namespace_labels: NamespaceLabels = field(default_factory=NamespaceLabels)  # shared by all runs
    reviews: Reviews = field(default_factory=Reviews)  # default: nothing reviewed, nothing runs
    api_server: tuple[tuple[str, int], ...] = ()  # host:port the API server is reached at (probes never are)

    def io_for(self, urgent: bool) -> Io:
        """The pool for the next call: a run being aborted must not queue behind busy runs."""
        return self.urgent_io if urgent and self.urgent_io is not None else self.io

    def cluster(self) -> ClusterView:
        if self.view is None:
            raise RuntimeError("this run environment has no cluster cache")
        return self.view


@dataclass
class Stop:
    """How the task around the driver asks it to stop.

    `deleted()` — the run is being deleted: abort and revert. `exiting()` — the operator is
    shutting down: leave the journal as it is, a later operator resumes it. `wait(t)` sleeps up to
    t seconds and returns early when anything a run should react to happens (deletion, shutdown,
    the kill switch, a change in the watched namespace).
    """

    deleted: Callable[[], bool]
    exiting: Callable[[], bool]
    wait: Callable[[float], Awaitable[object]]


def never_stop() -> Stop:
    async def wait(seconds: float) -> None:
        await asyncio.sleep(seconds)

    return Stop(deleted=lambda: False, exiting=lambda: False, wait=wait)


def deleting() -> Stop:
    """For a run that is being deleted: abort it now, wait for nothing."""

    async def wait(_seconds: float) -> None:
        return None

    return Stop(deleted=lambda: True, exiting=lambda: False, wait=wait)


class Abort(Exception):
    """The run cannot proceed; it ends Errored with this reason (nothing more is injected)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class LostClaim(Exception):
    """Another operator took the run over (or our own Lease lapsed); this one stops driving it."""
