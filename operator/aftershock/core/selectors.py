"""metav1.LabelSelector → the string form list calls take; and matching without the API server."""

from __future__ import annotations

import re
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


_KEY = r"(?P<key>[A-Za-z0-9][-A-Za-z0-9_./]*)"
_SET_RE = re.compile(rf"^{_KEY}\s+(?P<op>in|notin)\s*\((?P<values>[-A-Za-z0-9_.,\s]*)\)$")
_EQUALITY_RE = re.compile(rf"^{_KEY}\s*(?P<op>==|=|!=)\s*(?P<value>[-A-Za-z0-9_.]*)$")
_EXISTS_RE = re.compile(rf"^(?P<neg>!?)\s*{_KEY}$")


def parse_label_selector(text: str) -> dict[str, Any]:
    """The string form (`app=web,tier!=db,env in (a,b),!legacy`) as a LabelSelector mapping, so
    `matches` can judge it; "" selects everything. Raises SelectorError for what it cannot read."""
    requirements: list[dict[str, Any]] = []
    depth, start, parts = 0, 0, []
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    for raw in parts:
        part = raw.strip()
        if not part:
            if text.strip():
                raise SelectorError(f"label selector {text!r}: empty requirement")
            continue
        if m := _SET_RE.match(part):
            values = [v.strip() for v in m["values"].split(",")]
            operator = "In" if m["op"] == "in" else "NotIn"
            requirements.append({"key": m["key"], "operator": operator, "values": values})
        elif m := _EQUALITY_RE.match(part):
            operator = "NotIn" if m["op"] == "!=" else "In"
            requirements.append({"key": m["key"], "operator": operator, "values": [m["value"]]})
        elif m := _EXISTS_RE.match(part):
            operator = "DoesNotExist" if m["neg"] else "Exists"
            requirements.append({"key": m["key"], "operator": operator})
        else:
            raise SelectorError(f"label selector {text!r}: cannot read {part!r}")
    return {"matchExpressions": requirements} if requirements else {}
