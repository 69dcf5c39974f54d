"""The LitmusChaos 3.x experiments aftershock can run and their parameters: schema data.

The ChaosExperiment schema (api/experiment.py) generates its CEL rules and enum from this
catalogue, and the run-time side (core/litmus.py: the ChaosEngine, Litmus's answers) reads it too;
it lives in api/ because the schema must not depend on anything above it. Pure data and pure
functions. The facts about Litmus (names, fields, values) are from its documentation; docs/litmus.md
lists them with the choices made. What aftershock sets itself (duration, targets) cannot be set
through `env`: one source of truth.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


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


# --- the chaosServiceAccount aftershock can provision (pod experiments only) ---------------------

PROVISIONED_PREFIX: Final = "aftershock-litmus-"


def can_provision(experiment: str) -> bool:
    """Only pod experiments: node experiments need cluster-wide permissions, which aftershock
    never grants."""
    return CATALOG[experiment].scope is Scope.POD


def provisioned_name(experiment: str) -> str:
    return f"{PROVISIONED_PREFIX}{experiment}"
