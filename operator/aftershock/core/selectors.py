"""metav1.LabelSelector → the string form list calls take; and matching without the API server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class SelectorError(ValueError):
    """The selector cannot be expressed; the message says which part and why."""


def to_label_selector(selector: Mapping[str, Any] | None) -> str:
    """Render a LabelSelector; an empty selector renders as "" (which selects everything).

    Callers that must never select everything check `is_empty` first: for chaos targets an
    empty selector is a mistake, not a wildcard.
    """
    if not selector:
        return ""
    parts = [f"{key}={value}" for key, value in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], sorted(expr.get("values") or [])
        if op == "In":
            if not values:
                raise SelectorError(f"matchExpressions for '{key}': operator In needs at least one value")
            parts.append(f"{key} in ({','.join(values)})")
        elif op == "NotIn":
            if not values:
                raise SelectorError(f"matchExpressions for '{key}': operator NotIn needs at least one value")
            parts.append(f"{key} notin ({','.join(values)})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise SelectorError(f"matchExpressions for '{key}': unknown operator '{op}'")
    return ",".join(parts)


def is_empty(selector: Mapping[str, Any] | None) -> bool:
    return not selector or (not selector.get("matchLabels") and not selector.get("matchExpressions"))


def matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether `labels` satisfy the selector (an empty selector matches everything)."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], set(expr.get("values") or [])
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True
