"""What a ChaosRun made or changed by someone other than the operator may not do.

A run executes an experiment someone was admitted to author. A run made by hand must not be a
way around that: it may not be less safe than its experiment unless its creator passes the
author's checks themselves, may not pose as a schedule slot (that would suppress or shift the
schedule), and its spec, once complete, is frozen — only what was left out may be filled in, and
only with the experiment's own values (which is what the operator does).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from aftershock.api.experiment import ChaosExperiment
from aftershock.api.run import ChaosRunSpec
from aftershock.core.naming import LABEL_TRIGGER, parse_run_name

SLOT_SKEW = dt.timedelta(seconds=1)


def less_safe(spec: ChaosRunSpec, experiment: ChaosExperiment) -> list[str]:
    """How the run would do more than its experiment allows (empty: it does not)."""
    found = []
    if spec.target is not None and spec.target != experiment.spec.target:
        found.append("it targets something other than its experiment")
    if spec.fault is not None and spec.fault != experiment.spec.fault:
        found.append("its fault differs from its experiment's")
    if spec.recovery is not None and spec.recovery != experiment.spec.recovery:
        found.append("its recovery differs from its experiment's (a longer timeout holds a run longer)")
    complete = spec.is_complete()  # a complete spec is never filled in: what it leaves out stays out
    if (spec.steady_state is not None or complete) and spec.steady_state != experiment.spec.steady_state:
        found.append(
            "its steady-state hypothesis differs from its experiment's (probes and abortAfter guard the run)"
        )
    if (spec.gate is not None or complete) and spec.gate != experiment.spec.gate:
        found.append("its error-budget gate differs from its experiment's")
    if spec.dry_run is False and experiment.spec.dry_run:
        found.append("it sets dryRun: false although its experiment is a dry run")
    if experiment.spec.suspend:
        found.append(f"its experiment {experiment.name} is suspended")
    return found


def poses_as_slot(name: str, labels: Mapping[str, str], experiment: str, now: dt.datetime) -> str | None:
    """Why a run made by someone other than the operator would interfere with the schedule."""
    if labels.get(LABEL_TRIGGER) == "schedule":
        return (
            f"only aftershock creates runs for schedule slots (label {LABEL_TRIGGER}=schedule); use"
            f" {LABEL_TRIGGER}=manual, or leave the label out"
        )
    parsed = parse_run_name(name)
    if parsed is not None and parsed[0] == experiment and parsed[1] > now + SLOT_SKEW:
        return (
            f"the name {name} is the name of a future schedule slot of {experiment} ({parsed[1].isoformat()});"
            " choose another name"
        )
    return None


def spec_change_problem(
    old: Mapping[str, Any], new: Mapping[str, Any], experiment: ChaosExperiment | None
) -> str | None:
    """Why this change of a run's spec is refused; None when it only fills in what was left out
    with exactly the experiment's values (as the operator does)."""
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if before is not None:
            return f"spec.{key} cannot be changed once set"
        if key == "scheduledTime":
            continue  # a hand-made run's slot is its creation time, filled in by the operator
        if experiment is None:
            return f"spec.{key} can only be filled in from the run's experiment, which does not exist"
        wanted = ChaosRunSpec.from_experiment(experiment.name, experiment.spec, dt.datetime.now(dt.UTC))
        field = next((f for f, info in ChaosRunSpec.model_fields.items() if (info.alias or f) == key), None)
        try:
            filled = ChaosRunSpec.model_validate(dict(new))
        except ValidationError as exc:
            return f"spec is invalid: {exc.errors()[0]['msg']}"
        if field is None or getattr(filled, field) != getattr(wanted, field):
            return (
                f"spec.{key} may only be filled in with its experiment's value (a run is frozen once"
                " created; create a new run to do something else)"
            )
    return None
