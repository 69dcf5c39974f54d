"""The catalogue follows the ChaosHub: every parameter aftershock offers is one the hub's
ChaosExperiment defines, every hub experiment is offered or has a documented reason, every hub
parameter is offered, set by aftershock, or withheld with a reason, and the hub's own defaults pass
the catalogue's shapes.

The hub file is LitmusChaos's (chaos-charts 3.28.0, all 31 Kubernetes experiments):
$AFTERSHOCK_LITMUS_HUB when it names a file, else $AFTERSHOCK_LITMUS_SRC/hub/kubernetes-experiments.yaml,
else ../shared/litmus/hub/kubernetes-experiments.yaml next to the checkout. The project keeps no copy.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from aftershock.api import litmus_catalog as catalog
from aftershock.core.litmus_params import undefined_message, undefined_parameters

REPO = Path(__file__).resolve().parents[2]
HUB_IN_SOURCE = Path("hub") / "kubernetes-experiments.yaml"


def hub_path() -> Path:
    """Where the hub file is; fails (never skips) with what to set when it is absent."""
    hub = os.environ.get("AFTERSHOCK_LITMUS_HUB", "")
    if hub and "://" not in hub:  # a URL is test_litmus_real.py's hub, not a file
        candidates = [Path(hub)]
    else:
        source = os.environ.get("AFTERSHOCK_LITMUS_SRC")
        candidates = (
            [Path(source) / HUB_IN_SOURCE] if source else [REPO.parent / "shared" / "litmus" / HUB_IN_SOURCE]
        )
    for path in candidates:
        if path.is_file():
            return path
    pytest.fail(
        f"the LitmusChaos ChaosHub file is not at {', '.join(map(str, candidates))}: the catalogue is checked"
        " against it. Put LitmusChaos's material at ../shared/litmus next to the checkout, set"
        " AFTERSHOCK_LITMUS_SRC to it, or AFTERSHOCK_LITMUS_HUB to a kubernetes-experiments.yaml"
    )


@cache
def hub() -> dict[str, dict[str, Any]]:
    """The hub's ChaosExperiments by name."""
    docs = [d for d in yaml.safe_load_all(hub_path().read_text()) if d]
    return {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ChaosExperiment"}


def hub_env(name: str) -> dict[str, str]:
    return {e["name"]: str(e.get("value", "")) for e in hub()[name]["spec"]["definition"].get("env") or []}


def test_the_hub_file_is_the_whole_kubernetes_hub() -> None:
    assert len(hub()) == 31, sorted(hub())


def test_every_catalogue_parameter_is_defined_by_the_hubs_experiment() -> None:
    """A parameter the hub's experiment does not define would be passed and silently ignored."""
    missing = {
        name: undefined
        for name, spec in catalog.CATALOG.items()
        if name in hub()
        and (undefined := undefined_parameters(hub()[name], {p.name: "" for p in spec.params}))
    }
    assert missing == {}, f"catalogue parameters the ChaosHub does not define: {missing}"


def test_every_catalogue_experiment_is_in_the_hub() -> None:
    assert sorted(set(catalog.CATALOG) - set(hub())) == []


def test_every_hub_experiment_is_offered_or_has_a_documented_reason() -> None:
    """Every hub experiment targets pods or nodes of a workload; each is in the catalogue, or in
    UNSUPPORTED with its reason (shown in docs/litmus-catalogue.md), never both."""
    unexplained = sorted(set(hub()) - set(catalog.CATALOG) - set(catalog.UNSUPPORTED))
    assert unexplained == [], f"hub experiments neither offered nor explained in UNSUPPORTED: {unexplained}"
    assert set(catalog.UNSUPPORTED) <= set(hub()), "UNSUPPORTED names experiments the hub does not have"
    assert not set(catalog.UNSUPPORTED) & set(catalog.CATALOG)
    assert all(len(reason) > 40 for reason in catalog.UNSUPPORTED.values())


def test_every_hub_parameter_is_offered_set_by_aftershock_or_withheld() -> None:
    """A new hub parameter makes this fail until someone decides: offer it (with a shape), or
    withhold it with a reason."""
    undecided = {}
    for name, spec in catalog.CATALOG.items():
        offered = {p.name for p in spec.params}
        rest = set(hub_env(name)) - offered - set(catalog.MANAGED_ENV) - set(catalog.WITHHELD)
        if rest:
            undecided[name] = sorted(rest)
    assert undecided == {}, f"hub parameters neither offered, set by aftershock nor withheld: {undecided}"


def test_the_hubs_default_values_pass_the_catalogues_shapes() -> None:
    """The shapes are not stricter than Litmus's own examples: every non-empty hub default of an
    offered parameter is accepted."""
    refused = {
        (name, p.name, value)
        for name, spec in catalog.CATALOG.items()
        for p in spec.params
        if (value := hub_env(name).get(p.name, "")) and not p.accepts(value)
    }
    assert refused == set()


def test_node_experiments_take_the_node_variable_their_hub_definition_has() -> None:
    for name, spec in catalog.CATALOG.items():
        env = hub_env(name)
        if spec.scope is catalog.Scope.NODE:
            assert spec.node_env in env, (name, spec.node_env)
        else:
            assert "TARGET_NODE" not in env and "TARGET_NODES" not in env, name


def test_undefined_parameters_reads_the_installed_definition() -> None:
    pod_delete = hub()["pod-delete"]
    assert undefined_parameters(pod_delete, {"FORCE": "true", "CHAOS_INTERVAL": "5"}) == []
    assert undefined_parameters(pod_delete, {"NETWORK_LATENCY": "300", "FORCE": "true", "A": "1"}) == [
        "A",
        "NETWORK_LATENCY",
    ]
    older = {"spec": {"definition": {"env": [{"name": "FORCE", "value": "true"}]}}}
    assert undefined_parameters(older, {"FORCE": "false", "CHAOS_INTERVAL": "5"}) == ["CHAOS_INTERVAL"]
    assert undefined_parameters({"spec": {}}, {"FORCE": "true"}) == ["FORCE"]
    assert undefined_parameters({}, {}) == []
    message = undefined_message("pod-delete", "shop", ["CHAOS_INTERVAL"])
    assert "does not define CHAOS_INTERVAL" in message and "nothing was injected" in message
