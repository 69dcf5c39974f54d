"""How a run finds its fault engine and builds the context the engine acts in. Unknown kinds fail
closed: the run ends Errored and nothing is touched."""

from __future__ import annotations

from aftershock.api.run import ChaosRun
from aftershock.core.safety import effective_target_namespace
from aftershock.engines.base import EngineError, FaultEngine, InjectContext
from aftershock.engines.litmus import LitmusEngine
from aftershock.engines.network_partition import NetworkPartitionEngine
from aftershock.engines.pod_delete import PodDeleteEngine
from aftershock.runs.base import RunEnv
from aftershock.runs.journal import fault_kind

ENGINES: dict[str, FaultEngine] = {
    "podDelete": PodDeleteEngine(),
    "networkPartition": NetworkPartitionEngine(),
    "litmus": LitmusEngine(),
}


def has_engine(run: ChaosRun) -> bool:
    return run.spec.fault is not None and fault_kind(run) in ENGINES


def engine_for(run: ChaosRun) -> FaultEngine:
    kind = fault_kind(run)
    engine = ENGINES.get(kind)
    if engine is None:
        raise EngineError("UnsupportedFault", f"fault kind {kind} is not supported by this operator build")
    return engine


def inject_context(env: RunEnv, namespace: str, name: str, run: ChaosRun) -> InjectContext:
    assert run.spec.fault is not None and run.spec.target is not None
    return InjectContext(
        kube=env.kube,
        run_name=name,
        run_namespace=namespace,
        run_uid=run.uid or "",
        fault=run.spec.fault,
        target_namespace=effective_target_namespace(namespace, run.spec.target.namespace),
        target=run.spec.target,
        targets=tuple(run.status.targets),
    )
