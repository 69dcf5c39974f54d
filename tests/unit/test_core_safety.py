from __future__ import annotations

import pytest

from aftershock.core.safety import PROTECTED_NAMESPACES, check_target_namespace, effective_target_namespace


def test_protected_namespaces() -> None:
    assert frozenset({"kube-system", "kube-public", "kube-node-lease"}) == PROTECTED_NAMESPACES


def test_default_target_is_own_namespace() -> None:
    assert effective_target_namespace("shop", None) == "shop"
    assert effective_target_namespace("shop", "") == "shop"
    assert effective_target_namespace("shop", "other") == "other"


@pytest.mark.parametrize("target", [None, "", "shop"])
def test_own_namespace_allowed(target: str | None) -> None:
    assert check_target_namespace("shop", target, "aftershock-system") is None


def test_allowed_without_known_operator_namespace() -> None:
    assert check_target_namespace("shop", "shop", None) is None


@pytest.mark.parametrize("ns", sorted(PROTECTED_NAMESPACES))
def test_protected_namespace_refused_even_for_own(ns: str) -> None:
    # An experiment created inside kube-system still may not break kube-system.
    for target in (None, ns):
        reason = check_target_namespace(ns, target, "aftershock-system")
        assert reason is not None
        assert f"namespace '{ns}' is protected" in reason


def test_protected_namespace_refused_cross_namespace() -> None:
    reason = check_target_namespace("shop", "kube-system", None)
    assert reason is not None and "protected" in reason


def test_operator_namespace_refused() -> None:
    reason = check_target_namespace("aftershock-system", None, "aftershock-system")
    assert reason is not None
    assert "where the aftershock operator runs" in reason


def test_operator_namespace_refused_cross_namespace() -> None:
    reason = check_target_namespace("shop", "aftershock-system", "aftershock-system")
    assert reason is not None and "operator" in reason


def test_cross_namespace_refused_with_both_names() -> None:
    reason = check_target_namespace("shop", "payments", "aftershock-system")
    assert reason == (
        "the experiment in namespace 'shop' may not target namespace 'payments': "
        "cross-namespace targets are not allowed (only the experiment's own namespace)"
    )


def test_empty_operator_namespace_means_unknown() -> None:
    assert check_target_namespace("shop", None, "") is None
