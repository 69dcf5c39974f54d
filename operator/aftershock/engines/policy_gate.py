"""The policy gate at run time: the same rules as admission, checked again right before injecting
(policies change), plus what only the cluster's state can tell — active runs, blast radius over
the real pods, and PodDisruptionBudgets. Decisions come from core.policy; this module gathers
the facts.

It also keeps the kill switch: every operator watches ChaosPolicies, and the moment any of them
has `suspend: true`, every run driver in this process sees `suspended()` and aborts. The same
listeners wake runs when the guardrail monitor (runs/guardrails.py) revokes one of them.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aftershock.api.policy import ChaosPolicySpec
from aftershock.core import litmus_params
from aftershock.core import policy as core_policy
from aftershock.core.selectors import matches
from aftershock.core.times import parse_time
from aftershock.kube import Obj
from aftershock.metrics import POLICIES_SUSPENDED

Policies = list[tuple[str, ChaosPolicySpec]]
ACTIVE_PHASES = {"Injecting", "Observing", "Reverting"}


def _target_namespace(run: Obj) -> str:
    spec = run.get("spec") or {}
    return str((spec.get("target") or {}).get("namespace") or run["metadata"]["namespace"])


def _counts_as_active(run: Obj, now: dt.datetime) -> bool:
    """Injecting, Observing or Reverting, and not abandoned: a run past its deadline is the
    sweeper's business and must not hold a concurrency slot forever."""
    status = run.get("status") or {}
    if status.get("phase") not in ACTIVE_PHASES:
        return False
    deadline = parse_time(status.get("deadline"))
    return deadline is None or deadline > now


def check_before_injecting(
    *,
    policies: Policies,
    target_namespace_labels: Mapping[str, str] | None,
    active_runs: Sequence[Obj],
    run_name: str,
    run_namespace: str,
    target_namespace: str,
    fault_kind: str,
    operator_namespace: str | None,
    now: dt.datetime,
    fault_duration: dt.timedelta | None = None,
    recovery_timeout: dt.timedelta | None = None,
    litmus_probes: Sequence[Mapping[str, Any]] = (),
) -> core_policy.Decision:
    """Everything but the blast radius: namespace, fault, suspension, time, maxDuration (of the
    given fault.duration and recovery.timeout), the Litmus probe types the policies allow now
    (admission checked them against the policies of that moment), concurrency.

    The caller gathers the facts (from the watch-fed cache: policies and the active runs of the
    namespaces this operator watches), so that this costs no API call per run."""
    if target_namespace_labels is None:
        return core_policy.Decision(
            False, "TargetNamespaceNotFound", f"namespace {target_namespace} does not exist", None
        )
    decision = core_policy.check_static(
        policies,
        experiment_namespace=run_namespace,
        target_namespace=target_namespace,
        target_namespace_labels=dict(target_namespace_labels),
        fault_kind=fault_kind,
        operator_namespace=operator_namespace,
    )
    if not decision.allowed:
        return decision
    decision = core_policy.check_time(policies, now=now)
    if not decision.allowed:
        return decision
    decision = core_policy.check_duration(
        policies, fault_duration=fault_duration, recovery_timeout=recovery_timeout
    )
    if not decision.allowed:
        return decision
    probes = litmus_params.probe_policy_problem(policies, litmus_probes) if litmus_probes else None
    if probes is not None:
        return core_policy.Decision(False, "ProbeTypeNotAllowed", probes, None)
    active = [
        r
        for r in active_runs
        if _counts_as_active(r, now)
        and not (r["metadata"]["name"] == run_name and r["metadata"]["namespace"] == run_namespace)
    ]
    in_namespace = sum(1 for r in active if _target_namespace(r) == target_namespace)
    return core_policy.check_concurrency(policies, active_total=len(active), active_in_namespace=in_namespace)


def parse_policies(objs: Sequence[Obj]) -> Policies:
    return [(p["metadata"]["name"], ChaosPolicySpec.model_validate(p.get("spec") or {})) for p in objs]


def pdbs_for(pdbs: Sequence[Obj], pods: Sequence[Obj]) -> list[core_policy.PdbInfo]:
    """The given PodDisruptionBudgets, each with the names of the given pods it covers."""
    infos = []
    for pdb in pdbs:
        selector = (pdb.get("spec") or {}).get("selector")
        if selector is None:
            continue
        covers = frozenset(
            p["metadata"]["name"] for p in pods if matches(selector, p["metadata"].get("labels") or {})
        )
        allowed = int(((pdb.get("status") or {}).get("disruptionsAllowed")) or 0)
        infos.append(core_policy.PdbInfo(pdb["metadata"]["name"], allowed, covers))
    return infos


class PolicyWatch:
    """The policies this operator has seen, kept current by the ChaosPolicy event handler."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._specs: dict[str, Mapping[str, Any]] = {}
        self._listeners: set[Callable[[], None]] = set()

    def listen(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` (from whichever thread applies the change) whenever a policy changes,
        so that waiting runs wake the moment the kill switch is thrown; returns the unsubscriber."""
        with self._lock:
            self._listeners.add(listener)
        return lambda: self._forget(listener)

    def _forget(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.discard(listener)

    def update(self, name: str, spec: Mapping[str, Any] | None) -> None:
        with self._lock:
            if spec is None:
                self._specs.pop(name, None)
            else:
                self._specs[name] = dict(spec)
            POLICIES_SUSPENDED.set(sum(1 for s in self._specs.values() if s.get("suspend")))
        self.notify()

    def notify(self) -> None:
        """Call every listener: a policy changed, or a guardrail revoked a run (runs/guardrails.py)."""
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def suspended(self) -> str | None:
        """A sentence naming the suspended policy, or None while no policy is suspended."""
        with self._lock:
            for name, spec in sorted(self._specs.items()):
                if spec.get("suspend"):
                    return f"ChaosPolicy {name} has suspend: true (the kill switch)"
        return None


WATCH = PolicyWatch()
