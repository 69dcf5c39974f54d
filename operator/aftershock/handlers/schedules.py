"""Experiments feed the one scheduler (scheduling/scheduler.py): every watch event of a
ChaosExperiment updates its index; the scheduler's loop does the rest — slots of scheduled
experiments, the one run of the others. No daemon, no thread and no timer per experiment."""

from __future__ import annotations

from typing import Any

import kopf

from aftershock import GROUP, VERSION
from aftershock.handlers.context import get_context


@kopf.on.event(GROUP, VERSION, "chaosexperiments")
async def experiment_event(event: kopf.RawEvent, body: kopf.Body, **_: Any) -> None:
    scheduler = get_context().scheduler
    assert scheduler is not None, "the scheduler is built at startup"
    scheduler.observe(event.get("type"), dict(event.get("object") or body))
