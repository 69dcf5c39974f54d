"""Drives one ChaosRun through its phases.

Every phase is written to the run's status *before* its side effect (the journal), with a
resourceVersion precondition, so a crashed or competing operator resumes from the journal instead
of repeating work: targets are recorded before they are touched, and a target that already has
`injectedAt` is never injected again.

Ownership: the Pending → Injecting write carries `claimedBy` (this operator's identity) under a
resourceVersion precondition, so of two operators exactly one claims a run; the other only
watches. The claimant renews `heartbeatTime`; when it stops (crash, eviction) for longer than the
lease, another operator — or the same one restarted — takes the run over, again under a
precondition. Past `status.deadline` a run is reverted and closed whoever finds it.

Decisions (which targets, how bad) come from `core`; all I/O goes through `kube.Kube`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aftershock import failpoints
from aftershock.api.common import Finding, RunPhase, Severity, Verdict, worst
from aftershock.api.durations import parse_duration
from aftershock.api.experiment import ChaosExperiment
from aftershock.api.run import ChaosRun, ChaosRunSpec, ChaosRunStatus, TargetRecord
from aftershock.core import litmus as core_litmus
from aftershock.core import policy as core_policy
from aftershock.core import recovery as core_recovery
from aftershock.core.safety import effective_target_namespace
from aftershock.core.selectors import is_empty
from aftershock.core.severity import Finding as CoreFinding
from aftershock.core.severity import RecoveryObservation, assess, format_seconds
from aftershock.core.targets import TargetSelectionError, select_targets
from aftershock.core.times import parse_time
from aftershock.core.watch_scope import Scope
from aftershock.engines.base import EngineError, FaultEngine, InjectContext, Note
from aftershock.engines.litmus import LitmusEngine
from aftershock.engines.network_partition import NetworkPartitionEngine
from aftershock.engines.pod_delete import PodDeleteEngine
from aftershock.engines.policy_gate import Policies, check_before_injecting, pdbs_for
from aftershock.engines.workloads import (
    Workload,
    find_workloads,
    is_ready,
    owner_uids,
    pod_states,
    pods_of,
    why_not_ready,
)
from aftershock.kube import Conflict, Kube, NotFound, Obj, forbidden, now
from aftershock.metrics import ACTIVE_FAULTS, DETECTION_LAG, INJECTIONS, RECOVERY, RUNS

log = logging.getLogger(__name__)

ENGINES: dict[str, FaultEngine] = {
    "podDelete": PodDeleteEngine(),
    "networkPartition": NetworkPartitionEngine(),
    "litmus": LitmusEngine(),
}
REVERT_PATIENCE = dt.timedelta(seconds=20)


def deadline_grace(timeout: dt.timedelta) -> dt.timedelta:
    """Slack after fault.duration + recovery.timeout before the dead-man's switch fires: half the
    timeout, at least 5 s and at most a minute."""
    return min(dt.timedelta(minutes=1), max(dt.timedelta(seconds=5), timeout / 2))


LEASE = dt.timedelta(seconds=15)
HEARTBEAT = dt.timedelta(seconds=5)
WORKLOAD_REFRESH = dt.timedelta(seconds=3)
WARNING_PHASES = {RunPhase.ERRORED, RunPhase.ABORTED}
SKIP_REASON_ANNOTATION = "aftershock.dev/skip-reason"
SKIP_MESSAGE_ANNOTATION = "aftershock.dev/skip-message"


@dataclass
class Stop:
    """How the daemon around the driver asks it to stop.

    `deleted()` — the run is being deleted: abort and revert. `exiting()` — the operator is
    shutting down: leave the journal as it is, a later operator resumes it.
    """

    deleted: Callable[[], bool]
    exiting: Callable[[], bool]
    wait: Callable[[float], object]


class Abort(Exception):
    """The run cannot proceed; it ends Errored with this reason (nothing more is injected)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class LostClaim(Exception):
    """Another operator took the run over; this one stops driving it."""


class RunDriver:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        *,
        identity: str = "aftershock",
        operator_namespace: str | None = None,
        poll_seconds: float = 0.25,
        clock: Callable[[], dt.datetime] = now,
        on_change: Callable[[str], None] | None = None,
        suspended: Callable[[], str | None] = lambda: None,
        scope: Scope = None,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.operator_namespace = operator_namespace
        self.poll = poll_seconds
        self.now = clock
        self._last_heartbeat: dt.datetime | None = None
        self.on_change = on_change  # told the experiment's name when a run starts or ends
        self.suspended = suspended  # the kill switch: a sentence while any ChaosPolicy is suspended
        self.scope = scope  # the namespaces this operator watches (concurrency is counted there)

    # --- the loop ------------------------------------------------------------------------

    def drive(self, stop: Stop) -> None:
        """Advance the run one journaled step at a time until it is terminal or we must stop."""
        while True:
            try:
                obj = self.kube.get("ChaosRun", self.namespace, self.name)
            except NotFound:
                return
            run = ChaosRun.from_body(obj)
            raw_phase = _phase_of(obj)
            phase = RunPhase(raw_phase) if raw_phase else None
            if phase is not None and phase.is_terminal:
                return
            if obj["metadata"].get("deletionTimestamp") or stop.deleted():
                self.abort(obj, run, "Deleted", "the run (or its experiment) was deleted while it was active")
                return
            if stop.exiting():
                return
            kill_switch = self.suspended()
            if kill_switch and phase in (RunPhase.INJECTING, RunPhase.OBSERVING, RunPhase.REVERTING):
                self.abort(obj, run, "PolicySuspended", kill_switch)
                return
            try:
                if phase in (RunPhase.INJECTING, RunPhase.OBSERVING, RunPhase.REVERTING):
                    if self._past_deadline(run):
                        self.close_after_deadline(obj, run)
                        continue
                    if run.status.claimed_by != self.identity:
                        if not self._claim_is_stale(run):
                            stop.wait(1.0)  # someone else drives it; watch until it ends or goes stale
                            continue
                        self.take_over(obj, run)
                        continue
                if phase is None:
                    self.start(obj, run)
                elif phase is RunPhase.PENDING:
                    self.prepare(obj, run, stop)
                elif phase is RunPhase.INJECTING:
                    self.inject(obj, run)
                elif phase is RunPhase.OBSERVING:
                    self.observe(obj, run, stop)
                elif phase is RunPhase.REVERTING:
                    self.revert_and_recover(obj, run, stop)
            except Conflict:
                log.info("run %s/%s changed while we wrote it; re-reading", self.namespace, self.name)
            except LostClaim:
                log.info("run %s/%s was taken over by another operator", self.namespace, self.name)
            except NotFound:
                return
            except (EngineError, Abort) as exc:
                self._error(obj, run, exc.reason, exc.message)
            except Exception as exc:
                denied = forbidden(exc)
                if denied is None:
                    raise
                # RBAC denied: the chaos cannot be carried out; retrying would not change that
                self._error(obj, run, "Forbidden", f"the operator is not allowed to do this: {denied}")

    # --- ownership -----------------------------------------------------------------------

    def _past_deadline(self, run: ChaosRun) -> bool:
        return run.status.deadline is not None and self.now() > run.status.deadline

    def _claim_is_stale(self, run: ChaosRun) -> bool:
        beat = run.status.heartbeat_time
        return beat is None or self.now() - beat > LEASE

    def take_over(self, obj: Obj, run: ChaosRun) -> None:
        previous = run.status.claimed_by or "nobody"
        status = run.status.model_copy(update={"claimed_by": self.identity, "heartbeat_time": self.now()})
        self._patch(obj, status, precondition=True)  # only one contender wins the stale claim
        log.info("run %s/%s: took over from %s (heartbeat stale)", self.namespace, self.name, previous)

    def _heartbeat(self, force: bool = False) -> None:
        """Renew the claim; raises LostClaim if another operator holds it now."""
        moment = self.now()
        if not force and self._last_heartbeat and moment - self._last_heartbeat < HEARTBEAT:
            return
        fresh = self.kube.get("ChaosRun", self.namespace, self.name)
        if (fresh.get("status") or {}).get("claimedBy") != self.identity:
            raise LostClaim(self.name)
        self.kube.patch_status(
            "ChaosRun",
            self.namespace,
            self.name,
            {"heartbeatTime": moment.isoformat().replace("+00:00", "Z")},
            resource_version=fresh["metadata"]["resourceVersion"],
        )
        self._last_heartbeat = moment

    # --- steps ---------------------------------------------------------------------------

    def start(self, obj: Obj, run: ChaosRun) -> None:
        annotations = obj["metadata"].get("annotations") or {}
        if SKIP_REASON_ANNOTATION in annotations:  # created only to record a skipped slot
            self.transition(
                obj,
                run,
                RunPhase.SKIPPED,
                annotations[SKIP_REASON_ANNOTATION],
                annotations.get(SKIP_MESSAGE_ANNOTATION, "the slot was skipped"),
            )
            return
        if not run.spec.is_complete():
            self.fill_spec(obj, run)
            return
        spec = run.spec
        assert spec.fault is not None and spec.recovery is not None
        held = parse_duration(spec.fault.duration) if spec.fault.duration else dt.timedelta(0)
        timeout = parse_duration(spec.recovery.timeout)
        deadline = self.now() + held + timeout + deadline_grace(timeout)
        engine = ENGINES.get(spec.fault.kind)
        if engine is not None:  # e.g. Litmus starts a runner pod and a Job before the chaos
            deadline += dt.timedelta(seconds=engine.start_allowance())
        status = run.status.model_copy(update={"deadline": deadline, "observed_generation": run.generation})
        self.transition(obj, run, RunPhase.PENDING, "Accepted", "resolving targets", status=status)

    def fill_spec(self, obj: Obj, run: ChaosRun) -> None:
        """A run made by hand names only its experiment: copy the rest from it (once; frozen after)."""
        try:
            experiment = ChaosExperiment.from_body(
                self.kube.get("ChaosExperiment", self.namespace, run.spec.experiment)
            )
        except NotFound as exc:
            raise Abort(
                "ExperimentNotFound",
                f"ChaosExperiment {run.spec.experiment} does not exist in namespace {self.namespace}; nothing was injected",
            ) from exc
        scheduled = (
            run.spec.scheduled_time or parse_time(obj["metadata"].get("creationTimestamp")) or self.now()
        )
        full = ChaosRunSpec.from_experiment(run.spec.experiment, experiment.spec, scheduled)
        merged = {**full.to_json(), **{k: v for k, v in run.spec.to_json().items() if v is not None}}
        self.kube.patch_spec("ChaosRun", self.namespace, self.name, merged)

    def prepare(self, obj: Obj, run: ChaosRun, stop: Stop) -> None:
        spec = run.spec
        assert spec.target is not None and spec.fault is not None and spec.recovery is not None
        target = spec.target
        target_ns = effective_target_namespace(self.namespace, target.namespace)
        # an unsupported fault, or a missing prerequisite, ends Errored before anything is resolved
        self._engine(run).preflight(self._context(run))
        decision, _ = self._policy_check(run, target_ns)  # fail fast, before waiting for steady state
        if not decision.allowed:
            self.transition(obj, run, RunPhase.SKIPPED, decision.reason, decision.message)
            return
        selector = target.selector.to_json()
        if is_empty(selector):
            raise Abort("EmptySelector", "target.selector is empty; refusing to target every workload")
        kind = str(target.kind)
        workloads = find_workloads(self.kube, kind, target_ns, selector)
        if not workloads:
            raise Abort(
                "NoTargetWorkload",
                f"no {kind} in namespace {target_ns} matches selector {target.selector.to_query()}; nothing was injected",
            )
        pods = self._wait_steady(workloads, parse_duration(spec.recovery.timeout), stop)
        if pods is None:
            return
        what = f"Ready pods of {kind} {', '.join(f'{target_ns}/{w.name}' for w in workloads)}"
        try:
            chosen = select_targets(
                pods,
                str(target.mode),
                target.value,
                seed=run.uid or self.name,
                key=lambda p: str(p["metadata"]["name"]),
                what=what,
            )
        except TargetSelectionError as exc:
            raise Abort("NoTargets", f"{exc.reason}; nothing was injected") from exc
        except ValueError as exc:
            raise Abort("InvalidTarget", str(exc)) from exc
        # the policy again, immediately before injecting: it may have changed while we waited
        decision, policies = self._policy_check(run, target_ns)
        if decision.allowed:
            decision = core_policy.check_blast_radius(policies, requested=len(chosen), total=len(pods))
        if not decision.allowed:
            self.transition(obj, run, RunPhase.SKIPPED, decision.reason, decision.message)
            return
        budget_notes: list[str] = []
        if core_policy.must_respect_disruption_budgets(policies):
            kept, budget_notes = core_policy.pdb_limit(
                [p["metadata"]["name"] for p in chosen], pdbs_for(self.kube, target_ns, chosen)
            )
            if not kept:
                self.transition(
                    obj,
                    run,
                    RunPhase.SKIPPED,
                    "DisruptionBudget",
                    "; ".join(budget_notes) + "; nothing was injected",
                )
                return
            chosen = [p for p in chosen if p["metadata"]["name"] in set(kept)]
        records = [
            TargetRecord(
                kind="Pod", name=p["metadata"]["name"], namespace=target_ns, uid=p["metadata"]["uid"]
            )
            for p in chosen
        ]
        if spec.fault.litmus is not None and spec.fault.litmus.catalog.node_env is not None:
            nodes = core_litmus.target_nodes(chosen, single=spec.fault.litmus.catalog.single_node)
            if not nodes:
                raise Abort(
                    "NoTargets", "the chosen pods are not scheduled on any node; nothing was injected"
                )
            every = {
                str((p.get("spec") or {}).get("nodeName"))
                for p in pods
                if (p.get("spec") or {}).get("nodeName")
            }
            decision = core_policy.check_blast_radius(
                policies, requested=len(nodes), total=len(every), unit="nodes"
            )
            if not decision.allowed:
                self.transition(obj, run, RunPhase.SKIPPED, decision.reason, decision.message)
                return
            records = [TargetRecord(kind="Node", name=n) for n in nodes]
        names = ", ".join(r.name for r in records)
        if spec.dry_run:
            status = run.status.model_copy(update={"targets": records})
            self.transition(
                obj, run, RunPhase.COMPLETED, "DryRun", f"dry run: would inject into {names}", status=status
            )
            return
        moment = self.now()
        status = run.status.model_copy(
            update={
                "targets": records,
                "start_time": moment,
                "claimed_by": self.identity,
                "heartbeat_time": moment,
            }
        )
        # the claim: of two operators writing this transition from the same journal, one wins
        note = f" ({'; '.join(budget_notes)})" if budget_notes else ""
        self.transition(
            obj, run, RunPhase.INJECTING, "Injecting", f"{_fault_kind(run)} on {names}{note}", status=status
        )
        self._last_heartbeat = moment

    def _policy_check(self, run: ChaosRun, target_ns: str) -> tuple[core_policy.Decision, Policies]:
        kill_switch = self.suspended()
        if kill_switch:
            return core_policy.Decision(False, "PolicySuspended", kill_switch, None), []
        return check_before_injecting(
            self.kube,
            run_name=self.name,
            run_namespace=self.namespace,
            target_namespace=target_ns,
            fault_kind=run.spec.fault.policy_kind if run.spec.fault else "unknown",
            operator_namespace=self.operator_namespace,
            now=self.now(),
            scope=self.scope,
        )

    def _wait_steady(self, workloads: list[Workload], limit: dt.timedelta, stop: Stop) -> list[Obj] | None:
        """Ready candidate pods once every workload is at its desired Ready count.

        Injecting into a workload that is already degraded would measure nothing, so the run waits
        (bounded) for steady state, then gives up with an Errored run rather than guessing.
        """
        give_up = self.now() + min(limit, dt.timedelta(minutes=2))
        while True:
            candidates: list[Obj] = []
            lagging: list[str] = []
            for workload in workloads:
                pods = pods_of(self.kube, workload)
                ready = [p for p in pods if is_ready(p)]
                if len(ready) < workload.desired:
                    lagging.append(
                        f"{workload.kind} {workload.name} has {len(ready)}/{workload.desired} pods Ready"
                    )
                candidates.extend(ready)
            if not lagging:
                return candidates
            if self.now() >= give_up:
                raise Abort("TargetNotSteady", f"{'; '.join(lagging)} before injection; nothing was injected")
            if stop.deleted() or stop.exiting():
                return None
            stop.wait(self.poll)

    def inject(self, obj: Obj, run: ChaosRun) -> None:
        engine = self._engine(run)
        ctx = self._context(run)
        targets = [t.model_copy() for t in run.status.targets]
        for target in targets:
            if target.injected_at is not None:
                continue  # journaled as done: never inject twice
            applied = engine.inject(ctx, target)
            target.injected_at = applied or self.now()
            INJECTIONS.labels(engine.kind).inc()
        failpoints.reached("Injected")
        status = run.status.model_copy(update={"targets": targets, "heartbeat_time": self.now()})
        ACTIVE_FAULTS.labels(engine.kind).inc()
        what = (
            f"holding the fault for {run.spec.fault.duration}"
            if engine.sustained and run.spec.fault and run.spec.fault.duration
            else "waiting for the targets to recover"
        )
        self.transition(obj, run, RunPhase.OBSERVING, "Observing", what, status=status)

    def observe(self, obj: Obj, run: ChaosRun, stop: Stop) -> None:
        engine = self._engine(run)
        injected = [t.injected_at for t in run.status.targets if t.injected_at is not None]
        injected_at = min(injected) if injected else self.now()
        if engine.self_timed:
            self._follow(obj, run, stop, injected_at)
            return
        if engine.sustained:
            self._hold(obj, run, stop, injected_at)
            return
        deleted = {t.uid for t in run.status.targets if t.uid}
        self._await_recovery(obj, run, stop, since=injected_at, deleted=deleted)

    def _hold(self, obj: Obj, run: ChaosRun, stop: Stop, injected_at: dt.datetime) -> None:
        """Keep a sustained fault in place for fault.duration, then journal Reverting."""
        assert run.spec.fault is not None
        until = injected_at + (
            parse_duration(run.spec.fault.duration) if run.spec.fault.duration else dt.timedelta(0)
        )
        while self.now() < until:
            if stop.deleted() or stop.exiting() or self.suspended():
                return
            self._heartbeat()
            stop.wait(min(self.poll * 4, max(0.0, (until - self.now()).total_seconds())))
        fresh = self.kube.get("ChaosRun", self.namespace, self.name)
        self.transition(
            fresh, ChaosRun.from_body(fresh), RunPhase.REVERTING, "Reverting", "fault held; reverting it"
        )

    def _follow(self, obj: Obj, run: ChaosRun, stop: Stop, injected_at: dt.datetime) -> None:
        """For engines that end the fault themselves (Litmus): follow it until it reports, then
        journal what it reported and go on to Reverting (clean up) and the recovery measurement.
        The run's deadline still holds: past it the drive loop aborts the run."""
        engine = self._engine(run)
        ctx = self._context(run)
        recorded = run.status.litmus
        while True:
            if stop.deleted() or stop.exiting() or self.suspended() or self._past_deadline(run):
                return
            followed = engine.follow(ctx)
            allowance = engine.start_allowance()
            if followed.waiting and (self.now() - injected_at).total_seconds() > allowance:
                reason, message = followed.not_taken_up or ("NotResponding", "the engine did not start")
                self.abort(obj, run, reason, f"{message} (waited {allowance:.0f} s)")
                return
            if followed.done:
                break
            if followed.record is not None and followed.record != recorded:
                fresh = self.kube.get("ChaosRun", self.namespace, self.name)
                status = ChaosRun.from_body(fresh).status.model_copy(update={"litmus": followed.record})
                self._patch(fresh, status, precondition=True)
                obj = self.kube.get("ChaosRun", self.namespace, self.name)
                run, recorded = ChaosRun.from_body(obj), followed.record
            self._heartbeat()
            stop.wait(self.poll * 4)
        fresh = self.kube.get("ChaosRun", self.namespace, self.name)
        current = ChaosRun.from_body(fresh)
        noted = _with_notes(current.status.findings, current.status.severity, followed.findings)
        status = current.status.model_copy(update={"litmus": followed.record, **noted})
        if followed.errored is not None:
            self._patch(fresh, status, precondition=True)
            fresh = self.kube.get("ChaosRun", self.namespace, self.name)
            self._error(fresh, ChaosRun.from_body(fresh), *followed.errored)
            return
        self.transition(
            fresh,
            current,
            RunPhase.REVERTING,
            "Reverting",
            followed.summary or "fault ended; cleaning up",
            status=status,
        )

    def revert_and_recover(self, obj: Obj, run: ChaosRun, stop: Stop) -> None:
        """Revert (idempotent, also after a restart), then measure recovery from the revert."""
        reverted_at = run.status.reverted_at
        if reverted_at is None:
            failure, notes = self._revert(run, REVERT_PATIENCE)
            if failure:
                self._unrevertable(obj, run, failure)
                return
            reverted_at = self.now()
            status = run.status.model_copy(
                update={
                    "reverted_at": reverted_at,
                    "heartbeat_time": reverted_at,
                    **_with_notes(run.status.findings, run.status.severity, notes),
                }
            )
            self._patch(obj, status, precondition=True)
            obj = self.kube.get("ChaosRun", self.namespace, self.name)
            run = ChaosRun.from_body(obj)
        self._await_recovery(obj, run, stop, since=reverted_at, deleted=set())

    def _await_recovery(
        self, obj: Obj, run: ChaosRun, stop: Stop, *, since: dt.datetime, deleted: set[str]
    ) -> None:
        spec = run.spec
        assert spec.target is not None and spec.recovery is not None
        targets = [t.model_copy() for t in run.status.targets]
        objective = parse_duration(spec.recovery.objective).total_seconds()
        timeout = parse_duration(spec.recovery.timeout).total_seconds()
        give_up = core_recovery.recovery_deadline(since, timeout)
        target_ns = effective_target_namespace(self.namespace, spec.target.namespace)
        unhealthy_at = next((t.unhealthy_at for t in targets if t.unhealthy_at), None)
        fault_kind = _fault_kind(run)
        # Ready lastTransitionTime has whole-second precision; the start of the last look that
        # still saw the workload degraded is a tighter lower bound for the recovery moment
        still_degraded_at = since
        refresh_at: dt.datetime | None = None
        workloads: list[Workload] = []
        owners: dict[str, set[str]] = {}
        while True:
            if stop.deleted() or stop.exiting() or self.suspended():
                return  # the loop decides between abort and pause
            self._heartbeat()
            looked_at = self.now()
            if refresh_at is None or looked_at >= refresh_at:
                # which workloads and which ReplicaSets own their pods change rarely (a rollout):
                # re-read them every few seconds, and only the pods on every look
                workloads = find_workloads(
                    self.kube, str(spec.target.kind), target_ns, spec.target.selector.to_json()
                )
                owners = {w.uid: owner_uids(self.kube, w) for w in workloads}
                refresh_at = looked_at + WORKLOAD_REFRESH
            moments: list[dt.datetime | None] = []
            all_pods: list[Obj] = []
            ready_total = desired_total = 0
            for workload in workloads:
                pods = pods_of(self.kube, workload, owners[workload.uid])
                states = pod_states(pods, deleted)
                all_pods.extend(pods)
                ready_total += core_recovery.ready_count(states)
                desired_total += workload.desired
                moments.append(core_recovery.recovered_at(since, workload.desired, states))
            observed_at = self.now()
            if unhealthy_at is None and ready_total < desired_total:
                unhealthy_at = observed_at
            observed = f"{ready_total}/{desired_total} pods Ready"
            if workloads and all(m is not None for m in moments):
                recovered = max(still_degraded_at, *(m for m in moments if m is not None))
                seconds = core_recovery.recovery_seconds(since, recovered)
                for target in targets:
                    target.unhealthy_at = unhealthy_at or (target.injected_at if deleted else None)
                    target.recovered_at = recovered
                assessment = assess(
                    RecoveryObservation(
                        recovered=True,
                        recovery_seconds=seconds,
                        objective_seconds=objective,
                        timeout_seconds=timeout,
                        observed=observed,
                    )
                )
                RECOVERY.labels(fault_kind).observe(seconds)
                DETECTION_LAG.observe(max(0.0, (observed_at - recovered).total_seconds()))
                message = (
                    f"recovered in {format_seconds(seconds)} (objective {format_seconds(objective)}): "
                    f"{assessment.verdict}, severity {assessment.severity}"
                )
                self._complete(obj, run, targets, seconds, assessment.severity, assessment.findings, message)
                return
            still_degraded_at = looked_at
            if observed_at >= give_up:
                reason = why_not_ready(all_pods) if workloads else "the target workload no longer exists"
                for target in targets:
                    target.unhealthy_at = unhealthy_at or target.injected_at
                assessment = assess(
                    RecoveryObservation(
                        recovered=False,
                        recovery_seconds=None,
                        objective_seconds=objective,
                        timeout_seconds=timeout,
                        not_recovered_reason=reason,
                        observed=observed,
                    )
                )
                message = f"not recovered within {format_seconds(timeout)}: {reason}"
                self._complete(obj, run, targets, None, assessment.severity, assessment.findings, message)
                return
            stop.wait(self.poll)

    def close_after_deadline(self, obj: Obj, run: ChaosRun) -> None:
        """Found past its deadline (the operator was away): revert, then close with a finding."""
        deadline = run.status.deadline
        assert deadline is not None
        finding = Finding(
            severity=Severity.LOW,
            title="run closed after its deadline",
            detail=f"the run was still {_phase_of(obj)} at {self.now().isoformat()} although its deadline was"
            f" {deadline.isoformat()} (the operator was not running); the fault was reverted and recovery was not measured",
        )
        self.abort(obj, run, "DeadlineExceeded", "deadline passed while the run was active", extra=[finding])

    def abort(
        self, obj: Obj, run: ChaosRun, reason: str, message: str, extra: Sequence[Finding] = ()
    ) -> None:
        """Revert whatever this run applied, then record Aborted (idempotent)."""
        findings = [*run.status.findings, *extra]
        severity = run.status.severity
        if extra:
            severity = max([severity or Severity.NONE, *(f.severity for f in extra)])
        if run.spec.fault is not None and _fault_kind(run) in ENGINES:
            # bounded: a deleted run's finalizer must be released even when the revert is impossible
            failure, notes = self._revert(run, dt.timedelta(seconds=10))
            noted = _with_notes(findings, severity, notes)
            findings, severity = noted["findings"], noted["severity"]
            if failure:
                findings.append(_unrevertable_finding(f"while aborting ({reason})", failure))
                severity = Severity.CRITICAL
                message = f"{message}; the fault could NOT be reverted: {failure}"
        if run.status.phase is RunPhase.OBSERVING or run.status.phase is RunPhase.REVERTING:
            ACTIVE_FAULTS.labels(_fault_kind(run)).dec()
        status = run.status.model_copy(update={"findings": findings, "severity": severity})
        try:
            self.transition(obj, run, RunPhase.ABORTED, reason, message, status=status, precondition=False)
        except NotFound:
            return

    def _revert(self, run: ChaosRun, patience: dt.timedelta) -> tuple[str | None, Sequence[Note]]:
        """Revert, retrying for up to `patience`: (None, notes) on success, else what went wrong."""
        give_up = self.now() + patience
        while True:
            try:
                return None, self._engine(run).revert(self._context(run))
            except EngineError:
                raise
            except Exception as exc:
                error = getattr(exc, "reason", None) or str(exc)
                status = getattr(exc, "status", None)
                failure = f"{type(exc).__name__} {status or ''} {error}".replace("  ", " ").strip()
                log.warning("run %s/%s: revert failed: %s", self.namespace, self.name, failure)
                if self.now() >= give_up:
                    return failure, ()
                time.sleep(1.0)

    def _unrevertable(self, obj: Obj, run: ChaosRun, failure: str) -> None:
        """The fault stays in place: the worst finding there is, recorded as such."""
        finding = _unrevertable_finding("after holding it", failure)
        status = run.status.model_copy(
            update={
                "findings": [*run.status.findings, finding],
                "severity": Severity.CRITICAL,
                "verdict": Verdict.FAILED,
            }
        )
        ACTIVE_FAULTS.labels(_fault_kind(run)).dec()
        self.transition(
            obj,
            run,
            RunPhase.COMPLETED,
            "RevertFailed",
            f"the fault could NOT be reverted: {failure}",
            status=status,
        )

    # --- helpers -------------------------------------------------------------------------

    def _engine(self, run: ChaosRun) -> FaultEngine:
        kind = _fault_kind(run)
        engine = ENGINES.get(kind)
        if engine is None:
            raise EngineError(
                "UnsupportedFault", f"fault kind {kind} is not supported by this operator build"
            )
        return engine

    def _context(self, run: ChaosRun) -> InjectContext:
        assert run.spec.fault is not None and run.spec.target is not None
        return InjectContext(
            kube=self.kube,
            run_name=self.name,
            run_namespace=self.namespace,
            run_uid=run.uid or "",
            fault=run.spec.fault,
            target_namespace=effective_target_namespace(self.namespace, run.spec.target.namespace),
            target=run.spec.target,
            targets=tuple(run.status.targets),
        )

    def _error(self, obj: Obj, run: ChaosRun, reason: str, message: str) -> None:
        """End Errored; anything already applied is reverted first (nothing is left behind)."""
        status = run.status
        if any(t.injected_at for t in run.status.targets) and _fault_kind(run) in ENGINES:
            failure, notes = self._revert(run, dt.timedelta(seconds=10))
            noted = _with_notes(run.status.findings, run.status.severity, notes)
            if failure:
                noted["findings"].append(_unrevertable_finding(f"while ending the run ({reason})", failure))
                noted["severity"] = Severity.CRITICAL
                message = f"{message}; the fault could NOT be reverted: {failure}"
            status = run.status.model_copy(update=noted)
        try:
            self.transition(obj, run, RunPhase.ERRORED, reason, message, status=status, precondition=False)
        except NotFound:
            return

    def _complete(
        self,
        obj: Obj,
        run: ChaosRun,
        targets: list[TargetRecord],
        seconds: float | None,
        severity: Severity | str,
        findings: tuple[CoreFinding, ...],
        message: str,
    ) -> None:
        # what was found before recovery was measured (Litmus's verdict, notes from the revert) stays
        earlier = list(run.status.findings)
        sev = worst([Severity(str(severity)), *(f.severity for f in earlier)])
        verdict = Verdict.PASSED if sev in (Severity.NONE, Severity.LOW) else Verdict.FAILED
        status = run.status.model_copy(
            update={
                "targets": targets,
                "recovery_seconds": seconds,
                "severity": sev,
                "verdict": verdict,
                "findings": [*earlier, *(Finding.model_validate(f.to_dict()) for f in findings)],
            }
        )
        ACTIVE_FAULTS.labels(_fault_kind(run)).dec()
        fresh = self.kube.get("ChaosRun", self.namespace, self.name)
        if (fresh.get("status") or {}).get("claimedBy") not in (None, self.identity):
            raise LostClaim(self.name)
        self.transition(fresh, run, RunPhase.COMPLETED, "Completed", message, status=status)

    def _patch(self, obj: Obj, status: ChaosRunStatus, precondition: bool, attempts: int = 5) -> None:
        """Patch status guarded by resourceVersion. Metadata churn (kopf's own annotations and
        finalizer) also bumps resourceVersion, so on a conflict the write is retried against the
        fresh object as long as the journal still says what we read (same phase, same claim); if
        another writer moved either on, the Conflict propagates and the loop re-reads the journal."""
        expected = (_phase_of(obj), (obj.get("status") or {}).get("claimedBy"))
        rv = obj["metadata"]["resourceVersion"]
        for _ in range(attempts):
            try:
                self.kube.patch_status(
                    "ChaosRun",
                    self.namespace,
                    self.name,
                    status.to_json(),
                    resource_version=rv if precondition else None,
                )
                return
            except Conflict:
                fresh = self.kube.get("ChaosRun", self.namespace, self.name)
                if (_phase_of(fresh), (fresh.get("status") or {}).get("claimedBy")) != expected:
                    raise
                rv = fresh["metadata"]["resourceVersion"]
        raise Conflict(f"ChaosRun {self.namespace}/{self.name} kept changing while we wrote it")

    def transition(
        self,
        obj: Obj,
        run: ChaosRun,
        phase: RunPhase,
        reason: str,
        message: str,
        *,
        status: ChaosRunStatus | None = None,
        precondition: bool = True,
    ) -> None:
        """Journal the new phase (with resourceVersion precondition), then announce it."""
        new = (status or run.status).model_copy(update={"phase": phase, "reason": reason, "message": message})
        if phase.is_terminal and new.completion_time is None:
            new = new.model_copy(update={"completion_time": self.now()})
        self._patch(obj, new, precondition)
        log.info("run %s/%s: %s (%s) %s", self.namespace, self.name, phase, reason, message)
        note = f"{reason}: {message}" if reason != str(phase) else message
        self.kube.post_event(obj, str(phase), note, "Warning" if phase in WARNING_PHASES else "Normal")
        failpoints.reached(str(phase))
        if phase.is_terminal:
            RUNS.labels(_fault_kind(run), str(phase), str(new.verdict or ""), str(new.severity or "")).inc()
        # not on Pending: the status refresh would delay the injection; Observing lists it as active
        if self.on_change is not None and (phase.is_terminal or phase is RunPhase.OBSERVING):
            try:
                self.on_change(run.spec.experiment)
            except Exception:  # the experiment's status is a view; the run's journal is the record
                log.exception("could not refresh the status of experiment %s", run.spec.experiment)


def _note_finding(note: Note) -> Finding:
    return Finding(severity=note.severity, title=note.title, detail=note.detail)


def _with_notes(
    findings: Sequence[Finding], severity: Severity | None, notes: Sequence[Note]
) -> dict[str, Any]:
    """Findings and severity with what a revert had to do added (status fields, for model_copy)."""
    if not notes:
        return {"findings": list(findings), "severity": severity}
    return {
        "findings": [*findings, *(_note_finding(n) for n in notes)],
        "severity": worst([severity or Severity.NONE, *(n.severity for n in notes)]),
    }


def _unrevertable_finding(when: str, failure: str) -> Finding:
    return Finding(
        severity=Severity.CRITICAL,
        title="fault could not be reverted",
        detail=f"reverting the fault {when} failed: {failure}; its artifacts carry the label"
        " aftershock.dev/run and must be removed by hand (kubectl delete networkpolicy -l aftershock.dev/run=<uid>)",
    )


def _phase_of(obj: Obj) -> str | None:
    phase = (obj.get("status") or {}).get("phase")
    return str(phase) if phase else None


def _fault_kind(run: ChaosRun) -> str:
    fault = run.spec.fault
    return fault.kind if fault is not None else "unknown"
