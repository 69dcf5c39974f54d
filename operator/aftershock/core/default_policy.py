"""The default ChaosPolicy the Helm chart asks for, owned by the operator.

Helm cannot create a ChaosPolicy in the release that also creates its CRD, so the chart hands the
policy to the operator (a mounted file) and the operator applies it at start. The rules follow what
Helm itself would do with an object it manages, with one difference that matters to the people on
call: a policy of that name the operator did not create is never touched.

- absent and configured: create it;
- ours and the configured spec changed since we applied it: replace the spec;
- ours and the configured spec unchanged: keep it as it is (hand edits survive restarts);
- ours and no longer configured (the chart turned it off): delete it;
- not ours: leave it alone, and say so.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aftershock import GROUP

APPLIED_HASH = f"{GROUP}/default-policy-hash"  # sha256 of the spec the operator last applied
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "aftershock-operator"


class Act(StrEnum):
    CREATE = "create"
    REPLACE = "replace"
    DELETE = "delete"
    KEEP = "keep"


@dataclass(frozen=True)
class Plan:
    act: Act
    reason: str


def spec_hash(spec: Mapping[str, Any]) -> str:
    """Stable over key order, so an unchanged file never causes a rewrite."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def is_ours(policy: Mapping[str, Any]) -> bool:
    return APPLIED_HASH in ((policy.get("metadata") or {}).get("annotations") or {})


def plan(existing: Mapping[str, Any] | None, desired: Mapping[str, Any] | None) -> Plan:
    """What to do with the default policy, given the live object (None: absent) and the configured
    spec (None: the default policy is turned off)."""
    if desired is None:
        if existing is None:
            return Plan(Act.KEEP, "no default policy is configured and none exists")
        if is_ours(existing):
            return Plan(Act.DELETE, "the default policy is turned off; deleting the one the operator created")
        return Plan(
            Act.KEEP,
            "the default policy is turned off; a policy of that name exists that the "
            "operator did not create, so it is left alone",
        )
    if existing is None:
        return Plan(Act.CREATE, "creating the configured default policy")
    if not is_ours(existing):
        return Plan(
            Act.KEEP,
            "a policy of that name exists that the operator did not create; it is left "
            "alone and the configured default is not applied",
        )
    applied = existing["metadata"]["annotations"][APPLIED_HASH]
    if applied == spec_hash(desired):
        return Plan(Act.KEEP, "the configured default policy is unchanged since it was applied")
    return Plan(Act.REPLACE, "the configured default policy changed; replacing its spec")


def manifest(name: str, spec: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ChaosPolicy object the operator creates (or replaces the spec of)."""
    return {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "ChaosPolicy",
        "metadata": {
            "name": name,
            "labels": {**(labels or {}), MANAGED_BY_LABEL: MANAGED_BY},
            "annotations": {APPLIED_HASH: spec_hash(spec)},
        },
        "spec": dict(spec),
    }
