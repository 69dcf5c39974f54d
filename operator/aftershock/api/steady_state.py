"""The steady-state hypothesis: probes of the service, not just of its pods.

A probe is checked before injecting (the hypothesis must hold, or nothing is done), every
`interval` while the fault is in place (`abortAfter` consecutive failures end the run), and once
after recovery. Where a probe may connect is a ChaosPolicy's business (`endpoints.allow`); the
schema here only makes each probe well-formed. The error-budget gate has a Prometheus probe's shape.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Final

from pydantic import ConfigDict, Field, model_validator

from aftershock.api.cel import CelRule, matches, validations
from aftershock.api.common import DNS_LABEL_PATTERN, ApiModel, Duration
from aftershock.api.durations import parse_duration

MAX_PROBES: Final = 16
MAX_URL_LENGTH: Final = 2048
MAX_QUERY_LENGTH: Final = 4096
MAX_BODY_TEXT: Final = 1024
MAX_ABORT_AFTER: Final = 100
URL_PATTERN: Final = r"^https?://[^\s/?#@]+(/[^\s]*)?$"
"""http(s), a host (and port), no user info (credentials do not belong in a spec), no spaces."""

URL_RULE: Final = CelRule(
    rule=f"self.matches(r'{URL_PATTERN}')",
    message="url must be an http:// or https:// URL with a host, without user:password@ and without spaces",
    template="url {self} must be an http:// or https:// URL with a host, without user:password@ and"
    " without spaces",
)
SHORT_DURATION_RULE: Final = CelRule(
    rule="duration(self) >= duration('100ms') && duration(self) <= duration('60s')",
    message="must be from 100ms to 60s",
    template="{self} must be from 100ms to 60s",
)
INTERVAL_RULE: Final = CelRule(
    rule="duration(self) >= duration('1s') && duration(self) <= duration('5m')",
    message="steadyState.interval must be from 1s to 5m",
    template="steadyState.interval {self} must be from 1s to 5m",
)
BOUND_RULE: Final = CelRule(
    rule="has(self.below) || has(self.above)",
    message="prometheus needs a bound: below, above, or both (the value must stay between them)",
)
BOUND_ORDER_RULE: Final = CelRule(
    rule="!has(self.below) || !has(self.above) || self.above < self.below",
    message="prometheus: above must be smaller than below (the value must stay between them)",
)
KUBERNETES_RULE: Final = CelRule(
    rule="(has(self.available) && self.available) || has(self.readyAtLeast)",
    message="kubernetes needs a condition: available: true, readyAtLeast: N, or both",
)
PROBE_ONE_OF_RULE: Final = CelRule(
    rule="(has(self.http) ? 1 : 0) + (has(self.prometheus) ? 1 : 0) + (has(self.kubernetes) ? 1 : 0) == 1",
    message="a probe sets exactly one of http, prometheus or kubernetes",
)
UNIQUE_NAMES_RULE: Final = CelRule(
    rule="self.all(p, self.exists_one(q, q.name == p.name))",
    message="steadyState.probes must have distinct names",
)


def _check(rule: CelRule, ok: bool, **values: object) -> None:
    if not ok:
        raise ValueError(rule.error(**values))


def _within(value: str, low: str, high: str) -> bool:
    return parse_duration(low) <= parse_duration(value) <= parse_duration(high)


class HttpMethod(StrEnum):
    GET = "GET"
    HEAD = "HEAD"


class HttpProbe(ApiModel):
    """An HTTP request that must answer as expected, in time."""

    url: str = Field(
        max_length=MAX_URL_LENGTH,
        description="http:// or https:// URL. By default only Services of the target namespace"
        " (NAME.NAMESPACE.svc[.cluster.local]); anything else must be in a ChaosPolicy's endpoints.allow.",
        json_schema_extra=validations(URL_RULE),
    )
    method: HttpMethod = Field(
        default=HttpMethod.GET, description="GET (default) or HEAD: probes never change anything."
    )
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] = Field(
        default_factory=lambda: [200],
        min_length=1,
        max_length=16,
        description="Status codes that count as healthy (default [200]). Redirects are followed only to"
        " allowed endpoints.",
    )
    body_contains: str | None = Field(
        default=None,
        max_length=MAX_BODY_TEXT,
        description="Text the response body must contain (the first 64 KiB are read).",
    )
    timeout: Duration = Field(
        default="2s",
        description="Give up on an answer after this long (100ms to 60s); a timeout is a failure.",
        json_schema_extra=validations(SHORT_DURATION_RULE),
    )
    max_latency: Duration | None = Field(
        default=None,
        description="An answer slower than this counts as a failure (100ms to 60s).",
        json_schema_extra=validations(SHORT_DURATION_RULE),
    )

    @model_validator(mode="after")
    def _check_fields(self) -> HttpProbe:
        _check(URL_RULE, matches(URL_PATTERN, self.url), self=self.url)
        for value in (self.timeout, self.max_latency):
            if value is not None:
                _check(SHORT_DURATION_RULE, _within(value, "100ms", "60s"), self=value)
        return self


class PrometheusQuery(ApiModel):
    """An instant PromQL query whose every sample must stay within bounds."""

    model_config = ConfigDict(json_schema_extra=validations(BOUND_RULE, BOUND_ORDER_RULE))

    url: str = Field(
        max_length=MAX_URL_LENGTH,
        description="Base URL of the Prometheus server (the HTTP API at /api/v1/query is used); subject"
        " to the ChaosPolicy's endpoints.allow like any probe.",
        json_schema_extra=validations(URL_RULE),
    )
    query: str = Field(
        min_length=1,
        max_length=MAX_QUERY_LENGTH,
        description="Instant PromQL query. No data is a failure: write `... or vector(0)` where absence means zero.",
    )
    below: float | None = Field(default=None, description="Every sample must be below this.")
    above: float | None = Field(default=None, description="Every sample must be above this.")
    timeout: Duration = Field(
        default="5s",
        description="Give up on an answer after this long (100ms to 60s).",
        json_schema_extra=validations(SHORT_DURATION_RULE),
    )

    @model_validator(mode="after")
    def _check_fields(self) -> PrometheusQuery:
        _check(URL_RULE, matches(URL_PATTERN, self.url), self=self.url)
        _check(BOUND_RULE, self.below is not None or self.above is not None)
        _check(BOUND_ORDER_RULE, self.below is None or self.above is None or self.above < self.below)
        _check(SHORT_DURATION_RULE, _within(self.timeout, "100ms", "60s"), self=self.timeout)
        return self

    def bounds_text(self) -> str:
        if self.below is not None and self.above is not None:
            return f"between {self.above:g} and {self.below:g}"
        return f"below {self.below:g}" if self.below is not None else f"above {self.above:g}"


class ProbeWorkloadKind(StrEnum):
    DEPLOYMENT = "Deployment"
    STATEFUL_SET = "StatefulSet"
    DAEMON_SET = "DaemonSet"


class KubernetesProbe(ApiModel):
    """A workload of the target namespace that must be in shape, read from the operator's cache."""

    model_config = ConfigDict(json_schema_extra=validations(KUBERNETES_RULE))

    kind: ProbeWorkloadKind = Field(description="Deployment, StatefulSet or DaemonSet.")
    name: str = Field(max_length=253, description="Name of the workload in the target namespace.")
    available: bool | None = Field(
        default=None,
        description="true: a Deployment's Available condition must be True (for a StatefulSet or"
        " DaemonSet: at least one Ready pod and no fewer than the workload asks to keep available).",
    )
    ready_at_least: int | None = Field(
        default=None, ge=0, le=10_000, description="At least this many Ready replicas."
    )

    @model_validator(mode="after")
    def _check_fields(self) -> KubernetesProbe:
        _check(KUBERNETES_RULE, bool(self.available) or self.ready_at_least is not None)
        return self


class Probe(ApiModel):
    """One check of the hypothesis: exactly one of http, prometheus or kubernetes."""

    model_config = ConfigDict(json_schema_extra=validations(PROBE_ONE_OF_RULE))

    name: str = Field(
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description="Name of the probe (a DNS label): how status, findings and metrics refer to it.",
    )
    http: HttpProbe | None = Field(default=None, description="An HTTP request.")
    prometheus: PrometheusQuery | None = Field(default=None, description="A Prometheus query and its bounds.")
    kubernetes: KubernetesProbe | None = Field(default=None, description="A workload's readiness.")
    abort_after: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ABORT_AFTER,
        description="This many consecutive failures while the fault is in place abort the run: the fault"
        " is reverted at once and the run ends Aborted (severity at least high). Unset: never aborts.",
    )

    @model_validator(mode="after")
    def _one_of(self) -> Probe:
        count = sum(x is not None for x in (self.http, self.prometheus, self.kubernetes))
        _check(PROBE_ONE_OF_RULE, count == 1)
        return self

    @property
    def type(self) -> str:
        return "http" if self.http else "prometheus" if self.prometheus else "kubernetes"

    def urls(self) -> list[str]:
        if self.http is not None:
            return [self.http.url]
        if self.prometheus is not None:
            return [self.prometheus.url]
        return []


class SteadyState(ApiModel):
    """The hypothesis: probes that must hold before injecting, during the fault and after recovery."""

    interval: Duration = Field(
        default="2s",
        description="How often the probes are checked while the fault is in place (1s to 5m).",
        json_schema_extra=validations(INTERVAL_RULE),
    )
    probes: list[Probe] = Field(
        min_length=1,
        max_length=MAX_PROBES,
        description=f"The probes, 1 to {MAX_PROBES}, with distinct names.",
        json_schema_extra=validations(UNIQUE_NAMES_RULE),
    )

    @property
    def interval_delta(self) -> timedelta:
        return parse_duration(self.interval)

    @model_validator(mode="after")
    def _check_fields(self) -> SteadyState:
        _check(INTERVAL_RULE, _within(self.interval, "1s", "5m"), self=self.interval)
        names = [p.name for p in self.probes]
        _check(UNIQUE_NAMES_RULE, len(set(names)) == len(names))
        return self

    def urls(self) -> list[str]:
        return [u for p in self.probes for u in p.urls()]


class Gate(ApiModel):
    """The error-budget gate: while its query is out of bounds, slots are Skipped."""

    prometheus: PrometheusQuery = Field(
        description="A Prometheus query and its bounds, e.g. an SLO burn rate below 1."
    )

    def urls(self) -> list[str]:
        return [self.prometheus.url]
