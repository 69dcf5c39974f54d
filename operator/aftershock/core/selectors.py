"""metav1.LabelSelector → the string form list calls take; and matching without the API server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aftershock.api.common import LabelSelector, LabelSelectorOperator, LabelSelectorRequirement


class SelectorError(ValueError):
    """The selector cannot be expressed; the message says which part and why."""


def to_label_selector(selector: Mapping[str, Any] | None) -> str:
    """Render a LabelSelector; an empty selector renders as "" (which selects everything).

    Callers that must never select everything check `is_empty` first: for chaos targets an
    empty selector is a mistake, not a wildcard. The rendering is the API model's
    (``LabelSelector.to_query``); this function only checks a raw selector (e.g. a live
    workload's ``spec.selector``) the way that rendering needs, without the model's size limits.
    """
    if not selector:
        return ""
    requirements: list[LabelSelectorRequirement] = []
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], list(expr.get("values") or [])
        try:
            operator = LabelSelectorOperator(op)
        except ValueError:
            raise SelectorError(f"matchExpressions for '{key}': unknown operator '{op}'") from None
        if operator in (LabelSelectorOperator.IN, LabelSelectorOperator.NOT_IN) and not values:
            raise SelectorError(f"matchExpressions for '{key}': operator {op} needs at least one value")
        requirements.append(
            LabelSelectorRequirement.model_construct(key=key, operator=operator, values=values)
        )
    return LabelSelector.model_construct(
        match_labels=dict(selector.get("matchLabels") or {}), match_expressions=requirements
    ).to_query()


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
