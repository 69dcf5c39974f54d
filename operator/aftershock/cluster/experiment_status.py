"""Recompute and write an experiment's status from its runs (the I/O around core).

Runs are read from the watch-fed cache when there is one, and the status is written only when it
changed: a scheduled experiment costs no API write on a tick that changed nothing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aftershock.core.experiment_status import experiment_status
from aftershock.core.naming import LABEL_EXPERIMENT
from aftershock.kube import Kube, NotFound, Obj, now

RunsReader = Callable[[str, str], list[Obj]]
"""(namespace, experiment name) → the runs labelled with that experiment (e.g. from the cache)."""


def owned_runs(
    kube: Kube, namespace: str, name: str, uid: str | None, read: RunsReader | None = None
) -> list[Obj]:
    """The experiment's runs: labelled with its name *and* owned by this very object (a deleted
    and re-created experiment of the same name does not inherit runs)."""
    if read is not None:
        runs = read(namespace, name)
    else:
        runs = kube.list_objects("ChaosRun", namespace, label_selector=f"{LABEL_EXPERIMENT}={name}")
    return [r for r in runs if any(o.get("uid") == uid for o in r["metadata"].get("ownerReferences") or [])]


def _differs(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    return any(current.get(key) != value for key, value in wanted.items())


def refresh_experiment_status(
    kube: Kube,
    namespace: str,
    name: str,
    *,
    stalled_reason: str | None = None,
    stalled_message: str = "",
    extra: Mapping[str, Any] | None = None,
    suspended: bool | None = None,
    read: RunsReader | None = None,
    experiment: Obj | None = None,
) -> None:
    if experiment is None:
        try:
            experiment = kube.get("ChaosExperiment", namespace, name)
        except NotFound:
            return
    if experiment["metadata"].get("deletionTimestamp"):
        return
    runs = owned_runs(kube, namespace, name, experiment["metadata"]["uid"], read)
    current = experiment.get("status") or {}
    if suspended is None:
        suspended = bool((experiment.get("spec") or {}).get("suspend"))
    status = experiment_status(
        runs,
        generation=experiment["metadata"].get("generation"),
        previous_conditions=current.get("conditions"),
        now=now(),
        stalled_reason=stalled_reason,
        stalled_message=stalled_message,
        retired=current.get("history"),
        suspended=suspended,
        scheduled=bool((experiment.get("spec") or {}).get("schedule")),
    )
    status.update(extra or {})
    if _differs(current, status):
        kube.patch_status("ChaosExperiment", namespace, name, status)
