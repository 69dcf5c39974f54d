"""What the admission webhook checks, so that `kubectl apply` fails at once with a clear message.

The same policy rules are checked again right before injecting (engines/policy_gate.py); this is
the early, friendly copy. It adds what only admission knows: who is asking. For cross-namespace
targets the requesting user must be able to do the damage directly (SubjectAccessReview), so
nobody gains power through the operator.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from aftershock.api.common import NODE_FAULT_KINDS
from aftershock.api.experiment import ChaosExperimentSpec, Fault, Target
from aftershock.core import policy as core_policy
from aftershock.core.safety import effective_target_namespace
from aftershock.core.schedule import ScheduleError, parse_schedule
from aftershock.core.targets import count_for_mode
from aftershock.engines.policy_gate import load_policies
from aftershock.engines.workloads import find_workloads
from aftershock.kube import Kube

# what a fault does, as the verbs a user would need to do it by hand: (verb, group, resource, subresource)
DAMAGE: dict[str, list[tuple[str, str, str, str | None]]] = {
    "podDelete": [("delete", "", "pods", None)],
    "networkPartition": [
        ("create", "networking.k8s.io", "networkpolicies", None),
        ("patch", "", "pods", None),
    ],
    "nodeDrain": [("patch", "", "nodes", None), ("create", "", "pods", "eviction")],
    # Litmus acts with its own ServiceAccount: the author must be able to start Litmus there
    "litmus": [("create", "litmuschaos.io", "chaosengines", None)],
    "litmusNode": [("create", "litmuschaos.io", "chaosengines", None), ("patch", "", "nodes", None)],
}


class Refused(Exception):
    """The request must be refused; the message is what kubectl shows."""


@dataclass
class Outcome:
    warnings: list[str] = field(default_factory=list)


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
) -> Outcome:
    outcome = Outcome()
    target_ns = effective_target_namespace(namespace, target.namespace)
    labels = kube.namespace_labels(target_ns)
    if labels is None:
        raise Refused(f"target namespace {target_ns} does not exist")
    policies = load_policies(kube)
    decision = core_policy.check_static(
        policies,
        experiment_namespace=namespace,
        target_namespace=target_ns,
        target_namespace_labels=labels,
        fault_kind=fault.policy_kind,
        operator_namespace=operator_namespace,
    )
    if not decision.allowed:
        # the object may exist (GitOps keeps syncing), but nothing runs: say why, do not refuse
        if decision.reason == "NoChaosPolicy":
            outcome.warnings.append(f"{decision.message} Until then nothing is injected.")
        elif decision.reason == "PolicySuspended":
            outcome.warnings.append(f"{decision.message} Runs are skipped while it is suspended.")
        else:
            raise Refused(decision.message)
    if runs_now and policies:
        timing = core_policy.check_time(policies, now=now)
        if not timing.allowed:
            raise Refused(timing.message)
    if target_ns != namespace or fault.policy_kind in NODE_FAULT_KINDS:
        _require_could_do_it(kube, user, target_ns, fault.policy_kind)
    if fault.litmus is not None and fault.litmus.provision_service_account:
        _require_could_do_it(kube, user, target_ns, PROVISIONING)
    if policies:
        workloads = find_workloads(kube, str(target.kind), target_ns, target.selector.to_json())
        total = sum(w.desired for w in workloads)
        if not workloads:
            outcome.warnings.append(
                f"no {target.kind} in namespace {target_ns} matches {target.selector.to_query()} yet"
            )
        elif total:
            requested = count_for_mode(str(target.mode), target.value, total)
            radius = core_policy.check_blast_radius(policies, requested=requested, total=total)
            if not radius.allowed:
                raise Refused(radius.message)
    return outcome


PROVISIONING = "litmus provisionServiceAccount"
DAMAGE[PROVISIONING] = [
    # granting a ServiceAccount permissions is a power of its own: only for who could do it directly
    ("create", "", "serviceaccounts", None),
    ("create", "rbac.authorization.k8s.io", "roles", None),
    ("create", "rbac.authorization.k8s.io", "rolebindings", None),
]


def _require_could_do_it(kube: Kube, user: Mapping[str, Any], namespace: str, fault_kind: str) -> None:
    username = str(user.get("username") or "")
    groups = [str(g) for g in user.get("groups") or []]
    for verb, group, resource, subresource in DAMAGE.get(fault_kind, []):
        allowed = kube.can_i(
            username,
            groups,
            namespace=namespace,
            verb=verb,
            resource=resource,
            group=group,
            subresource=subresource,
            uid=user.get("uid"),
            extra=user.get("extra"),
        )
        if not allowed:
            what = f"{resource}/{subresource}" if subresource else resource
            raise Refused(
                f"{username} may not {verb} {what} in namespace {namespace}, so may not target it with {fault_kind}:"
                " an experiment can do no more than its author could do directly"
            )
