"""ChaosPolicy: the cluster-wide guardrails every run must pass, at admission and before injecting.

Defaults are the safe choice: an empty spec allows only opted-in namespaces, no node faults, at most
half of a workload's pods, and one active run per namespace. With several policies, all apply and
the strictest wins; with none, nothing is injected.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Final

from pydantic import AwareDatetime, ConfigDict, Field, model_validator

from aftershock.api.cel import CelRule, matches, validations
from aftershock.api.common import (
    CONDITIONS_LIST_SCHEMA,
    DNS_LABEL_PATTERN,
    KNOWN_FAULT_KINDS,
    NODE_FAULT_KINDS,
    SYSTEM_NAMESPACES,
    TIME_ZONE_PATTERN,
    TIME_ZONE_RULE,
    ApiModel,
    Condition,
    Duration,
    FaultKindName,
    LabelSelector,
    ResourceModel,
)

OPT_IN_LABEL: Final = "aftershock.dev/chaos"
OPT_IN_VALUE: Final = "enabled"
DEFAULT_ALLOWED_FAULTS: Final = tuple(k for k in KNOWN_FAULT_KINDS if k not in NODE_FAULT_KINDS)
CLOCK_PATTERN: Final = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
MAX_COUNT: Final = 10_000
"""Upper bound of a policy's pod and run counts: beyond any cluster's need, and a bound for CEL."""
MAX_NODES: Final = 1000

WINDOW_RULE: Final = CelRule(
    rule="self.start != self.end",
    message="a window's start and end must differ; a window may cross midnight, e.g. 22:00 to 06:00",
)
BLACKOUT_RULE: Final = CelRule(
    rule="self.start < self.end",
    message="a blackout's end must be after its start",
)


class Weekday(StrEnum):
    """A day of the week."""

    MON = "Mon"
    TUE = "Tue"
    WED = "Wed"
    THU = "Thu"
    FRI = "Fri"
    SAT = "Sat"
    SUN = "Sun"


class PolicyNamespaces(ApiModel):
    """Which namespaces may hold chaos targets."""

    selector: LabelSelector = Field(
        default_factory=lambda: LabelSelector(match_labels={OPT_IN_LABEL: OPT_IN_VALUE}),
        description=f"Namespaces whose labels match may hold targets; defaults to the opt-in label"
        f" {OPT_IN_LABEL}={OPT_IN_VALUE}. An empty selector ({{}}) matches every namespace.",
        json_schema_extra={"default": {"matchLabels": {OPT_IN_LABEL: OPT_IN_VALUE}}},
    )
    deny: list[Annotated[str, Field(max_length=63, pattern=DNS_LABEL_PATTERN)]] = Field(
        default_factory=lambda: list(SYSTEM_NAMESPACES),
        max_length=256,
        description="Namespaces that never hold targets, even when the selector matches. The system"
        " namespaces and the operator's own namespace are always denied, listed or not.",
        json_schema_extra={"default": list(SYSTEM_NAMESPACES), "x-kubernetes-list-type": "set"},
    )


class BlastRadius(ApiModel):
    """Upper bounds on how much a single run may hit."""

    max_pods_percent: int = Field(
        default=50,
        ge=0,
        le=100,
        description="At most this percentage of a target workload's pods per run.",
    )
    max_pods: int | None = Field(
        default=None,
        ge=0,
        le=MAX_COUNT,
        description="At most this many pods per run (0 to 10000); no absolute limit when omitted.",
    )
    max_nodes: int = Field(
        default=1, ge=0, le=MAX_NODES, description="At most this many nodes per run (node faults), 0 to 1000."
    )


class Window(ApiModel):
    """A weekly time window during which runs may start."""

    model_config = ConfigDict(json_schema_extra=validations(WINDOW_RULE))

    days: list[Weekday] = Field(
        default_factory=lambda: list(Weekday),
        min_length=1,
        max_length=7,
        description="Days on which the window opens (Mon to Sun); defaults to every day."
        " A window crossing midnight belongs to the day it opens.",
        json_schema_extra={"default": [d.value for d in Weekday], "x-kubernetes-list-type": "set"},
    )
    start: str = Field(pattern=CLOCK_PATTERN, max_length=5, description='Opening time, "HH:MM" (24h).')
    end: str = Field(
        pattern=CLOCK_PATTERN,
        max_length=5,
        description='Closing time, "HH:MM" (24h); earlier than start means the window crosses midnight.',
    )
    time_zone: str = Field(
        default="UTC",
        max_length=64,
        description="IANA time zone start and end are read in, e.g. Europe/Berlin.",
        json_schema_extra=validations(TIME_ZONE_RULE),
    )

    @model_validator(mode="after")
    def _check(self) -> Window:
        if self.start == self.end:
            raise ValueError(WINDOW_RULE.error())
        if not matches(TIME_ZONE_PATTERN, self.time_zone):
            raise ValueError(TIME_ZONE_RULE.error())
        return self


class Blackout(ApiModel):
    """A period during which no run may start, e.g. a release freeze."""

    model_config = ConfigDict(json_schema_extra=validations(BLACKOUT_RULE))

    start: AwareDatetime = Field(description="Start of the blackout (RFC 3339).")
    end: AwareDatetime = Field(description="End of the blackout (RFC 3339), after start.")

    @model_validator(mode="after")
    def _check(self) -> Blackout:
        if not self.start < self.end:
            raise ValueError(BLACKOUT_RULE.error())
        return self


class PolicyConcurrency(ApiModel):
    """Limits on runs that are active at the same time."""

    max_active_runs: int = Field(
        default=5, ge=0, le=MAX_COUNT, description="At most this many active runs in the cluster, 0 to 10000."
    )
    max_active_runs_per_namespace: int = Field(
        default=1,
        ge=0,
        le=MAX_COUNT,
        description="At most this many active runs targeting one namespace, 0 to 10000.",
    )


class LitmusProbeType(StrEnum):
    """A kind of Litmus probe. cmdProbe runs commands with the chaos ServiceAccount's token (or in a
    pod of its own), k8sProbe creates and deletes objects: both are powers, allowed only when listed."""

    HTTP = "httpProbe"
    PROM = "promProbe"
    CMD = "cmdProbe"
    K8S = "k8sProbe"


DEFAULT_PROBE_TYPES: Final = (LitmusProbeType.HTTP.value, LitmusProbeType.PROM.value)


class LitmusPolicy(ApiModel):
    """What Litmus experiments may do beyond their fault."""

    allowed_probe_types: list[LitmusProbeType] = Field(
        default_factory=lambda: [LitmusProbeType(t) for t in DEFAULT_PROBE_TYPES],
        max_length=len(LitmusProbeType),
        description="Litmus probe types an experiment may use: httpProbe and promProbe by default;"
        " cmdProbe (commands with the chaos ServiceAccount's token) and k8sProbe (creates and deletes"
        " objects) only when listed, and then only for authors who could do what the probe does.",
        json_schema_extra={"default": list(DEFAULT_PROBE_TYPES), "x-kubernetes-list-type": "set"},
    )


ENDPOINT_PATTERN: Final = (
    r"^((\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(:[0-9]{1,5})?"
    r"|[0-9a-fA-F:.]+(/[0-9]{1,3})?|\[[0-9a-fA-F:.]+\]:[0-9]{1,5})$"
)
TOO_WIDE_PATTERN: Final = r"^([0-9.]+/[0-7]|[0-9a-fA-F:]+/([0-9]|1[0-5]))$"
ENDPOINT_RULE: Final = CelRule(
    rule=f"self.matches(r'{ENDPOINT_PATTERN}')",
    message="an endpoints.allow entry is a host name, *.suffix, address or CIDR, optionally with :PORT"
    " (e.g. *.monitoring.svc, prometheus.monitoring.svc:9090, 10.0.0.0/8, 127.0.0.1), not a URL",
    template="endpoints.allow entry {self} is not a host name, *.suffix, address or CIDR (optionally"
    " with :PORT), e.g. *.monitoring.svc or 10.0.0.0/8; write the host, not a URL",
)
ENDPOINT_WIDTH_RULE: Final = CelRule(
    rule=f"!self.matches(r'{TOO_WIDE_PATTERN}')",
    message="an endpoints.allow network must not be wider than /8 (/16 for IPv6)",
    template="endpoints.allow entry {self} is wider than /8 (/16 for IPv6): list the networks probes need",
)


class PolicyEndpoints(ApiModel):
    """Where probes, gates and analysis queries may connect (no request forgery through the operator)."""

    allow: list[
        Annotated[
            str, Field(max_length=255, json_schema_extra=validations(ENDPOINT_RULE, ENDPOINT_WIDTH_RULE))
        ]
    ] = Field(
        default_factory=list,
        max_length=64,
        description="Hosts beyond the target namespace's own Services (always allowed) that probes may"
        " reach: names (prometheus.monitoring.svc), *.suffix patterns, addresses or CIDRs, each"
        " optionally with :PORT. Loopback and link-local (cloud metadata) addresses are reached only when"
        " listed on their own, the API server only as its exact host:port; every ChaosPolicy must allow"
        " an endpoint.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )

    @model_validator(mode="after")
    def _check(self) -> PolicyEndpoints:
        for entry in self.allow:
            if not matches(ENDPOINT_PATTERN, entry):
                raise ValueError(ENDPOINT_RULE.error(self=entry))
            if matches(TOO_WIDE_PATTERN, entry):
                raise ValueError(ENDPOINT_WIDTH_RULE.error(self=entry))
        return self


CONTROL_PLANE_LABEL: Final = "node-role.kubernetes.io/control-plane"


class PolicyNodes(ApiModel):
    """Which nodes node faults may touch (control-plane nodes never, whatever this says)."""

    deny: LabelSelector = Field(
        default_factory=lambda: LabelSelector(match_labels={CONTROL_PLANE_LABEL: ""}),
        description="Nodes whose labels match are never drained or tainted, even when a target's pods"
        f" run there; defaults to {CONTROL_PLANE_LABEL}. Nodes labelled {CONTROL_PLANE_LABEL} or"
        " node-role.kubernetes.io/master are never touched, listed or not. An empty selector ({})"
        " matches every node: node faults can then touch none.",
        json_schema_extra={"default": {"matchLabels": {CONTROL_PLANE_LABEL: ""}}},
    )


class CollateralNamespaces(StrEnum):
    """Whose pods a node fault may evict besides the target's."""

    OPTED_IN = "optedIn"
    ANY = "any"


class PolicyNodeFaults(ApiModel):
    """What node faults may do to pods that are not their target's."""

    collateral_namespaces: CollateralNamespaces = Field(
        default=CollateralNamespaces.OPTED_IN,
        description="optedIn (default): every pod a drain or NoExecute taint would evict must be in a"
        " namespace this policy allows chaos in (selector, deny list; never kube-system or the"
        " operator's own), or the run is refused before anything is touched. any: pods of every"
        " namespace may be evicted, as kubectl drain would.",
    )


class ChaosPolicySpec(ApiModel):
    """The guardrails: where chaos may run, which faults, how much, and when."""

    suspend: bool = Field(
        default=False,
        description="The kill switch: true stops new runs and aborts active ones.",
    )
    namespaces: PolicyNamespaces = Field(
        default_factory=PolicyNamespaces,
        description="Which namespaces may hold targets.",
        json_schema_extra={"default": {}},
    )
    cross_namespace: bool = Field(
        default=False,
        description="Whether an experiment may target a namespace other than its own.",
    )
    allowed_faults: list[FaultKindName] = Field(
        default_factory=lambda: [FaultKindName(k) for k in DEFAULT_ALLOWED_FAULTS],
        max_length=len(KNOWN_FAULT_KINDS),
        description="Fault kinds that may run; defaults to every kind except node faults"
        f" ({', '.join(NODE_FAULT_KINDS)}), which are allowed only when listed.",
        json_schema_extra={"default": list(DEFAULT_ALLOWED_FAULTS), "x-kubernetes-list-type": "set"},
    )
    blast_radius: BlastRadius = Field(
        default_factory=BlastRadius,
        description="Upper bounds on how much one run may hit.",
        json_schema_extra={"default": {}},
    )
    respect_disruption_budgets: bool = Field(
        default=True,
        description="Never take a workload below what its PodDisruptionBudget allows.",
    )
    windows: list[Window] = Field(
        default_factory=list,
        max_length=32,
        description="Runs may start only inside one of these windows; no windows means any time.",
    )
    blackouts: list[Blackout] = Field(
        default_factory=list,
        max_length=64,
        description="Periods in which no run may start, whatever the windows say.",
    )
    concurrency: PolicyConcurrency = Field(
        default_factory=PolicyConcurrency,
        description="Limits on runs active at the same time.",
        json_schema_extra={"default": {}},
    )
    max_duration: Duration | None = Field(
        default=None,
        description="The longest fault.duration and recovery.timeout a run may have, e.g. 1h:"
        " longer ones are refused at admission and before injecting, and an active run that exceeds"
        " a newly lowered cap is aborted. No cap when omitted.",
    )
    litmus: LitmusPolicy = Field(
        default_factory=LitmusPolicy,
        description="What Litmus experiments may do beyond their fault (probe types).",
        json_schema_extra={"default": {}},
    )
    nodes: PolicyNodes = Field(
        default_factory=PolicyNodes,
        description="Nodes node faults never touch (control-plane nodes by default, and always).",
        json_schema_extra={"default": {}},
    )
    node_faults: PolicyNodeFaults = Field(
        default_factory=PolicyNodeFaults,
        description="Whose pods node faults may evict besides the target's.",
        json_schema_extra={"default": {}},
    )
    endpoints: PolicyEndpoints = Field(
        default_factory=PolicyEndpoints,
        description="Where steady-state probes and gates may connect; by default only Services of the"
        " run's target namespace.",
        json_schema_extra={"default": {}},
    )


class ChaosPolicyStatus(ApiModel):
    """The observed state of the policy, written by the operator."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this status was computed from."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Standard conditions (Ready).",
        json_schema_extra=CONDITIONS_LIST_SCHEMA,
    )


class ChaosPolicy(ResourceModel):
    """ChaosPolicy is a cluster-wide guardrail for chaos: which namespaces and faults are allowed,
    how much a run may hit, and when. All policies apply and the strictest wins; with no policy,
    nothing is injected."""

    KIND: ClassVar[str] = "ChaosPolicy"
    PLURAL: ClassVar[str] = "chaospolicies"
    SINGULAR: ClassVar[str] = "chaospolicy"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("cpol",)
    NAMESPACED: ClassVar[bool] = False

    kind: str = Field(default="ChaosPolicy", description="The kind of this object.")
    spec: ChaosPolicySpec = Field(
        default_factory=ChaosPolicySpec,
        description="The guardrails.",
        json_schema_extra={"default": {}},
    )
    status: ChaosPolicyStatus = Field(
        default_factory=ChaosPolicyStatus, description="Observed state, written by the operator."
    )

    def status_patch(self) -> dict[str, Any]:
        """The status as a JSON-ready dict for a status patch (camelCase, None values left out)."""
        return self.status.to_json()
