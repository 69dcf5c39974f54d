"""The LitmusChaos 3.x experiments aftershock can run and their parameters: schema data.

The ChaosExperiment schema (api/experiment.py) generates its CEL rules and enum from this
catalogue, and the run-time side (core/litmus.py: the ChaosEngine, Litmus's answers) reads it too;
it lives in api/ because the schema must not depend on anything above it. Pure data and pure
functions. The experiments and their parameters follow the ChaosHub's definitions (chaos-charts
3.28.0; tests/unit/test_litmus_hub.py fails when they drift apart), the shapes follow what
litmus-go 3.28.0 does with each value; docs/litmus-catalogue.md lists them with the choices made.
What aftershock sets itself (duration, targets) cannot be set through `env`: one source of truth;
what would choose code or machines (WITHHELD) cannot be set at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from aftershock.api.cel import matches


class Kind(StrEnum):
    """What a parameter's value must look like (checked by the CRD's CEL rules and here).

    Every kind has a pattern, free text included: litmus-go's helpers build shell commands (bash -c)
    from many of these values and pack others into their target lists, so no value may carry a
    character a shell or those lists act on (docs/litmus-catalogue.md says where each one goes).
    """

    COUNT = "count"  # a whole number within the parameter's bounds
    PERCENT = "percent"  # 0..100
    FLAG = "flag"  # true or false
    CHOICE = "choice"  # one of `choices`
    NAME = "name"  # a container name (DNS-1123 label)
    INTERFACE = "interface"  # a network interface name
    PATH = "path"  # an absolute path
    IPS = "ips"  # IPs or CIDRs, comma-separated, each optionally with |port|port
    HOSTS = "hosts"  # host names, comma-separated, each optionally with |port|port
    LABELS = "labels"  # key=value pairs, comma-separated
    SIGNAL = "signal"  # SIGKILL, SIGTERM, 9
    RATE = "rate"  # a tc rate or size: 1mbit, 32kb
    USER = "user"  # a Unix user name
    MEDIA_TYPE = "media-type"  # text/plain
    CODES = "codes"  # HTTP status codes, comma-separated
    TOKEN = "token"  # a single word: letters, digits, hyphens
    TEXT = "text"  # text Litmus quotes: letters, digits, spaces and harmless punctuation


TEXT_CHARACTERS: Final = 'letters, digits, spaces and . _ , : = / @ + % { } [ ] " -'
PATTERNS: Final = {
    Kind.COUNT: r"^[0-9]{1,9}$",
    Kind.PERCENT: r"^(100|[1-9]?[0-9])$",
    Kind.FLAG: r"^(true|false)$",
    Kind.NAME: r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
    Kind.INTERFACE: r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$",
    Kind.PATH: r"^(/[A-Za-z0-9_.-]+)+$",
    Kind.IPS: r"^[0-9A-Fa-f.:/]+(\|[0-9]{1,5})*(,[0-9A-Fa-f.:/]+(\|[0-9]{1,5})*)*$",
    Kind.HOSTS: r"^[A-Za-z0-9.-]+(\|[0-9]{1,5})*(,[A-Za-z0-9.-]+(\|[0-9]{1,5})*)*$",
    Kind.LABELS: r"^[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*(,[A-Za-z0-9./_-]+=[A-Za-z0-9._-]*)*$",
    Kind.SIGNAL: r"^([A-Z][A-Z0-9+]{0,15}|[0-9]{1,2})$",
    Kind.RATE: r"^[0-9]{1,9}(\.[0-9]{1,6})?[A-Za-z]{0,5}$",
    Kind.USER: r"^[a-z_][a-z0-9_-]{0,31}$",
    Kind.MEDIA_TYPE: r"^[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+$",
    Kind.CODES: r"^[1-5][0-9][0-9](,[1-5][0-9][0-9])*$",
    Kind.TOKEN: r"^[A-Za-z0-9-]{1,32}$",
    Kind.TEXT: r'^[A-Za-z0-9 ._,:=/@+%{}\[\]"-]*$',
}
SHAPES: Final = {
    Kind.COUNT: "a whole number",
    Kind.PERCENT: "a percentage from 0 to 100",
    Kind.FLAG: "true or false",
    Kind.NAME: "a container name (lower-case letters, digits and hyphens, at most 63)",
    Kind.INTERFACE: "a network interface name (letters, digits, _ . -, at most 15)",
    Kind.PATH: "an absolute path of letters, digits and _ . - (no spaces)",
    Kind.IPS: "IP addresses or CIDRs, comma-separated without spaces, each optionally followed by"
    " |port (e.g. 10.0.0.0/8,10.1.2.3|5432)",
    Kind.HOSTS: "host names, comma-separated without spaces, each optionally followed by |port"
    " (e.g. db.shop.svc.cluster.local|5432)",
    Kind.LABELS: "key=value labels, comma-separated without spaces",
    Kind.SIGNAL: "a signal name such as SIGKILL or SIGTERM, or its number",
    Kind.RATE: "a tc rate or size: a number with an optional unit, e.g. 1mbit or 32kb",
    Kind.USER: "a user name (lower-case letters, digits, _ and -)",
    Kind.MEDIA_TYPE: "a media type such as text/plain (no parameters)",
    Kind.CODES: "HTTP status codes, comma-separated without spaces, e.g. 500,503",
    Kind.TOKEN: "a single word of letters, digits and hyphens, e.g. gzip",
    Kind.TEXT: f"text of {TEXT_CHARACTERS} only (Litmus passes it to a shell)",
}


@dataclass(frozen=True)
class Param:
    name: str
    kind: Kind
    meaning: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None  # COUNT: bounds, checked by CEL after the pattern
    maximum: int | None = None
    shell: bool = False  # litmus-go builds a shell command (or a target list) from the value

    @property
    def pattern(self) -> str:
        if self.kind is Kind.CHOICE:
            return "^(" + "|".join(self.choices) + ")$"
        return PATTERNS[self.kind]

    @property
    def bounded(self) -> bool:
        return self.kind is Kind.COUNT and (self.minimum is not None or self.maximum is not None)

    @property
    def shape(self) -> str:
        if self.kind is Kind.CHOICE:
            return "one of " + ", ".join(self.choices)
        if self.bounded:
            return f"a whole number from {self.minimum or 0} to {self.maximum}"
        return SHAPES[self.kind]

    @property
    def rule_key(self) -> tuple[object, ...]:
        """What the CRD's rule for this name checks: one rule per name, so it must be the same
        wherever the name appears."""
        return (self.kind, self.choices, self.minimum, self.maximum)

    def accepts(self, value: str) -> bool:
        """The CRD's verdict on `value` (CEL: the pattern, then the bounds)."""
        if not matches(self.pattern, value):
            return False
        if self.bounded:
            number = int(value)
            return (self.minimum is None or number >= self.minimum) and (
                self.maximum is None or number <= self.maximum
            )
        return True


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
    # Litmus picks its pods by the engine's app label, not TARGET_PODS (pod-network-partition's
    # NetworkPolicy selects that label): the run marks its chosen pods and names its own label
    label_selected: bool = False

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    @property
    def single_node(self) -> bool:
        return self.node_env == "TARGET_NODE"


HOUR: Final = 3600
MAX_MS: Final = 3_600_000  # an hour in milliseconds
MAX_WORKERS: Final = 64
MAX_CORES: Final = 1024
MAX_MIB: Final = 16_777_216  # 16 TiB in MiB


def _count(name: str, meaning: str, maximum: int, minimum: int = 0, shell: bool = False) -> Param:
    return Param(name, Kind.COUNT, meaning, minimum=minimum, maximum=maximum, shell=shell)


_RAMP = _count("RAMP_TIME", "seconds to wait before and after the chaos", HOUR)
_SEQUENCE = Param("SEQUENCE", Kind.CHOICE, "how several targets are hit", ("serial", "parallel"))
_CONTAINER = Param("TARGET_CONTAINER", Kind.NAME, "the container to act on (default: the first)", shell=True)
_RUNTIME = Param(
    "CONTAINER_RUNTIME", Kind.CHOICE, "the node's container runtime", ("containerd", "docker", "crio")
)
_SOCKET = Param("SOCKET_PATH", Kind.PATH, "path of the container runtime's socket on the node")
_INTERVAL = _count("CHAOS_INTERVAL", "seconds between repetitions within the duration", HOUR)
_INTERFACE = Param("NETWORK_INTERFACE", Kind.INTERFACE, "the interface to act on (default eth0)", shell=True)
_WORKERS = _count("NUMBER_OF_WORKERS", "stress workers", MAX_WORKERS, shell=True)
_CPU_CORES = _count("CPU_CORES", "cores to load", MAX_CORES, shell=True)
_MEMORY = _count("MEMORY_CONSUMPTION", "megabytes to allocate", MAX_MIB, shell=True)
_POD_COMMON = (_RAMP, _SEQUENCE, _CONTAINER)
_DESTINATIONS = (
    Param("DESTINATION_IPS", Kind.IPS, "only traffic to these IPs or CIDRs (default: all)", shell=True),
    Param("DESTINATION_HOSTS", Kind.HOSTS, "only traffic to these host names (default: all)", shell=True),
)
_NETWORK = (*_DESTINATIONS, _INTERFACE, _RUNTIME, _SOCKET)
_STRESS = (_RUNTIME, _SOCKET)
_HTTP = (
    *_POD_COMMON,
    _count("TARGET_SERVICE_PORT", "the port the target container serves HTTP on", 65535, 1, shell=True),
    _count("PROXY_PORT", "the port Litmus's proxy listens on inside the target", 65535, 1, shell=True),
    _count("TOXICITY", "percentage of requests affected", 100, shell=True),
    _INTERFACE,
    _RUNTIME,
    _SOCKET,
)
_BODY = (
    Param("RESPONSE_BODY", Kind.TEXT, "the response body sent instead", shell=True),
    Param("CONTENT_TYPE", Kind.MEDIA_TYPE, "the Content-Type of that body", shell=True),
    Param("CONTENT_ENCODING", Kind.TOKEN, "the Content-Encoding of that body (e.g. gzip)", shell=True),
)
_FILESYSTEM = (
    Param("FILESYSTEM_UTILIZATION_PERCENTAGE", Kind.PERCENT, "share of the file system to fill", shell=True),
    _count("FILESYSTEM_UTILIZATION_BYTES", "gigabytes to write", 1_000_000, shell=True),
    _WORKERS,
)


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
                Param("SIGNAL", Kind.SIGNAL, "the signal sent (default SIGKILL)"),
                *_STRESS,
            ),
            "kills a container of each target pod through the container runtime",
        ),
        Experiment(
            "pod-cpu-hog",
            pod,
            (
                *_POD_COMMON,
                _CPU_CORES,
                Param("CPU_LOAD", Kind.PERCENT, "load per core", shell=True),
                *_STRESS,
            ),
            "loads the CPU of the target containers",
        ),
        Experiment(
            "pod-memory-hog",
            pod,
            (*_POD_COMMON, _MEMORY, _WORKERS, *_STRESS),
            "allocates memory in the target containers",
        ),
        Experiment(
            "pod-io-stress",
            pod,
            (
                *_POD_COMMON,
                *_FILESYSTEM,
                Param("VOLUME_MOUNT_PATH", Kind.PATH, "the mounted volume to stress", shell=True),
                *_STRESS,
            ),
            "loads the file system of the target containers with I/O",
        ),
        Experiment(
            "pod-cpu-hog-exec",
            pod,
            (*_POD_COMMON, _CPU_CORES),
            "loads the CPU of the target containers by running md5sum in them (pods/exec, no helper)",
            helper=False,
        ),
        Experiment(
            "pod-memory-hog-exec",
            pod,
            (*_POD_COMMON, _MEMORY),
            "allocates memory in the target containers by running dd in them (pods/exec, no helper)",
            helper=False,
        ),
        Experiment(
            "disk-fill",
            pod,
            (
                *_POD_COMMON,
                _count("FILL_PERCENTAGE", "percentage of the ephemeral-storage limit to fill", 1000),
                _count("DATA_BLOCK_SIZE", "kilobytes written per block", 1_048_576, 1),
                _count("EPHEMERAL_STORAGE_MEBIBYTES", "mebibytes to fill (instead of a percentage)", MAX_MIB),
                *_STRESS,
            ),
            "fills the ephemeral storage of the target containers",
        ),
        Experiment(
            "pod-network-latency",
            pod,
            (
                *_POD_COMMON,
                _count("NETWORK_LATENCY", "added delay in milliseconds", MAX_MS),
                _count("JITTER", "jitter in milliseconds", MAX_MS),
                *_NETWORK,
            ),
            "delays the target pods' network traffic",
        ),
        Experiment(
            "pod-network-loss",
            pod,
            (
                *_POD_COMMON,
                Param("NETWORK_PACKET_LOSS_PERCENTAGE", Kind.PERCENT, "share of packets dropped", shell=True),
                *_NETWORK,
            ),
            "drops a share of the target pods' packets",
        ),
        Experiment(
            "pod-network-corruption",
            pod,
            (
                *_POD_COMMON,
                Param(
                    "NETWORK_PACKET_CORRUPTION_PERCENTAGE",
                    Kind.PERCENT,
                    "share of packets corrupted",
                    shell=True,
                ),
                *_NETWORK,
            ),
            "corrupts a share of the target pods' packets",
        ),
        Experiment(
            "pod-network-duplication",
            pod,
            (
                *_POD_COMMON,
                Param(
                    "NETWORK_PACKET_DUPLICATION_PERCENTAGE",
                    Kind.PERCENT,
                    "share of packets duplicated",
                    shell=True,
                ),
                *_NETWORK,
            ),
            "duplicates a share of the target pods' packets",
        ),
        Experiment(
            "pod-network-rate-limit",
            pod,
            (
                *_POD_COMMON,
                Param("NETWORK_BANDWIDTH", Kind.RATE, "the bandwidth left, e.g. 1mbit", shell=True),
                Param("BURST", Kind.RATE, "the bucket size, e.g. 32kb", shell=True),
                Param("LIMIT", Kind.RATE, "bytes that may wait in the queue, e.g. 2mb", shell=True),
                Param("MIN_BURST", Kind.RATE, "the peak-rate bucket size (mtu)", shell=True),
                Param("PEAK_RATE", Kind.RATE, "the peak rate, e.g. 2mbit", shell=True),
                *_NETWORK,
            ),
            "limits the target pods' network bandwidth (tc tbf)",
        ),
        Experiment(
            "pod-network-partition",
            pod,
            (
                _RAMP,
                Param("POLICY_TYPES", Kind.CHOICE, "which traffic is cut", ("ingress", "egress", "all")),
                Param("DESTINATION_IPS", Kind.IPS, "peers (IPs or CIDRs) that stay reachable", shell=True),
                Param("DESTINATION_HOSTS", Kind.HOSTS, "peers (host names) that stay reachable", shell=True),
                Param("POD_SELECTOR", Kind.LABELS, "k=v labels of peer pods that stay reachable"),
                Param("NAMESPACE_SELECTOR", Kind.LABELS, "k=v labels of peer namespaces that stay reachable"),
                Param("PORTS", Kind.TEXT, "ports that stay reachable, e.g. 'tcp: [8080,80], udp: [53]'"),
            ),
            "cuts the target pods off with a Litmus-made NetworkPolicy",
            helper=False,
            label_selected=True,
        ),
        Experiment(
            "pod-dns-error",
            pod,
            (
                *_POD_COMMON,
                Param(
                    "TARGET_HOSTNAMES",
                    Kind.TEXT,
                    'host names whose lookups fail, e.g. ["db","cache"]',
                    shell=True,
                ),
                Param(
                    "MATCH_SCHEME", Kind.CHOICE, "how names are matched", ("exact", "substring"), shell=True
                ),
                *_STRESS,
            ),
            "makes DNS lookups of the target pods fail",
        ),
        Experiment(
            "pod-dns-spoof",
            pod,
            (
                *_POD_COMMON,
                Param(
                    "SPOOF_MAP",
                    Kind.TEXT,
                    'names and the names they resolve to instead, e.g. {"db.example.com":"other.example.com"}',
                    shell=True,
                ),
                *_STRESS,
            ),
            "makes DNS lookups of the target pods answer with other names' addresses",
        ),
        Experiment(
            "pod-http-latency",
            pod,
            (*_HTTP, _count("LATENCY", "added delay per request in milliseconds", MAX_MS, shell=True)),
            "delays the HTTP responses of the target containers (a proxy in their network namespace)",
        ),
        Experiment(
            "pod-http-status-code",
            pod,
            (
                *_HTTP,
                Param(
                    "STATUS_CODE", Kind.CODES, "the status codes answered instead (one is picked)", shell=True
                ),
                Param("MODIFY_RESPONSE_BODY", Kind.FLAG, "also replace the body", shell=True),
                *_BODY,
            ),
            "answers the target containers' HTTP requests with another status code",
        ),
        Experiment(
            "pod-http-modify-header",
            pod,
            (
                *_HTTP,
                Param("HEADERS_MAP", Kind.TEXT, 'headers to set, e.g. {"X-Chaos":"on"}', shell=True),
                Param("HEADER_MODE", Kind.CHOICE, "which headers", ("request", "response"), shell=True),
            ),
            "sets headers of the target containers' HTTP requests or responses",
        ),
        Experiment(
            "pod-http-modify-body",
            pod,
            (*_HTTP, *_BODY),
            "replaces the body of the target containers' HTTP responses",
        ),
        Experiment(
            "pod-http-reset-peer",
            pod,
            (
                *_HTTP,
                _count("RESET_TIMEOUT", "milliseconds before the connection is reset", MAX_MS, shell=True),
            ),
            "resets the target containers' HTTP connections",
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
                _count("NODE_CPU_CORE", "cores to load (0: all)", MAX_CORES),
                Param("CPU_LOAD", Kind.PERCENT, "load per core", shell=True),
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
                _count("MEMORY_CONSUMPTION_MEBIBYTES", "mebibytes of memory", MAX_MIB),
                _WORKERS,
            ),
            "allocates memory on the nodes the target pods run on",
            node_env="TARGET_NODES",
        ),
        Experiment(
            "node-io-stress",
            node,
            (
                _RAMP,
                _SEQUENCE,
                *_FILESYSTEM,
                _count("CPU", "cores the I/O workers use", MAX_CORES),
                _count("VM_WORKERS", "memory workers", MAX_WORKERS),
            ),
            "loads the file system of the nodes the target pods run on with I/O",
            node_env="TARGET_NODES",
        ),
        Experiment(
            "node-restart",
            node,
            (
                _RAMP,
                Param(
                    "SSH_USER", Kind.USER, "the user Litmus logs in as over SSH (default root)", shell=True
                ),
            ),
            "restarts the node of a target pod over SSH (the key from the Secret id-rsa in the target"
            " namespace) and waits for it to come back",
            node_env="TARGET_NODE",
        ),
        Experiment(
            "kubelet-service-kill",
            node,
            (_RAMP,),
            "stops the kubelet on the node of a target pod for the duration, then starts it again",
            node_env="TARGET_NODE",
        ),
        Experiment(
            "docker-service-kill",
            node,
            (_RAMP,),
            "stops the docker service on the node of a target pod (nodes that run docker only)",
            node_env="TARGET_NODE",
        ),
    )


UNSUPPORTED: Final = {
    "pod-autoscaler": "it scales the workload (REPLICA_COUNT) rather than acting on chosen pods or"
    " nodes: blast radius, PodDisruptionBudgets and the run's targets would not describe what it"
    " does, and it selects the workloads by Litmus's own app label",
    "node-poweroff": "it powers the node off over SSH and nothing in the cluster can power it on"
    " again: aftershock runs only faults that end by themselves or that it can revert",
}
"""ChaosHub experiments aftershock does not run, and why (docs/litmus-catalogue.md shows this)."""

WITHHELD: Final = {
    "LIB_IMAGE": "the image of Litmus's privileged helper pod: choosing it would run any code with"
    " the node's privileges",
    "TC_IMAGE": "an image run with the target's network privileges",
    "STRESS_IMAGE": "an image run inside the target's namespaces",
    "CHAOS_KILL_COMMAND": "a shell command Litmus runs in the target container",
    "REBOOT_COMMAND": "a shell command Litmus runs on the node over SSH",
    "TARGET_NODE_IP": "aftershock chooses the node; an address would let Litmus reach a machine the"
    " policy never checked",
    "DEFAULT_HEALTH_CHECK": "aftershock's own steady-state observer judges health; the hub's default stays",
}
"""ChaosHub parameters that are never accepted in env, and why: they choose code or machines, which
no policy or review of aftershock's covers. The hub's defaults stay in force."""


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
            assert seen.rule_key == p.rule_key, f"{p.name} differs between experiments"
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
        elif key in WITHHELD:
            problems.append(withheld_message(key))
        elif key in RUNNER_ENV:
            problems.append(runner_message(key))
        elif spec.param(key) is None:
            problems.append(unknown_message(spec, key))
    for key, value in env.items():
        p = spec.param(key)
        if p is not None and not p.accepts(value):
            problems.append(value_message(p))
    return problems


def managed_message(key: str) -> str:
    source = "fault.duration" if key == "TOTAL_CHAOS_DURATION" else "target (aftershock chooses the targets)"
    return f"litmus.env.{key} is set by aftershock from {source}; remove it from env"


def withheld_message(key: str) -> str:
    return f"litmus.env.{key} cannot be set through aftershock: {WITHHELD[key]}"


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
