"""Types shared by the three kinds: selectors, conditions, severities, run phases, findings.

``ApiModel`` is the base of every model: camelCase on the wire, snake_case in Python, and unknown
fields ignored so that an older operator can still read objects written by a newer one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Final, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

from aftershock import API_VERSION
from aftershock.api.cel import CelRule, matches, validations
from aftershock.api.durations import DURATION_MAX_LENGTH, DURATION_PATTERN, parse_duration

SYSTEM_NAMESPACES: Final = ("kube-system", "kube-public", "kube-node-lease")
"""Namespaces that can never hold a chaos target, whatever a policy says."""


class FaultKindName(StrEnum):
    """A fault kind, by its field name in a ChaosExperiment's spec.fault."""

    POD_DELETE = "podDelete"
    NODE_DRAIN = "nodeDrain"
    NODE_TAINT = "nodeTaint"
    NETWORK_PARTITION = "networkPartition"
    LITMUS = "litmus"
    LITMUS_NODE = "litmusNode"
    TOXIPROXY = "toxiproxy"


KNOWN_FAULT_KINDS: Final = tuple(kind.value for kind in FaultKindName)
"""Every fault kind the product knows of (a policy may allow ones this build cannot run yet).

The kinds a ChaosExperiment can actually use are ``aftershock.api.experiment.FAULT_KINDS``.
"""

NODE_FAULT_KINDS: Final = ("nodeDrain", "nodeTaint", "litmusNode")
"""Fault kinds that act on nodes; a policy allows them only when it lists them explicitly.
``litmusNode`` is how a policy names Litmus's node experiments (node-drain, node-taint,
node-cpu-hog, node-memory-hog); its pod experiments are ``litmus``."""

DNS_LABEL_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
TIME_ZONE_PATTERN: Final = r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$"
"""Shape of an IANA zone name; whether the zone exists is checked by the operator, not the schema."""

TIME_ZONE_RULE: Final = CelRule(
    rule=f"self.matches(r'{TIME_ZONE_PATTERN}')",
    message="timeZone must be an IANA time zone name such as UTC or Europe/Berlin",
)


class ApiModel(BaseModel):
    """Base of all API models: camelCase aliases, tolerant of fields added by newer versions."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict in wire form (camelCase, no None values), e.g. for a status patch."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ResourceModel(ApiModel):
    """What every kind has besides kind, spec and status: apiVersion and metadata.

    The class variables name the kind for the API (kopf handlers use PLURAL; crdgen uses all).
    """

    KIND: ClassVar[str]
    PLURAL: ClassVar[str]
    SINGULAR: ClassVar[str]
    SHORT_NAMES: ClassVar[tuple[str, ...]]
    NAMESPACED: ClassVar[bool]

    api_version: str = Field(default=API_VERSION, description="The versioned schema of this object.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Standard object metadata.")

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Self:
        """Validate a raw object (a dict, or kopf's Body mapping) into the model."""
        return cls.model_validate(dict(body))

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str | None:
        value = self.metadata.get("namespace")
        return None if value is None else str(value)

    @property
    def uid(self) -> str | None:
        value = self.metadata.get("uid")
        return None if value is None else str(value)

    @property
    def generation(self) -> int | None:
        value = self.metadata.get("generation")
        return None if value is None else int(value)


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


Duration = Annotated[
    str,
    AfterValidator(_check_duration),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "maxLength": DURATION_MAX_LENGTH}),
]
"""A Go-style duration string; kept as written (so specs round-trip), parsed on use."""


def optional_delta(value: str | None) -> timedelta | None:
    """Parse an optional Duration field."""
    return None if value is None else parse_duration(value)


# --- label selectors ----------------------------------------------------------------------------


LABEL_NAME_PATTERN: Final = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_KEY_PATTERN: Final = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?" + LABEL_NAME_PATTERN + "$"
)
"""A label key's shape: an optional DNS-subdomain prefix and ``/``, then a name."""
LABEL_KEY_LENGTHS_PATTERN: Final = r"^([^/]{1,253}/)?[^/]{1,63}$"
"""A label key's lengths: prefix at most 253 characters, name at most 63 (a second pattern, since one
regular expression cannot bound both the parts and their structure)."""
LABEL_KEY_MAX_LENGTH: Final = 253 + 1 + 63
LABEL_VALUE_PATTERN: Final = r"^(" + LABEL_NAME_PATTERN + ")?$"
LABEL_VALUE_MAX_LENGTH: Final = 63
SELECTOR_MAX_LABELS: Final = 64
SELECTOR_MAX_EXPRESSIONS: Final = 32
SELECTOR_MAX_VALUES: Final = 64

_KEY_HELP: Final = (
    "a label key is an optional DNS subdomain prefix of at most 253 characters and '/', then a name of"
    " 1 to 63 letters, digits, '-', '_' or '.' that starts and ends with a letter or digit,"
    " e.g. app or app.kubernetes.io/name"
)
_VALUE_HELP: Final = (
    "a label value is empty or at most 63 letters, digits, '-', '_' or '.' that start and end with a"
    " letter or digit"
)


def _key_rule(variable: str) -> str:
    return f"{variable}.matches(r'{LABEL_KEY_PATTERN}') && {variable}.matches(r'{LABEL_KEY_LENGTHS_PATTERN}')"


MATCH_LABELS_KEYS_RULE: Final = CelRule(
    rule="!has(self.matchLabels) || self.matchLabels.all(k, " + _key_rule("k") + ")",
    message=f"every matchLabels key must be a label key: {_KEY_HELP}",
    field_path=".matchLabels",
)
MATCH_LABELS_VALUES_RULE: Final = CelRule(
    rule=f"!has(self.matchLabels) || self.matchLabels.all(k, self.matchLabels[k].matches(r'{LABEL_VALUE_PATTERN}'))",
    message=f"every matchLabels value must be a label value: {_VALUE_HELP}",
    field_path=".matchLabels",
)
REQUIREMENT_KEY_RULE: Final = CelRule(
    rule=_key_rule("self"),
    message=f"matchExpressions key must be a label key: {_KEY_HELP}",
)
REQUIREMENT_VALUE_LIST_RULE: Final = CelRule(
    rule=f"self.all(v, v.matches(r'{LABEL_VALUE_PATTERN}'))",
    message=f"every matchExpressions value must be a label value: {_VALUE_HELP}",
)


def is_label_key(key: str) -> bool:
    """Whether `key` is a Kubernetes label key (qualified name), exactly as the schema decides."""
    return matches(LABEL_KEY_PATTERN, key) and matches(LABEL_KEY_LENGTHS_PATTERN, key)


def is_label_value(value: str) -> bool:
    """Whether `value` is a Kubernetes label value, exactly as the schema decides."""
    return len(value) <= LABEL_VALUE_MAX_LENGTH and matches(LABEL_VALUE_PATTERN, value)


class LabelSelectorOperator(StrEnum):
    """How a label selector requirement relates a label's key to its values."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


REQUIREMENT_VALUES_RULE: Final = CelRule(
    rule="self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0)"
    " : (!has(self.values) || size(self.values) == 0)",
    message="values must be non-empty when operator is In or NotIn, and empty when it is Exists or DoesNotExist",
    field_path=".values",
)


class LabelSelectorRequirement(ApiModel):
    """A selector requirement: a label key, an operator and (for In and NotIn) values."""

    model_config = ConfigDict(json_schema_extra=validations(REQUIREMENT_VALUES_RULE))

    key: str = Field(
        min_length=1,
        max_length=LABEL_KEY_MAX_LENGTH,
        description="The label key the requirement applies to, e.g. app or app.kubernetes.io/name.",
        json_schema_extra=validations(REQUIREMENT_KEY_RULE),
    )
    operator: LabelSelectorOperator = Field(
        description="How the key relates to the values: In, NotIn, Exists or DoesNotExist."
    )
    values: list[Annotated[str, Field(max_length=LABEL_VALUE_MAX_LENGTH)]] = Field(
        default_factory=list,
        max_length=SELECTOR_MAX_VALUES,
        description="Label values (each at most 63 characters, at most 64 of them); required for In and"
        " NotIn, must be empty for Exists and DoesNotExist.",
        json_schema_extra=validations(REQUIREMENT_VALUE_LIST_RULE),
    )

    @model_validator(mode="after")
    def _values_match_operator(self) -> LabelSelectorRequirement:
        if not is_label_key(self.key):
            raise ValueError(f"{REQUIREMENT_KEY_RULE.error()} (got {self.key!r})")
        for value in self.values:
            if not is_label_value(value):
                raise ValueError(f"{REQUIREMENT_VALUE_LIST_RULE.error()} (got {value!r})")
        wants_values = self.operator in (LabelSelectorOperator.IN, LabelSelectorOperator.NOT_IN)
        if wants_values != bool(self.values):
            raise ValueError(REQUIREMENT_VALUES_RULE.error())
        return self


class LabelSelector(ApiModel):
    """A Kubernetes label selector (metav1.LabelSelector): all requirements must hold (AND).

    Keys and values are checked as the API server checks labels, so a selector never reaches a
    list call that would fail, or mean something else, at run time."""

    model_config = ConfigDict(json_schema_extra=validations(MATCH_LABELS_KEYS_RULE, MATCH_LABELS_VALUES_RULE))

    match_labels: dict[str, Annotated[str, Field(max_length=LABEL_VALUE_MAX_LENGTH)]] = Field(
        default_factory=dict,
        max_length=SELECTOR_MAX_LABELS,
        description="Labels that must be present with exactly these values (at most 64; keys are label"
        " keys, values label values of at most 63 characters).",
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list,
        max_length=SELECTOR_MAX_EXPRESSIONS,
        description="Label requirements (key, operator, values) that must all hold; at most 32.",
    )

    @model_validator(mode="after")
    def _labels_are_labels(self) -> LabelSelector:
        for key, value in self.match_labels.items():
            if not is_label_key(key):
                raise ValueError(f"{MATCH_LABELS_KEYS_RULE.error()} (got {key!r})")
            if not is_label_value(value):
                raise ValueError(f"{MATCH_LABELS_VALUES_RULE.error()} (got {value!r})")
        return self

    def is_empty(self) -> bool:
        """An empty selector matches everything."""
        return not self.match_labels and not self.match_expressions

    def to_query(self) -> str:
        """The selector as a list call's ``labelSelector`` string ("" for an empty selector).

        Same rendering as ``aftershock.core.selectors.to_label_selector``; the model has already
        guaranteed that In and NotIn carry values.
        """
        terms = [f"{key}={value}" for key, value in sorted(self.match_labels.items())]
        for req in self.match_expressions:
            if req.operator is LabelSelectorOperator.EXISTS:
                terms.append(req.key)
            elif req.operator is LabelSelectorOperator.DOES_NOT_EXIST:
                terms.append(f"!{req.key}")
            else:
                op = "in" if req.operator is LabelSelectorOperator.IN else "notin"
                terms.append(f"{req.key} {op} ({','.join(sorted(req.values))})")
        return ",".join(terms)


# --- conditions ---------------------------------------------------------------------------------


class ConditionStatus(StrEnum):
    """Whether a condition holds."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


CONDITION_TYPE_PATTERN: Final = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN: Final = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


class Condition(ApiModel):
    """An observation of one aspect of the object's state (metav1.Condition)."""

    type: str = Field(
        max_length=316,
        pattern=CONDITION_TYPE_PATTERN,
        description="Type of condition in CamelCase, e.g. Ready, Reconciling, Stalled, Suspended.",
    )
    status: ConditionStatus = Field(description="Whether the condition holds: True, False or Unknown.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The metadata.generation the condition was computed from."
    )
    last_transition_time: AwareDatetime = Field(description="When the status last changed.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=CONDITION_REASON_PATTERN,
        description="A CamelCase word for why the condition is in this status, for programs to match on.",
    )
    message: str = Field(default="", max_length=32768, description="A human-readable explanation.")


CONDITIONS_LIST_SCHEMA: Final[dict[str, Any]] = {
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
}


# --- severity, verdict, phases, findings ---------------------------------------------------------


class Severity(StrEnum):
    """How bad a finding is; severities compare by rank (none < low < medium < high < critical)."""

    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for none up to 4 for critical."""
        return _SEVERITY_ORDER.index(self)

    # str would order lexicographically ("critical" < "none"), silently wrong for max() and
    # sorted(). These compare by rank; strings naming a severity are accepted, others raise.
    def __lt__(self, other: object) -> bool:
        return self.rank < _coerce_severity(other).rank

    def __le__(self, other: object) -> bool:
        return self.rank <= _coerce_severity(other).rank

    def __gt__(self, other: object) -> bool:
        return self.rank > _coerce_severity(other).rank

    def __ge__(self, other: object) -> bool:
        return self.rank >= _coerce_severity(other).rank


_SEVERITY_ORDER: Final = tuple(Severity)


def _coerce_severity(value: object) -> Severity:
    if isinstance(value, Severity):
        return value
    if isinstance(value, str):
        return Severity(value)
    raise TypeError(f"cannot compare Severity with {type(value).__name__}")


def worst(severities: Iterable[Severity | str]) -> Severity:
    """The highest severity in the iterable, or ``Severity.NONE`` when it is empty."""
    result = Severity.NONE
    for item in severities:
        severity = Severity(item)
        if severity.rank > result.rank:
            result = severity
    return result


class Verdict(StrEnum):
    """The outcome of a completed run: Passed when its severity is none or low, otherwise Failed."""

    PASSED = "Passed"
    FAILED = "Failed"


class RunPhase(StrEnum):
    """Where a run is: Pending, Injecting, Observing, Reverting, then one terminal phase."""

    PENDING = "Pending"
    INJECTING = "Injecting"
    OBSERVING = "Observing"
    REVERTING = "Reverting"
    COMPLETED = "Completed"
    ABORTED = "Aborted"
    SKIPPED = "Skipped"
    ERRORED = "Errored"

    @property
    def is_terminal(self) -> bool:
        """A terminal run is finished for good; the operator never acts on it again."""
        return self in TERMINAL_PHASES


TERMINAL_PHASES: Final = frozenset({RunPhase.COMPLETED, RunPhase.ABORTED, RunPhase.SKIPPED, RunPhase.ERRORED})


class Finding(ApiModel):
    """Something a run observed, rated by severity, with the evidence (times, counts) behind it."""

    # the one finding type: core rates runs with it, engines report with it, status holds it;
    # frozen, since evidence is never edited after the fact
    model_config = ConfigDict(frozen=True)

    severity: Severity = Field(description="How bad it is: none, low, medium, high or critical.")
    title: str = Field(description="One line naming what was found.")
    detail: str = Field(default="", description="The evidence: times, counts, names.")
