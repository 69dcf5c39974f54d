"""ChaosExperiment: what to break, when, and how to judge recovery.

Target, Fault and Recovery are also frozen into each ChaosRun's spec, so their rules hold there too.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Final

from pydantic import AwareDatetime, ConfigDict, Field, model_validator

from aftershock.api import litmus_catalog as litmus
from aftershock.api.analysis import Analysis
from aftershock.api.cel import CelRule, matches, validations
from aftershock.api.common import (
    CONDITIONS_LIST_SCHEMA,
    DNS_LABEL_PATTERN,
    SYSTEM_NAMESPACES,
    TIME_ZONE_PATTERN,
    TIME_ZONE_RULE,
    ApiModel,
    Condition,
    Duration,
    LabelSelector,
    ResourceModel,
    RunPhase,
    Severity,
    Verdict,
    optional_delta,
)
from aftershock.api.durations import parse_duration
from aftershock.api.steady_state import Gate, SteadyState
from aftershock.api.toxiproxy import ToxiproxyFault

MAX_NAME_LENGTH: Final = 52
"""Run names are ``<experiment>-<unix seconds>`` (11 more characters) and must fit in 63."""

SCHEDULE_MACROS: Final = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
SCHEDULE_PATTERN: Final = (
    r"^\s*(@("
    + "|".join(m[1:] for m in SCHEDULE_MACROS)
    + r")|@every\s+([0-9]+(\.[0-9]+)?(h|m|s|ms))+|\S+(\s+\S+){4})\s*$"
)
"""Shape of a schedule: five cron fields, a macro, or ``@every <duration>``. Parsing the fields
(ranges, steps, whether a time zone exists) is the scheduler's job; it reports problems as a
Stalled condition."""

NAME_RULE: Final = CelRule(
    rule=f"size(self.metadata.name) <= {MAX_NAME_LENGTH}",
    message=f"metadata.name must be at most {MAX_NAME_LENGTH} characters:"
    " run names append -<unix seconds> and must stay within 63",
)
SCHEDULE_RULE: Final = CelRule(
    rule=f"self.matches(r'{SCHEDULE_PATTERN}')",
    message="schedule must be a 5-field cron expression (minute hour day-of-month month day-of-week),"
    f" one of {', '.join(SCHEDULE_MACROS)}, or @every <duration> such as @every 5m;"
    " omit it to run the experiment once",
)
NAMESPACE_RULE: Final = CelRule(
    rule="!(self in [" + ", ".join(f"'{ns}'" for ns in SYSTEM_NAMESPACES) + "])",
    message=f"target.namespace must not be a system namespace ({', '.join(SYSTEM_NAMESPACES)})",
    template="target.namespace {self} is a system namespace; chaos never runs in "
    + ", ".join(SYSTEM_NAMESPACES),
)
SELECTOR_RULE: Final = CelRule(
    rule="(has(self.matchLabels) && size(self.matchLabels) > 0)"
    " || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",
    message="target.selector must not be empty: an empty selector would match every workload in the namespace",
)
PERCENT_VALUE_RULE: Final = CelRule(
    rule="self.mode != 'percent' || (has(self.value) && self.value >= 1 && self.value <= 100)",
    message="value must be set to a percentage from 1 to 100 when mode is percent",
    field_path=".value",
)
FIXED_VALUE_RULE: Final = CelRule(
    rule="self.mode != 'fixed' || (has(self.value) && self.value >= 1)",
    message="value must be set to a count of at least 1 when mode is fixed",
    field_path=".value",
)
NO_VALUE_RULE: Final = CelRule(
    rule="self.mode in ['fixed', 'percent'] || !has(self.value)",
    message="value must not be set when mode is one or all; only fixed and percent use it",
    template="value must not be set when mode is {mode}; only fixed and percent use it",
    field_path=".value",
)
MAX_TARGET_VALUE: Final = 10_000
MAX_GRACE_PERIOD_SECONDS: Final = 3600
MAX_HISTORY_LIMIT: Final = 100
MAX_DURATION: Final = "24h"
"""Longest fault.duration, recovery.timeout and startingDeadline the schema accepts; a ChaosPolicy's
maxDuration caps fault.duration and recovery.timeout further."""


def max_duration_rule(field: str) -> CelRule:
    """``field`` (a Duration) may be at most MAX_DURATION."""
    return CelRule(
        rule=f"duration(self) <= duration('{MAX_DURATION}')",
        message=f"{field} must be at most {MAX_DURATION}",
        template=f"{field} ({{self}}) must be at most {MAX_DURATION}",
    )


FAULT_DURATION_RULE: Final = max_duration_rule("fault.duration")
RECOVERY_TIMEOUT_RULE: Final = max_duration_rule("recovery.timeout")
STARTING_DEADLINE_RULE: Final = max_duration_rule("startingDeadline")


def _check_max_duration(rule: CelRule, value: str | None) -> None:
    if value is not None and parse_duration(value) > parse_duration(MAX_DURATION):
        raise ValueError(rule.error(self=value))


_DEFAULT_OBJECTIVE: Final = "30s"
_DEFAULT_TIMEOUT: Final = "5m"
RECOVERY_RULE: Final = CelRule(
    rule="duration(self.objective) <= duration(self.timeout)",
    message="recovery.objective must not be longer than recovery.timeout",
    template="recovery.objective ({objective}) must not be longer than recovery.timeout ({timeout})",
)


class ConcurrencyPolicy(StrEnum):
    """What to do when a run is due while another run of the same experiment is still active."""

    FORBID = "Forbid"
    ALLOW = "Allow"
    REPLACE = "Replace"


class TargetKind(StrEnum):
    """The kind of workload whose pods are targeted."""

    DEPLOYMENT = "Deployment"
    STATEFUL_SET = "StatefulSet"
    DAEMON_SET = "DaemonSet"
    # Node comes with the node faults (nodeDrain): add it here and to the policy checks together.


class TargetMode(StrEnum):
    """How many of the matching pods a run hits."""

    ONE = "one"
    FIXED = "fixed"
    PERCENT = "percent"
    ALL = "all"


class Target(ApiModel):
    """What a run may touch: the workloads matching a selector, and how many of their pods."""

    model_config = ConfigDict(
        json_schema_extra=validations(PERCENT_VALUE_RULE, FIXED_VALUE_RULE, NO_VALUE_RULE),
    )

    namespace: str | None = Field(
        default=None,
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description="Namespace of the target workloads; defaults to the experiment's own namespace."
        " Another namespace needs a ChaosPolicy with crossNamespace: true.",
        json_schema_extra=validations(NAMESPACE_RULE),
    )
    kind: TargetKind = Field(description="Kind of workload to target: Deployment, StatefulSet or DaemonSet.")
    selector: LabelSelector = Field(
        description="Label selector for the target workloads (metav1.LabelSelector); must not be empty.",
        json_schema_extra=validations(SELECTOR_RULE),
    )
    mode: TargetMode = Field(
        default=TargetMode.ONE,
        description="Which of the matching pods to hit: one (a random one), fixed (value pods),"
        " percent (value percent of them, rounded down but at least one) or all.",
    )
    value: int | None = Field(
        default=None,
        le=MAX_TARGET_VALUE,
        description="Number of pods for mode fixed (1 to 10000), or percentage for mode percent (1 to 100);"
        " must not be set for one and all.",
    )

    @model_validator(mode="after")
    def _check(self) -> Target:
        if self.namespace is not None and self.namespace in SYSTEM_NAMESPACES:
            raise ValueError(NAMESPACE_RULE.error(self=self.namespace))
        if self.selector.is_empty():
            raise ValueError(SELECTOR_RULE.error())
        value = self.value
        if self.mode is TargetMode.PERCENT and (value is None or not 1 <= value <= 100):
            raise ValueError(PERCENT_VALUE_RULE.error())
        if self.mode is TargetMode.FIXED and (value is None or value < 1):
            raise ValueError(FIXED_VALUE_RULE.error())
        if self.mode in (TargetMode.ONE, TargetMode.ALL) and value is not None:
            raise ValueError(NO_VALUE_RULE.error(mode=self.mode))
        return self


class PodDelete(ApiModel):
    """Delete the target pods; their controller replaces them. Recovery is measured until it has."""

    grace_period_seconds: int | None = Field(
        default=None,
        ge=0,
        le=MAX_GRACE_PERIOD_SECONDS,
        description="Grace period for the deletion in seconds, 0 (kills at once) to 3600."
        " Defaults to the pod's terminationGracePeriodSeconds.",
    )


class NodeDrain(ApiModel):
    """Drain the nodes the chosen pods run on, as `kubectl drain` does: cordon, then evict their pods
    through the Eviction API (PodDisruptionBudgets are honoured; DaemonSet and mirror pods stay).
    The nodes are uncordoned when fault.duration is over."""

    grace_period_seconds: int | None = Field(
        default=None,
        ge=0,
        le=MAX_GRACE_PERIOD_SECONDS,
        description="Grace period for each eviction in seconds, 0 to 3600. Defaults to each pod's"
        " terminationGracePeriodSeconds.",
    )
    give_up_after: Duration = Field(
        default="2m",
        description="How long evictions a PodDisruptionBudget refuses are retried (within"
        " fault.duration) before the drain gives up; the pods left on the node are recorded as a"
        " finding. Default 2m.",
    )

    @property
    def give_up_delta(self) -> timedelta:
        return parse_duration(self.give_up_after)


class TaintEffect(StrEnum):
    """What a node taint does to pods that do not tolerate it."""

    NO_SCHEDULE = "NoSchedule"
    NO_EXECUTE = "NoExecute"


class NodeTaint(ApiModel):
    """Taint the nodes the chosen pods run on with a key of this run's own, for fault.duration."""

    effect: TaintEffect = Field(
        default=TaintEffect.NO_SCHEDULE,
        description="NoSchedule (default): no new pods land on the nodes; NoExecute: the pods already"
        " there are evicted too (by Kubernetes' taint manager, which does not consult"
        " PodDisruptionBudgets: aftershock checks them before tainting).",
    )


class PartitionDirection(StrEnum):
    """Which traffic of the target pods a network partition cuts."""

    INGRESS = "Ingress"
    EGRESS = "Egress"
    BOTH = "Both"


class NetworkPartition(ApiModel):
    """Isolate the target pods with a NetworkPolicy that allows nothing, for fault.duration."""

    direction: PartitionDirection = Field(
        default=PartitionDirection.BOTH,
        description="Ingress, Egress or Both (default): the traffic directions that are cut.",
    )


def _litmus_rules() -> list[CelRule]:
    """Every rule on fault.litmus, generated from the catalog in api/litmus_catalog.py."""
    reserved = [*litmus.MANAGED_ENV, *litmus.RUNNER_ENV]
    rules = [
        CelRule(
            rule="!has(self.env) || !self.env.exists(k, k in ["
            + ", ".join(f"'{k}'" for k in reserved)
            + "])",
            message="litmus.env must not set "
            + ", ".join(reserved)
            + ": aftershock sets the duration and the targets (from fault.duration and target), Litmus the rest",
        ),
        CelRule(
            rule="!has(self.env) || !self.env.exists(k, k in ["
            + ", ".join(f"'{k}'" for k in litmus.WITHHELD)
            + "])",
            message="litmus.env must not set "
            + ", ".join(litmus.WITHHELD)
            + ": they choose images, commands or machines, which no ChaosPolicy reviews; the ChaosHub's"
            " defaults stay in force (docs/litmus-catalogue.md)",
        ),
    ]
    for spec in litmus.CATALOG.values():
        allowed = [p.name for p in spec.params] + reserved + list(litmus.WITHHELD)
        rules.append(
            CelRule(
                rule=f"self.experiment != '{spec.name}' || !has(self.env) || self.env.all(k, k in ["
                + ", ".join(f"'{k}'" for k in allowed)
                + "])",
                message=litmus.allowed_keys_message(spec),
            )
        )
    for name, p in sorted(litmus.param_kinds().items()):
        present = f"!has(self.env) || !('{name}' in self.env) || "
        rules.append(
            CelRule(
                rule=present + f"self.env['{name}'].matches(r'{p.pattern}')",
                message=litmus.value_message(p),
            )
        )
        if p.bounded:
            value = f"int(self.env['{name}'])"
            bounds = [f"{value} >= {p.minimum or 0}"]
            if p.maximum is not None:
                bounds.append(f"{value} <= {p.maximum}")
            rules.append(
                CelRule(
                    rule=present
                    + f"!self.env['{name}'].matches(r'{p.pattern}') || ("
                    + " && ".join(bounds)
                    + ")",
                    message=litmus.value_message(p),
                )
            )
    return rules


LITMUS_ACCOUNT_RULE: Final = CelRule(
    rule="has(self.chaosServiceAccount) != (has(self.provisionServiceAccount) && self.provisionServiceAccount)",
    message="litmus needs exactly one of chaosServiceAccount (an existing ServiceAccount) or"
    " provisionServiceAccount: true (aftershock creates it)",
)
LITMUS_PROVISION_RULE: Final = CelRule(
    rule="!(has(self.provisionServiceAccount) && self.provisionServiceAccount) || !(self.experiment in ["
    + ", ".join(f"'{e.name}'" for e in litmus.CATALOG.values() if e.scope is litmus.Scope.NODE)
    + "])",
    message="provisionServiceAccount works for pod experiments only: node experiments need cluster-wide"
    " permissions, which aftershock never grants; give a chaosServiceAccount bound to a ClusterRole",
)
LITMUS_RULES: Final = [LITMUS_ACCOUNT_RULE, LITMUS_PROVISION_RULE, *_litmus_rules()]


class LitmusCleanup(StrEnum):
    """What Litmus does with its experiment Job when it is done."""

    DELETE = "delete"
    RETAIN = "retain"


class LitmusFault(ApiModel):
    """Run a LitmusChaos 3.x experiment through a ChaosEngine. Litmus must be installed, and its
    ChaosExperiment of that name must exist in the target namespace."""

    model_config = ConfigDict(json_schema_extra=validations(*LITMUS_RULES))

    experiment: str = Field(
        json_schema_extra={"enum": list(litmus.EXPERIMENTS)},
        description="The Litmus experiment: " + ", ".join(litmus.EXPERIMENTS) + ".",
    )
    env: dict[str, Annotated[str, Field(max_length=1024)]] = Field(
        default_factory=dict,
        max_length=32,
        description='The experiment\'s parameters (e.g. NETWORK_LATENCY: "300"), checked per experiment:'
        " at most 32, each value at most 1024 characters. The duration and the targets are set by"
        " aftershock from fault.duration and target.",
    )
    chaos_service_account: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="The ServiceAccount Litmus runs the experiment as, in the target namespace; it needs"
        " the permissions the experiment lists (see docs/litmus.md), and the author must be allowed to"
        " impersonate it. Or set provisionServiceAccount.",
    )
    provision_service_account: bool = Field(
        default=False,
        description="Let aftershock create the ServiceAccount, Role and RoleBinding the experiment needs"
        " (aftershock-litmus-<experiment>, in the target namespace; pod experiments only). The operator"
        " must be allowed to (Helm: litmus.provisionRBAC), and so must the experiment's author.",
    )
    probes: list[dict[str, Any]] = Field(
        default_factory=list,
        max_length=16,
        description="Litmus probes (httpProbe, promProbe; cmdProbe and k8sProbe only where every ChaosPolicy"
        " lists them in litmus.allowedProbeTypes and the author could do what they do), at most 16, passed"
        " into the ChaosEngine's spec.experiments[0].spec.probe; Litmus validates and runs them. Their"
        " outcome is Litmus's probeSuccessPercentage, and failed probes make a Fail verdict.",
    )
    job_clean_up_policy: LitmusCleanup = Field(
        default=LitmusCleanup.DELETE,
        description="delete (default) or retain Litmus's experiment Job afterwards.",
    )

    @model_validator(mode="after")
    def _check(self) -> LitmusFault:
        if self.experiment not in litmus.CATALOG:
            raise ValueError(litmus.env_problems(self.experiment, {})[0])
        if (self.chaos_service_account is not None) == self.provision_service_account:
            raise ValueError(LITMUS_ACCOUNT_RULE.error())
        if self.provision_service_account and not litmus.can_provision(self.experiment):
            raise ValueError(LITMUS_PROVISION_RULE.error())
        problems = litmus.env_problems(self.experiment, self.env)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def catalog(self) -> litmus.Experiment:
        return litmus.CATALOG[self.experiment]

    @property
    def service_account(self) -> str:
        """The ServiceAccount Litmus runs as: the given one, or the one aftershock provisions."""
        return self.chaos_service_account or litmus.provisioned_name(self.experiment)


SUSTAINED_FAULT_KINDS: Final = ("networkPartition", "litmus", "toxiproxy", "nodeDrain", "nodeTaint")
"""Faults held for fault.duration (by aftershock, or by Litmus); they need a duration."""

SUSTAINED_DURATION_RULE: Final = CelRule(
    rule="!(" + " || ".join(f"has(self.{k})" for k in SUSTAINED_FAULT_KINDS) + ") || has(self.duration)",
    message="fault.duration is required for sustained faults (" + ", ".join(SUSTAINED_FAULT_KINDS) + ")",
)


def _fault_schema_extra(schema: dict[str, Any]) -> None:
    schema.update(validations(fault_one_of_rule(), SUSTAINED_DURATION_RULE))


class Fault(ApiModel):
    """The fault to inject: settings plus exactly one fault kind (a one-of, like volume sources).

    Every field except those in ``SETTINGS`` is a fault kind, so a new kind is one more optional
    field here; FAULT_KINDS, the Python check and the CEL rule all follow from the fields.
    """

    SETTINGS: ClassVar[frozenset[str]] = frozenset({"duration"})

    model_config = ConfigDict(json_schema_extra=_fault_schema_extra)

    duration: Duration | None = Field(
        default=None,
        description="How long a sustained fault is held before it is reverted, e.g. 60s or 5m; at most"
        " 24h (a ChaosPolicy's maxDuration may cap it further). Ignored by one-shot faults such as podDelete.",
        json_schema_extra=validations(FAULT_DURATION_RULE),
    )
    pod_delete: PodDelete | None = Field(default=None, description="Delete the target pods.")
    network_partition: NetworkPartition | None = Field(
        default=None,
        description="Cut the target pods off the network with a NetworkPolicy for fault.duration"
        " (requires a network plugin that enforces NetworkPolicy).",
    )
    litmus: LitmusFault | None = Field(
        default=None,
        description="Run a LitmusChaos 3.x experiment on the targets for fault.duration.",
    )
    toxiproxy: ToxiproxyFault | None = Field(
        default=None,
        description="Degrade a dependency of the targets for fault.duration: toxics on an existing"
        " Toxiproxy proxy (latency, timeouts, resets, bandwidth), removed afterwards.",
    )
    node_drain: NodeDrain | None = Field(
        default=None,
        description="Cordon the nodes the chosen pods run on and evict their pods (Eviction API), for"
        " fault.duration; a node fault: a ChaosPolicy must list nodeDrain.",
    )
    node_taint: NodeTaint | None = Field(
        default=None,
        description="Taint the nodes the chosen pods run on (NoSchedule or NoExecute) for"
        " fault.duration; a node fault: a ChaosPolicy must list nodeTaint.",
    )

    @property
    def duration_delta(self) -> timedelta | None:
        return optional_delta(self.duration)

    @property
    def kind(self) -> str:
        """The wire name of the fault kind that is set, e.g. ``podDelete``."""
        return next(alias for alias, attr in _FAULT_FIELDS.items() if getattr(self, attr) is not None)

    @property
    def policy_kind(self) -> str:
        """The kind a ChaosPolicy's allowedFaults names: Litmus node experiments are litmusNode."""
        if self.litmus is not None and self.litmus.catalog.scope is litmus.Scope.NODE:
            return "litmusNode"
        return self.kind

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> Fault:
        if sum(getattr(self, attr) is not None for attr in _FAULT_FIELDS.values()) != 1:
            raise ValueError(fault_one_of_rule().error())
        if self.kind in SUSTAINED_FAULT_KINDS and self.duration is None:
            raise ValueError(SUSTAINED_DURATION_RULE.error())
        _check_max_duration(FAULT_DURATION_RULE, self.duration)
        return self


_FAULT_FIELDS: Final = {
    field.alias or name: name for name, field in Fault.model_fields.items() if name not in Fault.SETTINGS
}
FAULT_KINDS: Final = tuple(_FAULT_FIELDS)
"""The fault kinds this build can run, by wire name (``podDelete``, ...)."""


def fault_one_of_rule() -> CelRule:
    """The one-of rule for Fault, built from FAULT_KINDS."""
    count = " + ".join(f"(has(self.{kind}) ? 1 : 0)" for kind in FAULT_KINDS)
    return CelRule(
        rule=f"{count} == 1",
        message=f"fault must set exactly one fault kind, one of: {', '.join(FAULT_KINDS)}",
    )


class Recovery(ApiModel):
    """How recovery is judged: how fast it should be, and when to give up."""

    model_config = ConfigDict(json_schema_extra=validations(RECOVERY_RULE))

    objective: Duration = Field(
        default=_DEFAULT_OBJECTIVE,
        description="Recovery time objective, e.g. 30s. Recovering slower is a medium-severity finding.",
    )
    timeout: Duration = Field(
        default=_DEFAULT_TIMEOUT,
        description="If the target has not recovered after this long, the run fails with a"
        " high-severity finding. Must not be shorter than objective; at most 24h.",
        json_schema_extra=validations(RECOVERY_TIMEOUT_RULE),
    )

    @property
    def objective_delta(self) -> timedelta:
        return parse_duration(self.objective)

    @property
    def timeout_delta(self) -> timedelta:
        return parse_duration(self.timeout)

    @model_validator(mode="after")
    def _objective_within_timeout(self) -> Recovery:
        _check_max_duration(RECOVERY_TIMEOUT_RULE, self.timeout)
        if self.objective_delta > self.timeout_delta:
            raise ValueError(RECOVERY_RULE.error(objective=self.objective, timeout=self.timeout))
        return self


class ChaosExperimentSpec(ApiModel):
    """What to break, when, and how to judge recovery."""

    schedule: str | None = Field(
        default=None,
        max_length=128,
        description='When to run: a 5-field cron expression such as "*/30 9-17 * * 1-5", or @hourly,'
        " @daily, @weekly, @monthly, @yearly. Omitted: the experiment runs once.",
        json_schema_extra=validations(SCHEDULE_RULE),
    )
    time_zone: str = Field(
        default="UTC",
        max_length=64,
        description="IANA time zone the schedule is read in, e.g. Europe/Berlin.",
        json_schema_extra=validations(TIME_ZONE_RULE),
    )
    suspend: bool = Field(
        default=False,
        description="Stop scheduling new runs; active runs are not affected.",
    )
    concurrency_policy: ConcurrencyPolicy = Field(
        default=ConcurrencyPolicy.FORBID,
        description="When a run is due while another is active: Forbid skips the new one, Allow runs"
        " both, Replace aborts the active run first.",
    )
    starting_deadline: Duration | None = Field(
        default=None,
        description="A scheduled slot missed by more than this (e.g. while the operator was down) is"
        " recorded as a Skipped run instead of started late; at most 24h.",
        json_schema_extra=validations(STARTING_DEADLINE_RULE),
    )
    successful_runs_history_limit: int = Field(
        default=5,
        ge=0,
        le=MAX_HISTORY_LIMIT,
        description="How many finished runs that passed to keep, 0 to 100.",
    )
    failed_runs_history_limit: int = Field(
        default=10,
        ge=0,
        le=MAX_HISTORY_LIMIT,
        description="How many finished runs that did not pass to keep, 0 to 100.",
    )
    dry_run: bool = Field(
        default=False,
        description="Resolve and record the targets, check the policy, but inject nothing.",
    )
    target: Target = Field(description="What the fault may touch.")
    fault: Fault = Field(description="The fault to inject: exactly one fault kind, plus its settings.")
    recovery: Recovery = Field(
        default_factory=Recovery,
        description="How recovery is judged.",
        # Spelled out, not {}: the apiserver checks CEL rules against the default as written.
        json_schema_extra={"default": {"objective": _DEFAULT_OBJECTIVE, "timeout": _DEFAULT_TIMEOUT}},
    )
    steady_state: SteadyState | None = Field(
        default=None,
        description="The steady-state hypothesis: probes of the service that must hold before injecting"
        " (else the run is Skipped), are checked every interval during the fault (abortAfter consecutive"
        " failures abort it) and once after recovery.",
    )
    gate: Gate | None = Field(
        default=None,
        description="Error-budget gate, checked before each run: while its Prometheus query is out of"
        " bounds, the run is Skipped (ErrorBudgetExhausted) and nothing is injected.",
    )
    analysis: Analysis | None = Field(
        default=None,
        description="How the system degraded, from Prometheus queries with a baseline taken before"
        " injecting: retry storms, missing backpressure, missing timeouts (each a high finding).",
    )

    @property
    def starting_deadline_delta(self) -> timedelta | None:
        return optional_delta(self.starting_deadline)

    @model_validator(mode="after")
    def _check(self) -> ChaosExperimentSpec:
        if self.schedule is not None and not matches(SCHEDULE_PATTERN, self.schedule):
            raise ValueError(SCHEDULE_RULE.error())
        if not matches(TIME_ZONE_PATTERN, self.time_zone):
            raise ValueError(TIME_ZONE_RULE.error())
        _check_max_duration(STARTING_DEADLINE_RULE, self.starting_deadline)
        return self


class RunReference(ApiModel):
    """A run of this experiment that has not finished yet."""

    name: str = Field(description="Name of the ChaosRun.")


class LastRun(ApiModel):
    """The most recently finished run."""

    name: str = Field(description="Name of the ChaosRun.")
    phase: RunPhase | None = Field(default=None, description="Its final phase.")
    verdict: Verdict | None = Field(
        default=None, description="Passed or Failed; only set for Completed runs."
    )
    severity: Severity | None = Field(default=None, description="The worst severity among its findings.")
    recovery_seconds: float | None = Field(
        default=None, description="Seconds from injection until the targets had recovered."
    )
    completion_time: AwareDatetime | None = Field(default=None, description="When it finished.")


class RecoveryStats(ApiModel):
    """Recovery time percentiles over the runs that recovered."""

    p50: float | None = Field(default=None, description="Median recovery time in seconds.")
    p95: float | None = Field(default=None, description="95th percentile recovery time in seconds.")
    max: float | None = Field(default=None, description="Slowest recovery time in seconds.")


class RunSummary(ApiModel):
    """Totals over the runs of this experiment that the operator has seen finish."""

    runs: int = Field(default=0, ge=0, description="Finished runs.")
    passed: int = Field(default=0, ge=0, description="Completed runs with verdict Passed.")
    failed: int = Field(default=0, ge=0, description="Completed runs with verdict Failed.")
    errored: int = Field(default=0, ge=0, description="Runs that could not carry out the chaos (Errored).")
    worst_severity: Severity | None = Field(default=None, description="The worst severity seen so far.")
    recovery_seconds: RecoveryStats | None = Field(default=None, description="Recovery time statistics.")


class RetiredHistory(ApiModel):
    """Totals of runs already removed by the history limits, so the summary outlives them."""

    runs: int = Field(default=0, ge=0, description="Finished runs that were garbage-collected.")
    passed: int = Field(default=0, ge=0, description="Of those, Completed with verdict Passed.")
    failed: int = Field(default=0, ge=0, description="Of those, Completed with verdict Failed.")
    errored: int = Field(default=0, ge=0, description="Of those, Errored.")
    worst_severity: Severity | None = Field(default=None, description="The worst severity among them.")
    recovery_samples: list[float] = Field(
        default_factory=list,
        max_length=200,
        description="Recovery times of the most recent of them, for the summary's percentiles.",
    )
    folded_runs: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Names of the most recently retired runs (so a run is never counted twice).",
        json_schema_extra={"items": {"type": "string", "maxLength": 253}},
    )


class ChaosExperimentStatus(ApiModel):
    """The observed state of the experiment, written by the operator."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this status was computed from."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Reconciling, Stalled and Suspended conditions.",
        json_schema_extra=CONDITIONS_LIST_SCHEMA,
    )
    last_schedule_time: AwareDatetime | None = Field(
        default=None, description="The scheduled time of the most recent run."
    )
    next_schedule_time: AwareDatetime | None = Field(
        default=None, description="When the next run is due; absent when suspended or not scheduled."
    )
    last_successful_time: AwareDatetime | None = Field(
        default=None, description="When a run last completed with verdict Passed."
    )
    active: list[RunReference] = Field(default_factory=list, description="Runs that have not finished yet.")
    last_run: LastRun | None = Field(default=None, description="The most recently finished run.")
    summary: RunSummary | None = Field(default=None, description="Totals over finished runs.")
    history: RetiredHistory | None = Field(
        default=None, description="Totals of finished runs already removed by the history limits."
    )


class ChaosExperiment(ResourceModel):
    """ChaosExperiment declares a fault to inject into matching workloads, on a schedule or once,
    and how to judge their recovery. Each execution is a ChaosRun."""

    KIND: ClassVar[str] = "ChaosExperiment"
    PLURAL: ClassVar[str] = "chaosexperiments"
    SINGULAR: ClassVar[str] = "chaosexperiment"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("cexp",)
    NAMESPACED: ClassVar[bool] = True

    model_config = ConfigDict(json_schema_extra=validations(NAME_RULE))

    kind: str = Field(default="ChaosExperiment", description="The kind of this object.")
    spec: ChaosExperimentSpec = Field(description="What to break, when, and how to judge recovery.")
    status: ChaosExperimentStatus = Field(
        default_factory=ChaosExperimentStatus, description="Observed state, written by the operator."
    )

    @model_validator(mode="after")
    def _name_fits_run_names(self) -> ChaosExperiment:
        name = self.metadata.get("name")
        if isinstance(name, str) and len(name) > MAX_NAME_LENGTH:
            raise ValueError(NAME_RULE.error())
        return self

    def status_patch(self) -> dict[str, Any]:
        """The status as a JSON-ready dict for a status patch (camelCase, None values left out)."""
        return self.status.to_json()
