"""What the admission webhook checks, so that `kubectl apply` fails at once with a clear message.

The same policy rules are checked again right before injecting (engines/policy_gate.py); this is
the early, friendly copy. It adds what only admission knows: who is asking. The requesting user
must be able to do the damage directly (SubjectAccessReview), in their own namespace as much as
in another, so nobody gains power through the operator. What that damage is, each fault's engine declares
(engines/registry.py); a fault kind without an engine is refused.

Policies and workloads are read from the operator's watch-fed cache when one is given: a LIST on
the API server waits until its own cache has caught up with etcd (consistent reads), about 60 ms
right after any write, on every review. The cache may lag a policy or workload written a moment
ago, so a refusal, or a warning that no policy allows the experiment (or it is suspended), is
confirmed with live reads before anyone sees it. A stale "yes" is harmless: the policy gate
decides again before injecting. The one answer taken from the cache as it is, is the warning that
no workload matches the selector *yet* — advice, and usually true (GitOps applies experiments
before their workloads as often as after).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from aftershock.api.experiment import ChaosExperimentSpec, Fault, LitmusFault, Recovery, Target
from aftershock.cluster.store import CacheUnavailable
from aftershock.core import litmus_params
from aftershock.core import policy as core_policy
from aftershock.core.budget import WorkloadShare, check_shares
from aftershock.core.endpoints import EndpointRules
from aftershock.core.safety import effective_target_namespace
from aftershock.core.schedule import ScheduleError, parse_schedule
from aftershock.core.targets import count_for_mode
from aftershock.engines.base import Permission
from aftershock.engines.policy_gate import Policies, parse_policies
from aftershock.engines.registry import REGISTRY, FaultEngine, Registry, UnknownFault, engine_of
from aftershock.engines.workloads import find_workloads
from aftershock.kube import Kube, Obj


class Refused(Exception):
    """The request must be refused; the message is what kubectl shows."""


@dataclass
class Outcome:
    warnings: list[str] = field(default_factory=list)
    # a warning from the policies (none yet, suspended): confirmed on live reads when it came
    # from the cache, which may not have seen a policy written a moment ago
    policy_warning: bool = False


class Reads(Protocol):
    """Where admission reads policies and workloads (the cache, or the API server)."""

    def policies(self) -> list[Obj]: ...

    def list_workloads(self, kind: str, namespace: str, label_selector: str) -> list[Obj]: ...


class LiveReads:
    """Reads straight from the API server."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def policies(self) -> list[Obj]:
        return self.kube.list_policies()

    def list_workloads(self, kind: str, namespace: str, label_selector: str) -> list[Obj]:
        return self.kube.list_workloads(kind, namespace, label_selector)


def _describe_validation(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


def check_experiment(
    kube: Kube,
    spec_data: Mapping[str, Any],
    *,
    namespace: str,
    user: Mapping[str, Any],
    operator_namespace: str | None,
    now: dt.datetime,
    registry: Registry = REGISTRY,
    cached: Reads | None = None,
) -> Outcome:
    try:
        spec = ChaosExperimentSpec.model_validate(spec_data)
    except ValidationError as exc:
        raise Refused(f"invalid ChaosExperiment spec: {_describe_validation(exc)}") from exc
    if spec.schedule:
        try:
            parse_schedule(spec.schedule, spec.time_zone, anchor=now.replace(microsecond=0))
        except ScheduleError as exc:
            raise Refused(str(exc)) from exc
    return check_action(
        kube,
        target=spec.target,
        fault=spec.fault,
        namespace=namespace,
        user=user,
        operator_namespace=operator_namespace,
        now=now,
        runs_now=not spec.schedule and not spec.suspend,
        registry=registry,
        recovery=spec.recovery,
        cached=cached,
        urls=[
            *(spec.steady_state.urls() if spec.steady_state else []),
            *(spec.gate.urls() if spec.gate else []),
            *(spec.analysis.urls() if spec.analysis else []),
            *([spec.fault.toxiproxy.endpoint] if spec.fault.toxiproxy else []),
        ],
    )


def check_action(
    kube: Kube,
    *,
    target: Target,
    fault: Fault,
    namespace: str,
    user: Mapping[str, Any],
    operator_namespace: str | None,
    now: dt.datetime,
    runs_now: bool,
    registry: Registry = REGISTRY,
    recovery: Recovery | None = None,
    cached: Reads | None = None,
    urls: Sequence[str] = (),
) -> Outcome:
    """Refuse what no policy would let run (with the message kubectl shows), warn about what runs
    only later (no policy yet, suspended). `recovery` (None: not given) is checked against the
    policies' maxDuration, as `fault.duration` is. With `cached` reads, their answer stands unless
    it is a refusal or a warning about the policies: those are decided again on live reads."""
    check = functools.partial(
        _check_action,
        kube,
        target=target,
        fault=fault,
        namespace=namespace,
        user=user,
        operator_namespace=operator_namespace,
        now=now,
        runs_now=runs_now,
        registry=registry,
        recovery=recovery,
        urls=urls,
    )
    if cached is not None:
        try:
            outcome = check(cached)
        except (Refused, CacheUnavailable):
            pass
        else:
            if not outcome.policy_warning:
                return outcome
    return check(LiveReads(kube))


def _check_action(
    kube: Kube,
    reads: Reads,
    *,
    target: Target,
    fault: Fault,
    namespace: str,
    user: Mapping[str, Any],
    operator_namespace: str | None,
    now: dt.datetime,
    runs_now: bool,
    registry: Registry,
    recovery: Recovery | None,
    urls: Sequence[str],
) -> Outcome:
    engine = engine_or_refuse(fault, registry)  # first: before anything is looked up
    fault_kind = engine.policy_kind(fault)
    outcome = Outcome()
    target_ns = effective_target_namespace(namespace, target.namespace)
    labels = kube.find_namespace_labels(target_ns)
    if labels is None:
        raise Refused(f"target namespace {target_ns} does not exist")
    policies = parse_policies(reads.policies())
    decision = core_policy.check_static(
        policies,
        experiment_namespace=namespace,
        target_namespace=target_ns,
        target_namespace_labels=labels,
        fault_kind=fault_kind,
        operator_namespace=operator_namespace,
    )
    if not decision.allowed:
        # the object may exist (GitOps keeps syncing), but nothing runs: say why, do not refuse
        if decision.reason == "NoChaosPolicy":
            outcome.warnings.append(f"{decision.message} Until then nothing is injected.")
            outcome.policy_warning = True
        elif decision.reason == "PolicySuspended":
            outcome.warnings.append(f"{decision.message} Runs are skipped while it is suspended.")
            outcome.policy_warning = True
        else:
            raise Refused(decision.message)
    if runs_now and policies:
        timing = core_policy.check_time(policies, now=now)
        if not timing.allowed:
            raise Refused(timing.message)
    if policies:
        duration = core_policy.check_duration(
            policies,
            fault_duration=fault.duration_delta,
            recovery_timeout=recovery.timeout_delta if recovery is not None else None,
        )
        if not duration.allowed:
            raise Refused(duration.message)
    if urls and policies:  # where the probes and the gate would connect (no request forgery)
        rules = EndpointRules.from_policies(target_ns, policies, kube.api_endpoints())
        for url in urls:
            why = rules.refusal(url)
            if why is not None:
                raise Refused(f"steady-state probe, gate, analysis or Toxiproxy endpoint refused: {why}")
    needed = required_permissions(engine, fault, cross_namespace=target_ns != namespace)
    _require_could_do_it(kube, user, target_ns, fault_kind, needed)
    if fault.litmus is not None:
        check_litmus(kube, fault.litmus, policies=policies, user=user, target_namespace=target_ns)
    if policies:
        workloads = find_workloads(reads, str(target.kind), target_ns, target.selector.to_json())
        total = sum(w.desired for w in workloads)
        if not workloads:
            outcome.warnings.append(
                f"no {target.kind} in namespace {target_ns} matches {target.selector.to_query()} yet"
            )
        elif total:
            requested = count_for_mode(str(target.mode), target.value, total)
            radius = core_policy.check_blast_radius(policies, requested=requested, total=total)
            if radius.allowed:  # and per workload: a selector matching several is capped per workload
                shares = [
                    WorkloadShare(w.uid, f"{w.kind} {w.namespace}/{w.name}", w.desired) for w in workloads
                ]
                radius = check_shares(policies, shares, requested)
            if not radius.allowed:
                raise Refused(radius.message)
    return outcome


def engine_or_refuse(fault: Fault, registry: Registry = REGISTRY) -> FaultEngine:
    """The fault's engine. Fails closed: a fault kind without an engine is refused, never waved
    through unreviewed (its damage would be unknown)."""
    try:
        return engine_of(fault, registry)
    except UnknownFault as exc:
        raise Refused(
            f"fault kind {fault.kind} cannot be used: this operator has no fault engine for it"
            f" (it can run {', '.join(sorted(registry)) or 'nothing'}); upgrade the operator or"
            " choose one of those"
        ) from exc


def required_permissions(
    engine: FaultEngine, fault: Fault, *, cross_namespace: bool
) -> tuple[Permission, ...]:
    """What the author must be allowed to do themselves (SubjectAccessReview), as the engine
    declares it: the damage the fault does — also within the author's own namespace, where an
    `aftershock.dev` role must not stand in for rights on pods — and what the run would grant
    others. `cross_namespace` only words the refusal; the checks are the same."""
    del cross_namespace
    return (*engine.damage(fault), *engine.grants(fault))


def _require_could_do_it(
    kube: Kube, user: Mapping[str, Any], namespace: str, fault_kind: str, needed: Sequence[Permission]
) -> None:
    username = str(user.get("username") or "")
    groups = [str(g) for g in user.get("groups") or []]
    for permission in needed:
        allowed = kube.can_i(
            username,
            groups,
            namespace=namespace if permission.namespaced else "",  # "": cluster-scoped
            verb=permission.verb,
            resource=permission.resource,
            group=permission.group,
            subresource=permission.subresource,
            uid=user.get("uid"),
            extra=user.get("extra"),
        )
        if not allowed:
            raise Refused(
                f"{username} may not {permission.describe(namespace)}, so may not target namespace"
                f" {namespace} with {fault_kind}: an experiment can do no more than its author could do"
                " directly"
            )


def check_litmus(
    kube: Kube, litmus: LitmusFault, *, policies: Policies, user: Mapping[str, Any], target_namespace: str
) -> None:
    """No privilege through Litmus: its probes and its ServiceAccount act with rights of their own.

    Probe types must be allowed by every policy (the defaults without one: fail closed, the
    run-time gate may not be wired yet); each probe's requests (k8sProbe: the verbs on the resource
    it names; cmdProbe: a pod in the target namespace) and acting as a named chaosServiceAccount
    (`impersonate`, as Kubernetes authorizes it) must be the author's own rights."""
    problem = litmus_params.probe_policy_problem(policies, litmus.probes)
    if problem is not None:
        raise Refused(problem)
    username = str(user.get("username") or "")

    def allowed(access: litmus_params.Access, name: str | None = None) -> bool:
        return kube.can_i(
            username,
            [str(g) for g in user.get("groups") or []],
            namespace=access.namespace,
            verb=access.verb,
            resource=access.resource,
            group=access.group,
            subresource=access.subresource,
            uid=user.get("uid"),
            extra=user.get("extra"),
            name=name,
        )

    account = litmus.chaos_service_account
    if account is not None and not litmus.provision_service_account:
        act_as = litmus_params.ACT_AS_ACCOUNT
        if not allowed(
            litmus_params.Access(act_as.verb, act_as.group, act_as.resource, target_namespace), account
        ):
            raise Refused(litmus_params.account_refusal(username, account, target_namespace))
    for index, probe in enumerate(litmus.probes):
        kind = litmus_params.probe_type(probe)
        if kind == "k8sProbe":
            malformed = litmus_params.k8s_probe_problem(index, probe)
            if malformed is not None:
                raise Refused(malformed)
        for access in litmus_params.probe_accesses(probe, target_namespace):
            if not allowed(access):
                label = litmus_params.probe_label(index, probe)
                raise Refused(litmus_params.probe_refusal(username, label, kind, access))
