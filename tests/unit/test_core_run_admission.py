"""What a hand-made ChaosRun may not do: be less safe than its experiment, pose as a schedule
slot, or have its spec changed after it is complete."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aftershock.api.experiment import ChaosExperiment
from aftershock.api.run import ChaosRunSpec
from aftershock.core.run_admission import less_safe, poses_as_slot, spec_change_problem

NOW = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)


def _experiment(**spec: Any) -> ChaosExperiment:
    return ChaosExperiment.from_body(
        {
            "apiVersion": "aftershock.dev/v1alpha1",
            "kind": "ChaosExperiment",
            "metadata": {"name": "exp", "namespace": "team", "uid": "u"},
            "spec": {
                "target": {"kind": "Deployment", "selector": {"matchLabels": {"app": "web"}}, "mode": "one"},
                "fault": {"podDelete": {"gracePeriodSeconds": 0}},
                "recovery": {"objective": "30s", "timeout": "60s"},
                **spec,
            },
        }
    )


def test_a_run_that_only_names_its_experiment_is_as_safe_as_it() -> None:
    assert less_safe(ChaosRunSpec(experiment="exp"), _experiment()) == []
    assert less_safe(ChaosRunSpec(experiment="exp", dry_run=True), _experiment(dryRun=True)) == []


def test_lifting_dry_run_another_target_or_a_suspended_experiment_is_less_safe() -> None:
    lifted = less_safe(ChaosRunSpec(experiment="exp", dry_run=False), _experiment(dryRun=True))
    assert lifted == ["it sets dryRun: false although its experiment is a dry run"]
    other = ChaosRunSpec.model_validate(
        {
            "experiment": "exp",
            "target": {"kind": "Deployment", "selector": {"matchLabels": {"app": "db"}}, "mode": "all"},
        }
    )
    assert less_safe(other, _experiment()) == ["it targets something other than its experiment"]
    longer = ChaosRunSpec.model_validate(
        {"experiment": "exp", "recovery": {"objective": "30s", "timeout": "23h"}}
    )
    assert "its recovery differs" in less_safe(longer, _experiment())[0]
    assert less_safe(ChaosRunSpec(experiment="exp"), _experiment(suspend=True)) == [
        "its experiment exp is suspended"
    ]


def test_only_the_operator_makes_schedule_slots() -> None:
    assert "only aftershock creates runs for schedule slots" in str(
        poses_as_slot("mine", {"aftershock.dev/trigger": "schedule"}, "exp", NOW)
    )
    future = f"exp-{int(NOW.timestamp()) + 3600}"
    assert "future schedule slot" in str(poses_as_slot(future, {}, "exp", NOW))
    assert (
        poses_as_slot(f"exp-{int(NOW.timestamp())}", {"aftershock.dev/trigger": "manual"}, "exp", NOW) is None
    )
    assert poses_as_slot("exp-by-hand", {}, "exp", NOW) is None


def test_a_spec_is_frozen_and_only_filled_with_the_experiments_values() -> None:
    experiment = _experiment(dryRun=True)
    full = ChaosRunSpec.from_experiment("exp", experiment.spec, NOW).to_json()
    bare = {"experiment": "exp"}
    assert spec_change_problem(bare, full, experiment) is None  # what the operator does
    assert "dryRun may only be filled in with its experiment's value" in str(
        spec_change_problem(bare, {**bare, "dryRun": False}, experiment)
    )
    changed = {**full, "dryRun": False}
    assert "spec.dryRun cannot be changed once set" in str(spec_change_problem(full, changed, experiment))
    assert "does not exist" in str(spec_change_problem(bare, {**bare, "dryRun": True}, None))
