"""ChaosPolicy: every operator keeps the current policies in memory for the kill switch; run
drivers wake and abort the moment any policy is suspended (engines/policy_gate.py). Async: the
kill switch never waits for a thread."""

from __future__ import annotations

from typing import Any

import kopf

from aftershock import GROUP, VERSION
from aftershock.engines.policy_gate import WATCH


@kopf.on.event(GROUP, VERSION, "chaospolicies")
async def policy_changed(event: kopf.RawEvent, name: str, spec: kopf.Spec, **_: Any) -> None:
    if event.get("type") == "DELETED":
        WATCH.update(name, None)
    else:
        WATCH.update(name, dict(spec))
