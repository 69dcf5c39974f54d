"""ChaosExperiment handlers: create the run a slot calls for, keep status in step with the spec."""

from __future__ import annotations

from typing import Any

import kopf

from aftershock import API_VERSION, GROUP, VERSION
from aftershock.api.experiment import ChaosExperiment
from aftershock.api.run import ChaosRunSpec
from aftershock.cluster.experiment_status import refresh_experiment_status
from aftershock.core.conditions import format_time
from aftershock.core.naming import LABEL_EXPERIMENT, LABEL_TRIGGER, run_name
from aftershock.core.times import parse_time
from aftershock.handlers.context import get_context
from aftershock.kube import now
from aftershock.metrics import RECONCILE_ERRORS
from aftershock.runs.review import stamp_slot


@kopf.on.resume(GROUP, VERSION, "chaosexperiments")
@kopf.on.create(GROUP, VERSION, "chaosexperiments")
@kopf.on.update(GROUP, VERSION, "chaosexperiments", field="spec")
def reconcile_experiment(
    body: kopf.Body, meta: kopf.Meta, name: str, namespace: str | None, **_: Any
) -> None:
    assert namespace, "ChaosExperiment is namespaced"
    ctx = get_context()
    try:
        experiment = ChaosExperiment.from_body(body)
        spec = experiment.spec
        if spec.schedule:
            refresh_experiment_status(
                ctx.kube, namespace, name, read=ctx.runs_of
            )  # the scheduler does the rest
            return
        if spec.suspend:
            refresh_experiment_status(ctx.kube, namespace, name, read=ctx.runs_of)
            return
        # run once: the slot is the experiment's creation time, so the run's name is fixed and a
        # second attempt (a restart, a resync) answers 409 instead of running again
        created = parse_time(meta.creation_timestamp) or now()
        run_obj_name = run_name(name, created)
        run: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": "ChaosRun",
            "metadata": {
                "name": run_obj_name,
                "namespace": namespace,
                "labels": {LABEL_EXPERIMENT: name, LABEL_TRIGGER: "once"},
                "ownerReferences": [
                    {
                        "apiVersion": API_VERSION,
                        "kind": "ChaosExperiment",
                        "name": name,
                        "uid": meta.uid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": ChaosRunSpec.from_experiment(name, spec, created).to_json(),
        }
        run = stamp_slot(ctx.run_env().reviews, dict(body), run, ctx.identity)
        created_run = ctx.kube.create("ChaosRun", namespace, run)
        if created_run is not None:
            ctx.kube.post_event(dict(body), "RunCreated", f"created run {run_obj_name}")
        refresh_experiment_status(
            ctx.kube, namespace, name, extra={"lastScheduleTime": format_time(created)}, read=ctx.runs_of
        )
    except Exception:
        RECONCILE_ERRORS.labels("ChaosExperiment", "reconcile").inc()
        raise
