"""Applies the default ChaosPolicy at start (the decision is core.default_policy.plan)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from aftershock.api.policy import ChaosPolicySpec
from aftershock.core.default_policy import Act, Plan, manifest, plan
from aftershock.kube import Conflict, Kube, NotFound

log = logging.getLogger(__name__)


class DefaultPolicyError(ValueError):
    """The configured default policy cannot be used; the message says why."""


def load_spec(path: Path) -> dict[str, Any]:
    """The policy spec in `path` (YAML: the spec, or a whole ChaosPolicy), validated like the API
    server would, so a mistake stops the operator at start with a message instead of later."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DefaultPolicyError(f"cannot read the default policy {path}: {exc}") from exc
    if isinstance(data, Mapping) and data.get("kind") == "ChaosPolicy":
        data = data.get("spec")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise DefaultPolicyError(f"the default policy {path} must be a mapping (a ChaosPolicy spec)")
    try:
        ChaosPolicySpec.model_validate(data)
    except ValidationError as exc:
        raise DefaultPolicyError(
            f"the default policy {path} is not a valid ChaosPolicy spec:\n{exc}"
        ) from exc
    return dict(data)


def ensure_default_policy(
    kube: Kube,
    name: str,
    spec: Mapping[str, Any] | None,
    labels: Mapping[str, str] | None = None,
    attempts: int = 3,
) -> Plan:
    """Bring the policy `name` in line with the configured spec (None: turned off); returns what
    was done. Safe to repeat and to race with another operator: every write is conditional."""
    for _ in range(attempts):
        existing = kube.find_policy(name)
        decided = plan(existing, spec)
        try:
            if decided.act is Act.CREATE:
                assert spec is not None
                if not kube.create_policy(manifest(name, spec, labels)):
                    continue  # someone created it meanwhile: decide again
            elif decided.act is Act.REPLACE:
                assert spec is not None and existing is not None
                wanted = manifest(name, spec, labels)
                kube.replace_policy(existing, wanted["metadata"], spec)
            elif decided.act is Act.DELETE:
                assert existing is not None
                kube.delete_policy(name, existing["metadata"]["uid"])
        except (Conflict, NotFound):  # changed or deleted since it was read: decide again
            continue
        log.info("default ChaosPolicy %s: %s", name, decided.reason)
        return decided
    raise RuntimeError(f"default ChaosPolicy {name}: it kept changing while being applied")
