"""The one table of fault engines, and the protocol each follows.

Every fault kind declares, in its own engine and nowhere else, everything the rest of the operator
needs: the policy kind it is checked as, the damage it does (what its author must be allowed to do
by hand), whether it is held and reverted or a one-shot action, what it acts on, how it injects,
follows and reverts, the artifacts it leaves while held (for the sweeper and the kill switch), how
to describe it to a person, and what it reports into ``status.engine``. Adding a kind is its module
plus one line in ``REGISTRY``; the run driver, admission and the sweeper only consult the table.

Lookups fail closed: a kind without an engine raises ``UnknownFault`` (the run ends Errored,
admission refuses), never a default.

``api/`` may not import engines, so the API keeps its own list of fault fields
(``api.experiment.FAULT_KINDS``, ``SUSTAINED_FAULT_KINDS``); tests/unit/test_engines_registry.py
asserts that the table and the API agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, Protocol

from aftershock.api.common import Finding
from aftershock.api.experiment import Fault
from aftershock.api.run import TargetRecord
from aftershock.core.node_faults import PodOnNode
from aftershock.engines.base import (
    ArtifactFinder,
    EngineError,
    Followed,
    InjectContext,
    Permission,
    TargetUnit,
)
from aftershock.engines.litmus import LitmusEngine
from aftershock.engines.network_partition import NetworkPartitionEngine
from aftershock.engines.node_drain import NodeDrainEngine
from aftershock.engines.node_taint import NodeTaintEngine
from aftershock.engines.pod_delete import PodDeleteEngine
from aftershock.engines.toxiproxy import ToxiproxyEngine


class FaultEngine(Protocol):
    """One fault kind. Every action must be idempotent: a resumed run calls it again."""

    # --- declarations ----------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """The fault's field name in spec.fault (``podDelete``): the key in REGISTRY."""
        ...

    @property
    def sustained(self) -> bool:
        """Held for fault.duration and then reverted (True), or a one-shot action (False)."""
        ...

    @property
    def self_timed(self) -> bool:
        """Ends the fault itself and says so through follow() (Litmus)."""
        ...

    @property
    def picks_nodes(self) -> bool:
        """`mode` and `value` pick among the nodes the target's Ready pods run on (native node
        faults), not among the pods."""
        ...

    @property
    def heals_while_held(self) -> bool:
        """The workload is expected to recover while the fault is held (its pods were put off a
        node that stays down): recovery is measured from injection, not from the revert."""
        ...

    @property
    def paced_by_budgets(self) -> bool:
        """Removes pods through the Eviction API, which holds to PodDisruptionBudgets itself (and
        lets the fault wait for replacements): the shared budgets do not trim its targets."""
        ...

    @property
    def artifacts(self) -> tuple[ArtifactFinder, ...]:
        """The objects the fault leaves while it is held, for the sweeper and the kill switch."""
        ...

    def policy_kind(self, fault: Fault) -> str:
        """The name a ChaosPolicy's allowedFaults uses for this fault (litmus or litmusNode)."""
        ...

    def damage(self, fault: Fault) -> tuple[Permission, ...]:
        """What the fault does, as requests its author would need to be allowed to make: reviewed
        when the experiment targets another namespace or reaches cluster-scoped objects."""
        ...

    def grants(self, fault: Fault) -> tuple[Permission, ...]:
        """Powers the run hands to someone else (Litmus's provisioned ServiceAccount): the author
        must hold them too, always."""
        ...

    def target_unit(self, fault: Fault) -> TargetUnit:
        """What the fault acts on: the chosen pods, or the nodes they run on."""
        ...

    def node_targets(self, fault: Fault, pods: Sequence[Mapping[str, Any]]) -> list[str]:
        """For TargetUnit.NODES: the nodes to act on, from the chosen pods (pure)."""
        ...

    def displaces(self, fault: Fault) -> bool:
        """Puts pods off their nodes (a drain, a NoExecute taint): every pod on the nodes that would
        go (the target's and collateral) is checked against the policies and recorded first, and
        the other workloads' recovery is measured."""
        ...

    def displaced(self, fault: Fault, pods: Sequence[PodOnNode], run_uid: str) -> list[PodOnNode]:
        """For faults that displace: which of the pods on the chosen nodes the fault puts off (pure)."""
        ...

    def describe(self, fault: Fault) -> str:
        """The fault in a few words for messages and Events, e.g. "delete the target pods"."""
        ...

    # --- actions ---------------------------------------------------------------------------

    def preflight(self, ctx: InjectContext) -> None:
        """Raise EngineError when a prerequisite is missing (before anything is chosen or touched)."""
        ...

    def start_allowance(self) -> float:
        """Seconds the fault may take to start after injection (added to the run's deadline)."""
        ...

    def inject(self, ctx: InjectContext, target: TargetRecord) -> dt.datetime | None:
        """Apply the fault to one recorded target; the time it took effect, or None if the target
        was already gone (deleted by an earlier attempt, or by someone else)."""
        ...

    def follow(self, ctx: InjectContext) -> Followed:
        """For self-timed engines: where the fault is now; its record goes into status.engine."""
        ...

    def tend(self, ctx: InjectContext) -> bool:
        """Called while a sustained fault is held: finish what injecting started (a drain retries the
        evictions a PodDisruptionBudget refused); True while there is more to do."""
        ...

    def revert(self, ctx: InjectContext) -> Sequence[Finding]:
        """Undo everything this run applied; safe to call any number of times. Returns what had to
        be done that the run should record."""
        ...


Registry = Mapping[str, FaultEngine]


class UnknownFault(EngineError):
    """No engine is registered for a fault kind: nothing may be done with it (fail closed)."""

    def __init__(self, kind: str, registry: Registry) -> None:
        super().__init__(
            "UnsupportedFault",
            f"fault kind {kind} is not supported by this operator build (no fault engine is registered"
            f" for it; supported: {', '.join(sorted(registry)) or 'none'}); nothing is injected",
        )
        self.kind = kind


def build(engines: Iterable[FaultEngine]) -> Registry:
    """A read-only table by kind; two engines claiming one kind is a programming error."""
    table: dict[str, FaultEngine] = {}
    for engine in engines:
        if engine.kind in table:
            raise ValueError(f"two fault engines for {engine.kind}")
        table[engine.kind] = engine
    return MappingProxyType(table)


REGISTRY: Final = build(
    [
        PodDeleteEngine(),
        NetworkPartitionEngine(),
        LitmusEngine(),
        ToxiproxyEngine(),
        NodeDrainEngine(),
        NodeTaintEngine(),
    ]
)


def engine_for(kind: str, registry: Registry = REGISTRY) -> FaultEngine:
    """The engine of a fault kind; UnknownFault when there is none."""
    engine = registry.get(kind)
    if engine is None:
        raise UnknownFault(kind, registry)
    return engine


def engine_of(fault: Fault, registry: Registry = REGISTRY) -> FaultEngine:
    return engine_for(fault.kind, registry)


def artifact_finders(registry: Registry = REGISTRY) -> tuple[ArtifactFinder, ...]:
    """Every kind of artifact any engine leaves, each once (by kind), in table order."""
    finders: dict[str, ArtifactFinder] = {}
    for engine in registry.values():
        for finder in engine.artifacts:
            finders.setdefault(finder.kind, finder)
    return tuple(finders.values())


def target_records(
    engine: FaultEngine, fault: Fault, chosen: Sequence[Mapping[str, Any]], namespace: str
) -> list[TargetRecord]:
    """What a run records as its targets: the chosen pods, or the nodes the engine picks from them."""
    if engine.target_unit(fault) is TargetUnit.NODES:
        return [TargetRecord(kind="Node", name=node) for node in engine.node_targets(fault, chosen)]
    return [
        TargetRecord(kind="Pod", name=p["metadata"]["name"], namespace=namespace, uid=p["metadata"]["uid"])
        for p in chosen
    ]


def manual_cleanup(kind: str, run_uid: str, registry: Registry = REGISTRY) -> str:
    """How a person removes what a run of this kind left behind when the operator could not; ""
    when the kind leaves nothing (or is unknown: then nothing of it was ever applied)."""
    engine = registry.get(kind)
    if engine is None:
        return ""
    return "; ".join(f.by_hand.format(uid=run_uid) for f in engine.artifacts)
