"""Drives one ChaosRun through its phases, one journaled step at a time (runs/journal.py).

The driver is an asyncio task: it holds a thread only for the length of each API call. Which
targets and how bad come from `core`; observation from runs/observer.py; targets from
runs/targeting.py; the fault itself from its engine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import random
from collections.abc import Sequence

from aftershock import failpoints
from aftershock.api.common import Finding, RunPhase, Severity, Verdict, worst
from aftershock.api.experiment import ChaosExperiment
from aftershock.api.run import ChaosRun, ChaosRunSpec, CollateralRecovery
from aftershock.cluster.store import NotSynced, NotWatched
from aftershock.core import probes as core_probes
from aftershock.core.backoff import Backoff
from aftershock.core.naming import SKIP_MESSAGE_ANNOTATION, SKIP_REASON_ANNOTATION
from aftershock.core.safety import effective_target_namespace
from aftershock.core.times import parse_time
from aftershock.engines.base import EngineError
from aftershock.kube import Conflict, NotFound, Obj, forbidden, transient
from aftershock.metrics import ACTIVE_FAULTS, INJECTIONS
from aftershock.runs import observer, review, steady_state, targeting
from aftershock.runs.base import Abort, LostClaim, RunEnv, Stop
from aftershock.runs.engine_access import engine_of, has_engine, inject_context
from aftershock.runs.journal import Journal, fault_kind, phase_of, unrevertable_finding, with_notes

log = logging.getLogger(__name__)

REVERT_PATIENCE = dt.timedelta(seconds=20)
ABORT_PATIENCE = dt.timedelta(seconds=10)
ACTIVE = (RunPhase.INJECTING, RunPhase.OBSERVING, RunPhase.REVERTING)
TRANSIENT_BACKOFF = Backoff(base=0.5, factor=2.0, cap=10.0)


class RunDriver:
    def __init__(self, env: RunEnv, namespace: str, name: str) -> None:
        self.env = env
        self.namespace = namespace
        self.name = name
        self.journal = Journal(env, namespace, name)
        self.sampler: steady_state.Sampler | None = None  # the run's probes while its fault is in place

    def now(self) -> dt.datetime:
        return self.env.clock()

    # --- the loop ------------------------------------------------------------------------

    async def drive(self, stop: Stop, seen: Obj | None = None) -> None:
        """Advance the run one journaled step at a time until it is terminal or we must stop.
        `seen`: the run as the watch event that started us showed it (saves a GET for a new run)."""
        try:
            await self._drive(stop, seen)
        finally:
            if self.sampler is not None:
                await self.sampler.close()

    async def _drive(self, stop: Stop, seen: Obj | None) -> None:
        failures = 0
        if seen is not None:
            self.journal.seed(seen)
        while True:
            self.journal.urgent = stop.deleted()
            if self._watching_only(stop):
                await stop.wait(1.0)  # another operator drives it; the cache shows when that ends
                continue
            try:
                obj = self.journal.take_written() or await self.journal.read()
            except NotFound:
                return
            except Exception as exc:
                if transient(exc) is None:
                    raise
                failures += 1
                await self._back_off(failures, exc, stop)
                continue
            failures = 0
            run = ChaosRun.from_body(obj)
            raw_phase = phase_of(obj)
            phase = RunPhase(raw_phase) if raw_phase else None
            if phase is not None and phase.is_terminal:
                return
            if obj["metadata"].get("deletionTimestamp") or stop.deleted():
                await self.abort(
                    obj, run, "Deleted", "the run (or its experiment) was deleted while it was active"
                )
                return
            if stop.exiting():
                return
            kill_switch = self.env.suspended()
            if kill_switch and phase in ACTIVE:
                await self.abort(obj, run, "PolicySuspended", kill_switch)
                return
            revoked = self.env.revoked(self.namespace, self.name)
            if revoked and phase in ACTIVE:
                await self.abort(obj, run, "GuardrailRevoked", revoked)
                return
            aborting = self.sampler.aborting if self.sampler is not None else None
            if aborting is not None and phase in (RunPhase.INJECTING, RunPhase.OBSERVING):
                await self.abort(obj, run, core_probes.ABORT_REASON, aborting.message)
                return
            if not self.env.claims.valid(self.now()):
                await stop.wait(1.0)  # our own Lease lapsed: act on nothing until it is renewed
                continue
            try:
                if phase in ACTIVE:
                    if run.status.deadline is not None and self.now() > run.status.deadline:
                        await self.close_after_deadline(obj, run)
                        continue
                    # whoever holds it: a journal whose place or times do not check out (a claim
                    # and a deadline written to keep a fault alive, say) is rejected, not watched
                    targeting.verify_journal(self.env, obj, run, self.namespace, before_injecting=False)
                    if run.status.claimed_by != self.env.identity:
                        if self.journal.claim_is_live(run):
                            await stop.wait(1.0)  # someone else drives it; watch until it ends or lapses
                            continue
                        await self.journal.take_over(obj, run)
                        continue
                    if phase is RunPhase.INJECTING:  # targets to hit must be live ones the selector yields
                        targeting.verify_journal(self.env, obj, run, self.namespace, before_injecting=True)
                if phase is None:
                    await self.start(obj, run)
                elif phase is RunPhase.PENDING:
                    await targeting.prepare(self.env, self.journal, obj, run, stop)
                elif phase is RunPhase.INJECTING:
                    await self.inject(obj, run)
                elif phase is RunPhase.OBSERVING:
                    await self.observe(obj, run, stop)
                elif phase is RunPhase.REVERTING:
                    await self.revert_and_recover(obj, run, stop)
            except Conflict:
                log.info("run %s/%s changed while we wrote it; re-reading", self.namespace, self.name)
            except LostClaim:
                log.info("run %s/%s: not ours to drive now (%s)", self.namespace, self.name, "claim")
                await stop.wait(1.0)
            except NotFound:
                return
            except (EngineError, Abort) as exc:
                await self.error(obj, run, exc.reason, exc.message)
            except NotWatched as exc:
                await self.error(obj, run, "TargetNotWatched", f"{exc}: this operator does not watch it")
            except NotSynced:
                await stop.wait(1.0)  # the cache is (re)listing: decide on nothing until it has
            except Exception as exc:
                if transient(exc) is not None:
                    # the API server stayed unreachable for a whole retry budget: keep the journal,
                    # back off, and carry on as soon as it answers — never leave the run to kopf's
                    # minute-long daemon backoff with a fault in place
                    failures += 1
                    await self._back_off(failures, exc, stop)
                    continue
                denied = forbidden(exc)
                if denied is None:
                    raise
                # RBAC denied: the chaos cannot be carried out; retrying would not change that
                await self.error(obj, run, "Forbidden", f"the operator is not allowed to do this: {denied}")

    async def _back_off(self, failures: int, exc: Exception, stop: Stop) -> None:
        """The API server did not answer within a retry budget: wait (jittered, growing), keep the
        journal as it is, and carry on as soon as it answers."""
        pause = TRANSIENT_BACKOFF.delay(min(failures, 6), random.random())
        log.warning("run %s/%s: API unavailable (%s); again in %.1f s", self.namespace, self.name, exc, pause)
        await stop.wait(pause)

    def _watching_only(self, stop: Stop) -> bool:
        """Whether the cached run is active and driven by another live operator, with nothing for
        us to do (no deletion, no kill switch, not overdue): then we only watch, without a GET."""
        view = self.env.view
        cached = view.get_run(self.namespace, self.name) if view is not None else None
        if cached is None or stop.deleted() or stop.exiting() or self.env.suspended():
            return False
        if cached["metadata"].get("deletionTimestamp"):
            return False
        run = ChaosRun.from_body(cached)
        if run.status.phase not in ACTIVE or run.status.claimed_by in (None, self.env.identity):
            return False
        if run.status.deadline is not None and self.now() > run.status.deadline:
            return False
        if self.env.revoked(self.namespace, self.name):
            return False
        return self.journal.claim_is_live(run) and targeting.journal_sound(
            self.env, cached, run, self.namespace
        )

    # --- steps ---------------------------------------------------------------------------

    async def start(self, obj: Obj, run: ChaosRun) -> None:
        annotations = obj["metadata"].get("annotations") or {}
        if SKIP_REASON_ANNOTATION in annotations:  # created only to record a skipped slot
            await self.journal.transition(
                obj,
                run,
                RunPhase.SKIPPED,
                annotations[SKIP_REASON_ANNOTATION],
                annotations.get(SKIP_MESSAGE_ANNOTATION, "the slot was skipped"),
            )
            return
        if not run.spec.is_complete():
            await self.fill_spec(obj, run)
            return
        await review.check_run(self.env, obj, run, self.namespace)  # before anything is decided
        spec = run.spec
        assert spec.fault is not None and spec.recovery is not None
        deadline = self.now() + targeting.longest(run)
        status = run.status.model_copy(update={"deadline": deadline, "observed_generation": run.generation})
        await self.journal.transition(
            obj, run, RunPhase.PENDING, "Accepted", "resolving targets", status=status
        )

    async def fill_spec(self, obj: Obj, run: ChaosRun) -> None:
        """A run made by hand names only its experiment: copy the rest from it (once; frozen after)."""
        kube = self.env.kube
        try:
            experiment = ChaosExperiment.from_body(
                await self.env.io(kube.get, "ChaosExperiment", self.namespace, run.spec.experiment)
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
        # only what was left out is added; what was given stays byte for byte (re-serialised, a
        # given target would gain its defaults, and a frozen spec refuses any change)
        given = {k: v for k, v in dict(obj.get("spec") or {}).items() if v is not None}
        merged = {**full.to_json(), **given}
        stamp = review.restamp_filled(self.env.reviews, obj, merged)  # the creator's review carries over
        await self.env.io(kube.patch_spec, "ChaosRun", self.namespace, self.name, merged, stamp)

    async def inject(self, obj: Obj, run: ChaosRun) -> None:
        engine = engine_of(run)
        ctx = inject_context(self.env, self.namespace, self.name, run)
        targets = [t.model_copy() for t in run.status.targets]
        for target in targets:
            if target.injected_at is not None:
                continue  # journaled as done: never inject twice
            applied = await self.env.io(engine.inject, ctx, target)
            target.injected_at = applied or self.now()
            INJECTIONS.labels(engine.kind).inc()
        if failpoints.armed():
            await self.env.io(failpoints.reached, "Injected", self.name)
        status = run.status.model_copy(update={"targets": targets})
        ACTIVE_FAULTS.labels(engine.kind).inc()
        what = (
            f"holding the fault for {run.spec.fault.duration}"
            if engine.sustained and run.spec.fault and run.spec.fault.duration
            else "waiting for the targets to recover"
        )
        await self.journal.transition(obj, run, RunPhase.OBSERVING, "Observing", what, status=status)

    def _probing(self, run: ChaosRun, stop: Stop, *, fault_active: bool) -> Stop:
        """Start the run's sampler if it has a hypothesis (also after a restart); `stop` whose waits
        end early when a probe demands an abort."""
        if run.spec.steady_state is None and run.spec.analysis is None:
            return stop
        if self.sampler is None:
            target_ns = effective_target_namespace(
                self.namespace, run.spec.target.namespace if run.spec.target else None
            )
            self.sampler = steady_state.Sampler(self.env, run, self.namespace, target_ns).start()
        self.sampler.fault_active = fault_active
        return self.sampler.guard(stop)

    async def _probe_record(
        self, run: ChaosRun, *, check_after: bool
    ) -> tuple[dict[str, object], list[Finding]]:
        """The probes' statuses and summary for the journal, and their findings (nothing without a
        sampler); stops the sampler."""
        if self.sampler is None:
            return {}, []
        update, found = await self.sampler.finish(check_after=check_after)
        self.sampler = None
        return update, found

    async def observe(self, obj: Obj, run: ChaosRun, stop: Stop) -> None:
        stop = self._probing(run, stop, fault_active=True)
        engine = engine_of(run)
        injected = [t.injected_at for t in run.status.targets if t.injected_at is not None]
        injected_at = min(injected) if injected else self.now()
        if engine.self_timed:
            await self._follow(obj, run, stop, injected_at)
            return
        if engine.sustained:
            if await observer.hold(self.env, self.journal, run, stop, injected_at):
                fresh = await self.journal.read()
                current = ChaosRun.from_body(fresh)
                # pods put off a node that is still down and placed nowhere else: no room (seen now,
                # before the revert lets them back onto it)
                displaces = run.spec.fault is not None and engine.displaces(run.spec.fault)
                found = observer.no_room(self.env, self.namespace, current) if displaces else []
                noted = with_notes(current.status.findings, current.status.severity, found)
                await self.journal.transition(
                    fresh,
                    current,
                    RunPhase.REVERTING,
                    "Reverting",
                    "fault held; reverting it",
                    status=current.status.model_copy(update=noted) if found else None,
                )
            return
        deleted = {t.uid for t in run.status.targets if t.uid}
        outcome = await observer.await_recovery(
            self.env, self.journal, run, stop, since=injected_at, deleted=deleted
        )
        if outcome is not None:
            await self.complete(obj, run, outcome)

    async def _follow(self, obj: Obj, run: ChaosRun, stop: Stop, injected_at: dt.datetime) -> None:
        outcome = await observer.follow(self.env, self.journal, obj, run, stop, injected_at)
        if outcome is None:
            return
        if outcome.not_taken_up is not None:
            await self.abort(obj, run, *outcome.not_taken_up)
            return
        followed = outcome.followed
        assert followed is not None
        fresh = await self.journal.read()
        current = ChaosRun.from_body(fresh)
        noted = with_notes(current.status.findings, current.status.severity, followed.findings)
        status = current.status.model_copy(update={"engine": followed.record, **noted})
        if followed.errored is not None:
            await self.journal.patch(fresh, status, precondition=True)
            fresh = await self.journal.read()
            await self.error(fresh, ChaosRun.from_body(fresh), *followed.errored)
            return
        await self.journal.transition(
            fresh,
            current,
            RunPhase.REVERTING,
            "Reverting",
            followed.summary or "fault ended; cleaning up",
            status=status,
        )

    async def revert_and_recover(self, obj: Obj, run: ChaosRun, stop: Stop) -> None:
        """Revert (idempotent, also after a restart), then measure recovery from the revert."""
        stop = self._probing(run, stop, fault_active=False)
        reverted_at = run.status.reverted_at
        if reverted_at is None:
            failure, notes = await self._revert(run, urgent=False)
            if failure:
                await self._unrevertable(obj, run, failure)
                return
            reverted_at = self.now()
            status = run.status.model_copy(
                update={
                    "reverted_at": reverted_at,
                    **with_notes(run.status.findings, run.status.severity, notes),
                }
            )
            await self.journal.patch(obj, status, precondition=True)
            obj = await self.journal.read()
            run = ChaosRun.from_body(obj)
        since, deleted = reverted_at, set[str]()
        engine = engine_of(run)
        if engine.heals_while_held:  # its pods were put off a node that stayed down: measured from then
            injected = [t.injected_at for t in run.status.targets if t.injected_at is not None]
            since = min(injected) if injected else reverted_at
            deleted = {p.uid for p in run.status.displaced}
        outcome = await observer.await_recovery(
            self.env, self.journal, run, stop, since=since, deleted=deleted
        )
        if outcome is None:
            return
        if run.status.displaced:
            collateral = await observer.collateral_recovery(self.env, run, stop, since=since)
            if collateral is None:
                return
            outcome = _with_nodes(outcome, reverted_at, *collateral)
            run = run.model_copy(
                update={"status": run.status.model_copy(update={"collateral": collateral[0]})}
            )
        await self.complete(obj, run, outcome)

    async def close_after_deadline(self, obj: Obj, run: ChaosRun) -> None:
        """Found past its deadline (the operator was away): revert, then close with a finding."""
        deadline = run.status.deadline
        assert deadline is not None
        finding = Finding(
            severity=Severity.LOW,
            title="run closed after its deadline",
            detail=f"the run was still {phase_of(obj)} at {self.now().isoformat()} although its deadline was"
            f" {deadline.isoformat()} (the operator was not running); the fault was reverted and recovery was not measured",
        )
        await self.abort(
            obj, run, "DeadlineExceeded", "deadline passed while the run was active", extra=[finding]
        )

    # --- endings -------------------------------------------------------------------------

    async def abort(
        self, obj: Obj, run: ChaosRun, reason: str, message: str, extra: Sequence[Finding] = ()
    ) -> None:
        """Revert whatever this run applied, then record Aborted (idempotent)."""
        self.journal.urgent = True
        probed, probe_findings = await self._probe_record(run, check_after=False)
        extra = [*extra, *probe_findings]
        findings = [*run.status.findings, *extra]
        severity = run.status.severity
        if extra:
            severity = max([severity or Severity.NONE, *(f.severity for f in extra)])
        if has_engine(run):
            # bounded: a deleted run's finalizer must be released even when the revert is impossible
            failure, notes = await self._revert(run, urgent=True)
            noted = with_notes(findings, severity, notes)
            findings, severity = noted["findings"], noted["severity"]
            if failure:
                findings.append(unrevertable_finding(run, f"while aborting ({reason})", failure))
                severity = Severity.CRITICAL
                message = f"{message}; the fault could NOT be reverted: {failure}"
        if run.status.phase is RunPhase.OBSERVING or run.status.phase is RunPhase.REVERTING:
            ACTIVE_FAULTS.labels(fault_kind(run)).dec()
        status = run.status.model_copy(update={"findings": findings, "severity": severity, **probed})
        try:
            await self.journal.transition(
                obj, run, RunPhase.ABORTED, reason, message, status=status, precondition=False
            )
        except NotFound:
            return

    async def _revert(self, run: ChaosRun, *, urgent: bool) -> tuple[str | None, Sequence[Finding]]:
        """Revert, retrying for up to REVERT_PATIENCE (ABORT_PATIENCE when `urgent`: an abort or an
        error, where the engine also keeps its own waits within the kill-switch promise): (None,
        notes) on success, else what went wrong."""
        engine = engine_of(run)
        ctx = dataclasses.replace(inject_context(self.env, self.namespace, self.name, run), urgent=urgent)
        give_up = self.now() + (ABORT_PATIENCE if urgent else REVERT_PATIENCE)
        while True:
            try:
                return None, await self.journal.io()(engine.revert, ctx)
            except EngineError:
                raise
            except Exception as exc:
                error = getattr(exc, "reason", None) or str(exc)
                status = getattr(exc, "status", None)
                failure = f"{type(exc).__name__} {status or ''} {error}".replace("  ", " ").strip()
                log.warning("run %s/%s: revert failed: %s", self.namespace, self.name, failure)
                if self.now() >= give_up:
                    return failure, ()
                await asyncio.sleep(1.0)

    async def _unrevertable(self, obj: Obj, run: ChaosRun, failure: str) -> None:
        """The fault stays in place: the worst finding there is, recorded as such."""
        finding = unrevertable_finding(run, "after holding it", failure)
        status = run.status.model_copy(
            update={
                "findings": [*run.status.findings, finding],
                "severity": Severity.CRITICAL,
                "verdict": Verdict.FAILED,
            }
        )
        ACTIVE_FAULTS.labels(fault_kind(run)).dec()
        await self.journal.transition(
            obj,
            run,
            RunPhase.COMPLETED,
            "RevertFailed",
            f"the fault could NOT be reverted: {failure}",
            status=status,
        )

    async def error(self, obj: Obj, run: ChaosRun, reason: str, message: str) -> None:
        """End Errored; anything already applied is reverted first (nothing is left behind)."""
        self.journal.urgent = True
        probed, _ = await self._probe_record(run, check_after=False)
        status = run.status.model_copy(update=probed)
        # from Injecting on, something may be applied even if not yet journaled (a later target
        # failed after earlier ones were hit): reverting is idempotent and finds them by label
        applied = run.status.phase in ACTIVE or any(t.injected_at for t in run.status.targets)
        if applied and has_engine(run):
            failure, notes = await self._revert(run, urgent=True)
            noted = with_notes(run.status.findings, run.status.severity, notes)
            if failure:
                noted["findings"].append(
                    unrevertable_finding(run, f"while ending the run ({reason})", failure)
                )
                noted["severity"] = Severity.CRITICAL
                message = f"{message}; the fault could NOT be reverted: {failure}"
            status = status.model_copy(update=noted)
        try:
            await self.journal.transition(
                obj, run, RunPhase.ERRORED, reason, message, status=status, precondition=False
            )
        except NotFound:
            return

    async def complete(self, obj: Obj, run: ChaosRun, outcome: observer.Recovery) -> None:
        # what was found before recovery was measured (Litmus's verdict, notes from the revert) stays
        earlier = list(run.status.findings)
        probed, probe_findings = await self._probe_record(run, check_after=True)
        found = [*earlier, *outcome.findings, *probe_findings]
        sev = worst([Severity(outcome.severity), *(f.severity for f in found)])
        verdict = Verdict.PASSED if sev in (Severity.NONE, Severity.LOW) else Verdict.FAILED
        status = run.status.model_copy(
            update={
                "targets": outcome.targets,
                "recovery_seconds": outcome.seconds,
                "severity": sev,
                "verdict": verdict,
                "findings": found,
                **probed,
            }
        )
        ACTIVE_FAULTS.labels(fault_kind(run)).dec()
        fresh = await self.journal.read()
        if (fresh.get("status") or {}).get("claimedBy") not in (None, self.env.identity):
            raise LostClaim(self.name)
        message = outcome.message
        if probed.get("probe_summary"):
            message += f"; steady state: {probed['probe_summary']}"
        if sev != Severity(outcome.severity):
            message += f"; overall {verdict}, severity {sev}"
        await self.journal.transition(fresh, run, RunPhase.COMPLETED, "Completed", message, status=status)


def _with_nodes(
    outcome: observer.Recovery,
    reverted_at: dt.datetime,
    collateral: Sequence[CollateralRecovery],
    findings: Sequence[Finding],
) -> observer.Recovery:
    """A node fault's outcome: its nodes recovered when they were schedulable again (the revert),
    and what the collateral workloads' recovery found."""
    targets = [
        t.model_copy(update={"recovered_at": reverted_at}) if t.kind == "Node" else t for t in outcome.targets
    ]
    severity = worst([Severity(outcome.severity), *(f.severity for f in findings)])
    message = outcome.message
    if collateral:
        back = sum(1 for c in collateral if c.recovered)
        message += f"; collateral: {back}/{len(collateral)} other workload(s) recovered"
    return dataclasses.replace(
        outcome,
        targets=targets,
        severity=str(severity),
        findings=(*outcome.findings, *findings),
        message=message,
    )
