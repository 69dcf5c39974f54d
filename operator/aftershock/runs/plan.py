"""`aftershock plan -f experiment.yaml`: what a run of this experiment would do, creating nothing.

For a GitOps review: the admission webhook judges the experiment exactly as `kubectl apply` would
(a server-side dry run, with the caller's identity, so the policy, the SubjectAccessReviews and the
endpoint rules all speak), then the targets are resolved from live reads as a run would choose them,
and every steady-state probe and the gate are evaluated once — from this machine, through the same
endpoint guard, so a cluster-internal URL may not answer here although it would for the operator.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.rest import ApiException

from aftershock.api.experiment import ChaosExperiment
from aftershock.core import probes as core_probes
from aftershock.core.endpoints import EndpointRules
from aftershock.core.safety import effective_target_namespace
from aftershock.core.targets import TargetSelectionError, select_targets
from aftershock.engines.admission import LiveReads
from aftershock.engines.policy_gate import parse_policies
from aftershock.engines.workloads import find_workloads, is_ready, pods_of
from aftershock.kube import Kube
from aftershock.probes import prometheus
from aftershock.probes.guard import GuardedClient
from aftershock.runs.steady_state import check_probe


@dataclass
class Plan:
    experiment: str
    namespace: str
    target_namespace: str
    admitted: bool = False
    refusal: str | None = None
    warnings: list[str] = field(default_factory=list)
    workloads: list[str] = field(default_factory=list)
    candidates: int = 0
    targets: list[str] = field(default_factory=list)
    target_note: str | None = None
    gate: dict[str, Any] | None = None
    probes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def would_run(self) -> bool:
        failing = [p for p in self.probes if not p["ok"]]
        gate_closed = self.gate is not None and not self.gate["ok"]
        return self.admitted and bool(self.targets) and not failing and not gate_closed

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "namespace": self.namespace,
            "targetNamespace": self.target_namespace,
            "admitted": self.admitted,
            "refusal": self.refusal,
            "warnings": self.warnings,
            "workloads": self.workloads,
            "candidates": self.candidates,
            "targets": self.targets,
            "targetNote": self.target_note,
            "gate": self.gate,
            "probes": self.probes,
            "wouldRun": self.would_run,
        }


def _admission(kube: Kube, namespace: str, body: dict[str, Any], plan: Plan) -> None:
    """The webhook's verdict on the experiment, from a server-side dry run (nothing is stored)."""
    try:
        header = kube.dry_run_create("ChaosExperiment", namespace, body)
    except ApiException as exc:
        plan.refusal = _reason(exc)
        return
    plan.admitted = True
    plan.warnings = warnings_of(header)


WARNING = re.compile(r'299 [^ ]+ "((?:[^"\\]|\\.)*)"')


def warnings_of(header: str) -> list[str]:
    """The texts of an HTTP Warning header (`299 - "text"`, several joined by commas)."""
    return [m.group(1).replace('\\"', '"') for m in WARNING.finditer(header)]


def _reason(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except ValueError:
        return str(exc.body or exc.reason)


def _targets(kube: Kube, exp: ChaosExperiment, plan: Plan) -> None:
    target = exp.spec.target
    reads = LiveReads(kube)
    workloads = find_workloads(reads, str(target.kind), plan.target_namespace, target.selector.to_json())
    plan.workloads = [f"{w.kind} {w.namespace}/{w.name}" for w in workloads]
    pods = [p for w in workloads for p in pods_of(kube, w) if is_ready(p)]
    plan.candidates = len(pods)
    if not workloads:
        plan.target_note = (
            f"no {target.kind} in namespace {plan.target_namespace} matches {target.selector.to_query()}"
        )
        return
    try:
        chosen = select_targets(
            pods, str(target.mode), target.value, seed="plan", key=lambda p: str(p["metadata"]["name"])
        )
    except (TargetSelectionError, ValueError) as exc:
        plan.target_note = str(getattr(exc, "reason", exc))
        return
    plan.targets = [str(p["metadata"]["name"]) for p in chosen]
    if target.mode in ("one", "fixed", "percent"):
        plan.target_note = (
            f"{len(chosen)} of {len(pods)} Ready pods; each run chooses its own (these are an example)"
        )


async def _evaluate(kube: Kube, exp: ChaosExperiment, plan: Plan) -> None:
    policies = parse_policies(kube.list_policies())
    client = GuardedClient(EndpointRules.from_policies(plan.target_namespace, policies, kube.api_endpoints()))
    now = dt.datetime.now(dt.UTC)
    try:
        if exp.spec.gate is not None:
            answer = await prometheus.check(exp.spec.gate.prometheus, client, now)
            plan.gate = {"ok": answer.ok, "answer": answer.detail, "refused": answer.refused}
        for probe in exp.spec.steady_state.probes if exp.spec.steady_state else []:
            answer = await check_probe(
                probe, client, plan.target_namespace, LiveReads(kube).list_workloads, now
            )
            plan.probes.append(
                {
                    "name": probe.name,
                    "type": probe.type,
                    "ok": answer.ok,
                    "result": core_probes.HELD if answer.ok else core_probes.FAILED,
                    "answer": answer.detail,
                    "refused": answer.refused,
                }
            )
    finally:
        await client.close()


def plan(kube: Kube, body: dict[str, Any], namespace: str, *, probes: bool = True) -> Plan:
    """What a run of the experiment in `body` would do in `namespace`; creates nothing."""
    body = {**body, "metadata": {**(body.get("metadata") or {}), "namespace": namespace}}
    exp = ChaosExperiment.from_body(body)
    target_ns = effective_target_namespace(namespace, exp.spec.target.namespace)
    result = Plan(exp.name, namespace, target_ns)
    _admission(kube, namespace, body, result)
    _targets(kube, exp, result)
    if probes:
        asyncio.run(_evaluate(kube, exp, result))
    return result
