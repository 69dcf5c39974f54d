"""ChaosRun: one execution of an experiment, and the journal of what it did.

The spec is a frozen copy of the experiment taken when the run was created, so a later edit of
the experiment never changes what a run in flight touches. The schema enforces the freeze with
transition rules (a field, once set, cannot change or be removed); a person may still create a run
with only ``spec.experiment`` and let the operator fill in the rest once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Final

from pydantic import AwareDatetime, ConfigDict, Field

from aftershock.api.analysis import Analysis
from aftershock.api.cel import CelRule, validations
from aftershock.api.common import (
    CONDITIONS_LIST_SCHEMA,
    DNS_SUBDOMAIN_PATTERN,
    ApiModel,
    Condition,
    Finding,
    ResourceModel,
    RunPhase,
    Severity,
    Verdict,
)
from aftershock.api.experiment import MAX_NAME_LENGTH, ChaosExperimentSpec, Fault, Recovery, Target
from aftershock.api.steady_state import Gate, SteadyState

FROZEN_FIELDS: Final = (
    "experiment",
    "scheduledTime",
    "target",
    "fault",
    "recovery",
    "dryRun",
    "steadyState",
    "gate",
    "analysis",
)
"""Spec fields (wire names) that cannot change once set."""

IMMUTABLE_RULE: Final = CelRule(
    rule="self == oldSelf",
    message="a ChaosRun spec is frozen: this field cannot be changed once set; create a new ChaosRun instead",
)
NO_REMOVAL_RULE: Final = CelRule(
    rule=" && ".join(f"(!has(oldSelf.{name}) || has(self.{name}))" for name in FROZEN_FIELDS),
    message="a ChaosRun spec is frozen: fields cannot be removed once set",
)


def _frozen(**extra: Any) -> dict[str, Any]:
    return {**validations(IMMUTABLE_RULE), **extra}


class ChaosRunSpec(ApiModel):
    """What this run does: a frozen copy of its experiment's target, fault and recovery."""

    model_config = ConfigDict(json_schema_extra=validations(NO_REMOVAL_RULE))

    experiment: str = Field(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="Name of the ChaosExperiment (in the same namespace) this run executes; like every"
        f" experiment name, at most {MAX_NAME_LENGTH} characters (it is also a label value).",
        json_schema_extra=_frozen(),
    )
    scheduled_time: AwareDatetime | None = Field(
        default=None,
        description="The schedule slot this run is for (RFC 3339); set by the operator for a run created"
        " by hand.",
        json_schema_extra=_frozen(),
    )
    target: Target | None = Field(
        default=None,
        description="What the fault may touch; copied from the experiment when omitted.",
        json_schema_extra=_frozen(),
    )
    fault: Fault | None = Field(
        default=None,
        description="The fault to inject; copied from the experiment when omitted.",
        json_schema_extra=_frozen(),
    )
    recovery: Recovery | None = Field(
        default=None,
        description="How recovery is judged; copied from the experiment when omitted.",
        json_schema_extra=_frozen(),
    )
    dry_run: bool | None = Field(
        default=None,
        description="Resolve and record the targets, inject nothing; copied from the experiment when omitted.",
        json_schema_extra=_frozen(),
    )
    steady_state: SteadyState | None = Field(
        default=None,
        description="The steady-state hypothesis; copied from the experiment when the spec is filled in.",
        json_schema_extra=_frozen(),
    )
    gate: Gate | None = Field(
        default=None,
        description="The error-budget gate; copied from the experiment when the spec is filled in.",
        json_schema_extra=_frozen(),
    )
    analysis: Analysis | None = Field(
        default=None,
        description="The degradation analysis; copied from the experiment when the spec is filled in.",
        json_schema_extra=_frozen(),
    )

    @classmethod
    def from_experiment(
        cls, experiment: str, spec: ChaosExperimentSpec, scheduled_time: datetime
    ) -> ChaosRunSpec:
        """The frozen copy of an experiment's spec for one slot (deep copies, not shared objects)."""
        return cls(
            experiment=experiment,
            scheduled_time=scheduled_time,
            target=spec.target.model_copy(deep=True),
            fault=spec.fault.model_copy(deep=True),
            recovery=spec.recovery.model_copy(deep=True),
            dry_run=spec.dry_run,
            steady_state=spec.steady_state.model_copy(deep=True) if spec.steady_state else None,
            gate=spec.gate.model_copy(deep=True) if spec.gate else None,
            analysis=spec.analysis.model_copy(deep=True) if spec.analysis else None,
        )

    def is_complete(self) -> bool:
        """Whether the operator still has to fill the spec in from the experiment."""
        return all(
            value is not None
            for value in (self.scheduled_time, self.target, self.fault, self.recovery, self.dry_run)
        )


class TargetRecord(ApiModel):
    """One object the run acted on, with the times of what happened to it."""

    kind: str = Field(description="Kind of the object, e.g. Pod.")
    name: str = Field(description="Name of the object.")
    namespace: str | None = Field(default=None, description="Namespace of the object; absent for nodes.")
    uid: str | None = Field(default=None, description="UID of the object, to tell it from a replacement.")
    injected_at: AwareDatetime | None = Field(default=None, description="When the fault was applied to it.")
    unhealthy_at: AwareDatetime | None = Field(default=None, description="When it was first seen unhealthy.")
    recovered_at: AwareDatetime | None = Field(
        default=None, description="When it was seen healthy again (a node: when it was schedulable again)."
    )
    prior_unschedulable: bool | None = Field(
        default=None,
        description="For a node: whether it was already cordoned before the run (recorded before it was"
        " touched; such a node is left cordoned when the fault is reverted).",
    )


MAX_DISPLACED: Final = 1000
"""The most pods one node fault may put off its nodes (recorded, one by one, before injecting)."""


class DisplacedPod(ApiModel):
    """A pod a node fault evicts, recorded before the fault is injected."""

    namespace: str = Field(max_length=63, description="Namespace of the pod.")
    name: str = Field(max_length=253, description="Name of the pod.")
    uid: str = Field(max_length=64, description="UID of the pod (a replacement is never touched).")
    node: str = Field(max_length=253, description="The node it ran on.")
    owner: str = Field(
        max_length=320, description="Its workload, e.g. Deployment shop/checkout (what must replace it)."
    )
    collateral: bool = Field(
        default=False, description="Not a pod of the run's target workload: someone else's."
    )


class CollateralRecovery(ApiModel):
    """How a workload that was not the target, but lost pods to a node fault, recovered."""

    workload: str = Field(max_length=320, description="The workload, e.g. Deployment web/frontend.")
    pods: int = Field(ge=0, description="How many of its pods the fault evicted.")
    recovered: bool = Field(description="Whether it was back at its desired Ready count in time.")
    recovery_seconds: float | None = Field(
        default=None, description="Seconds from injection until it was back at its desired Ready count."
    )
    observed: str | None = Field(
        default=None, max_length=512, description="What was seen last, e.g. 2/3 pods Ready (1 Pending)."
    )


class EngineRecord(ApiModel):
    """What the fault's engine reported for this run, in one shape for every engine. Kept here
    because the engine's own objects (a Litmus ChaosEngine and its ChaosResult) are removed when
    the run is done."""

    name: str = Field(max_length=63, description="The engine, by fault kind: e.g. litmus.")
    object: str | None = Field(
        default=None,
        max_length=253,
        description="Name of the engine's own object for this run, e.g. the Litmus ChaosEngine.",
    )
    verdict: str | None = Field(
        default=None,
        max_length=64,
        description="The engine's verdict in its own words (Litmus: Pass, Fail, Error or Stopped).",
    )
    phase: str | None = Field(
        default=None, max_length=64, description="The engine's phase (Litmus: the ChaosResult's phase)."
    )
    details: dict[str, Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict,
        max_length=16,
        description="More of what the engine reported, by name (Litmus: result, the ChaosResult's name;"
        " probeSuccessPercentage; errorOutput, Litmus's error code and reason).",
    )
    finished_at: AwareDatetime | None = Field(default=None, description="When the engine was seen finished.")


class ProbeStatus(ApiModel):
    """One steady-state probe's record for the run: what it answered before, during and after."""

    name: str = Field(max_length=63, description="The probe's name.")
    type: str = Field(max_length=16, description="http, prometheus or kubernetes.")
    before: str | None = Field(
        default=None, max_length=16, description="Held or Failed: the check before injecting."
    )
    after: str | None = Field(
        default=None, max_length=16, description="Held or Failed: the check after recovery."
    )
    samples: int = Field(default=0, ge=0, description="Checks while the fault was in place.")
    failures: int = Field(default=0, ge=0, description="Of those, how many failed.")
    success_ratio: float | None = Field(
        default=None, ge=0, le=1, description="Share of the checks during the fault that held."
    )
    first_failure: AwareDatetime | None = Field(default=None, description="When it first failed.")
    last_failure: AwareDatetime | None = Field(default=None, description="When it last failed.")
    last_answer: str | None = Field(
        default=None, max_length=512, description="Its latest answer, e.g. HTTP 503 in 12 ms."
    )
    latency_p50_ms: float | None = Field(
        default=None, description="HTTP: median answer time during the fault."
    )
    latency_p95_ms: float | None = Field(
        default=None, description="HTTP: 95th percentile answer time during the fault."
    )


class AnalysisRecord(ApiModel):
    """One analysis query over the run: its baseline, its peak during the fault, what it meant."""

    name: str = Field(max_length=32, description="retryStorm, backpressure or latency.")
    baseline: float | None = Field(default=None, description="Its value right before injecting.")
    peak: float | None = Field(default=None, description="Its largest value during the fault.")
    peak_time: AwareDatetime | None = Field(default=None, description="When the peak was seen.")
    samples: int = Field(default=0, ge=0, description="Samples taken during the fault.")
    amplification: float | None = Field(default=None, description="retryStorm: peak ÷ baseline.")
    finding: str | None = Field(default=None, max_length=64, description="The finding it led to, if any.")
    error: str | None = Field(default=None, max_length=512, description="Why it could not be read, if so.")


class ChaosRunStatus(ApiModel):
    """The run's journal, written by the operator before each side effect."""

    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this status was computed from."
    )
    phase: RunPhase = Field(
        default=RunPhase.PENDING,
        description="Pending, Injecting, Observing, Reverting, then Completed, Aborted, Skipped or Errored.",
    )
    reason: str | None = Field(default=None, description="A CamelCase word for why the run is in its phase.")
    message: str | None = Field(default=None, description="A human-readable explanation of the phase.")
    start_time: AwareDatetime | None = Field(default=None, description="When the run started injecting.")
    deadline: AwareDatetime | None = Field(
        default=None,
        description="When the run must be finished; past it, the fault is reverted and the run ends.",
    )
    completion_time: AwareDatetime | None = Field(default=None, description="When the run finished.")
    claimed_by: str | None = Field(
        default=None,
        max_length=253,
        description="Identity of the operator process driving this run; written with a"
        " resourceVersion precondition before injecting, so two operators never inject the same run.",
    )
    claim_lease: str | None = Field(
        default=None,
        max_length=317,
        description="namespace/name of the claimant's Lease: while it is renewed the claim holds;"
        " an operator that cannot read it never takes the run over.",
    )
    heartbeat_time: AwareDatetime | None = Field(
        default=None,
        description="When the current claimant took the run. Liveness is the claimant's own Lease"
        " (one per operator process, renewed every few seconds): when it lapses, another operator"
        " takes the run over.",
    )
    reverted_at: AwareDatetime | None = Field(
        default=None, description="When a sustained fault was reverted (recovery is measured from here)."
    )
    targets: list[TargetRecord] = Field(
        default_factory=list, description="The objects the run acted on, recorded before acting."
    )
    recovery_seconds: float | None = Field(
        default=None, description="Seconds from injection until all targets had recovered."
    )
    engine: EngineRecord | None = Field(
        default=None, description="What the fault's engine reported (engines that report, e.g. litmus)."
    )
    displaced: list[DisplacedPod] = Field(
        default_factory=list,
        max_length=MAX_DISPLACED,
        description="Node faults: every pod the fault evicts, the target's and everyone else's"
        " (collateral), recorded before anything is touched.",
    )
    collateral: list[CollateralRecovery] = Field(
        default_factory=list,
        max_length=MAX_DISPLACED,
        description="Node faults: how the other workloads that lost pods recovered.",
    )
    probes: list[ProbeStatus] = Field(
        default_factory=list,
        max_length=16,
        description="The steady-state probes: before, during (samples, failures, latency) and after.",
    )
    analysis: list[AnalysisRecord] = Field(
        default_factory=list,
        max_length=3,
        description="How the system degraded (spec.analysis): baselines, peaks and findings.",
    )
    probe_summary: str | None = Field(
        default=None,
        max_length=64,
        description="The probes in a few words for kubectl get, e.g. 3/3 held or 1/3 failed.",
    )
    verdict: Verdict | None = Field(
        default=None,
        description="Passed or Failed; only for Completed runs (Passed when severity is none or low).",
    )
    severity: Severity | None = Field(default=None, description="The worst severity among the findings.")
    findings: list[Finding] = Field(
        default_factory=list, description="What the run found, rated by severity."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Standard conditions (Ready, Reconciling, Stalled).",
        json_schema_extra=CONDITIONS_LIST_SCHEMA,
    )


class ChaosRun(ResourceModel):
    """ChaosRun is one execution of a ChaosExperiment: a frozen copy of what to do, and a journal of
    what was done, how the targets recovered, and the findings."""

    KIND: ClassVar[str] = "ChaosRun"
    PLURAL: ClassVar[str] = "chaosruns"
    SINGULAR: ClassVar[str] = "chaosrun"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("crun",)
    NAMESPACED: ClassVar[bool] = True

    kind: str = Field(default="ChaosRun", description="The kind of this object.")
    spec: ChaosRunSpec = Field(description="What this run does, frozen when it was created.")
    status: ChaosRunStatus = Field(
        default_factory=ChaosRunStatus, description="The run's journal, written by the operator."
    )

    def status_patch(self) -> dict[str, Any]:
        """The status as a JSON-ready dict for a status patch (camelCase, None values left out)."""
        return self.status.to_json()
