"""How a run finds its fault engine (the registry, engines/registry.py) and builds the context the
engine acts in. Unknown kinds fail closed: the run ends Errored and nothing is touched."""

from __future__ import annotations

from aftershock.api.run import ChaosRun
from aftershock.core.safety import effective_target_namespace
from aftershock.engines.base import InjectContext
from aftershock.engines.registry import REGISTRY, FaultEngine, engine_for
from aftershock.runs.base import RunEnv
from aftershock.runs.journal import fault_kind


def has_engine(run: ChaosRun) -> bool:
    return run.spec.fault is not None and fault_kind(run) in REGISTRY


def engine_of(run: ChaosRun) -> FaultEngine:
    """The run's engine; UnknownFault (an EngineError: the run ends Errored) when there is none."""
    return engine_for(fault_kind(run))


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
        displaced=tuple(run.status.displaced),
    )
