"""Pending → Injecting: check the policy, wait for steady state, choose the targets, check the
policy again (it may have changed while we waited), claim the run's share of the shared budgets
(concurrency, per-workload blast radius, PodDisruptionBudgets) in the claim ledger (runs/ledger.py,
core/budget.py) so that runs released together are decided one after another, and journal the
targets and the claim before anything is touched. Reads come from the watch-fed cache; decisions
from core."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence

from aftershock.api.common import RunPhase, Severity, worst
from aftershock.api.durations import parse_duration
from aftershock.api.run import ChaosRun, TargetRecord
from aftershock.core import budget
from aftershock.core import policy as core_policy
from aftershock.core.journal_check import Expected, journal_problem, longest_run
from aftershock.core.naming import LABEL_RUN
from aftershock.core.safety import effective_target_namespace
from aftershock.core.selectors import is_empty
from aftershock.core.targets import TargetSelectionError, count_for_mode, select_targets
from aftershock.core.times import parse_time
from aftershock.engines.base import TargetUnit
from aftershock.engines.policy_gate import Policies, check_before_injecting, parse_policies, pdbs_for
from aftershock.engines.registry import target_records
from aftershock.engines.workloads import Workload, find_workloads, is_ready, pods_of
from aftershock.kube import Obj
from aftershock.runs import ledger, node_plan, steady_state
from aftershock.runs.base import Abort, ClusterView, RunEnv, Stop
from aftershock.runs.engine_access import engine_of, has_engine, inject_context
from aftershock.runs.journal import Journal, fault_kind

STEADY_PATIENCE = dt.timedelta(minutes=2)


def longest(run: ChaosRun) -> dt.timedelta:
    """From accepting the run to its deadline, as its frozen spec allows."""
    spec = run.spec
    assert spec.fault is not None and spec.recovery is not None
    held = parse_duration(spec.fault.duration) if spec.fault.duration else dt.timedelta(0)
    allowance = engine_of(run).start_allowance() if has_engine(run) else 0.0
    return longest_run(held, parse_duration(spec.recovery.timeout), allowance)


def journal_sound(env: RunEnv, obj: Obj, run: ChaosRun, namespace: str) -> bool:
    """Whether the journal's place and times check out (no cache needed; see verify_journal)."""
    try:
        verify_journal(env, obj, run, namespace, before_injecting=False)
    except Abort:
        return False
    return True


def verify_journal(env: RunEnv, obj: Obj, run: ChaosRun, namespace: str, *, before_injecting: bool) -> None:
    """Raise Abort (JournalRejected) unless the journal agrees with the frozen spec, the policy
    and the cluster (core/journal_check.py): `status` may have been written by someone else.
    Before injecting, every target still to hit must be a live object the selection yields,
    within the mode and the blast radius; later, place and times are checked."""
    spec = run.spec
    assert spec.target is not None and spec.fault is not None
    target_ns = effective_target_namespace(namespace, spec.target.namespace)
    engine = engine_of(run)
    nodes = engine.target_unit(spec.fault) is TargetUnit.NODES
    records = run.status.targets
    expected = Expected(
        target_namespace=target_ns,
        unit="Node" if nodes else "Pod",
        now=env.clock(),
        created=parse_time(obj["metadata"].get("creationTimestamp")),
        longest=longest(run),
    )
    problem = journal_problem(records, run.status.start_time, run.status.deadline, expected)
    if problem is None and before_injecting and records:
        view = env.cluster()
        workloads = find_workloads(view, str(spec.target.kind), target_ns, spec.target.selector.to_json())
        pods = [p for w in workloads for p in pods_of(view, w)]
        total = max(sum(w.desired for w in workloads), len(pods))
        try:
            allowed = count_for_mode(str(spec.target.mode), spec.target.value, total)
        except ValueError as exc:
            raise Abort("JournalRejected", f"the run's target is invalid: {exc}") from exc
        live = dataclasses.replace(
            expected,
            allowed_count=allowed,
            live_pods={str(p["metadata"]["uid"]): str(p["metadata"]["name"]) for p in pods},
            live_nodes=frozenset(
                str(p["spec"]["nodeName"]) for p in pods if (p.get("spec") or {}).get("nodeName")
            )
            | (_marked_by(env, run, records) if nodes else frozenset()),
        )
        problem = journal_problem(records, run.status.start_time, run.status.deadline, live)
        if problem is None:
            policies = parse_policies(view.policies())
            every_node = {str((p.get("spec") or {}).get("nodeName")) for p in pods}
            radius = core_policy.check_blast_radius(
                policies,
                requested=len(records),
                total=len(every_node) if nodes else total,
                unit="nodes" if nodes else "pods",
            )
            problem = None if radius.allowed else radius.message
            if problem is None and not nodes:
                problem = _over_a_workload(view, policies, workloads, {str(r.uid) for r in records})
    if problem is not None:
        raise Abort(
            "JournalRejected",
            f"the run's status does not agree with its spec and policy ({problem}); it was not written"
            " by this operator, or the cluster changed under it: nothing more is injected",
        )


def _marked_by(env: RunEnv, run: ChaosRun, records: Sequence[TargetRecord]) -> frozenset[str]:
    """Recorded nodes that carry this run's mark: an operator stopped mid-injection had touched
    them (their pods may have moved off already, which is the fault). Read from the nodes
    themselves, not the journal; only for runs resumed in Injecting, so a blocking read is rare."""
    marked = set()
    for record in records:
        if record.kind == "Node" and record.injected_at is None:
            node = env.kube.find_node(record.name)
            if node is not None and (node["metadata"].get("labels") or {}).get(LABEL_RUN) == run.uid:
                marked.add(record.name)
    return frozenset(marked)


def _over_a_workload(
    view: ClusterView, policies: Policies, workloads: list[Workload], uids: set[str]
) -> str | None:
    """Which workload the recorded pods hit beyond its own blast radius (it is per workload), if any."""
    for workload in workloads:
        hit = sum(1 for p in pods_of(view, workload) if str(p["metadata"]["uid"]) in uids)
        cap, sentence = core_policy.pod_cap(policies, total_pods=workload.desired)
        if hit > cap:
            return f"{hit} pods of {workload.kind} {workload.name} recorded, more than its cap of {cap}: {sentence}"
    return None


async def policy_check(
    env: RunEnv, run: ChaosRun, namespace: str, name: str, target_ns: str
) -> tuple[core_policy.Decision, Policies]:
    kill_switch = env.suspended()
    if kill_switch:
        return core_policy.Decision(False, "PolicySuspended", kill_switch, None), []
    view = env.cluster()
    policies = parse_policies(view.policies())
    labels = await env.namespace_labels.get(env.io, env.kube, target_ns)
    decision = check_before_injecting(
        policies=policies,
        target_namespace_labels=labels,
        active_runs=view.active_runs(),
        run_name=name,
        run_namespace=namespace,
        target_namespace=target_ns,
        fault_kind=engine_of(run).policy_kind(run.spec.fault) if run.spec.fault else "unknown",
        operator_namespace=env.operator_namespace,
        now=env.clock(),
        fault_duration=run.spec.fault.duration_delta if run.spec.fault else None,
        recovery_timeout=run.spec.recovery.timeout_delta if run.spec.recovery else None,
        litmus_probes=run.spec.fault.litmus.probes if run.spec.fault and run.spec.fault.litmus else (),
    )
    return decision, policies


async def wait_steady(
    env: RunEnv,
    target_ns: str,
    workloads: list[Workload],
    limit: dt.timedelta,
    stop: Stop,
    moved_on: Callable[[], bool] = lambda: False,
) -> list[Obj] | None:
    """Ready candidate pods once every workload is at its desired Ready count.

    Injecting into a workload that is already degraded would measure nothing, so the run waits
    (bounded) for steady state — woken by every change the cache sees in the namespace — then
    gives up with an Errored run rather than guessing.
    """
    view = env.cluster()
    give_up = env.clock() + min(limit, STEADY_PATIENCE)
    while True:
        seen = view.version(target_ns)
        candidates: list[Obj] = []
        lagging: list[str] = []
        for workload in workloads:
            ready = [p for p in pods_of(view, workload) if is_ready(p)]
            if len(ready) < workload.desired:
                lagging.append(
                    f"{workload.kind} {workload.name} has {len(ready)}/{workload.desired} pods Ready"
                )
            candidates.extend(ready)
        if not lagging:
            return candidates
        if env.clock() >= give_up:
            raise Abort("TargetNotSteady", f"{'; '.join(lagging)} before injection; nothing was injected")
        if stop.deleted() or stop.exiting() or moved_on():
            return None  # the driver re-reads the journal and decides anew
        await view.wait_for_change(target_ns, seen, timeout=1.0)


async def prepare(env: RunEnv, journal: Journal, obj: Obj, run: ChaosRun, stop: Stop) -> None:
    """Resolve, check and journal the targets; ends Skipped when a policy says no."""
    spec = run.spec
    assert spec.target is not None and spec.fault is not None and spec.recovery is not None
    namespace, name = journal.namespace, journal.name
    target = spec.target
    target_ns = effective_target_namespace(namespace, target.namespace)
    # an unsupported fault, or a missing prerequisite, ends Errored before anything is resolved
    await env.io(engine_of(run).preflight, inject_context(env, namespace, name, run))
    decision, _ = await policy_check(env, run, namespace, name, target_ns)  # fail fast
    if not decision.allowed:
        await journal.transition(obj, run, RunPhase.SKIPPED, decision.reason, decision.message)
        return
    selector = target.selector.to_json()
    if is_empty(selector):
        raise Abort("EmptySelector", "target.selector is empty; refusing to target every workload")
    kind = str(target.kind)
    view = env.cluster()
    workloads = find_workloads(view, kind, target_ns, selector)
    if not workloads:
        raise Abort(
            "NoTargetWorkload",
            f"no {kind} in namespace {target_ns} matches selector {target.selector.to_query()}; nothing was injected",
        )

    def moved_on() -> bool:
        """Someone else wrote the journal past Pending while we waited (see verify_journal)."""
        cached = view.get_run(namespace, name)
        return cached is not None and ((cached.get("status") or {}).get("phase") or "Pending") != "Pending"

    pods = await wait_steady(env, target_ns, workloads, parse_duration(spec.recovery.timeout), stop, moved_on)
    if pods is None:
        return
    engine = engine_of(run)
    what = f"Ready pods of {kind} {', '.join(f'{target_ns}/{w.name}' for w in workloads)}"
    chosen: list[Obj] = []
    if not engine.picks_nodes:  # a native node fault picks among nodes, below, once the policies are read
        try:
            chosen = select_targets(
                pods,
                str(target.mode),
                target.value,
                seed=run.uid or name,
                key=lambda p: str(p["metadata"]["name"]),
                what=what,
            )
        except TargetSelectionError as exc:
            raise Abort("NoTargets", f"{exc.reason}; nothing was injected") from exc
        except ValueError as exc:
            raise Abort("InvalidTarget", str(exc)) from exc
    # the policy again, immediately before injecting: it may have changed while we waited
    decision, policies = await policy_check(env, run, namespace, name, target_ns)
    if not decision.allowed:
        await journal.transition(obj, run, RunPhase.SKIPPED, decision.reason, decision.message)
        return
    # the gate and the steady-state hypothesis, last: they must hold when the fault goes in
    before = await steady_state.before_injecting(env, run, target_ns, policies)
    if before.error is not None:
        raise Abort(*before.error)
    if before.skip is not None:
        status = run.status.model_copy(update=before.update(run))
        await journal.transition(obj, run, RunPhase.SKIPPED, *before.skip, status=status)
        return
    run = run.model_copy(update={"status": run.status.model_copy(update=before.update(run))})
    nodes: node_plan.NodePlan | None = None
    if engine.target_unit(spec.fault) is TargetUnit.NODES:
        # nodes a node fault may touch, and who else loses pods; the engine's own picks (Litmus:
        # the nodes of the chosen pods), or among the nodes
        picked = None if engine.picks_nodes else engine.node_targets(spec.fault, chosen)
        try:
            nodes = await node_plan.plan(
                env,
                run,
                engine,
                target_ns,
                policies,
                pods,
                workloads,
                picked,
                None if picked is None else chosen,
            )
        except node_plan.Refused as exc:
            await journal.transition(obj, run, RunPhase.SKIPPED, exc.reason, exc.message)
            return
        chosen = nodes.chosen
    request = budget_request(env, run, namespace, name, target_ns, workloads, pods, chosen, policies)
    if engine.paced_by_budgets:  # the Eviction API holds to the budgets, evicting as they allow
        request = dataclasses.replace(request, pdbs=[])
    # the shared budgets, decided as if the runs released together came one after another: a dry
    # run injects nothing, so it asks without claiming
    if spec.dry_run:
        grant = budget.decide(policies, [], ledger.active_runs(env), request)
    else:
        grant = await ledger.claim(env, policies, request)
    if not grant.allowed:
        await journal.transition(obj, run, RunPhase.SKIPPED, grant.decision.reason, grant.decision.message)
        return
    claimed = grant.claim is not None and not spec.dry_run
    try:
        await inject_journaled(env, journal, obj, run, pods, grant, target_ns, policies, nodes)
    except BaseException:
        if claimed:  # not journaled Injecting: our claim must not hold the budget (pruning would, later)
            await ledger.release(env, run.uid or "", env.identity)
        raise


def budget_request(
    env: RunEnv,
    run: ChaosRun,
    namespace: str,
    name: str,
    target_ns: str,
    workloads: list[Workload],
    pods: list[Obj],
    chosen: list[Obj],
    policies: Policies,
) -> budget.Request:
    """What the run asks of the shared budgets (core/budget.py), from the cache."""
    view = env.cluster()
    owner = {str(p["metadata"]["uid"]): w.uid for w in workloads for p in pods_of(view, w)}

    def candidate(pod: Obj) -> budget.Candidate:
        return budget.Candidate(str(pod["metadata"]["name"]), owner.get(str(pod["metadata"]["uid"]), ""))

    moment = env.clock()
    claim = budget.Claim(
        namespace=namespace,
        name=name,
        uid=run.uid or name,
        holder=env.identity,
        target_namespace=target_ns,
        claimed_at=moment,
        expires=moment + longest(run) + STEADY_PATIENCE,
    )
    return budget.Request(
        claim=claim,
        chosen=[candidate(p) for p in chosen],
        candidates=sorted((candidate(p) for p in pods), key=lambda c: c.name),
        workloads=[
            budget.WorkloadShare(w.uid, f"{w.kind} {w.namespace}/{w.name}", w.desired) for w in workloads
        ],
        pdbs=pdbs_for(view.list_pdbs(target_ns), pods),
        respect_pdbs=core_policy.must_respect_disruption_budgets(policies),
    )


async def inject_journaled(
    env: RunEnv,
    journal: Journal,
    obj: Obj,
    run: ChaosRun,
    pods: list[Obj],
    grant: budget.Grant,
    target_ns: str,
    policies: Policies,
    nodes: node_plan.NodePlan | None = None,
) -> None:
    """Journal the granted targets: Injecting (the run's claim) or, for a dry run, Completed. A node
    fault also journals every pod it will put off, and what its plan found (no spread)."""
    spec = run.spec
    assert spec.fault is not None
    kept = set(grant.kept)
    chosen = [p for p in pods if p["metadata"]["name"] in kept]
    budget_notes = list(grant.notes)
    engine = engine_of(run)
    records = target_records(engine, spec.fault, chosen, target_ns)
    extra: dict[str, object] = {}
    if nodes is not None:
        wanted = {str(p["metadata"]["name"]) for p in nodes.chosen}
        if not wanted <= kept:
            await journal.transition(
                obj,
                run,
                RunPhase.SKIPPED,
                budget.DISRUPTION_BUDGET,
                f"the shared budgets allow only {len(kept & wanted)} of the {len(wanted)} target pods on"
                f" {', '.join(nodes.nodes)} now ({'; '.join(budget_notes) or 'other runs hold the rest'}):"
                " a node cannot be drained or tainted in part; nothing was touched",
            )
            return
        records = [TargetRecord(kind="Node", name=n, prior_unschedulable=nodes.prior[n]) for n in nodes.nodes]
        extra = {
            "displaced": nodes.displaced,
            "findings": [*run.status.findings, *nodes.findings],
            "severity": worst([run.status.severity or Severity.NONE, *(f.severity for f in nodes.findings)])
            if nodes.findings
            else run.status.severity,
        }
    if engine.target_unit(spec.fault) is TargetUnit.NODES:
        if not records:
            raise Abort("NoTargets", "the chosen pods are not scheduled on any node; nothing was injected")
        every = {
            str((p.get("spec") or {}).get("nodeName")) for p in pods if (p.get("spec") or {}).get("nodeName")
        }
        decision = core_policy.check_blast_radius(
            policies, requested=len(records), total=len(every), unit="nodes"
        )
        if not decision.allowed:
            await journal.transition(obj, run, RunPhase.SKIPPED, decision.reason, decision.message)
            return
    names = ", ".join(r.name for r in records)
    if spec.dry_run:
        status = run.status.model_copy(update={"targets": records, **extra})
        await journal.transition(
            obj, run, RunPhase.COMPLETED, "DryRun", f"dry run: would inject into {names}", status=status
        )
        return
    moment = env.clock()
    status = run.status.model_copy(
        update={
            "targets": records,
            "start_time": moment,
            "claimed_by": env.identity,
            "claim_lease": env.claims.reference,
            "heartbeat_time": moment,
            **extra,
        }
    )
    # the claim: of two operators writing this transition from the same journal, one wins
    note = f" ({'; '.join(budget_notes)})" if budget_notes else ""
    await journal.transition(
        obj, run, RunPhase.INJECTING, "Injecting", f"{fault_kind(run)} on {names}{note}", status=status
    )
