"""Validating admission webhooks for ChaosExperiment and ChaosRun (served by kopf over TLS).

failurePolicy is Fail: while the webhook is unreachable, creating or changing experiments and
runs is refused (deleting always works), and runs already scheduled are still re-checked against
the policies right before they inject.

The handlers are async and do their API calls (SubjectAccessReviews, policy reads) on an I/O pool
of their own, so a review never waits behind runs, scheduler ticks or other handlers.
"""

from __future__ import annotations

from typing import Any

import kopf

from aftershock import GROUP, VERSION
from aftershock.api.experiment import ChaosExperiment
from aftershock.api.run import ChaosRunSpec
from aftershock.cluster.io import Io
from aftershock.engines.admission import Refused, check_action, check_experiment
from aftershock.handlers.context import get_context
from aftershock.kube import Kube, NotFound, now


def _io() -> Io:
    io = get_context().admission_io
    assert io is not None, "the admission pool is built at startup"
    return io


def _kube() -> Kube:
    kube = get_context().admission_kube
    assert kube is not None, "the admission client is built at startup"
    return kube


def _unchanged_spec(operation: str | None, old: Any, body: kopf.Body) -> bool:
    """Metadata-only updates (finalizers, annotations, labels) are not ours to judge."""
    return (
        operation == "UPDATE"
        and old is not None
        and dict(old.get("spec") or {}) == dict(body.get("spec") or {})
    )


@kopf.on.validate(GROUP, VERSION, "chaosexperiments", operations=["CREATE", "UPDATE"], id="experiments")
async def validate_experiment(
    body: kopf.Body, namespace: str | None, userinfo: kopf.UserInfo, warnings: list[str], **kwargs: Any
) -> None:
    if body.metadata.get("deletionTimestamp") or _unchanged_spec(
        kwargs.get("operation"), kwargs.get("old"), body
    ):
        return
    ctx = get_context()
    try:
        outcome = await _io()(
            check_experiment,
            _kube(),
            dict(body.get("spec") or {}),
            namespace=namespace or "default",
            user=dict(userinfo),
            operator_namespace=ctx.operator_namespace,
            now=now(),
        )
    except Refused as exc:
        raise kopf.AdmissionError(str(exc), code=403) from exc
    warnings.extend(outcome.warnings)


@kopf.on.validate(GROUP, VERSION, "chaosruns", operations=["CREATE"], id="runs")
async def validate_run(
    body: kopf.Body, namespace: str | None, userinfo: kopf.UserInfo, warnings: list[str], **_: Any
) -> None:
    """A run of an admitted experiment (its spec, or only its name) is let through: the policy is
    checked again before it injects, and a refusal then is recorded as a Skipped run. A run whose
    target or fault differs from its experiment is judged like a new experiment."""
    ctx = get_context()
    ns = namespace or "default"
    spec = ChaosRunSpec.model_validate(dict(body.get("spec") or {}))
    try:
        experiment = ChaosExperiment.from_body(
            await _io()(_kube().get, "ChaosExperiment", ns, spec.experiment)
        )
    except NotFound as exc:
        raise kopf.AdmissionError(
            f"ChaosExperiment {spec.experiment} does not exist in namespace {ns}", code=404
        ) from exc
    same_target = spec.target is None or spec.target == experiment.spec.target
    same_fault = spec.fault is None or spec.fault == experiment.spec.fault
    if same_target and same_fault:
        return
    try:
        outcome = await _io()(
            check_action,
            _kube(),
            target=spec.target or experiment.spec.target,
            fault=spec.fault or experiment.spec.fault,
            namespace=ns,
            user=dict(userinfo),
            operator_namespace=ctx.operator_namespace,
            now=now(),
            runs_now=True,
        )
    except Refused as exc:
        raise kopf.AdmissionError(str(exc), code=403) from exc
    warnings.extend(outcome.warnings)
