"""Recompute and write an experiment's status from its runs (the I/O around core)."""

from __future__ import annotations

from aftershock.core.experiment_status import experiment_status
from aftershock.core.naming import LABEL_EXPERIMENT
from aftershock.kube import Kube, NotFound, now


def refresh_experiment_status(
    kube: Kube, namespace: str, name: str, *, stalled_reason: str | None = None, stalled_message: str = ""
) -> None:
    try:
        experiment = kube.get("ChaosExperiment", namespace, name)
    except NotFound:
        return
    runs = kube.list_objects("ChaosRun", namespace, label_selector=f"{LABEL_EXPERIMENT}={name}")
    runs = [
        r
        for r in runs
        if any(
            o.get("uid") == experiment["metadata"]["uid"] for o in r["metadata"].get("ownerReferences") or []
        )
    ]
    status = experiment_status(
        runs,
        generation=experiment["metadata"].get("generation"),
        previous_conditions=(experiment.get("status") or {}).get("conditions"),
        now=now(),
        stalled_reason=stalled_reason,
        stalled_message=stalled_message,
    )
    kube.patch_status("ChaosExperiment", namespace, name, status)
