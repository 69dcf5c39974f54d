"""CEL validation rules shared by the CRD schema and the pydantic models.

Each rule is written once, here or next to its model, and used twice: crdgen puts it into the
schema as an ``x-kubernetes-validations`` entry, and the model validator raises ValueError with the
same message. So kubectl and the operator's own checks say the same thing, in the same words.

The Python side must never be stricter than the apiserver: the operator has to be able to read
every object the apiserver accepted. Transition rules (``oldSelf``) exist only in the schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

VALIDATIONS_KEY: Final = "x-kubernetes-validations"
_PLACEHOLDER: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class CelRule:
    """One ``x-kubernetes-validations`` entry and its human message.

    ``message`` is static. ``template`` (optional) names fields of ``self`` in braces, e.g.
    ``"objective ({objective}) ..."``; it becomes the CEL ``messageExpression`` and the Python
    message, so both show the offending values. ``{self}`` stands for the value itself, for rules
    on scalar fields. Placeholders must name string fields with a maxLength: CEL's ``string()``
    conversion defeats the apiserver's cost estimate, so values are concatenated as they are. Templates may not contain double quotes or backslashes (they become CEL string literals).
    """

    rule: str
    message: str
    template: str | None = None
    field_path: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.template is not None and ('"' in self.template or "\\" in self.template):
            raise ValueError(
                f"CEL message templates may not contain double quotes or backslashes: {self.template}"
            )

    @property
    def message_expression(self) -> str | None:
        """The template as a CEL string expression, or None for a static message."""
        if self.template is None:
            return None
        parts: list[str] = []
        pos = 0
        for match in _PLACEHOLDER.finditer(self.template):
            if match.start() > pos:
                parts.append(f'"{self.template[pos : match.start()]}"')
            name = match.group(1)
            parts.append("self" if name == "self" else f"self.{name}")
            pos = match.end()
        if pos < len(self.template):
            parts.append(f'"{self.template[pos:]}"')
        return " + ".join(parts)

    def error(self, /, **values: object) -> str:
        """The message a person sees, with the template filled in when there is one."""
        if self.template is None:
            return self.message
        return self.template.format(**{k: _cel_string(v) for k, v in values.items()})

    def to_schema(self) -> dict[str, str]:
        """The ``x-kubernetes-validations`` entry."""
        entry = {"rule": self.rule, "message": self.message}
        expression = self.message_expression
        if expression is not None:
            entry["messageExpression"] = expression
        if self.field_path is not None:
            entry["fieldPath"] = self.field_path
        if self.reason is not None:
            entry["reason"] = self.reason
        return entry


def _cel_string(value: object) -> str:
    """Render a template value as the string CEL concatenates (enums by their value)."""
    return str(value)


def matches(pattern: str, value: str) -> bool:
    """CEL's ``string.matches`` (RE2, unanchored search) for the simple patterns used here.

    Python's ``$`` also matches before a trailing newline, RE2's does not; ``\\Z`` restores RE2's
    meaning so Python accepts exactly what the apiserver accepts.
    """
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.search(pattern, value) is not None


def validations(*rules: CelRule) -> dict[str, Any]:
    """A ``json_schema_extra`` fragment attaching the rules to a model or field schema."""
    return {VALIDATIONS_KEY: [rule.to_schema() for rule in rules]}
