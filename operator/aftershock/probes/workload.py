"""The kubernetes probe: a workload's readiness, read from the operator's watch-fed cache."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aftershock.api.steady_state import KubernetesProbe
from aftershock.core.probes import Answer

Lister = Callable[
    [str, str, str], Sequence[Mapping[str, Any]]
]  # (kind, namespace, label selector) -> objects


def ready_of(kind: str, workload: Mapping[str, Any]) -> tuple[int, bool]:
    """(Ready replicas, available) as the workload's controller reports them."""
    status = workload.get("status") or {}
    if kind == "DaemonSet":
        ready = int(status.get("numberReady") or 0)
        return ready, ready > 0 and int(status.get("numberUnavailable") or 0) == 0
    ready = int(status.get("readyReplicas") or 0)
    if kind == "Deployment":
        conditions = status.get("conditions") or []
        available = any(c.get("type") == "Available" and c.get("status") == "True" for c in conditions)
        return ready, available
    return ready, ready > 0


def check(probe: KubernetesProbe, namespace: str, lister: Lister, now: dt.datetime) -> Answer:
    kind = str(probe.kind)
    found = next(
        (w for w in lister(kind, namespace, "") if (w.get("metadata") or {}).get("name") == probe.name), None
    )
    if found is None:
        return Answer(ok=False, detail=f"{kind} {namespace}/{probe.name} does not exist", at=now)
    ready, available = ready_of(kind, found)
    said = f"{kind} {probe.name}: {ready} Ready" + (", Available" if available else ", not Available")
    if probe.available and not available:
        return Answer(ok=False, detail=said, at=now)
    if probe.ready_at_least is not None and ready < probe.ready_at_least:
        return Answer(ok=False, detail=f"{said} (needs at least {probe.ready_at_least})", at=now)
    return Answer(ok=True, detail=said, at=now)
