"""Before a run starts: was its author checked? (core/review.py says why this is needed.)

A run proves it in one of two ways. Its own stamp holds — the operator stamps the schedule slots
it creates (only for experiments whose stamp holds), the webhook stamps the runs people create.
Or, for a run whose stamp does not hold (made while the webhook was down, or filled in from its
experiment since), its experiment's stamp holds and the run does nothing its experiment does not.
"""

from __future__ import annotations

from aftershock.api.experiment import ChaosExperiment
from aftershock.api.run import ChaosRun
from aftershock.core import review
from aftershock.core.run_admission import less_safe, poses_as_slot
from aftershock.kube import NotFound, Obj, now
from aftershock.runs.base import Abort, Reviews, RunEnv


def experiment_problem(reviews: Reviews, experiment: Obj) -> str | None:
    """Why runs of this experiment may not start (None: its author was checked, or we trust)."""
    if reviews.trust:
        return None
    if reviews.key is None:
        return "this operator has no review key"
    try:
        review.verify(reviews.key, "ChaosExperiment", experiment)
    except review.Unreviewed as exc:
        return str(exc)
    return None


def stamp_slot(reviews: Reviews, experiment: Obj, run: Obj, identity: str) -> Obj:
    """A schedule slot made by the operator, stamped when its experiment's review holds (else left
    unstamped: it then ends Errored, AuthorNotReviewed, with the experiment's reason)."""
    if reviews.key is None or experiment_problem(reviews, experiment) is not None:
        return run
    value = review.stamp(reviews.key, "ChaosRun", run, f"aftershock:{identity}", now())
    meta = dict(run["metadata"])
    meta["annotations"] = {**(meta.get("annotations") or {}), review.ANNOTATION: value}
    return {**run, "metadata": meta}


def restamp_filled(reviews: Reviews, obj: Obj, spec: dict[str, object]) -> dict[str, str]:
    """The annotation for a run the operator fills in from its experiment: its stamp, re-made
    over the filled spec for the same author, when the stamp it had holds (else nothing: the run
    then proves itself through its experiment)."""
    if reviews.key is None:
        return {}
    try:
        found = review.verify(reviews.key, "ChaosRun", obj)
    except review.Unreviewed:
        return {}
    filled = {**obj, "spec": spec}
    return {review.ANNOTATION: review.stamp(reviews.key, "ChaosRun", filled, found.author, now())}


async def check_run(env: RunEnv, obj: Obj, run: ChaosRun, namespace: str) -> None:
    """Abort (AuthorNotReviewed) unless the run's author, or its experiment's, was checked."""
    reviews = env.reviews
    if reviews.trust:
        return
    if reviews.key is None:
        raise Abort(review.REASON, review.refusal(f"ChaosRun {run.name}", "this operator has no review key"))
    try:
        review.verify(reviews.key, "ChaosRun", obj)
        return
    except review.Unreviewed as exc:
        run_problem = str(exc)
    name = run.spec.experiment
    try:
        body = await env.io(env.kube.get, "ChaosExperiment", namespace, name)
    except NotFound as exc:
        raise Abort(
            "ExperimentNotFound",
            f"ChaosExperiment {name} does not exist in namespace {namespace}; nothing was injected",
        ) from exc
    problem = experiment_problem(reviews, body)
    if problem is not None:
        raise Abort(review.REASON, review.refusal(f"ChaosExperiment {name}", problem))
    # the operator stamps every slot it makes for a reviewed experiment: an unstamped run that
    # carries a slot's label or a future slot's name was made by someone else, to suppress or
    # shift the schedule (the webhook refuses it; this is for when the webhook was not there)
    labels = obj["metadata"].get("labels") or {}
    posing = poses_as_slot(run.name, labels, name, now())
    if posing is not None:
        raise Abort("PosesAsSlot", f"ChaosRun {run.name}: {posing}; nothing was injected")
    reasons = less_safe(run.spec, ChaosExperiment.from_body(body))
    if reasons:
        raise Abort(
            review.REASON,
            review.refusal(
                f"ChaosRun {run.name}",
                f"{run_problem}, and it does more than its experiment ({'; '.join(reasons)})",
            ),
        )
