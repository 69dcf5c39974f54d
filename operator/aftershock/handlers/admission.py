"""Validating admission webhooks for ChaosExperiment and ChaosRun (served by kopf over TLS).

failurePolicy is Fail: while the webhook is unreachable, creating or changing experiments and
runs is refused (deleting always works), and runs already scheduled are still re-checked against
the policies right before they inject.

The handlers are async and do their API calls (SubjectAccessReviews, policy reads) on an I/O pool
of their own, so a review never waits behind runs, scheduler ticks or other handlers.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from aftershock import GROUP, VERSION
from aftershock.api.experiment import ChaosExperiment
from aftershock.api.run import ChaosRunSpec
from aftershock.cluster.io import Io
from aftershock.core.naming import LABEL_TRIGGER
from aftershock.core.run_admission import less_safe, poses_as_slot, spec_change_problem
from aftershock.engines.admission import Refused, check_action, check_experiment
from aftershock.handlers.context import get_context
from aftershock.kube import Kube, NotFound, now

log = logging.getLogger(__name__)


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


_operator_user: str | None = None


async def operator_user() -> str | None:
    """The operator's own user name (SelfSubjectReview, asked once): only it makes schedule slots."""
    global _operator_user
    if _operator_user is None:
        try:
            _operator_user = await _io()(_kube().whoami)
        except Exception:  # older API server, or no rights: every run is then reviewed
            log.warning("cannot tell the operator's own user name; reviewing every run", exc_info=True)
            return None
    return _operator_user


@kopf.on.validate(GROUP, VERSION, "chaosruns", operations=["CREATE", "UPDATE"], id="runs")
async def validate_run(
    body: kopf.Body,
    name: str | None,
    namespace: str | None,
    userinfo: kopf.UserInfo,
    warnings: list[str],
    **kwargs: Any,
) -> None:
    """A run of an admitted experiment (its spec, or only its name) is let through: the policy is
    checked again before it injects, and a refusal then is recorded as a Skipped run. A run that
    would be less safe than its experiment (another target or fault, dryRun lifted, a suspended
    experiment) is judged like a new experiment, with its creator as the author. Nobody but the
    operator creates schedule slots, and a run's spec, once complete, is frozen."""
    if body.metadata.get("deletionTimestamp"):
        return
    ctx = get_context()
    ns = namespace or "default"
    spec = ChaosRunSpec.model_validate(dict(body.get("spec") or {}))
    labels = dict(body.metadata.get("labels") or {})
    operation = kwargs.get("operation")
    old = kwargs.get("old") or {}
    if operation == "UPDATE":
        old_labels = dict((old.get("metadata") or {}).get("labels") or {})
        if labels.get(LABEL_TRIGGER) != old_labels.get(LABEL_TRIGGER):
            raise kopf.AdmissionError(f"the label {LABEL_TRIGGER} of a run cannot be changed", code=403)
        if _unchanged_spec(operation, old, body):
            return  # metadata only (kopf's finalizer, labels): nothing to judge
    try:
        experiment: ChaosExperiment | None = ChaosExperiment.from_body(
            await _io()(_kube().get, "ChaosExperiment", ns, spec.experiment)
        )
    except NotFound as exc:
        if operation == "CREATE":
            raise kopf.AdmissionError(
                f"ChaosExperiment {spec.experiment} does not exist in namespace {ns}", code=404
            ) from exc
        experiment = None
    if operation == "UPDATE":
        problem = spec_change_problem(dict(old.get("spec") or {}), dict(body.get("spec") or {}), experiment)
        if problem:
            raise kopf.AdmissionError(f"ChaosRun {name}: {problem}", code=403)
        return
    assert experiment is not None
    # the operator's own slots are the only runs that may carry the schedule's label and names
    posing = poses_as_slot(str(name or ""), labels, spec.experiment, now())
    if posing and dict(userinfo).get("username") != await operator_user():
        raise kopf.AdmissionError(f"ChaosRun {name}: {posing}", code=403)
    reasons = less_safe(spec, experiment)
    if not reasons:
        return
    try:
        outcome = await _io()(
            check_action,
            _kube(),
            target=spec.target or experiment.spec.target,
            fault=spec.fault or experiment.spec.fault,
            recovery=spec.recovery or experiment.spec.recovery,
            namespace=ns,
            user=dict(userinfo),
            operator_namespace=ctx.operator_namespace,
            now=now(),
            runs_now=True,
        )
    except Refused as exc:
        raise kopf.AdmissionError(
            f"ChaosRun {name} would do more than its experiment ({'; '.join(reasons)}), so its creator"
            f" is checked as an experiment author would be, and refused: {exc}",
            code=403,
        ) from exc
    warnings.extend(outcome.warnings)
