"""The building blocks fault engines are made of: what they are given (InjectContext), what they
report (Followed, findings), what they declare (Permission, ArtifactFinder) and how they fail
(EngineError). The protocol and the table of engines are in engines/registry.py.

Observation of recovery is shared (the runner's observer), so that severity means the same
whatever engine caused the fault.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aftershock.api.common import Finding
from aftershock.api.experiment import Fault, Target
from aftershock.api.run import DisplacedPod, EngineRecord, TargetRecord
from aftershock.core.naming import LABEL_RUN, LABEL_RUN_NAMESPACE, carries_run_label
from aftershock.core.node_faults import PodOnNode
from aftershock.core.sweep import Artifact
from aftershock.core.watch_scope import Scope
from aftershock.kube import Kube, Obj


class EngineError(Exception):
    """The chaos could not be carried out (engine missing, RBAC denied): the run ends Errored."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


ARTIFACT_NAME_TAKEN = "ArtifactNameTaken"


def create_owned(
    create: Callable[[], bool], find: Callable[[], Obj | None], run_uid: str, what: str, attempts: int = 3
) -> bool:
    """Create an artifact of a deterministic name: True when this call created it, False when it
    exists already and carries this run's label (made by an earlier attempt of this run).

    A 409 alone proves nothing: anyone with create rights in the target namespace can take the
    name first. An existing object without ``aftershock.dev/run=<run uid>`` is left exactly as it
    is, and the run ends Errored (EngineError ArtifactNameTaken): adopting it would let its author
    decide what the fault does, and reverting would delete it.
    """
    for _ in range(attempts):
        if create():
            return True
        existing = find()
        if existing is None:
            continue  # deleted between the create and the read: try again
        if carries_run_label(existing, run_uid):
            return False
        raise EngineError(
            ARTIFACT_NAME_TAKEN,
            f"{what} already exists and was not made by this run (it lacks the label {LABEL_RUN}={run_uid}):"
            " it was left untouched and the fault was not injected; remove or rename that object and"
            " run again",
        )
    raise EngineError(
        ARTIFACT_NAME_TAKEN, f"{what} kept being created and deleted by someone else; nothing was injected"
    )


@dataclass(frozen=True)
class InjectContext:
    kube: Kube
    run_name: str
    run_namespace: str
    run_uid: str
    fault: Fault
    target_namespace: str
    target: Target | None = None
    targets: tuple[TargetRecord, ...] = ()  # every recorded target (an engine may act on all at once)
    displaced: tuple[DisplacedPod, ...] = ()  # node faults: the pods recorded as theirs to put off
    # an abort (kill switch, deadline, deletion): revert within the kill-switch promise, waiting on
    # nothing outside the operator for longer than ABORT_WAIT_SECONDS in all
    urgent: bool = False


ABORT_WAIT_SECONDS = 8.0
"""What an urgent revert may spend waiting on another system (Litmus confirming a stop, releasing
its finalizer): with the API calls around it, an abort ends within 10 s."""


@dataclass(frozen=True)
class Followed:
    """What a self-timed engine (one that ends its fault itself, like Litmus) reports."""

    done: bool
    waiting: bool = False  # the engine has not been taken up yet
    record: EngineRecord | None = None  # for status.engine
    findings: tuple[Finding, ...] = ()
    errored: tuple[str, str] | None = None  # (reason, message): the chaos was not carried out
    not_taken_up: tuple[str, str] | None = None  # (reason, message) if waiting past start_allowance
    summary: str = ""


class TargetUnit(StrEnum):
    """What a fault acts on: the chosen pods themselves, or the nodes they run on."""

    PODS = "pods"
    NODES = "nodes"


CLUSTER_SCOPED = frozenset(
    {"nodes", "namespaces", "persistentvolumes", "clusterroles", "clusterrolebindings"}
)


@dataclass(frozen=True)
class Permission:
    """One thing a fault does, as the request a person would need to make to do it by hand. The
    author of a cross-namespace or node experiment must be allowed it (SubjectAccessReview)."""

    verb: str
    group: str
    resource: str
    subresource: str | None = None
    namespaced: bool = True  # False: cluster-scoped (nodes), reviewed for no namespace at all

    def describe(self, namespace: str) -> str:
        what = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        if self.namespaced:
            return f"{self.verb} {what} in namespace {namespace}"
        return (
            f"{self.verb} {what}"
            if self.resource in CLUSTER_SCOPED
            else f"{self.verb} {what} in every namespace"
        )


@dataclass(frozen=True)
class ArtifactFinder:
    """One kind of object a fault leaves in the cluster while it is held, found by the
    ``aftershock.dev/run`` label, so the sweeper and the kill switch can remove it after a crash
    even when the run is gone.

    `find` lists the objects carrying the label in a scope (None: every namespace); `remove`
    undoes one (idempotent: already gone is fine); `by_hand` is the command a person runs when
    even that fails (``{uid}`` stands for the run's uid).
    """

    kind: str
    find: Callable[[Kube, Scope], list[Obj]]
    remove: Callable[[Kube, Artifact], None]
    by_hand: str
    label: str = LABEL_RUN  # the label whose value is the run's uid

    def artifacts(self, kube: Kube, scope: Scope) -> list[Artifact]:
        """What `find` returns, as the sweeper's Artifacts (objects without the label are skipped)."""
        found = []
        for obj in self.find(kube, scope):
            meta = obj.get("metadata") or {}
            labels: Mapping[str, Any] = meta.get("labels") or {}
            if self.label not in labels:
                continue
            found.append(
                Artifact(
                    self.kind,
                    str(meta.get("namespace") or ""),
                    str(meta["name"]),
                    str(labels[self.label]),
                    labels.get(LABEL_RUN_NAMESPACE),
                )
            )
        return found


def distinct_nodes(pods: Sequence[Mapping[str, Any]]) -> list[str]:
    """The nodes the pods are scheduled on, each once, in the pods' order (unscheduled pods add none)."""
    nodes = (str(node) for p in pods if (node := (p.get("spec") or {}).get("nodeName")))
    return list(dict.fromkeys(nodes))


class Native:
    """Defaults for the engines aftershock carries out itself on the chosen pods: no prerequisites,
    the runner times the fault, and nothing reaches beyond the target namespace."""

    self_timed = False
    picks_nodes = False
    heals_while_held = False
    paced_by_budgets = False
    artifacts: tuple[ArtifactFinder, ...] = ()
    kind: str

    def policy_kind(self, fault: Fault) -> str:
        return self.kind

    def grants(self, fault: Fault) -> tuple[Permission, ...]:
        return ()

    def target_unit(self, fault: Fault) -> TargetUnit:
        return TargetUnit.PODS

    def node_targets(self, fault: Fault, pods: Sequence[Mapping[str, Any]]) -> list[str]:
        return distinct_nodes(pods)

    def preflight(self, ctx: InjectContext) -> None:
        return None

    def start_allowance(self) -> float:
        return 0.0

    def follow(self, ctx: InjectContext) -> Followed:
        return Followed(done=True)

    def displaces(self, fault: Fault) -> bool:
        return False

    def displaced(self, fault: Fault, pods: Sequence[PodOnNode], run_uid: str) -> list[PodOnNode]:
        return []

    def tend(self, ctx: InjectContext) -> bool:
        return False


__all__ = [
    "ARTIFACT_NAME_TAKEN",
    "ArtifactFinder",
    "EngineError",
    "Followed",
    "InjectContext",
    "Native",
    "Permission",
    "TargetUnit",
    "create_owned",
    "distinct_nodes",
]
