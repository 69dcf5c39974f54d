"""Drives one ChaosRun through its phases.

Every phase is written to the run's status *before* its side effect (the journal), with a
resourceVersion precondition, so a crashed or competing operator resumes from the journal instead
of repeating work: targets are recorded before they are touched, and a target that already has
`injectedAt` is never injected again. Decisions (which targets, how bad) come from `core`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aftershock.api.common import Finding, RunPhase, Severity, Verdict
from aftershock.api.durations import parse_duration
from aftershock.api.run import ChaosRun, ChaosRunStatus, TargetRecord
from aftershock.core import recovery as core_recovery
from aftershock.core.safety import check_target_namespace, effective_target_namespace
from aftershock.core.selectors import is_empty
from aftershock.core.severity import RecoveryObservation, assess, format_seconds
from aftershock.core.targets import TargetSelectionError, select_targets
from aftershock.engines.base import EngineError, FaultEngine, InjectContext
from aftershock.engines.pod_delete import PodDeleteEngine
from aftershock.engines.workloads import (
    Workload,
    find_workloads,
    is_ready,
    pod_states,
    pods_of,
    why_not_ready,
)
from aftershock.kube import Conflict, Kube, NotFound, Obj, now
from aftershock.metrics import ACTIVE_FAULTS, DETECTION_LAG, INJECTIONS, RECOVERY, RUNS

log = logging.getLogger(__name__)

ENGINES: dict[str, FaultEngine] = {"podDelete": PodDeleteEngine()}
DEADLINE_GRACE = dt.timedelta(minutes=1)
WARNING_PHASES = {RunPhase.ERRORED, RunPhase.ABORTED}


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
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class RunDriver:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        *,
        operator_namespace: str | None = None,
        poll_seconds: float = 0.25,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.operator_namespace = operator_namespace
        self.poll = poll_seconds

    # --- the loop ------------------------------------------------------------------------

    def drive(self, stop: Stop) -> None:
        """Advance the run one journaled step at a time until it is terminal or we must stop."""
        while True:
            try:
                obj = self.kube.get("ChaosRun", self.namespace, self.name)
            except NotFound:
                return
            run = ChaosRun.from_body(obj)
            phase = RunPhase((obj.get("status") or {}).get("phase") or "") if _has_phase(obj) else None
            if phase is not None and phase.is_terminal:
                return
            if obj["metadata"].get("deletionTimestamp") or stop.deleted():
                self.abort(obj, run, "Deleted", "the run (or its experiment) was deleted while it was active")
                return
            if stop.exiting():
                return
            try:
                if phase is None:
                    self.start(obj, run)
                elif phase is RunPhase.PENDING:
                    self.prepare(obj, run, stop)
                elif phase is RunPhase.INJECTING:
                    self.inject(obj, run)
                elif phase is RunPhase.OBSERVING:
                    self.observe(obj, run, stop)
                elif phase is RunPhase.REVERTING:
                    self.finish_revert(obj, run)
            except Conflict:
                log.info("run %s/%s changed while we wrote it; re-reading", self.namespace, self.name)
            except NotFound:
                return
            except EngineError as exc:
                self.transition(obj, run, RunPhase.ERRORED, exc.reason, exc.message)
            except Abort as exc:
                self.transition(obj, run, RunPhase.ERRORED, exc.reason, exc.message)

    # --- steps ---------------------------------------------------------------------------

    def start(self, obj: Obj, run: ChaosRun) -> None:
        spec = run.spec
        if spec.fault is None or spec.recovery is None or spec.target is None:
            raise Abort("IncompleteSpec", "the run's spec has no target, fault or recovery to carry out")
        held = parse_duration(spec.fault.duration) if spec.fault.duration else dt.timedelta(0)
        deadline = now() + held + parse_duration(spec.recovery.timeout) + DEADLINE_GRACE
        status = run.status.model_copy(update={"deadline": deadline, "observed_generation": run.generation})
        self.transition(obj, run, RunPhase.PENDING, "Accepted", "resolving targets", status=status)

    def prepare(self, obj: Obj, run: ChaosRun, stop: Stop) -> None:
        spec = run.spec
        assert spec.target is not None and spec.fault is not None and spec.recovery is not None
        target = spec.target
        target_ns = effective_target_namespace(self.namespace, target.namespace)
        refusal = check_target_namespace(self.namespace, target.namespace, self.operator_namespace)
        if refusal:
            self.transition(obj, run, RunPhase.SKIPPED, "TargetNotAllowed", refusal)
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
        records = [
            TargetRecord(
                kind="Pod", name=p["metadata"]["name"], namespace=target_ns, uid=p["metadata"]["uid"]
            )
            for p in chosen
        ]
        names = ", ".join(r.name for r in records)
        if spec.dry_run:
            status = run.status.model_copy(update={"targets": records, "completion_time": now()})
            self.transition(
                obj, run, RunPhase.COMPLETED, "DryRun", f"dry run: would inject into {names}", status=status
            )
            return
        status = run.status.model_copy(update={"targets": records, "start_time": now()})
        fault_kind = _fault_kind(run)
        self.transition(obj, run, RunPhase.INJECTING, "Injecting", f"{fault_kind} on {names}", status=status)

    def _wait_steady(self, workloads: list[Workload], limit: dt.timedelta, stop: Stop) -> list[Obj] | None:
        """Ready candidate pods once every workload is at its desired Ready count.

        Injecting into a workload that is already degraded would measure nothing, so the run waits
        (bounded) for steady state, then gives up with an Errored run rather than guessing.
        """
        give_up = now() + min(limit, dt.timedelta(minutes=2))
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
            if now() >= give_up:
                raise Abort("TargetNotSteady", f"{'; '.join(lagging)} before injection; nothing was injected")
            if stop.deleted() or stop.exiting():
                return None
            stop.wait(self.poll)

    def inject(self, obj: Obj, run: ChaosRun) -> None:
        engine = self._engine(run)
        assert run.spec.fault is not None
        ctx = InjectContext(self.kube, self.name, self.namespace, run.uid or "", run.spec.fault)
        targets = [t.model_copy() for t in run.status.targets]
        for target in targets:
            if target.injected_at is not None:
                continue  # journaled as done: never inject twice
            applied = engine.inject(ctx, target)
            target.injected_at = applied or now()
            INJECTIONS.labels(engine.kind).inc()
        status = run.status.model_copy(update={"targets": targets})
        ACTIVE_FAULTS.labels(engine.kind).inc()
        self.transition(
            obj, run, RunPhase.OBSERVING, "Observing", "waiting for the targets to recover", status=status
        )

    def observe(self, obj: Obj, run: ChaosRun, stop: Stop) -> None:
        spec = run.spec
        assert spec.target is not None and spec.recovery is not None
        targets = [t.model_copy() for t in run.status.targets]
        injected = [t.injected_at for t in targets if t.injected_at is not None]
        injected_at = min(injected) if injected else now()
        deleted = {t.uid for t in targets if t.uid}
        objective = parse_duration(spec.recovery.objective).total_seconds()
        timeout = parse_duration(spec.recovery.timeout).total_seconds()
        give_up = injected_at + dt.timedelta(seconds=timeout)
        target_ns = effective_target_namespace(self.namespace, spec.target.namespace)
        unhealthy_at = next((t.unhealthy_at for t in targets if t.unhealthy_at), None)
        fault_kind = _fault_kind(run)
        # Ready lastTransitionTime has whole-second precision; the start of the last look that
        # still saw the workload degraded is a tighter lower bound for the recovery moment
        still_degraded_at = injected_at
        while True:
            if stop.deleted() or stop.exiting():
                return  # the loop decides between abort and pause
            looked_at = now()
            workloads = find_workloads(
                self.kube, str(spec.target.kind), target_ns, spec.target.selector.to_json()
            )
            moments: list[dt.datetime | None] = []
            all_pods: list[Obj] = []
            ready_total = desired_total = 0
            for workload in workloads:
                pods = pods_of(self.kube, workload)
                states = pod_states(pods, deleted)
                all_pods.extend(pods)
                ready_total += sum(1 for s in states if s.ready and not s.deleted)
                desired_total += workload.desired
                moments.append(core_recovery.recovered_at(injected_at, workload.desired, states))
            observed_at = now()
            if unhealthy_at is None and ready_total < desired_total:
                unhealthy_at = observed_at
            if workloads and all(m is not None for m in moments):
                recovered = max(still_degraded_at, *(m for m in moments if m is not None))
                seconds = core_recovery.recovery_seconds(injected_at, recovered)
                for target in targets:
                    target.unhealthy_at = unhealthy_at or target.injected_at
                    target.recovered_at = recovered
                assessment = assess(
                    RecoveryObservation(
                        recovered=True,
                        recovery_seconds=seconds,
                        objective_seconds=objective,
                        timeout_seconds=timeout,
                        observed=f"{ready_total}/{desired_total} pods Ready",
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
                        observed=f"{ready_total}/{desired_total} pods Ready",
                    )
                )
                message = f"not recovered within {format_seconds(timeout)}: {reason}"
                self._complete(obj, run, targets, None, assessment.severity, assessment.findings, message)
                return
            stop.wait(self.poll)

    def finish_revert(self, obj: Obj, run: ChaosRun) -> None:
        """A run found in Reverting after a restart: revert again (idempotent) and close it."""
        engine = self._engine(run)
        assert run.spec.fault is not None
        engine.revert(InjectContext(self.kube, self.name, self.namespace, run.uid or "", run.spec.fault))
        self.transition(obj, run, RunPhase.COMPLETED, "Reverted", "fault reverted")

    def abort(self, obj: Obj, run: ChaosRun, reason: str, message: str) -> None:
        """Revert whatever this run applied, then record Aborted (idempotent)."""
        findings = list(run.status.findings)
        severity = run.status.severity
        if run.spec.fault is not None and _fault_kind(run) in ENGINES:
            try:
                ctx = InjectContext(self.kube, self.name, self.namespace, run.uid or "", run.spec.fault)
                self._engine(run).revert(ctx)
            except Exception as exc:  # the record must say so, never hide it
                findings.append(
                    Finding(
                        severity=Severity.CRITICAL,
                        title="fault could not be reverted",
                        detail=f"revert failed while aborting: {exc}",
                    )
                )
                severity = Severity.CRITICAL
        status = run.status.model_copy(
            update={"findings": findings, "severity": severity, "completion_time": now()}
        )
        with contextlib.suppress(NotFound):
            self.transition(obj, run, RunPhase.ABORTED, reason, message, status=status, precondition=False)

    # --- helpers -------------------------------------------------------------------------

    def _engine(self, run: ChaosRun) -> FaultEngine:
        kind = _fault_kind(run)
        engine = ENGINES.get(kind)
        if engine is None:
            raise EngineError(
                "UnsupportedFault", f"fault kind {kind} is not supported by this operator build"
            )
        return engine

    def _complete(
        self,
        obj: Obj,
        run: ChaosRun,
        targets: list[TargetRecord],
        seconds: float | None,
        severity: Severity | str,
        findings: tuple[object, ...],
        message: str,
    ) -> None:
        sev = Severity(str(severity))
        verdict = Verdict.PASSED if sev in (Severity.NONE, Severity.LOW) else Verdict.FAILED
        status = run.status.model_copy(
            update={
                "targets": targets,
                "recovery_seconds": seconds,
                "severity": sev,
                "verdict": verdict,
                "findings": [Finding.model_validate(f.to_dict()) for f in findings],  # type: ignore[attr-defined]
                "completion_time": now(),
            }
        )
        ACTIVE_FAULTS.labels(_fault_kind(run)).dec()
        self.transition(obj, run, RunPhase.COMPLETED, "Completed", message, status=status)

    def _write(self, obj: Obj, status: ChaosRunStatus, precondition: bool, attempts: int = 5) -> None:
        """Patch status guarded by resourceVersion. Metadata churn (kopf's own annotations and
        finalizer) also bumps resourceVersion, so on a conflict the write is retried against the
        fresh object as long as the journal still says what we read; if another writer moved the
        phase on, the Conflict propagates and the loop re-reads the journal."""
        expected_phase = _phase_of(obj)
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
                if _phase_of(fresh) != expected_phase:
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
            new = new.model_copy(update={"completion_time": now()})
        self._write(obj, new, precondition)
        log.info("run %s/%s: %s (%s) %s", self.namespace, self.name, phase, reason, message)
        note = f"{reason}: {message}" if reason != str(phase) else message
        self.kube.post_event(obj, str(phase), note, "Warning" if phase in WARNING_PHASES else "Normal")
        if phase.is_terminal:
            RUNS.labels(_fault_kind(run), str(phase), str(new.verdict or ""), str(new.severity or "")).inc()


def _phase_of(obj: Obj) -> str | None:
    return (obj.get("status") or {}).get("phase") or None


def _has_phase(obj: Obj) -> bool:
    return bool((obj.get("status") or {}).get("phase"))


def _fault_kind(run: ChaosRun) -> str:
    fault = run.spec.fault
    if fault is None:
        return "unknown"
    data = fault.to_json()
    kinds = [k for k in data if k != "duration"]
    return kinds[0] if kinds else "unknown"
