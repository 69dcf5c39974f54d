"""The run's journal: every phase is written to `status` before its side effect, under a
resourceVersion precondition, and only along the transitions `core/phases.py` allows.

Ownership: the Pending → Injecting write carries `claimedBy` (this operator's identity), so of two
operators exactly one claims a run; the other only watches. Liveness of a claim is the holder's
own Lease (cluster/lease.py), renewed once per operator — not a write per run. When the holder's
Lease lapses (crash, eviction), another operator — or the same one restarted — takes the run over,
again under a precondition. Past `status.deadline` a run is reverted and closed whoever finds it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import Any

from aftershock import failpoints
from aftershock.api.common import Condition, Finding, RunPhase, Severity, worst
from aftershock.api.run import ChaosRun, ChaosRunStatus
from aftershock.cluster.io import Io
from aftershock.core import conditions as core_conditions
from aftershock.core.phases import check_transition
from aftershock.engines.registry import manual_cleanup
from aftershock.kube import Conflict, Obj
from aftershock.metrics import RUNS
from aftershock.runs import ledger
from aftershock.runs.base import LostClaim, RunEnv

log = logging.getLogger(__name__)

WARNING_PHASES = {RunPhase.ERRORED, RunPhase.ABORTED}
CLAIMING_PHASES = frozenset({str(RunPhase.INJECTING), str(RunPhase.OBSERVING), str(RunPhase.REVERTING)})
"""Phases in which a run holds a claim in the ledger (runs/ledger.py)."""
NEW_RUN_PHASES = frozenset({RunPhase.PENDING, RunPhase.SKIPPED, RunPhase.ERRORED, RunPhase.ABORTED})
"""Where a run with no phase yet may go: accepted, skipped, refused, or deleted before it began."""
COURTESY_DELAY = 2.0
"""Seconds an Event of a run still under way waits before it is posted (with its true time): when
many slots fire together, their injections go first and the Events follow."""


_background: set[asyncio.Task[Any]] = set()


async def later(delay: float, work: Awaitable[Any]) -> Any:
    await asyncio.sleep(delay)
    return await work


def background(work: Awaitable[Any]) -> None:
    """Run `work` without waiting for it (kept referenced until done; failures are logged)."""
    task = asyncio.ensure_future(work)
    _background.add(task)

    def done(finished: asyncio.Task[Any]) -> None:
        _background.discard(finished)
        if not finished.cancelled() and finished.exception() is not None:
            log.warning("background call failed: %s", finished.exception())

    task.add_done_callback(done)


def phase_of(obj: Obj) -> str | None:
    phase = (obj.get("status") or {}).get("phase")
    return str(phase) if phase else None


def fault_kind(run: ChaosRun) -> str:
    fault = run.spec.fault
    return fault.kind if fault is not None else "unknown"


def with_notes(
    findings: Sequence[Finding], severity: Severity | None, notes: Sequence[Finding]
) -> dict[str, Any]:
    """Findings and severity with what an engine had to do added (status fields, for model_copy)."""
    if not notes:
        return {"findings": list(findings), "severity": severity}
    return {
        "findings": [*findings, *notes],
        "severity": worst([severity or Severity.NONE, *(n.severity for n in notes)]),
    }


def unrevertable_finding(run: ChaosRun, when: str, failure: str) -> Finding:
    by_hand = manual_cleanup(fault_kind(run), run.uid or "<run uid>")
    return Finding(
        severity=Severity.CRITICAL,
        title="fault could not be reverted",
        detail=f"reverting the fault {when} failed: {failure}; its artifacts carry the label"
        f" aftershock.dev/run={run.uid} and must be removed by hand" + (f" ({by_hand})" if by_hand else ""),
    )


def check_phase_change(current: str | None, new: RunPhase) -> None:
    """Refuse a transition the phase machine does not allow (a bug or a stale view)."""
    if current is None:
        if new not in NEW_RUN_PHASES:
            check_transition(RunPhase.PENDING, new)
        return
    if RunPhase(current) is new:
        return  # re-journaling the same phase (a retried write) is not a transition
    check_transition(current, new)


class Journal:
    """Reads and writes one run's status."""

    def __init__(self, env: RunEnv, namespace: str, name: str) -> None:
        self.env = env
        self.namespace = namespace
        self.name = name
        self.urgent = False  # set while aborting: I/O goes to the urgent pool
        self._written: Obj | None = None  # what our last write returned: the journal as it now is

    def take_written(self) -> Obj | None:
        """The object our last successful write returned (once), so the next step needs no GET.
        It is the server's answer, as fresh as a read; anyone writing after it makes our next
        preconditioned write fail with a Conflict, which re-reads."""
        written, self._written = self._written, None
        return written

    def seed(self, obj: Obj) -> None:
        """Start from `obj` (what the watch showed) instead of a GET — only for a run nobody has
        journaled anything in yet: its first step is a preconditioned write, which a stale copy
        only turns into a Conflict and a re-read. A run with a journal is always read fresh
        before anything is decided on it."""
        if phase_of(obj) is None:
            self._written = obj

    def io(self) -> Io:
        return self.env.io_for(self.urgent or self.env.suspended() is not None)

    async def read(self) -> Obj:
        self._written = None  # a read supersedes what an earlier write returned
        return await self.io()(self.env.kube.get, "ChaosRun", self.namespace, self.name)

    async def patch(self, obj: Obj, status: ChaosRunStatus, precondition: bool, attempts: int = 5) -> None:
        """Patch status guarded by resourceVersion. Metadata churn (kopf's own annotations and
        finalizer) also bumps resourceVersion, so on a conflict the write is retried against the
        fresh object as long as the journal still says what we read (same phase, same claim); if
        another writer moved either on, the Conflict propagates and the loop re-reads the journal."""
        if not self.urgent and not self.env.claims.valid(self.env.clock()):
            # a long call may have outlasted our Lease: others may be taking the run over now
            raise LostClaim(f"{self.name}: this operator's Lease lapsed before the write")
        expected = (phase_of(obj), (obj.get("status") or {}).get("claimedBy"))
        rv = obj["metadata"]["resourceVersion"]
        kube = self.env.kube
        self._written = None
        for _ in range(attempts):
            try:
                self._written = await self.io()(
                    kube.patch_status,
                    "ChaosRun",
                    self.namespace,
                    self.name,
                    status.to_json(),
                    resource_version=rv if precondition else None,
                )
                return
            except Conflict:
                self._written = None
                fresh = await self.read()
                if (phase_of(fresh), (fresh.get("status") or {}).get("claimedBy")) != expected:
                    raise
                rv = fresh["metadata"]["resourceVersion"]
        raise Conflict(f"ChaosRun {self.namespace}/{self.name} kept changing while we wrote it")

    async def transition(
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
        check_phase_change(phase_of(obj), phase)
        env = self.env
        moment = env.clock()
        new = (status or run.status).model_copy(update={"phase": phase, "reason": reason, "message": message})
        if phase.is_terminal and new.completion_time is None:
            new = new.model_copy(update={"completion_time": moment})
        # the generation of the object being written (a hand-made run's grows when its spec is
        # filled in): kstatus reads a status for an older generation as still in progress
        generation = obj["metadata"].get("generation") or run.generation
        conditions = core_conditions.run_conditions(
            str(phase),
            reason,
            message,
            generation,
            [c.model_dump(by_alias=True, mode="json", exclude_none=True) for c in new.conditions],
            moment,
        )
        new = new.model_copy(
            update={
                "conditions": [Condition.model_validate(c) for c in conditions],
                "observed_generation": generation or new.observed_generation,
            }
        )
        await self.patch(obj, new, precondition)
        if phase.is_terminal and phase_of(obj) in CLAIMING_PHASES:
            # the run's share of the shared budgets is free again (best effort: pruning covers it)
            background(ledger.release(env, run.uid or ""))
        if phase.is_terminal:  # counted at once: whoever sees the phase can read the metric
            RUNS.labels(fault_kind(run), str(phase), str(new.verdict or ""), str(new.severity or "")).inc()
        log.info("run %s/%s: %s (%s) %s", self.namespace, self.name, phase, reason, message)
        note = f"{reason}: {message}" if reason != str(phase) else message
        # an Event is a courtesy (the journal is the record): while the run is under way it is
        # posted a little later, out of the way of other runs' injections; the last one is
        # awaited, so the story is complete when the driver is done
        event = self.io()(
            env.kube.post_event,
            obj,
            str(phase),
            note,
            "Warning" if phase in WARNING_PHASES else "Normal",
            at=moment,
        )
        if phase.is_terminal:
            await event
        else:
            background(later(COURTESY_DELAY, event))
        if failpoints.armed():
            await self.io()(failpoints.reached, str(phase), self.name)
        # the experiment's status is a view (the journal is the record): Observing lists the run
        # as active, in the background and a little later; the end is awaited, so the summary
        # counts the run when the driver is done. Not on Pending/Injecting: that refresh would
        # delay the injection
        if env.on_change is not None and (phase.is_terminal or phase is RunPhase.OBSERVING):
            refresh = env.on_change(self.namespace, run.spec.experiment)
            if phase.is_terminal:
                try:
                    await refresh
                except Exception:
                    log.exception("could not refresh the status of experiment %s", run.spec.experiment)
            else:
                background(later(COURTESY_DELAY, refresh))

    # --- ownership -----------------------------------------------------------------------

    def claim_is_live(self, run: ChaosRun) -> bool:
        holder = run.status.claimed_by
        return bool(holder) and self.env.claims.holder_is_live(
            str(holder), run.status.claim_lease, self.env.clock()
        )

    async def take_over(self, obj: Obj, run: ChaosRun) -> None:
        previous = run.status.claimed_by or "nobody"
        status = run.status.model_copy(
            update={
                "claimed_by": self.env.identity,
                "claim_lease": self.env.claims.reference,
                "heartbeat_time": self.env.clock(),
            }
        )
        await self.patch(obj, status, precondition=True)  # only one contender wins the stale claim
        log.info("run %s/%s: took over from %s (its Lease lapsed)", self.namespace, self.name, previous)

    def check_claim(self) -> None:
        """Raise LostClaim when the cached run says another operator holds it, or our own Lease
        has lapsed (another operator may be taking our runs over). No API call."""
        if not self.env.claims.valid(self.env.clock()):
            raise LostClaim(f"{self.name}: this operator's Lease is not renewed")
        view = self.env.view
        cached = view.get_run(self.namespace, self.name) if view is not None else None
        holder = ((cached or {}).get("status") or {}).get("claimedBy")
        if holder not in (None, self.env.identity):
            raise LostClaim(self.name)
