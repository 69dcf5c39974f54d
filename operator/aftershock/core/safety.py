"""Hard limits on where chaos may go, independent of any ChaosPolicy.

Protected namespaces are never a target whatever a policy says (core/policy.py enforces them
together with the operator's own namespace, whose loss mid-run could leave a fault behind with
nobody to revert it).
"""

from __future__ import annotations

PROTECTED_NAMESPACES: frozenset[str] = frozenset({"kube-system", "kube-public", "kube-node-lease"})


def effective_target_namespace(experiment_namespace: str, target_namespace: str | None) -> str:
    """``spec.target.namespace`` defaults to the experiment's own namespace (empty counts as unset)."""
    return target_namespace or experiment_namespace
