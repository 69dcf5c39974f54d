from __future__ import annotations

import pytest

from aftershock.core.safety import PROTECTED_NAMESPACES, effective_target_namespace


def test_protected_namespaces_are_the_kubernetes_system_ones() -> None:
    assert frozenset({"kube-system", "kube-public", "kube-node-lease"}) == PROTECTED_NAMESPACES


@pytest.mark.parametrize(("target", "expected"), [(None, "shop"), ("", "shop"), ("payments", "payments")])
def test_target_namespace_defaults_to_the_experiments_own(target: str | None, expected: str) -> None:
    assert effective_target_namespace("shop", target) == expected
