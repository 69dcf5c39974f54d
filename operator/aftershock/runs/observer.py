"""Observing a run: holding a sustained fault, following an engine that times itself, and
measuring recovery from the pods' own Ready transitions.

Every wait here is `stop.wait`: it returns early on deletion, shutdown, the kill switch or any
change the watch-fed cache sees in the target namespace, so recovery is noticed when the pod
event arrives, not on the next poll. The driver decides what each outcome means for the journal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from aftershock.api.common import Finding, Severity
from aftershock.api.durations import parse_duration
from aftershock.api.run import ChaosRun, CollateralRecovery, DisplacedPod, TargetRecord
from aftershock.core import node_faults as core_node_faults
from aftershock.core import recovery as core_recovery
from aftershock.core.safety import effective_target_namespace
from aftershock.core.severity import RecoveryObservation, assess, format_seconds
from aftershock.core.times import parse_time
from aftershock.engines.base import Followed
from aftershock.engines.workloads import (
    Workload,
    find_workloads,
    owner_uids,
    pod_states,
    pods_of,
    why_not_ready,
    workload_from,
)
from aftershock.kube import NotFound, Obj
from aftershock.metrics import DETECTION_LAG, RECOVERY
from aftershock.runs.base import RunEnv, Stop
from aftershock.runs.engine_access import engine_of, inject_context
from aftershock.runs.journal import Journal, fault_kind

WORKLOAD_REFRESH = dt.timedelta(seconds=3)
TEND_EVERY = 2.0  # seconds between a drain's attempts at the evictions a budget refused
NO_ROOM_AFTER = dt.timedelta(seconds=5)  # unschedulable this long at the end of the hold: no room
COLLATERAL_EVERY = 2.0  # seconds between live looks at collateral workloads (node faults only)
SAFETY_WAKE = 1.0  # seconds: re-look even without an event (clock-driven limits)


def interrupted(env: RunEnv, stop: Stop) -> bool:
    return stop.deleted() or stop.exiting() or env.suspended() is not None


async def hold(env: RunEnv, journal: Journal, run: ChaosRun, stop: Stop, injected_at: dt.datetime) -> bool:
    """Keep a sustained fault in place for fault.duration; True once it has been held."""
    assert run.spec.fault is not None
    until = injected_at + (
        parse_duration(run.spec.fault.duration) if run.spec.fault.duration else dt.timedelta(0)
    )
    engine = engine_of(run)
    tending = True  # the engine may have work left from injecting (a drain's refused evictions)
    while env.clock() < until:
        if interrupted(env, stop) or env.revoked(journal.namespace, journal.name):
            return False
        journal.check_claim()
        if tending:
            tending = await env.io(engine.tend, inject_context(env, journal.namespace, journal.name, run))
        pause = TEND_EVERY if tending else SAFETY_WAKE * 5
        await stop.wait(min(pause, max(0.0, (until - env.clock()).total_seconds())))
    return True


async def collateral_recovery(
    env: RunEnv, run: ChaosRun, stop: Stop, *, since: dt.datetime
) -> tuple[list[CollateralRecovery], list[Finding]] | None:
    """How the other workloads a node fault put pods off recovered (read live: they may be in
    namespaces this operator does not watch), until all are back or recovery.timeout from `since`
    has passed. None when interrupted."""
    spec = run.spec
    assert spec.recovery is not None
    groups: dict[str, list[DisplacedPod]] = {}
    for pod in run.status.displaced:
        if pod.collateral:
            groups.setdefault(pod.owner, []).append(pod)
    if not groups:
        return [], []
    gone = {p.uid for p in run.status.displaced}
    objective = parse_duration(spec.recovery.objective).total_seconds()
    give_up = core_recovery.recovery_deadline(since, parse_duration(spec.recovery.timeout).total_seconds())
    results: dict[str, CollateralRecovery] = {}
    observed: dict[str, str] = {}
    while True:
        if interrupted(env, stop):
            return None
        for label, pods in groups.items():
            if label in results:
                continue
            moment, seen = await env.io(_recovered, env, label, gone, since)
            observed[label] = seen
            if moment is not None:
                results[label] = CollateralRecovery(
                    workload=label,
                    pods=len(pods),
                    recovered=True,
                    recovery_seconds=core_recovery.recovery_seconds(since, moment),
                    observed=seen,
                )
        if len(results) == len(groups) or env.clock() >= give_up:
            break
        await stop.wait(COLLATERAL_EVERY)
    findings: list[Finding] = []
    for label, pods in groups.items():
        if label not in results:
            results[label] = CollateralRecovery(
                workload=label, pods=len(pods), recovered=False, observed=observed.get(label)
            )
            findings.append(
                Finding(
                    severity=Severity.HIGH,
                    title=f"collateral workload {label} did not recover",
                    detail=f"{len(pods)} of its pods were put off the node(s) as collateral; it was not back at"
                    f" its desired Ready count within {spec.recovery.timeout}: {observed.get(label, 'unknown')}",
                )
            )
        elif (results[label].recovery_seconds or 0) > objective:
            findings.append(
                Finding(
                    severity=Severity.MEDIUM,
                    title=f"collateral workload {label} recovered slowly",
                    detail=f"back at its desired Ready count {format_seconds(results[label].recovery_seconds or 0)}"
                    f" after losing {len(pods)} pod(s) to the node fault (objective {spec.recovery.objective})",
                )
            )
    return [results[label] for label in groups], findings


def no_room(env: RunEnv, namespace: str, run: ChaosRun) -> list[Finding]:
    """Findings for target pods the scheduler could place nowhere (from the cache)."""
    spec = run.spec
    assert spec.target is not None
    view = env.cluster()
    target_ns = effective_target_namespace(namespace, spec.target.namespace)
    found: list[Finding] = []
    for workload in find_workloads(view, str(spec.target.kind), target_ns, spec.target.selector.to_json()):
        pending = {}
        for pod in pods_of(view, workload):
            conditions = (pod.get("status") or {}).get("conditions") or []
            scheduled = next((c for c in conditions if c.get("type") == "PodScheduled"), None)
            if not scheduled or scheduled.get("status") != "False":
                continue
            since = parse_time(scheduled.get("lastTransitionTime")) or parse_time(
                pod["metadata"].get("creationTimestamp")
            )
            # a scheduler retrying for a moment (a cordon not yet tainted, say) is not "no room"
            if since is not None and env.clock() - since >= NO_ROOM_AFTER:
                pending[str(pod["metadata"]["name"])] = str(
                    scheduled.get("message") or scheduled.get("reason")
                )
        found += core_node_faults.no_room_findings(
            pending, f"{workload.kind} {workload.namespace}/{workload.name}"
        )
    return found


def _recovered(env: RunEnv, label: str, gone: set[str], since: dt.datetime) -> tuple[dt.datetime | None, str]:
    """When a workload ("Deployment ns/name") was back at its desired Ready count, and what was seen."""
    kind, _, where = label.partition(" ")
    namespace, _, name = where.partition("/")
    if kind not in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"):
        return since, f"{kind} is not measured"  # no desired count to compare with
    try:
        workload = workload_from(kind, env.kube.get_workload(kind, namespace, name))
    except NotFound:
        return None, "the workload no longer exists"
    pods = pods_of(env.kube, workload) if kind != "ReplicaSet" else _rs_pods(env, workload)
    states = pod_states(pods, gone)
    seen = f"{core_recovery.ready_count(states)}/{workload.desired} pods Ready"
    moment = core_recovery.recovered_at(since, workload.desired, states)
    return moment, seen if moment is not None else f"{seen}: {why_not_ready(pods)}"


def _rs_pods(env: RunEnv, workload: Workload) -> list[Obj]:
    return pods_of(env.kube, workload, {workload.uid})


@dataclass
class Follow:
    """Where a self-timed engine ended up: `followed` when it reported, or `not_taken_up`."""

    followed: Followed | None = None
    not_taken_up: tuple[str, str] | None = None


async def follow(
    env: RunEnv, journal: Journal, obj: Obj, run: ChaosRun, stop: Stop, injected_at: dt.datetime
) -> Follow | None:
    """Follow an engine that ends the fault itself (Litmus) until it reports, journaling what it
    says as it goes. None when interrupted (deleted, exiting, kill switch, past the deadline)."""
    engine = engine_of(run)
    ctx = inject_context(env, journal.namespace, journal.name, run)
    recorded = run.status.engine
    while True:
        deadline = run.status.deadline
        if interrupted(env, stop) or env.revoked(journal.namespace, journal.name):
            return None
        if deadline is not None and env.clock() > deadline:
            return None
        followed = await env.io(engine.follow, ctx)
        allowance = engine.start_allowance()
        if followed.waiting and (env.clock() - injected_at).total_seconds() > allowance:
            reason, message = followed.not_taken_up or ("NotResponding", "the engine did not start")
            return Follow(not_taken_up=(reason, f"{message} (waited {allowance:.0f} s)"))
        if followed.done:
            return Follow(followed=followed)
        if followed.record is not None and followed.record != recorded:
            fresh = await journal.read()
            status = ChaosRun.from_body(fresh).status.model_copy(update={"engine": followed.record})
            await journal.patch(fresh, status, precondition=True)
            obj = await journal.read()
            run, recorded = ChaosRun.from_body(obj), followed.record
        journal.check_claim()
        await stop.wait(env.poll_seconds * 4)


@dataclass
class Recovery:
    """The measured outcome: what the driver journals as Completed."""

    targets: list[TargetRecord]
    seconds: float | None
    severity: str
    findings: tuple[Finding, ...]
    message: str


async def await_recovery(
    env: RunEnv, journal: Journal, run: ChaosRun, stop: Stop, *, since: dt.datetime, deleted: set[str]
) -> Recovery | None:
    """Wait until every target workload is back at its desired Ready count (or give up at
    recovery.timeout). None when interrupted."""
    spec = run.spec
    assert spec.target is not None and spec.recovery is not None
    view = env.cluster()
    targets = [t.model_copy() for t in run.status.targets]
    objective = parse_duration(spec.recovery.objective).total_seconds()
    timeout = parse_duration(spec.recovery.timeout).total_seconds()
    give_up = core_recovery.recovery_deadline(since, timeout)
    target_ns = effective_target_namespace(journal.namespace, spec.target.namespace)
    unhealthy_at = next((t.unhealthy_at for t in targets if t.unhealthy_at), None)
    kind = fault_kind(run)
    # Ready lastTransitionTime has whole-second precision; the start of the last look that
    # still saw the workload degraded is a tighter lower bound for the recovery moment
    still_degraded_at = since
    refresh_at: dt.datetime | None = None
    workloads: list[Workload] = []
    owners: dict[str, set[str]] = {}
    while True:
        if interrupted(env, stop):
            return None
        journal.check_claim()
        seen = view.version(target_ns)
        looked_at = env.clock()
        if refresh_at is None or looked_at >= refresh_at:
            # which workloads and which ReplicaSets own their pods change rarely (a rollout)
            workloads = find_workloads(view, str(spec.target.kind), target_ns, spec.target.selector.to_json())
            owners = {w.uid: owner_uids(view, w) for w in workloads}
            refresh_at = looked_at + WORKLOAD_REFRESH
        moments: list[dt.datetime | None] = []
        all_pods: list[Obj] = []
        ready_total = desired_total = 0
        for workload in workloads:
            pods = pods_of(view, workload, owners[workload.uid])
            states = pod_states(pods, deleted)
            all_pods.extend(pods)
            ready_total += core_recovery.ready_count(states)
            desired_total += workload.desired
            moments.append(core_recovery.recovered_at(since, workload.desired, states))
        observed_at = env.clock()
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
            RECOVERY.labels(kind).observe(seconds)
            DETECTION_LAG.observe(max(0.0, (observed_at - recovered).total_seconds()))
            message = (
                f"recovered in {format_seconds(seconds)} (objective {format_seconds(objective)}): "
                f"{assessment.verdict}, severity {assessment.severity}"
            )
            return Recovery(targets, seconds, str(assessment.severity), tuple(assessment.findings), message)
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
            return Recovery(targets, None, str(assessment.severity), tuple(assessment.findings), message)
        # woken by every change in the namespace; while degraded also every poll interval (a
        # memory read, no API call), which keeps the lower bound on the recovery moment tight
        remaining = max(0.01, (give_up - env.clock()).total_seconds())
        await view.wait_for_change(target_ns, seen, timeout=min(env.poll_seconds, remaining))
