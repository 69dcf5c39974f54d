"""One planning pass for one experiment. Scheduled: ask `core.schedule.plan` what the slot calls
for, create the run (or the record of a skipped slot), prune history, refresh status. Run once
(no schedule): create its one run unless suspended, refresh status.

Nothing is remembered between ticks but the next time to look: the runs and the experiment say
everything. A slot's run has a deterministic name, so two operators (or one restarted mid-tick)
that both decide to start the same slot get one run and one 409.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
from collections.abc import Callable, Mapping

from aftershock import API_VERSION
from aftershock.api.experiment import ChaosExperiment
from aftershock.api.run import ChaosRunSpec
from aftershock.cluster.experiment_status import RunsReader, owned_runs, refresh_experiment_status
from aftershock.core.conditions import format_time
from aftershock.core.history import MAX_FOLDED_NAMES, RetiredTotals, RunInfo, fold, runs_to_delete
from aftershock.core.naming import (
    FINALIZER,
    LABEL_EXPERIMENT,
    LABEL_TRIGGER,
    SKIP_MESSAGE_ANNOTATION,
    SKIP_REASON_ANNOTATION,
    run_name,
)
from aftershock.core.phases import is_terminal
from aftershock.core.schedule import Action, ActiveRun, ScheduleError, parse_schedule, plan
from aftershock.core.times import parse_time
from aftershock.kube import Kube, Obj, now

log = logging.getLogger(__name__)
IDLE = 3600.0  # no next slot (suspended, or none left): look again in an hour at the latest
INVALID_RETRY = 300.0
NEVER = math.inf  # a run-once experiment: only its next spec change (or a restart) ticks it again


def new_run(
    experiment: ChaosExperiment,
    namespace: str,
    slot: dt.datetime,
    annotations: Mapping[str, str],
    trigger: str = "schedule",
    finalized: bool = False,
) -> Obj:
    """A run for `slot`; `trigger` (schedule | manual | once) is a label, so that manual runs
    never count as handled schedule slots. `finalized`: created by the running operator, with the
    finalizer kopf would add before starting the run's daemon (it holds an active run's deletion
    until the fault is reverted), which saves that round trip; kopf removes it when the run ends.
    Anyone else leaves it to kopf, so a run made while no operator runs can still be deleted."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ChaosRun",
        "metadata": {
            "name": run_name(experiment.name, slot),
            "namespace": namespace,
            "labels": {LABEL_EXPERIMENT: experiment.name, LABEL_TRIGGER: trigger},
            "annotations": dict(annotations),
            **({"finalizers": [FINALIZER]} if finalized else {}),
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "ChaosExperiment",
                    "name": experiment.name,
                    "uid": experiment.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": ChaosRunSpec.from_experiment(experiment.name, experiment.spec, slot).to_json(),
    }


def tick(
    kube: Kube,
    body: Obj,
    read: RunsReader | None = None,
    stamp: Callable[[Obj, Obj], Obj] | None = None,
    follow_up: Callable[[Callable[[], None]], None] | None = None,
) -> float:
    """One planning pass; returns how many seconds until the next one is due. `stamp(experiment,
    run)` adds the operator's review stamp to a slot it creates (runs/review.py). `follow_up(work)`
    runs what only describes a started slot (its Event, history pruning, the experiment's status)
    a little later, so that when many slots fire at once their runs go first (None: at once)."""
    meta = body["metadata"]
    namespace, name = str(meta["namespace"]), str(meta["name"])
    if meta.get("deletionTimestamp"):
        return IDLE
    experiment = ChaosExperiment.from_body(body)
    spec = experiment.spec
    created = parse_time(meta.get("creationTimestamp")) or now()
    if not spec.schedule:
        return run_once(kube, body, experiment, created, read, stamp)
    try:
        schedule = parse_schedule(spec.schedule, spec.time_zone, anchor=created.replace(microsecond=0))
    except ScheduleError as exc:
        refresh_experiment_status(
            kube, namespace, name, stalled_reason="InvalidSchedule", stalled_message=str(exc)
        )
        return INVALID_RETRY
    runs = owned_runs(kube, namespace, name, experiment.uid, read)
    active = [
        ActiveRun(r["metadata"]["name"], parse_time((r.get("spec") or {}).get("scheduledTime")) or created)
        for r in runs
        if not is_terminal((r.get("status") or {}).get("phase") or "Pending")
    ]
    slots = [
        parse_time((r.get("spec") or {}).get("scheduledTime"))
        for r in runs
        if (r["metadata"].get("labels") or {}).get(LABEL_TRIGGER) == "schedule"
    ]
    known = [s for s in slots if s is not None]
    recorded = parse_time((body.get("status") or {}).get("lastScheduleTime"))
    last_scheduled = max([*known, *([recorded] if recorded else [])], default=None)
    decision = plan(
        schedule,
        now=now(),
        last_scheduled=last_scheduled,
        created=created,
        suspended=spec.suspend,
        starting_deadline=spec.starting_deadline_delta,
        concurrency_policy=str(spec.concurrency_policy),
        active=active,
    )
    extra: dict[str, str | None] = {}
    announce: Callable[[], None] | None = None  # the slot's Event, once its run exists
    if decision.action is not Action.WAIT and decision.slot is not None:
        for victim in decision.replace:
            log.info("%s/%s: replacing active run %s", namespace, name, victim)
            kube.delete("ChaosRun", namespace, victim)  # its deletion handler aborts and reverts
        annotations = (
            {SKIP_REASON_ANNOTATION: decision.reason, SKIP_MESSAGE_ANNOTATION: decision.message}
            if decision.action is Action.SKIP
            else {}
        )
        run = new_run(experiment, namespace, decision.slot, annotations, finalized=True)
        if stamp is not None and decision.action is Action.START:
            run = stamp(body, run)
        reason = "RunCreated" if decision.action is Action.START else "SlotSkipped"
        if kube.create("ChaosRun", namespace, run) is not None:
            announce = functools.partial(kube.post_event, body, reason, decision.message, at=now())
        extra["lastScheduleTime"] = format_time(decision.slot)
    extra["nextScheduleTime"] = format_time(decision.next_slot) if decision.next_slot else None
    deferred = follow_up is not None and decision.action is Action.START

    def describe() -> None:
        if announce is not None:
            announce()
        # the runs as they are now: one that finished since the tick counts at once
        current = owned_runs(kube, namespace, name, experiment.uid, read) if deferred else runs
        collect_history(
            kube, namespace, name, current, spec.successful_runs_history_limit, spec.failed_runs_history_limit
        )
        refresh_experiment_status(kube, namespace, name, extra=extra, suspended=spec.suspend, read=read)

    if follow_up is not None and deferred:
        follow_up(describe)
    else:
        describe()
    if decision.next_slot is None:
        return IDLE
    until = (decision.next_slot - now()).total_seconds()
    return max(0.01, until + 0.005)


def run_once(
    kube: Kube,
    body: Obj,
    experiment: ChaosExperiment,
    created: dt.datetime,
    read: RunsReader | None,
    stamp: Callable[[Obj, Obj], Obj] | None,
) -> float:
    """An experiment without a schedule runs once, unless suspended: its slot is its creation
    time, so the run's name is fixed and a second attempt (a restart, a spec change, another
    operator) answers 409 instead of running again."""
    namespace, name = str(body["metadata"]["namespace"]), experiment.name
    if experiment.spec.suspend:
        refresh_experiment_status(kube, namespace, name, read=read)
        return NEVER
    run = new_run(experiment, namespace, created, {}, trigger="once")
    if stamp is not None:
        run = stamp(body, run)
    if kube.create("ChaosRun", namespace, run) is not None:
        kube.post_event(body, "RunCreated", f"created run {run['metadata']['name']}")
    refresh_experiment_status(
        kube, namespace, name, extra={"lastScheduleTime": format_time(created)}, read=read
    )
    return NEVER


def collect_history(
    kube: Kube, namespace: str, name: str, runs: list[Obj], successful: int, failed: int
) -> None:
    """Delete finished runs beyond the history limits, folding each into status.history first
    (so the summary keeps counting it, exactly once)."""
    infos = [
        RunInfo(
            name=r["metadata"]["name"],
            phase=(r.get("status") or {}).get("phase") or "Pending",
            verdict=(r.get("status") or {}).get("verdict"),
            finished=parse_time((r.get("status") or {}).get("completionTime")),
        )
        for r in runs
    ]
    # at most as many per pass as status.history remembers by name, so a crash between the
    # status write and the deletes can never count a run twice
    doomed = runs_to_delete(infos, successful, failed)[:MAX_FOLDED_NAMES]
    if not doomed:
        return
    by_name = {r["metadata"]["name"]: r for r in runs}
    fresh = kube.get("ChaosExperiment", namespace, name)
    retired = RetiredTotals.from_dict((fresh.get("status") or {}).get("history"))
    for run_name_ in doomed:
        retired = fold(retired, by_name[run_name_])
    kube.patch_status("ChaosExperiment", namespace, name, {"history": retired.to_dict()})
    for run_name_ in doomed:
        kube.delete("ChaosRun", namespace, run_name_)
