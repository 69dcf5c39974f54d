"""Recovery design (`aftershock recommend`, and a section of the report): rules over a workload's
live shape and over what aftershock's runs found about it, each with its evidence and the concrete
manifest change.

Pure: the facts (`WorkloadFacts`, read from Kubernetes objects by `facts_from_objects`) and the
evidence (`Evidence`, from the workload's runs) go in, `Recommendation`s come out, ordered by id.

The rules. Ids are stable forever: a rule that is retired keeps its id unused, a new rule takes
the next one.

| id      | rule                | fires when                                                                  | severity |
|---------|---------------------|-----------------------------------------------------------------------------|----------|
| AS-R001 | single-replica      | replicas <= 1 (not a DaemonSet)                                             | high     |
| AS-R002 | no-pdb              | replicas > 1 and no PodDisruptionBudget selects its pods (not a DaemonSet)  | medium   |
| AS-R003 | pdb-blocks-eviction | a PDB allows no eviction even with every pod healthy (maxUnavailable 0/0%,  | medium   |
|         |                     | or minAvailable, rounded up like the disruption controller, >= the pods)    |          |
| AS-R004 | no-readiness-probe  | a container has no readinessProbe (the names are in the evidence)           | low      |
| AS-R005 | no-spread-node      | replicas > 1 and all (>= 2) Ready pods on one node (not a DaemonSet)        | high     |
|         |                     | or: no spread/anti-affinity on kubernetes.io/hostname, a node runs >= 2 of  | medium   |
|         |                     | its pods and the cluster has nodes it does not use                          |          |
| AS-R006 | no-spread-zone      | replicas > 1, the cluster's nodes span > 1 zone, all (>= 2) Ready pods in   | medium   |
|         |                     | one zone (not a DaemonSet)                                                  |          |
| AS-R007 | slow-recovery       | recovery p95 over the objective                                             | medium   |
|         |                     | or a run found the target not recovered within its timeout                  | high     |
| AS-R008 | retry-storm         | a run found "Retry storm" (core/analysis.py)                                | finding  |
| AS-R009 | missing-timeouts    | a run found "Missing timeouts" (core/analysis.py)                           | finding  |
| AS-R010 | no-backpressure     | a run found "No backpressure" (core/analysis.py)                            | finding  |
| AS-R011 | no-spread           | a node fault found "no spread: ..." (core/node_faults.py)                   | finding  |
| AS-R012 | no-room             | a node fault found "no room: ..." (core/node_faults.py)                     | finding  |

Severity, on the DESIGN.md scale (what the weakness costs when the failure it invites happens):
- high: one ordinary failure is an outage: a single replica, every replica on one node, a target
  that did not recover within its timeout.
- medium: the workload survives, but recovers late or blocks others: no PDB (a drain may evict
  every replica at once), a PDB that blocks every drain, recovery slower than its objective,
  replicas stacked on a node or all in one zone (a zone is lost more rarely than a node).
- low: a missing readiness probe: a restarted pod gets traffic (and counts as recovered) before
  it can serve, which costs transient errors, the "low" tier. With one replica, AS-R001 already
  says what matters more.
- "finding": rules fed by a run's finding take the worst severity of those findings (the analysis
  and node-fault findings are high), so a recommendation is never rated below its evidence.

Decisions:
- One recommendation per rule and workload; several containers or PDBs are named together.
- Live placement counts Ready pods only (a Pending or failing pod protects nothing); nodes and
  zones of the cluster exclude control-plane nodes (workloads do not run there), unless one of
  the workload's pods does.
- A change is YAML (one or more documents, `---` between them) headed by `#` comments: a patch of
  the workload (`kubectl patch --type strategic` or an edit) or a new object to apply. Probe paths,
  ports and sizes are stubs to adjust; selectors carry the workload's own labels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from aftershock.api.common import Finding, Severity, worst
from aftershock.core.node_faults import CONTROL_PLANE_LABELS
from aftershock.core.selectors import matches

__all__ = [
    "HOSTNAME",
    "RULES",
    "ZONE",
    "ContainerFacts",
    "Evidence",
    "FindingFacts",
    "PdbFacts",
    "Recommendation",
    "WorkloadFacts",
    "blocks_eviction",
    "facts_from_objects",
    "recommend",
]

HOSTNAME: Final = "kubernetes.io/hostname"
ZONE: Final = "topology.kubernetes.io/zone"
_LEGACY_ZONE: Final = "failure-domain.beta.kubernetes.io/zone"

RULES: Final[Mapping[str, str]] = {
    "AS-R001": "single-replica",
    "AS-R002": "no-pdb",
    "AS-R003": "pdb-blocks-eviction",
    "AS-R004": "no-readiness-probe",
    "AS-R005": "no-spread-node",
    "AS-R006": "no-spread-zone",
    "AS-R007": "slow-recovery",
    "AS-R008": "retry-storm",
    "AS-R009": "missing-timeouts",
    "AS-R010": "no-backpressure",
    "AS-R011": "no-spread",
    "AS-R012": "no-room",
}
"""id → rule slug, fixed forever."""


# --- the input ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ContainerFacts:
    """One container of the pod template. `port`: its first containerPort (None: none declared)."""

    name: str
    has_readiness_probe: bool = False
    has_startup_probe: bool = False
    has_resource_requests: bool = False
    readiness_initial_delay: int = 0
    image: str = ""
    image_pull_policy: str = ""
    port: int | str | None = None


@dataclass(frozen=True, kw_only=True)
class PdbFacts:
    """A PodDisruptionBudget selecting the workload's pods. min_available / max_unavailable as
    given (an int as its string, "50%"); expected_pods from its status, 0 when unknown."""

    name: str
    min_available: str | None = None
    max_unavailable: str | None = None
    disruptions_allowed: int = 0
    expected_pods: int = 0


@dataclass(frozen=True, kw_only=True)
class WorkloadFacts:
    """What the rules need of one workload and where its pods run.

    match_labels: the workload's selector (matchLabels); empty: the pod template's labels are used.
    spread_keys / anti_affinity_keys: topology keys of the topologySpreadConstraints / pod
        anti-affinity terms (required or preferred) that select the workload's own pods.
    nodes: Ready pods per node; zones: Ready pods per zone (empty when nodes lack the zone label).
    cluster_nodes / cluster_zones: how many nodes / zones the cluster has for workloads.
    """

    kind: str
    namespace: str
    name: str
    replicas: int
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    match_labels: Mapping[str, str] = field(default_factory=dict)
    containers: Sequence[ContainerFacts] = ()
    spread_keys: frozenset[str] = frozenset()
    anti_affinity_keys: frozenset[str] = frozenset()
    nodes: Mapping[str, int] = field(default_factory=dict)
    zones: Mapping[str, int] = field(default_factory=dict)
    cluster_nodes: int = 0
    cluster_zones: int = 0
    pdbs: Sequence[PdbFacts] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "pod_labels", dict(self.pod_labels))
        object.__setattr__(self, "match_labels", dict(self.match_labels))
        object.__setattr__(self, "containers", tuple(self.containers))
        object.__setattr__(self, "spread_keys", frozenset(self.spread_keys))
        object.__setattr__(self, "anti_affinity_keys", frozenset(self.anti_affinity_keys))
        object.__setattr__(self, "nodes", {k: v for k, v in self.nodes.items() if v > 0})
        object.__setattr__(self, "zones", {k: v for k, v in self.zones.items() if v > 0})
        object.__setattr__(self, "pdbs", tuple(self.pdbs))

    @property
    def target(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def selector_labels(self) -> dict[str, str]:
        return dict(self.match_labels or self.pod_labels)

    @property
    def has_readiness_probe(self) -> bool:
        """Every container has one."""
        return all(c.has_readiness_probe for c in self.containers)

    @property
    def has_startup_probe(self) -> bool:
        """Every container has one."""
        return all(c.has_startup_probe for c in self.containers)

    @property
    def topology_spread(self) -> bool:
        """A topologySpreadConstraint on the hostname or the zone."""
        return bool(self.spread_keys & {HOSTNAME, ZONE})

    @property
    def anti_affinity(self) -> bool:
        return bool(self.anti_affinity_keys)

    @property
    def is_daemonset(self) -> bool:
        return self.kind == "DaemonSet"


@dataclass(frozen=True, kw_only=True)
class FindingFacts:
    """A finding of one of the workload's runs."""

    severity: Severity
    title: str
    detail: str = ""
    run: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity(self.severity))

    @classmethod
    def of(cls, finding: Finding, run: str) -> FindingFacts:
        return cls(severity=finding.severity, title=finding.title, detail=finding.detail, run=run)


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """What aftershock's runs found for the workload: recovery p95 and the objective (seconds),
    how many runs, and their findings."""

    recovery_p95: float | None = None
    objective: float | None = None
    runs: int = 0
    findings: Sequence[FindingFacts] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "findings", tuple(self.findings))


# --- the output --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Recommendation:
    id: str
    rule: str
    severity: Severity
    title: str
    target: str
    evidence: str
    change: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule,
            "severity": self.severity.value,
            "title": self.title,
            "target": self.target,
            "evidence": self.evidence,
            "change": self.change,
        }


# --- helpers -----------------------------------------------------------------------------------


def _seconds(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return f"{text or '0'}s"


def _names(items: Iterable[str]) -> str:
    return ", ".join(items)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


class _Dumper(yaml.SafeDumper):
    """Writes a dict used twice in full each time (no &anchors, which would puzzle a reader)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _yaml(comment: str, *docs: Mapping[str, Any]) -> str:
    head = "".join(f"# {line}\n" if line else "#\n" for line in comment.splitlines())
    body = "---\n".join(
        yaml.dump(dict(doc), Dumper=_Dumper, sort_keys=False, default_flow_style=False) for doc in docs
    )
    return head + body


def _workload_patch(facts: WorkloadFacts, spec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": facts.kind,
        "metadata": {"name": facts.name, "namespace": facts.namespace},
        "spec": dict(spec),
    }


def _pod_spec_patch(facts: WorkloadFacts, pod_spec: Mapping[str, Any]) -> dict[str, Any]:
    return _workload_patch(facts, {"template": {"spec": dict(pod_spec)}})


def _probe_port(container: ContainerFacts) -> int | str:
    return container.port if container.port is not None else 8080


def _http_probe(container: ContainerFacts, **settings: int) -> dict[str, Any]:
    return {"httpGet": {"path": "/healthz", "port": _probe_port(container)}, **settings}


_REQUESTS: Final = {"requests": {"cpu": "100m", "memory": "128Mi"}}


def _spread(facts: WorkloadFacts, key: str, when: str) -> dict[str, Any]:
    constraint: dict[str, Any] = {
        "maxSkew": 1,
        "topologyKey": key,
        "whenUnsatisfiable": when,
        "labelSelector": {"matchLabels": facts.selector_labels},
    }
    if facts.kind == "Deployment":  # a rollout's new ReplicaSet is spread on its own
        constraint["matchLabelKeys"] = ["pod-template-hash"]
    return constraint


def _pdb(facts: WorkloadFacts, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": facts.namespace},
        "spec": {
            "maxUnavailable": 1,
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
            "selector": {"matchLabels": facts.selector_labels},
        },
    }


def _scaled(value: str, total: int) -> int | None:
    """An int-or-percent against `total`, rounded up as the disruption controller does; None if
    the value is not one."""
    text = value.strip()
    try:
        if text.endswith("%"):
            return math.ceil(float(text[:-1]) * total / 100)
        return int(text)
    except ValueError:
        return None


def blocks_eviction(pdb: PdbFacts, replicas: int) -> bool:
    """Whether the budget allows no eviction even when every pod it covers is healthy."""
    expected = pdb.expected_pods if pdb.expected_pods > 0 else replicas
    if pdb.max_unavailable is not None:
        allowed = _scaled(pdb.max_unavailable, expected)
        return allowed is not None and allowed <= 0
    if pdb.min_available is not None:
        needed = _scaled(pdb.min_available, expected)
        return needed is not None and expected > 0 and needed >= expected
    return False


def _service_host(facts: WorkloadFacts) -> str:
    return f"{facts.name}.{facts.namespace}.svc.cluster.local"


def _matching(evidence: Evidence, test: Callable[[str], bool]) -> list[FindingFacts]:
    return [f for f in evidence.findings if test(f.title.strip().lower())]


def _finding_evidence(found: Sequence[FindingFacts], evidence: Evidence) -> str:
    """'"<title>" in 2 of 5 runs (a, b): <the first one's detail>'."""
    runs = list(dict.fromkeys(f.run for f in found if f.run))
    count = len(runs) or len(found)
    if evidence.runs >= count:
        where = f"in {count} of {evidence.runs} run{'' if evidence.runs == 1 else 's'}"
    else:
        where = f"in {_plural(count, 'run')}"
    if runs:
        where += f" ({_names(runs[:5])}{f' and {len(runs) - 5} more' if len(runs) > 5 else ''})"
    first = found[0]
    return f'"{first.title}" {where}' + (f": {first.detail}" if first.detail else "")


def _finding_severity(found: Sequence[FindingFacts]) -> Severity:
    severity = worst(f.severity for f in found)
    return severity if severity.rank >= Severity.LOW.rank else Severity.LOW


# --- the rules ---------------------------------------------------------------------------------

_Result = tuple[Severity, str, str, str]
"""What a rule says: (severity, title, evidence, change)."""
Rule = Callable[[WorkloadFacts, Evidence], _Result | None]
"""A rule: its result, or None when it does not apply."""


def _single_replica(facts: WorkloadFacts, _evidence: Evidence) -> _Result | None:
    if facts.is_daemonset or facts.replicas > 1:
        return None
    change = _yaml(
        "a second replica, so that losing one pod (or its node) costs capacity, not availability;\n"
        "then add a PodDisruptionBudget and spread the replicas over nodes",
        _workload_patch(facts, {"replicas": 2}),
    )
    return (
        Severity.HIGH,
        "Single replica: losing one pod is an outage",
        f"{facts.target} runs {_plural(facts.replicas, 'replica')}: a pod deletion, eviction or node"
        " failure leaves nothing to serve until a replacement is Ready",
        change,
    )


def _no_pdb(facts: WorkloadFacts, _evidence: Evidence) -> _Result | None:
    if facts.is_daemonset or facts.replicas <= 1 or facts.pdbs:
        return None
    return (
        Severity.MEDIUM,
        "No PodDisruptionBudget: a drain may evict every replica at once",
        f"no PodDisruptionBudget selects the pods of {facts.target} ({_plural(facts.replicas, 'replica')},"
        f" labels {_label_text(facts.selector_labels)}): node drains and cluster upgrades may take them"
        " all down together",
        _yaml(
            "at most one pod evicted at a time; unhealthy pods may always go, so a broken rollout\n"
            "never blocks a drain",
            _pdb(facts, facts.name),
        ),
    )


def _all(n: int) -> str:
    return "both" if n == 2 else f"all {n}"


def _label_text(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "none"


def _pdb_blocks(facts: WorkloadFacts, _evidence: Evidence) -> _Result | None:
    blocking = [p for p in facts.pdbs if blocks_eviction(p, facts.replicas)]
    if not blocking:
        return None
    described = []
    for p in blocking:
        setting = (
            f"maxUnavailable {p.max_unavailable}"
            if p.max_unavailable is not None
            else f"minAvailable {p.min_available}"
        )
        expected = p.expected_pods if p.expected_pods > 0 else facts.replicas
        described.append(
            f"{p.name} ({setting} of {_plural(expected, 'pod')}, disruptionsAllowed {p.disruptions_allowed})"
        )
    return (
        Severity.MEDIUM,
        "PodDisruptionBudget allows no eviction: drains and upgrades hang",
        f"{'these PodDisruptionBudgets allow' if len(blocking) > 1 else 'the PodDisruptionBudget allows'}"
        f" no eviction of {facts.target} even with every pod healthy: {'; '.join(described)}; a node"
        " drain waits on it forever",
        _yaml(
            "allow one pod to be evicted at a time (replaces the budget's minAvailable/maxUnavailable;\n"
            "with a single replica, add one first: AS-R001)",
            *(_pdb(facts, p.name) for p in blocking),
        ),
    )


def _no_readiness(facts: WorkloadFacts, _evidence: Evidence) -> _Result | None:
    missing = [c for c in facts.containers if not c.has_readiness_probe]
    if not missing:
        return None
    return (
        Severity.LOW,
        "No readiness probe: traffic reaches pods before they can serve",
        f"{'containers' if len(missing) > 1 else 'container'} without a readinessProbe in {facts.target}:"
        f" {_names(c.name for c in missing)}; a restarted pod counts as Ready, gets traffic and ends"
        " the recovery clock as soon as its process starts",
        _yaml(
            "a readinessProbe per container: point it at the endpoint that says 'ready to serve'",
            _pod_spec_patch(
                facts,
                {
                    "containers": [
                        {
                            "name": c.name,
                            "readinessProbe": _http_probe(c, periodSeconds=5, failureThreshold=3),
                        }
                        for c in missing
                    ]
                },
            ),
        ),
    )


def _no_spread_node(facts: WorkloadFacts, _evidence: Evidence) -> _Result | None:
    if facts.is_daemonset or facts.replicas <= 1:
        return None
    ready = sum(facts.nodes.values())
    constrained = HOSTNAME in facts.spread_keys or HOSTNAME in facts.anti_affinity_keys
    change = _yaml(
        "spread the replicas over nodes (at most one more on any node than on another)",
        _pod_spec_patch(facts, {"topologySpreadConstraints": [_spread(facts, HOSTNAME, "DoNotSchedule")]}),
    )
    if len(facts.nodes) == 1 and ready >= 2:
        node = next(iter(facts.nodes))
        cluster = (
            f"the cluster has {_plural(facts.cluster_nodes, 'node')}"
            if facts.cluster_nodes > 1
            else "the cluster has a single node for workloads: add nodes too"
        )
        despite = f" despite a constraint on {HOSTNAME}" if constrained else ""
        return (
            Severity.HIGH,
            "All replicas on one node",
            f"{_all(ready)} Ready pods of {facts.target} run on {node}{despite}; {cluster}: losing that node"
            " is an outage",
            change,
        )
    stacked = {n: c for n, c in sorted(facts.nodes.items()) if c >= 2}
    if constrained or not stacked or facts.cluster_nodes <= len(facts.nodes):
        return None
    where = ", ".join(f"{n}: {c}" for n, c in stacked.items())
    return (
        Severity.MEDIUM,
        "Replicas not spread over nodes",
        f"no topologySpreadConstraints or pod anti-affinity on {HOSTNAME} for {facts.target}: {ready} Ready"
        f" pods on {_plural(len(facts.nodes), 'node')} ({where}) while the cluster has"
        f" {facts.cluster_nodes}; one node's loss takes several replicas",
        change,
    )


def _no_spread_zone(facts: WorkloadFacts, _evidence: Evidence) -> _Result | None:
    if facts.is_daemonset or facts.replicas <= 1 or facts.cluster_zones <= 1 or len(facts.zones) != 1:
        return None
    zone, count = next(iter(facts.zones.items()))
    if count < 2:
        return None
    return (
        Severity.MEDIUM,
        "All replicas in one zone",
        f"{_all(count)} Ready pods of {facts.target} run in zone {zone} while the cluster's nodes span"
        f" {facts.cluster_zones} zones: a zone outage is a full outage",
        _yaml(
            "spread the replicas over zones (ScheduleAnyway: a zone without room does not block a rollout)",
            _pod_spec_patch(facts, {"topologySpreadConstraints": [_spread(facts, ZONE, "ScheduleAnyway")]}),
        ),
    )


def _slow_recovery(facts: WorkloadFacts, evidence: Evidence) -> _Result | None:
    timeouts = _matching(evidence, lambda t: t.startswith("target did not recover within the timeout"))
    slow = (
        evidence.recovery_p95 is not None
        and evidence.objective is not None
        and evidence.recovery_p95 > evidence.objective
    )
    if not slow and not timeouts:
        return None
    reasons: list[str] = []
    if slow and evidence.recovery_p95 is not None and evidence.objective is not None:
        runs = f" ({_plural(evidence.runs, 'run')})" if evidence.runs else ""
        reasons.append(
            f"recovery p95 {_seconds(evidence.recovery_p95)}{runs} over the"
            f" {_seconds(evidence.objective)} objective"
        )
    if timeouts:
        reasons.append(_finding_evidence(timeouts, evidence))
    patches: list[dict[str, Any]] = []
    for c in facts.containers:
        patch: dict[str, Any] = {"name": c.name}
        if c.has_startup_probe:
            patch["startupProbe"] = {"periodSeconds": 1}
        else:
            reasons.append(f"{c.name} has no startupProbe")
            patch["startupProbe"] = _http_probe(c, periodSeconds=1, failureThreshold=60)
        if c.readiness_initial_delay > 0:
            reasons.append(f"{c.name}'s readinessProbe waits initialDelaySeconds {c.readiness_initial_delay}")
            patch["readinessProbe"] = {"initialDelaySeconds": 0}
        if not c.has_resource_requests:
            reasons.append(f"{c.name} has no resource requests")
            patch["resources"] = _REQUESTS
        if c.image_pull_policy == "Always":
            reasons.append(f"{c.name} pulls its image on every start (imagePullPolicy Always)")
            patch["imagePullPolicy"] = "IfNotPresent"
        patches.append(patch)
    images = sorted({c.image for c in facts.containers if c.image})
    comment = (
        "start faster: a startupProbe checked every second (instead of initialDelaySeconds) ends the\n"
        "wait as soon as the process is up; requests keep a restarted pod off starved nodes (size them\n"
        "from observed usage); a smaller image, pinned by digest, pulls faster on a new node"
        + (f" ({_names(images)})" if images else "")
    )
    severity = Severity.HIGH if timeouts else Severity.MEDIUM
    title = (
        "Did not recover within the timeout"
        if timeouts and not slow
        else "Recovery slower than the objective"
    )
    return (
        severity,
        title,
        f"{facts.target}: {'; '.join(reasons)}",
        _yaml(comment, _pod_spec_patch(facts, {"containers": patches})),
    )


def _retry_storm(facts: WorkloadFacts, evidence: Evidence) -> _Result | None:
    found = _matching(evidence, lambda t: "retry storm" in t or "amplif" in t)
    if not found:
        return None
    host = _service_host(facts)
    comment = (
        f"bound the retries of {facts.target}'s clients. In their code: exponential backoff with full\n"
        "jitter (e.g. 100ms base, 10s cap), a retry budget (retries at most 10% of requests) and a\n"
        "circuit breaker that fails fast while the dependency is down. In an Istio mesh, for every\n"
        f"client (host: the Service in front of {facts.name}):"
    )
    destination = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": facts.name, "namespace": facts.namespace},
        "spec": {
            "host": host,
            "trafficPolicy": {
                "connectionPool": {"http": {"maxRetries": 3}},
                "outlierDetection": {
                    "consecutive5xxErrors": 5,
                    "interval": "10s",
                    "baseEjectionTime": "30s",
                    "maxEjectionPercent": 50,
                },
            },
        },
    }
    routes = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": facts.name, "namespace": facts.namespace},
        "spec": {
            "hosts": [host],
            "http": [
                {
                    "route": [{"destination": {"host": host}}],
                    "retries": {
                        "attempts": 2,
                        "perTryTimeout": "2s",
                        "retryOn": "connect-failure,refused-stream,unavailable,reset",
                    },
                }
            ],
        },
    }
    return (
        _finding_severity(found),
        "Retry storm: clients multiply the load on a failing dependency",
        _finding_evidence(found, evidence),
        _yaml(comment, destination, routes),
    )


def _missing_timeouts(facts: WorkloadFacts, evidence: Evidence) -> _Result | None:
    found = _matching(evidence, lambda t: t.startswith("missing timeouts"))
    if not found:
        return None
    host = _service_host(facts)
    comment = (
        f"give up on {facts.target} in time: in the clients, a connect timeout and a deadline per\n"
        "request shorter than their own callers' (and propagated); in an Istio mesh:"
    )
    routes = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": facts.name, "namespace": facts.namespace},
        "spec": {
            "hosts": [host],
            "http": [
                {
                    "route": [{"destination": {"host": host}}],
                    "timeout": "3s",
                    "retries": {"attempts": 1, "perTryTimeout": "1s"},
                }
            ],
        },
    }
    return (
        _finding_severity(found),
        "Missing timeouts: clients wait on a slow dependency",
        _finding_evidence(found, evidence),
        _yaml(comment, routes),
    )


def _no_backpressure(facts: WorkloadFacts, evidence: Evidence) -> _Result | None:
    found = _matching(evidence, lambda t: t.startswith("no backpressure"))
    if not found:
        return None
    comment = (
        f"bound the work queued for {facts.target}: in the service, bounded queues and load shedding\n"
        "(answer 503 or 429 with Retry-After when full, rather than queue); in an Istio mesh, bound\n"
        "the connections and pending requests (an overflow fails fast with 503):"
    )
    destination = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": facts.name, "namespace": facts.namespace},
        "spec": {
            "host": _service_host(facts),
            "trafficPolicy": {
                "connectionPool": {
                    "tcp": {"maxConnections": 100},
                    "http": {"http1MaxPendingRequests": 50, "http2MaxRequests": 200},
                }
            },
        },
    }
    return (
        _finding_severity(found),
        "No backpressure: work queues up without bound",
        _finding_evidence(found, evidence),
        _yaml(comment, destination),
    )


def _no_spread_found(facts: WorkloadFacts, evidence: Evidence) -> _Result | None:
    found = _matching(evidence, lambda t: t.startswith("no spread:"))
    if not found:
        return None
    return (
        _finding_severity(found),
        "No spread: one node's loss took every replica",
        _finding_evidence(found, evidence),
        _yaml(
            "spread the replicas over nodes, so that a node fault leaves some Ready (and add a\n"
            "PodDisruptionBudget: AS-R002)",
            _pod_spec_patch(
                facts, {"topologySpreadConstraints": [_spread(facts, HOSTNAME, "DoNotSchedule")]}
            ),
        ),
    )


def _no_room(facts: WorkloadFacts, evidence: Evidence) -> _Result | None:
    found = _matching(evidence, lambda t: t.startswith("no room:"))
    if not found:
        return None
    labels = {"app.kubernetes.io/name": "overprovisioning"}
    comment = (
        f"keep room for the loss of a node (N+1) so that {facts.target}'s pods can be placed elsewhere.\n"
        "With a cluster autoscaler: placeholder pods at a negative priority hold the room, are\n"
        "preempted by real pods, and the autoscaler adds a node for them; size their requests like\n"
        "the pods one node holds. Without one: add a node's worth of capacity."
    )
    priority = {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": "overprovisioning"},
        "value": -1,
        "preemptionPolicy": "Never",
        "globalDefault": False,
        "description": "Placeholder pods that keep room for displaced workloads.",
    }
    placeholder = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "overprovisioning", "namespace": facts.namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "priorityClassName": "overprovisioning",
                    "terminationGracePeriodSeconds": 0,
                    "containers": [
                        {
                            "name": "pause",
                            "image": "registry.k8s.io/pause:3.10",
                            "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}},
                        }
                    ],
                },
            },
        },
    }
    return (
        _finding_severity(found),
        "No room: the cluster could not absorb a node's loss",
        _finding_evidence(found, evidence),
        _yaml(comment, priority, placeholder),
    )


_TABLE: Final[Mapping[str, Rule]] = {
    "AS-R001": _single_replica,
    "AS-R002": _no_pdb,
    "AS-R003": _pdb_blocks,
    "AS-R004": _no_readiness,
    "AS-R005": _no_spread_node,
    "AS-R006": _no_spread_zone,
    "AS-R007": _slow_recovery,
    "AS-R008": _retry_storm,
    "AS-R009": _missing_timeouts,
    "AS-R010": _no_backpressure,
    "AS-R011": _no_spread_found,
    "AS-R012": _no_room,
}
assert _TABLE.keys() == RULES.keys()


def recommend(facts: WorkloadFacts, evidence: Evidence) -> list[Recommendation]:
    """Every rule that applies to the workload, ordered by id."""
    out: list[Recommendation] = []
    for rule_id in sorted(_TABLE):
        result = _TABLE[rule_id](facts, evidence)
        if result is None:
            continue
        severity, title, text, change = result
        out.append(
            Recommendation(
                id=rule_id,
                rule=RULES[rule_id],
                severity=severity,
                title=title,
                target=facts.target,
                evidence=text,
                change=change,
            )
        )
    return out


# --- reading Kubernetes objects ----------------------------------------------------------------


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _is_ready(pod: Mapping[str, Any]) -> bool:
    status = _map(pod.get("status"))
    if status.get("phase") in ("Succeeded", "Failed") or _map(pod.get("metadata")).get("deletionTimestamp"):
        return False
    return any(
        _map(c).get("type") == "Ready" and _map(c).get("status") == "True"
        for c in _list(status.get("conditions"))
    )


def _own_keys(terms: Iterable[Any], labels: Mapping[str, str]) -> set[str]:
    """Topology keys of the terms whose labelSelector selects `labels` (a missing selector selects
    no pod)."""
    keys: set[str] = set()
    for term in terms:
        term = _map(term)
        selector = term.get("labelSelector")
        if isinstance(selector, Mapping) and term.get("topologyKey") and matches(selector, labels):
            keys.add(str(term["topologyKey"]))
    return keys


def _container(c: Mapping[str, Any]) -> ContainerFacts:
    readiness = c.get("readinessProbe")
    ports = [_map(p) for p in _list(c.get("ports"))]
    port = ports[0].get("containerPort") if ports else None
    return ContainerFacts(
        name=str(c.get("name", "")),
        has_readiness_probe=bool(readiness),
        has_startup_probe=bool(c.get("startupProbe")),
        has_resource_requests=bool(_map(_map(c.get("resources")).get("requests"))),
        readiness_initial_delay=int(_map(readiness).get("initialDelaySeconds") or 0),
        image=str(c.get("image") or ""),
        image_pull_policy=str(c.get("imagePullPolicy") or ""),
        port=port if isinstance(port, int | str) and not isinstance(port, bool) else None,
    )


def _optional_text(value: Any) -> str | None:
    return None if value is None else str(value)


def facts_from_objects(
    workload: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    pdbs: Sequence[Mapping[str, Any]],
    nodes: Mapping[str, Mapping[str, str]],
) -> WorkloadFacts:
    """The facts of an apps/v1 Deployment, StatefulSet or DaemonSet (JSON as the API serves it),
    from its pods (others are ignored: another namespace, not selected by the workload's
    selector), the namespace's policy/v1 PodDisruptionBudgets (those selecting the pod template's
    labels are kept) and the cluster's nodes (name → labels)."""
    meta = _map(workload.get("metadata"))
    spec = _map(workload.get("spec"))
    kind = str(workload.get("kind", ""))
    namespace = str(meta.get("namespace", ""))
    template = _map(spec.get("template"))
    labels = {str(k): str(v) for k, v in _map(_map(template.get("metadata")).get("labels")).items()}
    pod_spec = _map(template.get("spec"))
    selector = _map(spec.get("selector"))
    match_labels = {str(k): str(v) for k, v in _map(selector.get("matchLabels")).items()}

    own = [
        p
        for p in pods
        if _map(p.get("metadata")).get("namespace", namespace) == namespace
        and matches(selector or {"matchLabels": labels}, _map(_map(p.get("metadata")).get("labels")))
    ]
    if kind == "DaemonSet":
        desired = _map(workload.get("status")).get("desiredNumberScheduled")
        replicas = int(desired) if desired is not None else len(own)
    else:
        given = spec.get("replicas")
        replicas = int(given) if given is not None else 1

    affinity = _map(_map(pod_spec.get("affinity")).get("podAntiAffinity"))
    terms = _list(affinity.get("requiredDuringSchedulingIgnoredDuringExecution")) + [
        _map(t).get("podAffinityTerm")
        for t in _list(affinity.get("preferredDuringSchedulingIgnoredDuringExecution"))
    ]

    def zone_of(node_labels: Mapping[str, str]) -> str | None:
        return node_labels.get(ZONE) or node_labels.get(_LEGACY_ZONE)

    per_node: dict[str, int] = {}
    per_zone: dict[str, int] = {}
    for pod in own:
        node = _map(pod.get("spec")).get("nodeName")
        if not node or not _is_ready(pod):
            continue
        per_node[node] = per_node.get(node, 0) + 1
        zone = zone_of(nodes.get(node, {}))
        if zone:
            per_zone[zone] = per_zone.get(zone, 0) + 1
    workers = {
        name: node_labels
        for name, node_labels in nodes.items()
        if name in per_node or not any(label in node_labels for label in CONTROL_PLANE_LABELS)
    }
    cluster_zones = {z for z in (zone_of(node_labels) for node_labels in workers.values()) if z}

    budgets: list[PdbFacts] = []
    for pdb in pdbs:
        pdb_meta, pdb_spec = _map(pdb.get("metadata")), _map(pdb.get("spec"))
        pdb_selector = pdb_spec.get("selector")
        if pdb_meta.get("namespace", namespace) != namespace or not isinstance(pdb_selector, Mapping):
            continue  # policy/v1: a null selector selects no pod, an empty one every pod
        if not matches(pdb_selector, labels):
            continue
        status = _map(pdb.get("status"))
        budgets.append(
            PdbFacts(
                name=str(pdb_meta.get("name", "")),
                min_available=_optional_text(pdb_spec.get("minAvailable")),
                max_unavailable=_optional_text(pdb_spec.get("maxUnavailable")),
                disruptions_allowed=int(status.get("disruptionsAllowed") or 0),
                expected_pods=int(status.get("expectedPods") or 0),
            )
        )

    return WorkloadFacts(
        kind=kind,
        namespace=namespace,
        name=str(meta.get("name", "")),
        replicas=replicas,
        pod_labels=labels,
        match_labels=match_labels,
        containers=[_container(_map(c)) for c in _list(pod_spec.get("containers"))],
        spread_keys=frozenset(_own_keys(_list(pod_spec.get("topologySpreadConstraints")), labels)),
        anti_affinity_keys=frozenset(_own_keys(terms, labels)),
        nodes=per_node,
        zones=per_zone,
        cluster_nodes=len(workers),
        cluster_zones=len(cluster_zones),
        pdbs=sorted(budgets, key=lambda b: b.name),
    )
