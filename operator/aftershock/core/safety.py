"""Hard limits on where chaos may go, independent of any ChaosPolicy.

Until ChaosPolicy is implemented the rule is the narrowest one that is still useful: an experiment
may only target its own namespace, and never a protected namespace or the operator's own (breaking
the operator mid-run could leave a fault behind with nobody to revert it). Policies can later
widen the first rule (``crossNamespace``) but never the other two.
"""

from __future__ import annotations

PROTECTED_NAMESPACES: frozenset[str] = frozenset({"kube-system", "kube-public", "kube-node-lease"})


def effective_target_namespace(experiment_namespace: str, target_namespace: str | None) -> str:
    """``spec.target.namespace`` defaults to the experiment's own namespace (empty counts as unset)."""
    return target_namespace or experiment_namespace


def check_target_namespace(
    experiment_namespace: str, target_namespace: str | None, operator_namespace: str | None
) -> str | None:
    """A reason a person understands why the target namespace is not allowed, or None if it is."""
    target = effective_target_namespace(experiment_namespace, target_namespace)
    if target in PROTECTED_NAMESPACES:
        protected = ", ".join(sorted(PROTECTED_NAMESPACES))
        return f"namespace {target!r} is protected: chaos is never allowed in {protected}"
    if operator_namespace and target == operator_namespace:
        return (
            f"namespace {target!r} is where the aftershock operator runs; "
            "it may not be targeted, or a fault could remove the operator that must revert it"
        )
    if target != experiment_namespace:
        return (
            f"the experiment in namespace {experiment_namespace!r} may not target namespace {target!r}: "
            "cross-namespace targets are not allowed (only the experiment's own namespace)"
        )
    return None
