"""fault.toxiproxy: degrade a dependency through a Toxiproxy proxy that already sits in front of it.

aftershock adds toxics (latency, timeouts, resets, bandwidth limits, ...) to a named proxy through
Toxiproxy's HTTP API for fault.duration, and removes exactly those afterwards. The endpoint is
subject to the ChaosPolicies' endpoint rules like any probe. Attributes are checked per toxic type
(the names Toxiproxy 2.x reads; an unknown one would be silently ignored by Toxiproxy).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final

from pydantic import ConfigDict, Field, model_validator

from aftershock.api.cel import CelRule, matches, validations
from aftershock.api.common import ApiModel
from aftershock.api.steady_state import MAX_URL_LENGTH, URL_PATTERN, URL_RULE


class ToxicType(StrEnum):
    LATENCY = "latency"
    BANDWIDTH = "bandwidth"
    SLOW_CLOSE = "slow_close"
    TIMEOUT = "timeout"
    RESET_PEER = "reset_peer"
    SLICER = "slicer"
    LIMIT_DATA = "limit_data"


class ToxicStream(StrEnum):
    UPSTREAM = "upstream"
    DOWNSTREAM = "downstream"


ATTRIBUTES: Final[dict[str, tuple[str, ...]]] = {
    "latency": ("latency", "jitter"),  # milliseconds
    "bandwidth": ("rate",),  # KB/s
    "slow_close": ("delay",),  # milliseconds
    "timeout": ("timeout",),  # milliseconds; 0: never answer, hold the data
    "reset_peer": ("timeout",),  # milliseconds before the reset
    "slicer": ("average_size", "size_variation", "delay"),  # bytes, bytes, microseconds
    "limit_data": ("bytes",),
}
"""The attributes Toxiproxy 2.x reads for each toxic type."""
MAX_ATTRIBUTE: Final = 1_000_000_000
PROXY_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"

ATTRIBUTE_RULES: Final = [
    CelRule(
        rule=f"self.type != '{kind}' || !has(self.attributes) || self.attributes.all(k, k in ["
        + ", ".join(f"'{a}'" for a in names)
        + "])",
        message=f"a {kind} toxic takes the attributes {', '.join(names)} (Toxiproxy ignores any other)",
    )
    for kind, names in ATTRIBUTES.items()
]


class Toxic(ApiModel):
    """One toxic: what Toxiproxy does to the traffic, in which direction, to which share of connections."""

    model_config = ConfigDict(json_schema_extra=validations(*ATTRIBUTE_RULES))

    type: ToxicType = Field(
        description="latency, bandwidth, slow_close, timeout, reset_peer, slicer or limit_data."
    )
    stream: ToxicStream = Field(
        default=ToxicStream.DOWNSTREAM,
        description="downstream (default: from the dependency to its clients) or upstream.",
    )
    toxicity: float = Field(
        default=1.0, ge=0, le=1, description="Share of connections the toxic applies to, 0 to 1 (default 1)."
    )
    attributes: dict[str, Annotated[int, Field(ge=0, le=MAX_ATTRIBUTE)]] = Field(
        default_factory=dict,
        max_length=4,
        description="The toxic's settings, e.g. {latency: 1000, jitter: 100} (milliseconds) for latency,"
        " {timeout: 0} for timeout, {rate: 10} (KB/s) for bandwidth.",
    )

    @model_validator(mode="after")
    def _known_attributes(self) -> Toxic:
        allowed = ATTRIBUTES[str(self.type)]
        if any(key not in allowed for key in self.attributes):
            raise ValueError(ATTRIBUTE_RULES[list(ATTRIBUTES).index(str(self.type))].error())
        return self


PROXY_RULE: Final = CelRule(
    rule=f"self.matches(r'{PROXY_PATTERN}')",
    message="proxy must be a Toxiproxy proxy name: letters, digits, '.', '_' or '-', at most 64 characters",
)


class ToxiproxyFault(ApiModel):
    """Toxics on an existing Toxiproxy proxy, for fault.duration."""

    endpoint: str = Field(
        max_length=MAX_URL_LENGTH,
        description="The Toxiproxy HTTP API, e.g. http://toxiproxy.shop.svc:8474 (allowed like a probe's"
        " URL: a Service of the target namespace, or listed in every ChaosPolicy's endpoints.allow).",
        json_schema_extra=validations(URL_RULE),
    )
    proxy: str = Field(
        max_length=64,
        description="Name of the proxy (it must exist: aftershock adds toxics, never proxies).",
        json_schema_extra=validations(PROXY_RULE),
    )
    toxics: list[Toxic] = Field(min_length=1, max_length=8, description="The toxics to add, 1 to 8.")

    @model_validator(mode="after")
    def _check(self) -> ToxiproxyFault:
        if not matches(URL_PATTERN, self.endpoint):
            raise ValueError(URL_RULE.error(self=self.endpoint))
        if not matches(PROXY_PATTERN, self.proxy):
            raise ValueError(PROXY_RULE.error())
        return self
