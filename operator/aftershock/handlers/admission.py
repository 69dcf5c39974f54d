"""Admission webhooks for ChaosExperiment and ChaosRun (served by kopf over TLS).

Mutating: checks the author (the same checks as validation) and stamps what it checked with an
HMAC (core/review.py), so a run can later prove its author was checked even if the webhook is
disabled or, with failurePolicy Ignore, was unreachable when something was written — a run
without that proof ends Errored (runs/review.py). Validating: refuses what the checks refuse,
for an object that arrives without a stamp this webhook just made for the same user.

failurePolicy is Fail: while the webhook is unreachable, creating or changing experiments and
runs is refused (deleting always works), and runs already scheduled are still re-checked against
the policies right before they inject.

The handlers are async and do their API calls (SubjectAccessReviews, policy reads) on an I/O pool
of their own, so a review never waits behind runs, scheduler ticks or other handlers.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import kopf

from aftershock import GROUP, VERSION
from aftershock.api.experiment import ChaosExperiment
from aftershock.api.run import ChaosRunSpec
from aftershock.cluster.io import Io
from aftershock.core import review
from aftershock.core.naming import LABEL_TRIGGER
from aftershock.core.run_admission import less_safe, poses_as_slot, spec_change_problem
from aftershock.engines.admission import Outcome, Refused, check_action, check_experiment
from aftershock.handlers.context import get_context
from aftershock.kube import Kube, NotFound, Obj, now
from aftershock.metrics import ADMISSION
from aftershock.runs.base import Reviews
from aftershock.runs.review import experiment_problem
from aftershock.runs.view import CachedView

log = logging.getLogger(__name__)
Handler = TypeVar("Handler", bound=Callable[..., Awaitable[None]])


def timed(webhook: str) -> Callable[[Handler], Handler]:
    """Count the handler's time in aftershock_admission_seconds (kopf adds little around it)."""

    def wrap(fn: Handler) -> Handler:
        @functools.wraps(fn)
        async def handler(**kwargs: Any) -> None:
            began, answer = time.perf_counter(), "refused"
            try:
                await fn(**kwargs)
                answer = "allowed"
            finally:
                ADMISSION.labels(webhook, answer).observe(time.perf_counter() - began)

        return handler  # type: ignore[return-value]

    return wrap


def _io() -> Io:
    io = get_context().admission_io
    assert io is not None, "the admission pool is built at startup"
    return io


def _kube() -> Kube:
    kube = get_context().admission_kube
    assert kube is not None, "the admission client is built at startup"
    return kube


def _cached() -> CachedView | None:
    """Policies and workloads from the watch-fed cache (engines/admission.py says when they count)."""
    cache = get_context().cache
    return CachedView(cache) if cache is not None else None


def _unchanged_spec(operation: str | None, old: Any, body: kopf.Body) -> bool:
    """Metadata-only updates (finalizers, annotations, labels) are not ours to judge."""
    return (
        operation == "UPDATE"
        and old is not None
        and dict(old.get("spec") or {}) == dict(body.get("spec") or {})
    )


async def _check_experiment(body: kopf.Body, namespace: str | None, userinfo: kopf.UserInfo) -> Outcome:
    try:
        return await _io()(
            check_experiment,
            _kube(),
            dict(body.get("spec") or {}),
            namespace=namespace or "default",
            user=dict(userinfo),
            operator_namespace=get_context().operator_namespace,
            now=now(),
            cached=_cached(),
        )
    except Refused as exc:
        raise kopf.AdmissionError(str(exc), code=403) from exc


def _reviews() -> Reviews:
    return get_context().run_env().reviews


def _stamped_for(kind: str, body: kopf.Body | Obj, username: object) -> bool:
    """Whether the object carries a stamp this webhook made, for this user, for it as it is."""
    key = _reviews().key
    if key is None or not username:
        return False
    try:
        return review.verify(key, kind, dict(body)).author == str(username)
    except review.Unreviewed:
        return False


def _annotation(body: kopf.Body | Obj | None) -> str | None:
    if body is None:
        return None
    return ((dict(body).get("metadata") or {}).get("annotations") or {}).get(review.ANNOTATION)


def _keep(patch: kopf.Patch, body: kopf.Body, value: str | None) -> None:
    """Put the review annotation back as it was (nobody writes it but this webhook)."""
    if _annotation(body) != value:
        patch.metadata.annotations[review.ANNOTATION] = value


@kopf.on.validate(GROUP, VERSION, "chaosexperiments", operations=["CREATE", "UPDATE"], id="experiments")
@timed("experiments")
async def validate_experiment(
    body: kopf.Body, namespace: str | None, userinfo: kopf.UserInfo, warnings: list[str], **kwargs: Any
) -> None:
    if body.metadata.get("deletionTimestamp") or _unchanged_spec(
        kwargs.get("operation"), kwargs.get("old"), body
    ):
        return
    if _stamped_for("ChaosExperiment", body, dict(userinfo).get("username")):
        return  # the mutating webhook checked this very spec for this user a moment ago
    warnings.extend((await _check_experiment(body, namespace, userinfo)).warnings)


@kopf.on.mutate(GROUP, VERSION, "chaosexperiments", operations=["CREATE", "UPDATE"], id="review-experiments")
@timed("review-experiments")
async def review_experiment(
    body: kopf.Body,
    namespace: str | None,
    userinfo: kopf.UserInfo,
    warnings: list[str],
    patch: kopf.Patch,
    **kwargs: Any,
) -> None:
    """Check the author and stamp the experiment. An update that leaves the spec alone keeps the
    stamp it had; where there was none that holds (written while the webhook was down), the
    person updating it is checked and, if allowed, becomes its reviewed author."""
    reviews = _reviews()
    if body.metadata.get("deletionTimestamp") or reviews.key is None:
        return
    username = dict(userinfo).get("username")
    old = kwargs.get("old")
    if kwargs.get("operation") == "UPDATE" and old is not None:
        before = _annotation(old)
        if username == await operator_user():
            _keep(patch, body, before)  # the operator's own writes never review anything
            return
        if _unchanged_spec("UPDATE", old, body):
            restored = {
                **dict(body),
                "metadata": {**dict(body.metadata), "annotations": {review.ANNOTATION: before}},
            }
            if before and experiment_problem(reviews, restored) is None:
                _keep(patch, body, before)
                return
            try:
                outcome = await _check_experiment(body, namespace, userinfo)
            except kopf.AdmissionError as exc:
                _keep(
                    patch, body, before
                )  # a metadata change is not refused; the experiment stays unreviewed
                warnings.append(f"this experiment stays unreviewed and its runs are refused: {exc}")
                return
            warnings.extend(outcome.warnings)
            patch.metadata.annotations[review.ANNOTATION] = review.stamp(
                reviews.key, "ChaosExperiment", dict(body), str(username), now()
            )
            return
    try:
        warnings.extend((await _check_experiment(body, namespace, userinfo)).warnings)
    except kopf.AdmissionError:
        # not stamped; refusing is left to the CRD schema and the validating webhook, which
        # run after this one and say it in their own words
        _keep(patch, body, None)
        return
    patch.metadata.annotations[review.ANNOTATION] = review.stamp(
        reviews.key, "ChaosExperiment", dict(body), str(username or ""), now()
    )


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
@timed("runs")
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
    ns = namespace or "default"
    spec = ChaosRunSpec.model_validate(dict(body.get("spec") or {}))
    labels = dict(body.metadata.get("labels") or {})
    operation = kwargs.get("operation")
    old = kwargs.get("old") or {}
    if operation == "CREATE" and await _operators_own_slot(body, userinfo):
        return  # made from its reviewed experiment by the operator itself: nothing to add
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
    if not reasons or _stamped_for("ChaosRun", body, dict(userinfo).get("username")):
        return  # no more than its experiment, or checked a moment ago by the mutating webhook
    warnings.extend((await _check_run_author(body, name, namespace, userinfo, experiment, reasons)).warnings)


def _operator_stamped(body: kopf.Body) -> bool:
    """The run carries a stamp the operator made itself (runs/review.py stamp_slot), for it as it is."""
    key = _reviews().key
    if key is None or not _annotation(body):
        return False
    try:
        return review.verify(key, "ChaosRun", dict(body), admitting=True).author.startswith("aftershock:")
    except review.Unreviewed:
        return False


async def _operators_own_slot(body: kopf.Body, userinfo: kopf.UserInfo) -> bool:
    """A run this operator creates (a slot, a once-run) and stamped itself, for it as it is."""
    username = dict(userinfo).get("username")
    return bool(username) and username == await operator_user() and _operator_stamped(body)


async def _check_run_author(
    body: kopf.Body,
    name: str | None,
    namespace: str | None,
    userinfo: kopf.UserInfo,
    experiment: ChaosExperiment,
    reasons: list[str],
) -> Outcome:
    """A run that does more than its experiment: its creator is checked as an author would be."""
    spec = ChaosRunSpec.model_validate(dict(body.get("spec") or {}))
    try:
        return await _io()(
            check_action,
            _kube(),
            target=spec.target or experiment.spec.target,
            fault=spec.fault or experiment.spec.fault,
            recovery=spec.recovery or experiment.spec.recovery,
            namespace=namespace or "default",
            user=dict(userinfo),
            operator_namespace=get_context().operator_namespace,
            now=now(),
            runs_now=True,
            cached=_cached(),
        )
    except Refused as exc:
        raise kopf.AdmissionError(
            f"ChaosRun {name} would do more than its experiment ({'; '.join(reasons)}), so its creator"
            f" is checked as an experiment author would be, and refused: {exc}",
            code=403,
        ) from exc


@kopf.on.mutate(GROUP, VERSION, "chaosruns", operations=["CREATE", "UPDATE"], id="review-runs")
@timed("review-runs")
async def review_run(
    body: kopf.Body,
    name: str | None,
    namespace: str | None,
    userinfo: kopf.UserInfo,
    warnings: list[str],
    patch: kopf.Patch,
    **kwargs: Any,
) -> None:
    """Stamp a run when it is created: one that does more than its experiment after its creator
    passes the author's checks, any other only while its experiment's own stamp holds. The
    operator stamps the slots it makes itself; nobody changes a stamp afterwards."""
    reviews = _reviews()
    if body.metadata.get("deletionTimestamp") or reviews.key is None:
        return
    old = kwargs.get("old")
    username = dict(userinfo).get("username")
    if kwargs.get("operation") == "UPDATE":
        if username != await operator_user():  # it re-stamps a run it fills in (runs/review.py)
            _keep(patch, body, _annotation(old))
        return
    if _operator_stamped(body):
        return  # a slot the operator made and stamped itself
    ns = namespace or "default"
    try:
        spec = ChaosRunSpec.model_validate(dict(body.get("spec") or {}))
        found = await _io()(_kube().get, "ChaosExperiment", ns, spec.experiment)
    except Exception:
        _keep(patch, body, None)  # invalid, or no experiment: validation refuses it with the reason
        return
    experiment = ChaosExperiment.from_body(found)
    reasons = less_safe(spec, experiment)
    if reasons:
        try:
            outcome = await _check_run_author(body, name, ns, userinfo, experiment, reasons)
            warnings.extend(outcome.warnings)
        except kopf.AdmissionError:
            _keep(patch, body, None)  # the validating webhook refuses it, with the reason
            return
    else:
        problem = experiment_problem(reviews, found)
        if problem is not None:
            _keep(patch, body, None)
            warnings.append(
                f"ChaosExperiment {experiment.name} was never checked by the admission webhook ({problem}):"
                f" this run will end Errored ({review.REASON}); re-apply the experiment first"
            )
            return
    patch.metadata.annotations[review.ANNOTATION] = review.stamp(
        reviews.key, "ChaosRun", dict(body), str(username or ""), now()
    )
