from __future__ import annotations

import pytest

from aftershock.core.selectors import SelectorError, is_empty, matches, to_label_selector


def test_match_labels_and_expressions_render_in_a_stable_order() -> None:
    selector = {
        "matchLabels": {"tier": "web", "app": "checkout"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "canary"]},
            {"key": "track", "operator": "NotIn", "values": ["legacy"]},
            {"key": "team", "operator": "Exists"},
            {"key": "frozen", "operator": "DoesNotExist"},
        ],
    }
    assert to_label_selector(selector) == (
        "app=checkout,tier=web,env in (canary,prod),track notin (legacy),team,!frozen"
    )


def test_empty_selector_renders_empty_and_is_reported_empty() -> None:
    assert to_label_selector(None) == ""
    assert to_label_selector({}) == ""
    assert is_empty({"matchLabels": {}})
    assert not is_empty({"matchLabels": {"a": "b"}})


@pytest.mark.parametrize(
    "expr",
    [{"key": "a", "operator": "In", "values": []}, {"key": "a", "operator": "Near", "values": ["x"]}],
)
def test_unrenderable_expressions_are_refused(expr: dict[str, object]) -> None:
    with pytest.raises(SelectorError, match="'a'"):
        to_label_selector({"matchExpressions": [expr]})


def test_matches_follows_kubernetes_semantics() -> None:
    selector = {
        "matchLabels": {"app": "checkout"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod"]},
            {"key": "track", "operator": "NotIn", "values": ["legacy"]},
            {"key": "frozen", "operator": "DoesNotExist"},
        ],
    }
    assert matches(selector, {"app": "checkout", "env": "prod"})
    assert not matches(selector, {"app": "checkout", "env": "dev"})
    assert not matches(selector, {"app": "checkout", "env": "prod", "track": "legacy"})
    assert not matches(selector, {"app": "checkout", "env": "prod", "frozen": "yes"})
    assert not matches(selector, {"env": "prod"})
    assert matches(None, {"anything": "x"})
    assert matches({"matchExpressions": [{"key": "team", "operator": "Exists"}]}, {"team": ""})


def test_live_selectors_render_beyond_the_api_models_size_limits() -> None:
    # A workload's own selector is not bound by the ChaosExperiment schema's limits.
    labels = {f"k{i:03}": "v" for i in range(100)}
    assert to_label_selector({"matchLabels": labels}) == ",".join(f"k{i:03}=v" for i in range(100))
