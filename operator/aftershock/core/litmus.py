"""LitmusChaos 3.x, as far as aftershock needs to know it: the experiments it may run, their
parameters, the ChaosEngine it creates for a run, and how to read what Litmus reports back.

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

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final

GROUP: Final = "litmuschaos.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
CRDS: Final = tuple(f"{plural}.{GROUP}" for plural in ("chaosengines", "chaosexperiments", "chaosresults"))
FINALIZER: Final = "chaosengine.litmuschaos.io/finalizer"
UID_LABEL: Final = "chaosUID"
HUB: Final = "https://hub.litmuschaos.io"


class Kind(StrEnum):
    """What a parameter's value must look like (checked by the CRD's CEL rules and here)."""

    COUNT = "count"  # a whole number >= 0
    PERCENT = "percent"  # 0..100
    FLAG = "flag"  # true or false
    LIST = "list"  # comma-separated items, no spaces
    TEXT = "text"  # free text
    CHOICE = "choice"  # one of `choices`


PATTERNS: Final = {
    Kind.COUNT: r"^[0-9]{1,9}$",
    Kind.PERCENT: r"^(100|[1-9]?[0-9])$",
    Kind.FLAG: r"^(true|false)$",
    Kind.LIST: r"^[^,\s]+(,[^,\s]+)*$",
}
SHAPES: Final = {
    Kind.COUNT: "a whole number",
    Kind.PERCENT: "a percentage from 0 to 100",
    Kind.FLAG: "true or false",
    Kind.LIST: "a comma-separated list without spaces",
}


@dataclass(frozen=True)
class Param:
    name: str
    kind: Kind
    meaning: str
    choices: tuple[str, ...] = ()

    @property
    def pattern(self) -> str | None:
        if self.kind is Kind.CHOICE:
            return "^(" + "|".join(self.choices) + ")$"
        return PATTERNS.get(self.kind)

    @property
    def shape(self) -> str:
        if self.kind is Kind.CHOICE:
            return "one of " + ", ".join(self.choices)
        return SHAPES.get(self.kind, "text")


class Scope(StrEnum):
    POD = "pod"  # targets pods of the workload
    NODE = "node"  # targets the nodes those pods run on


@dataclass(frozen=True)
class Experiment:
    name: str
    scope: Scope
    params: tuple[Param, ...]
    summary: str
    node_env: str | None = None  # TARGET_NODE (one node) or TARGET_NODES (a list), node experiments
    helper: bool = True  # runs a privileged helper pod next to the target (network, stress, runtime)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    @property
    def single_node(self) -> bool:
        return self.node_env == "TARGET_NODE"


_RAMP = Param("RAMP_TIME", Kind.COUNT, "seconds to wait before and after the chaos")
_SEQUENCE = Param("SEQUENCE", Kind.CHOICE, "how several targets are hit", ("serial", "parallel"))
_CONTAINER = Param("TARGET_CONTAINER", Kind.TEXT, "the container to act on (default: the first)")
_RUNTIME = Param(
    "CONTAINER_RUNTIME", Kind.CHOICE, "the node's container runtime", ("containerd", "docker", "crio")
)
_SOCKET = Param("SOCKET_PATH", Kind.TEXT, "path of the container runtime's socket on the node")
_INTERVAL = Param("CHAOS_INTERVAL", Kind.COUNT, "seconds between repetitions within the duration")
_POD_COMMON = (_RAMP, _SEQUENCE, _CONTAINER)
_NETWORK = (
    Param("DESTINATION_IPS", Kind.LIST, "only traffic to these IPs or CIDRs (default: all)"),
    Param("DESTINATION_HOSTS", Kind.LIST, "only traffic to these host names (default: all)"),
    Param("NETWORK_INTERFACE", Kind.TEXT, "the interface to act on (default eth0)"),
    _RUNTIME,
    _SOCKET,
)
_STRESS = (_RUNTIME, _SOCKET)


def _experiments() -> tuple[Experiment, ...]:
    pod = Scope.POD
    node = Scope.NODE
    return (
        Experiment(
            "pod-delete",
            pod,
            (*_POD_COMMON, _INTERVAL, Param("FORCE", Kind.FLAG, "delete with grace period 0")),
            "deletes the target pods (repeatedly, every CHAOS_INTERVAL)",
            helper=False,
        ),
        Experiment(
            "container-kill",
            pod,
            (
                *_POD_COMMON,
                _INTERVAL,
                Param("SIGNAL", Kind.TEXT, "the signal sent (default SIGKILL)"),
                *_STRESS,
            ),
            "kills a container of each target pod through the container runtime",
        ),
        Experiment(
            "pod-cpu-hog",
            pod,
            (
                *_POD_COMMON,
                Param("CPU_CORES", Kind.COUNT, "cores to load"),
                Param("CPU_LOAD", Kind.PERCENT, "load per core"),
                *_STRESS,
            ),
            "loads the CPU of the target containers",
        ),
        Experiment(
            "pod-memory-hog",
            pod,
            (
                *_POD_COMMON,
                Param("MEMORY_CONSUMPTION", Kind.COUNT, "megabytes to allocate"),
                Param("NUMBER_OF_WORKERS", Kind.COUNT, "stress workers"),
                *_STRESS,
            ),
            "allocates memory in the target containers",
        ),
        Experiment(
            "pod-network-latency",
            pod,
            (
                *_POD_COMMON,
                Param("NETWORK_LATENCY", Kind.COUNT, "added delay in milliseconds"),
                Param("JITTER", Kind.COUNT, "jitter in milliseconds"),
                *_NETWORK,
            ),
            "delays the target pods' network traffic",
        ),
        Experiment(
            "pod-network-loss",
            pod,
            (
                *_POD_COMMON,
                Param("NETWORK_PACKET_LOSS_PERCENTAGE", Kind.PERCENT, "share of packets dropped"),
                *_NETWORK,
            ),
            "drops a share of the target pods' packets",
        ),
        Experiment(
            "pod-network-corruption",
            pod,
            (
                *_POD_COMMON,
                Param("NETWORK_PACKET_CORRUPTION_PERCENTAGE", Kind.PERCENT, "share of packets corrupted"),
                *_NETWORK,
            ),
            "corrupts a share of the target pods' packets",
        ),
        Experiment(
            "pod-network-duplication",
            pod,
            (
                *_POD_COMMON,
                Param("NETWORK_PACKET_DUPLICATION_PERCENTAGE", Kind.PERCENT, "share of packets duplicated"),
                *_NETWORK,
            ),
            "duplicates a share of the target pods' packets",
        ),
        Experiment(
            "pod-network-partition",
            pod,
            (
                _RAMP,
                Param("POLICY_TYPES", Kind.CHOICE, "which traffic is cut", ("ingress", "egress", "all")),
                Param("DESTINATION_IPS", Kind.LIST, "peers (IPs or CIDRs) that stay reachable"),
                Param("DESTINATION_HOSTS", Kind.LIST, "peers (host names) that stay reachable"),
                Param("POD_SELECTOR", Kind.LIST, "k=v labels of peer pods that stay reachable"),
                Param("NAMESPACE_SELECTOR", Kind.LIST, "k=v labels of peer namespaces that stay reachable"),
                Param("PORTS", Kind.TEXT, "ports that stay reachable, e.g. 'tcp: [8080,80], udp: [53]'"),
            ),
            "cuts the target pods off with a Litmus-made NetworkPolicy",
            helper=False,
        ),
        Experiment(
            "pod-dns-error",
            pod,
            (
                *_POD_COMMON,
                Param(
                    "TARGET_HOSTNAMES", Kind.TEXT, 'host names whose lookups fail, e.g. \'["db","cache"]\''
                ),
                Param("MATCH_SCHEME", Kind.CHOICE, "how names are matched", ("exact", "substring")),
                *_STRESS,
            ),
            "makes DNS lookups of the target pods fail",
        ),
        Experiment(
            "node-drain",
            node,
            (_RAMP,),
            "cordons and drains the node of a target pod, then uncordons it",
            node_env="TARGET_NODE",
            helper=False,
        ),
        Experiment(
            "node-taint",
            node,
            (_RAMP, Param("TAINTS", Kind.TEXT, "the taint, key=value:effect (default effect NoExecute)")),
            "taints the node of a target pod, then removes the taint",
            node_env="TARGET_NODE",
            helper=False,
        ),
        Experiment(
            "node-cpu-hog",
            node,
            (
                _RAMP,
                _SEQUENCE,
                Param("NODE_CPU_CORE", Kind.COUNT, "cores to load (0: all)"),
                Param("CPU_LOAD", Kind.PERCENT, "load per core"),
            ),
            "loads the CPU of the nodes the target pods run on",
            node_env="TARGET_NODES",
        ),
        Experiment(
            "node-memory-hog",
            node,
            (
                _RAMP,
                _SEQUENCE,
                Param("MEMORY_CONSUMPTION_PERCENTAGE", Kind.PERCENT, "share of the node's memory"),
                Param("MEMORY_CONSUMPTION_MEBIBYTES", Kind.COUNT, "mebibytes of memory"),
                Param("NUMBER_OF_WORKERS", Kind.COUNT, "stress workers"),
            ),
            "allocates memory on the nodes the target pods run on",
            node_env="TARGET_NODES",
        ),
    )


CATALOG: Final = {e.name: e for e in _experiments()}
EXPERIMENTS: Final = tuple(CATALOG)

MANAGED_ENV: Final = (
    "TOTAL_CHAOS_DURATION",
    "TARGET_PODS",
    "PODS_AFFECTED_PERC",
    "TARGET_NODE",
    "TARGET_NODES",
    "NODES_AFFECTED_PERC",
    "NODE_LABEL",
)
"""Set by aftershock from fault.duration and the chosen targets; never through env."""

RUNNER_ENV: Final = (
    "CHAOSENGINE",
    "CHAOS_NAMESPACE",
    "CHAOS_UID",
    "EXPERIMENT_NAME",
    "TARGETS",
    "APP_NAMESPACE",
    "APP_LABEL",
    "APP_KIND",
    "CHAOS_SERVICE_ACCOUNT",
    "INSTANCE_ID",
)
"""Set by Litmus's runner (or changing the result's name); never through env."""


def param_kinds() -> dict[str, Param]:
    """Every parameter name in the catalog with its shape (a name has the same shape everywhere)."""
    kinds: dict[str, Param] = {}
    for experiment in CATALOG.values():
        for p in experiment.params:
            seen = kinds.setdefault(p.name, p)
            assert (seen.kind, seen.choices) == (p.kind, p.choices), f"{p.name} differs between experiments"
    return kinds


def env_problems(experiment: str, env: Mapping[str, str]) -> list[str]:
    """What is wrong with `env` for `experiment` (empty: nothing), in the CEL rules' words."""
    spec = CATALOG.get(experiment)
    if spec is None:
        return [f"litmus.experiment {experiment!r} is not supported; supported: {', '.join(EXPERIMENTS)}"]
    problems = []
    for key in env:
        if key in MANAGED_ENV:
            problems.append(managed_message(key))
        elif key in RUNNER_ENV:
            problems.append(runner_message(key))
        elif spec.param(key) is None:
            problems.append(unknown_message(spec, key))
    for key, value in env.items():
        p = spec.param(key)
        if p is not None and p.pattern is not None and not re.match(p.pattern, value):
            problems.append(value_message(p))
    return problems


def managed_message(key: str) -> str:
    source = "fault.duration" if key == "TOTAL_CHAOS_DURATION" else "target (aftershock chooses the targets)"
    return f"litmus.env.{key} is set by aftershock from {source}; remove it from env"


def runner_message(key: str) -> str:
    return f"litmus.env.{key} is set by Litmus itself; remove it from env"


def unknown_message(spec: Experiment, key: str) -> str:
    names = ", ".join(p.name for p in spec.params)
    return f"litmus.env.{key} is not a parameter of {spec.name}; its parameters are {names}"


def allowed_keys_message(spec: Experiment) -> str:
    return f"litmus.env has a key that is not a parameter of {spec.name}; its parameters are " + ", ".join(
        p.name for p in spec.params
    )


def value_message(p: Param) -> str:
    return f"litmus.env.{p.name} must be {p.shape}"


# --- the ChaosEngine of a run ---------------------------------------------------------------------

MAX_NAME: Final = 63  # the runner pod is labelled app=<engine>


def engine_name(run_name: str, run_namespace: str, target_namespace: str) -> str:
    """The run's name (unique per namespace and slot); with a target in another namespace a hash of
    the run's namespace keeps two namespaces' runs of the same name apart."""
    if run_namespace == target_namespace:
        return run_name[:MAX_NAME]
    digest = hashlib.sha256(run_namespace.encode()).hexdigest()[:8]
    return f"{run_name[: MAX_NAME - 9]}-{digest}"


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

PROVISIONED_PREFIX: Final = "aftershock-litmus-"

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


def can_provision(experiment: str) -> bool:
    """Only pod experiments: node experiments need cluster-wide permissions, which aftershock
    never grants."""
    return CATALOG[experiment].scope is Scope.POD


def provisioned_name(experiment: str) -> str:
    return f"{PROVISIONED_PREFIX}{experiment}"


def rules_for(experiment: str) -> list[dict[str, Any]]:
    """What Litmus's runner, experiment and helper pods of a pod experiment need in its namespace
    (the permissions Litmus's ChaosHub lists for it)."""
    if not can_provision(experiment):
        raise ValueError(f"{experiment} needs cluster-wide permissions; aftershock does not provision them")
    extra = _NETWORK_POLICIES if experiment == "pod-network-partition" else _OWNER_LOOKUP
    return [dict(rule) for rule in (*_BASE_RULES, *extra)]


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
