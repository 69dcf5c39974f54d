"""LitmusChaos 3.x at run time: the ChaosEngine aftershock creates for a run, how to read what
Litmus reports back, and the RBAC it can provision. The experiments it may run and their
parameters are schema data, in api/litmus_catalog.py (re-exported here).

Everything here is pure. The facts about Litmus (names, fields, values) are from its documentation
and API types; docs/litmus.md lists them with the choices made:

- One ChaosEngine per run, named after the run, so a restarted operator finds the engine it made
  instead of making a second one.
- Targets are chosen by aftershock (the same selection, blast radius and PodDisruptionBudget rules
  as native faults) and handed to Litmus by name (`TARGET_PODS`, `TARGET_NODE(S)`) with
  `PODS_AFFECTED_PERC=100`: Litmus hits exactly the pods the policy checked, never a sample of
  its own.
- What aftershock sets (duration, targets) cannot be set through `env`: one source of truth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final

# The catalogue is schema data and lives in api/; its names stay importable from here.
from aftershock.api.litmus_catalog import CATALOG as CATALOG
from aftershock.api.litmus_catalog import EXPERIMENTS as EXPERIMENTS
from aftershock.api.litmus_catalog import MANAGED_ENV as MANAGED_ENV
from aftershock.api.litmus_catalog import PATTERNS as PATTERNS
from aftershock.api.litmus_catalog import PROVISIONED_PREFIX as PROVISIONED_PREFIX
from aftershock.api.litmus_catalog import RUNNER_ENV as RUNNER_ENV
from aftershock.api.litmus_catalog import SHAPES as SHAPES
from aftershock.api.litmus_catalog import Experiment as Experiment
from aftershock.api.litmus_catalog import Kind as Kind
from aftershock.api.litmus_catalog import Param as Param
from aftershock.api.litmus_catalog import Scope as Scope
from aftershock.api.litmus_catalog import allowed_keys_message as allowed_keys_message
from aftershock.api.litmus_catalog import can_provision as can_provision
from aftershock.api.litmus_catalog import env_problems as env_problems
from aftershock.api.litmus_catalog import managed_message as managed_message
from aftershock.api.litmus_catalog import param_kinds as param_kinds
from aftershock.api.litmus_catalog import provisioned_name as provisioned_name
from aftershock.api.litmus_catalog import runner_message as runner_message
from aftershock.api.litmus_catalog import unknown_message as unknown_message
from aftershock.api.litmus_catalog import value_message as value_message
from aftershock.core.naming import run_artifact_name

GROUP: Final = "litmuschaos.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CRDS: Final = tuple(f"{plural}.{GROUP}" for plural in ("chaosengines", "chaosexperiments", "chaosresults"))
FINALIZER: Final = "chaosengine.litmuschaos.io/finalizer"
UID_LABEL: Final = "chaosUID"
HUB: Final = "https://hub.litmuschaos.io"


# --- the ChaosEngine of a run ---------------------------------------------------------------------

MAX_NAME: Final = 63  # the runner pod is labelled app=<engine>


def engine_name(run_name: str, run_namespace: str, target_namespace: str) -> str:
    """The run's name (unique per namespace and slot); with a target in another namespace a hash of
    the run's namespace keeps two namespaces' runs of the same name apart. A longer name (a
    hand-made run's may have 253 characters) is cut and hashed: a valid label value, and never
    another run's engine."""
    return run_artifact_name(run_name, run_namespace, target_namespace, limit=MAX_NAME)


def result_name(engine: str, experiment: str) -> str:
    return f"{engine}-{experiment}"


def experiment_install_hint(experiment: str, namespace: str) -> str:
    return (
        f"install the Litmus ChaosExperiment {experiment} in namespace {namespace} from the ChaosHub,"
        f" e.g. kubectl apply -n {namespace} -f '{HUB}/api/chaos/3.0.0?file=faults/kubernetes/{experiment}/fault.yaml'"
    )


def crds_install_hint(missing: Sequence[str]) -> str:
    return (
        f"LitmusChaos 3.x is not installed: CustomResourceDefinition(s) {', '.join(missing)} not found."
        " Install Litmus 3.x (its chaos-operator and CRDs, e.g. the litmus-core Helm chart) first;"
        " nothing was injected"
    )


@dataclass(frozen=True)
class EngineRequest:
    """Everything a run decides about its ChaosEngine."""

    name: str
    namespace: str
    experiment: str
    env: Mapping[str, str]
    duration_seconds: int
    service_account: str
    app_kind: str  # Deployment, StatefulSet, DaemonSet
    app_label: str  # the target selector as a query
    target_pods: Sequence[str] = ()
    target_nodes: Sequence[str] = ()
    job_cleanup: str = "delete"
    probes: Sequence[Mapping[str, Any]] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    owner: Mapping[str, Any] | None = None  # an ownerReference, when the run is in the same namespace


def engine_env(request: EngineRequest) -> list[dict[str, str]]:
    """The experiment's env: the user's parameters, then what aftershock decides (which wins)."""
    spec = CATALOG[request.experiment]
    env = dict(request.env)
    env["TOTAL_CHAOS_DURATION"] = str(request.duration_seconds)
    if spec.scope is Scope.POD:
        env["TARGET_PODS"] = ",".join(request.target_pods)
        env["PODS_AFFECTED_PERC"] = "100"
    else:
        assert spec.node_env is not None
        env[spec.node_env] = ",".join(request.target_nodes)
        if spec.node_env == "TARGET_NODES":
            env["NODES_AFFECTED_PERC"] = "100"
    return [{"name": k, "value": v} for k, v in sorted(env.items())]


def _experiment_spec(request: EngineRequest) -> dict[str, Any]:
    spec: dict[str, Any] = {"components": {"env": engine_env(request)}}
    if request.probes:
        spec["probe"] = [dict(p) for p in request.probes]
    return spec


def engine_manifest(request: EngineRequest) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": request.name,
        "namespace": request.namespace,
        "labels": dict(request.labels),
    }
    if request.owner is not None:
        metadata["ownerReferences"] = [dict(request.owner)]
    return {
        "apiVersion": API_VERSION,
        "kind": "ChaosEngine",
        "metadata": metadata,
        "spec": {
            "engineState": "active",
            "appinfo": {
                "appns": request.namespace,
                "applabel": request.app_label,
                "appkind": request.app_kind.lower(),
            },
            "chaosServiceAccount": request.service_account,
            "jobCleanUpPolicy": request.job_cleanup,
            "experiments": [{"name": request.experiment, "spec": _experiment_spec(request)}],
        },
    }


# --- reading Litmus's answer --------------------------------------------------------------------


class State(StrEnum):
    WAITING = "waiting"  # Litmus has not taken the engine up (yet)
    RUNNING = "running"
    FINISHED = "finished"  # a final verdict is in the ChaosResult
    STOPPED = "stopped"  # aborted (engineState stop honoured)
    NO_EXPERIMENT = "no-experiment"  # Litmus did not find the ChaosExperiment


FINAL_VERDICTS: Final = ("Pass", "Fail", "Error", "Stopped")


@dataclass(frozen=True)
class Progress:
    state: State
    verdict: str | None = None  # Pass, Fail, Error, Stopped
    phase: str | None = None  # the ChaosResult's experimentStatus.phase
    probe_success: str | None = None  # probeSuccessPercentage, as Litmus writes it
    error: str | None = None  # errorOutput, "CODE: reason"
    failed_probes: tuple[str, ...] = ()
    detail: str = ""


def _status(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (obj or {}).get("status") or {}


def _own_result(engine: Mapping[str, Any], result: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """Results are reused by engines of the same name: only one labelled with this engine's uid
    speaks for it."""
    if result is None:
        return None
    uid = (engine.get("metadata") or {}).get("uid")
    labels = (result.get("metadata") or {}).get("labels") or {}
    return result if uid and labels.get(UID_LABEL) == uid else None


def progress(engine: Mapping[str, Any], result: Mapping[str, Any] | None) -> Progress:
    """Where the engine is, from the engine's and its ChaosResult's status."""
    status = _status(engine)
    engine_status = status.get("engineStatus")
    entries = status.get("experiments") or []
    entry = entries[0] if entries else {}
    own = _own_result(engine, result)
    experiment_status = _status(own).get("experimentStatus") or {}
    verdict = experiment_status.get("verdict")
    phase = experiment_status.get("phase")
    probe_success = experiment_status.get("probeSuccessPercentage")
    error_output = experiment_status.get("errorOutput") or {}
    error = None
    if error_output.get("errorCode") or error_output.get("reason"):
        error = f"{error_output.get('errorCode') or 'ERROR'}: {error_output.get('reason') or ''}".strip()
    failed = tuple(
        str(p.get("name"))
        for p in _status(own).get("probeStatuses") or []
        if ((p.get("status") or {}).get("verdict")) == "Failed"
    )
    seen = Progress(
        State.WAITING, phase=phase, probe_success=probe_success, error=error, failed_probes=failed
    )
    if entry.get("status") == "ChaosExperiment Not Found":
        return Progress(State.NO_EXPERIMENT, verdict="Fail", detail="Litmus did not find the ChaosExperiment")
    if verdict in FINAL_VERDICTS and phase != "Running":
        state = State.STOPPED if verdict == "Stopped" else State.FINISHED
        return replace(seen, state=state, verdict=verdict)
    if engine_status == "stopped":
        return replace(seen, state=State.STOPPED, verdict="Stopped")
    if engine_status == "completed":
        entry_verdict = entry.get("verdict")
        if entry_verdict in FINAL_VERDICTS:
            return replace(seen, state=State.FINISHED, verdict=str(entry_verdict))
    if engine_status in ("initialized", "completed"):
        return replace(seen, state=State.RUNNING, detail=str(entry.get("status") or ""))
    return Progress(State.WAITING)


@dataclass(frozen=True)
class Reading:
    """A finished engine's outcome in aftershock's terms: (severity, title, detail) findings."""

    findings: tuple[tuple[str, str, str], ...]  # (severity on the API's scale, title, detail)
    errored: str | None = None  # a message when Litmus could not carry the experiment out


def reading(experiment: str, p: Progress) -> Reading:
    """Litmus's verdict as findings. Fail is a finding of its own (high: Litmus's own checks or
    probes saw the steady state broken); Error means the chaos was not carried out, so the run ends
    Errored rather than claiming a result."""
    if p.verdict == "Pass":
        return Reading(())
    if p.verdict == "Fail":
        probes = f" (failed probes: {', '.join(p.failed_probes)})" if p.failed_probes else ""
        detail = (
            f"Litmus {experiment} ended with verdict Fail, phase {p.phase or '-'}; probe success"
            f" {p.probe_success or '-'}%{probes}"
        )
        if p.error:
            detail += f"; error: {p.error}"
        return Reading((("high", "Litmus verdict: Fail", detail),))
    if p.verdict == "Error":
        message = f"Litmus could not carry out {experiment}: {p.error or 'verdict Error, no errorOutput'}"
        return Reading((("high", "Litmus experiment errored", message),), errored=message)
    return Reading(())


def target_nodes(pods: Sequence[Mapping[str, Any]], *, single: bool) -> list[str]:
    """The nodes of the chosen pods, in the pods' order; only the first for experiments that take
    one node (node-drain, node-taint)."""
    nodes: list[str] = []
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and node not in nodes:
            nodes.append(str(node))
    return nodes[:1] if single else nodes


# --- the chaosServiceAccount aftershock can provision (pod experiments only) ---------------------

_BASE_RULES: Final = (
    {
        "apiGroups": [""],
        "resources": ["pods"],
        "verbs": ["create", "delete", "get", "list", "patch", "update", "deletecollection"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "get", "list", "patch", "update"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get", "list", "create"]},
    {
        "apiGroups": ["batch"],
        "resources": ["jobs"],
        "verbs": ["create", "list", "get", "delete", "deletecollection"],
    },
    {
        "apiGroups": [GROUP],
        "resources": ["chaosengines", "chaosexperiments", "chaosresults"],
        "verbs": ["create", "list", "get", "patch", "update", "delete"],
    },
)
_OWNER_LOOKUP: Final = (  # pod experiments match the target pods' owners against appkind
    {
        "apiGroups": ["apps"],
        "resources": ["deployments", "statefulsets", "replicasets", "daemonsets"],
        "verbs": ["get", "list"],
    },
    {"apiGroups": [""], "resources": ["replicationcontrollers"], "verbs": ["get", "list"]},
)
_NETWORK_POLICIES: Final = (
    {
        "apiGroups": ["networking.k8s.io"],
        "resources": ["networkpolicies"],
        "verbs": ["create", "delete", "list", "get"],
    },
)


def rules_for(experiment: str) -> list[dict[str, Any]]:
    """What Litmus's runner, experiment and helper pods of a pod experiment need in its namespace:
    the permissions Litmus's ChaosHub lists for it, and the owner lookup for every one — the hub
    leaves it out for pod-network-partition, yet litmus-go 3.28 reads the chosen pods' ReplicaSet
    to match `appkind` and fails without it (found when the test's Litmus ran with this Role)."""
    if not can_provision(experiment):
        raise ValueError(f"{experiment} needs cluster-wide permissions; aftershock does not provision them")
    extra = _NETWORK_POLICIES if experiment == "pod-network-partition" else ()
    return [dict(rule) for rule in (*_BASE_RULES, *_OWNER_LOOKUP, *extra)]


def rules_differ(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether a Role's rules are not the ones wanted, ignoring order and the API server's
    normalisation (empty fields dropped)."""

    def canonical(role: Mapping[str, Any]) -> list[str]:
        rules = role.get("rules") or []
        return sorted(
            repr(sorted((k, sorted(v) if isinstance(v, list) else v) for k, v in r.items() if v))
            for r in rules
        )

    return canonical(existing) != canonical(wanted)


def provisioned_objects(
    experiment: str, namespace: str, labels: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding, one set per experiment and namespace (shared by its runs)."""
    name = provisioned_name(experiment)
    meta = {"name": name, "namespace": namespace, "labels": dict(labels)}
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta}
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta,
        "rules": rules_for(experiment),
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
    }
    return account, role, binding
