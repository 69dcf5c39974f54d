"""spec.analysis: verdicts on how the system degraded under the fault, from Prometheus queries.

A baseline of every query is taken right before injecting; during the fault (until recovery was
measured) each is sampled every steady-state interval (2s without a hypothesis). core/analysis.py
turns the samples into findings: a retry storm (load toward the dependency amplified beyond
maxAmplification), no backpressure (saturation growing without a plateau, or past a limit), missing
timeouts (client latency beyond maxLatency).
"""

from __future__ import annotations

from typing import Final

from pydantic import ConfigDict, Field, model_validator

from aftershock.api.cel import CelRule, matches, validations
from aftershock.api.common import ApiModel, Duration
from aftershock.api.steady_state import (
    MAX_QUERY_LENGTH,
    MAX_URL_LENGTH,
    SHORT_DURATION_RULE,
    URL_PATTERN,
    URL_RULE,
)

ANY_CHECK_RULE: Final = CelRule(
    rule="has(self.retryStorm) || has(self.backpressure) || has(self.latency)",
    message="analysis needs at least one of retryStorm, backpressure or latency",
)


class PrometheusSource(ApiModel):
    """An instant PromQL query whose value is followed over the run (the largest sample counts)."""

    url: str = Field(
        max_length=MAX_URL_LENGTH,
        description="Base URL of the Prometheus server; subject to the ChaosPolicies' endpoints.allow.",
        json_schema_extra=validations(URL_RULE),
    )
    query: str = Field(min_length=1, max_length=MAX_QUERY_LENGTH, description="Instant PromQL query.")
    timeout: Duration = Field(
        default="5s",
        description="Give up on an answer after this long (100ms to 60s).",
        json_schema_extra=validations(SHORT_DURATION_RULE),
    )

    @model_validator(mode="after")
    def _check(self) -> PrometheusSource:
        if not matches(URL_PATTERN, self.url):
            raise ValueError(URL_RULE.error(self=self.url))
        return self


class RetryStorm(ApiModel):
    """Load toward a dependency: a request rate that must not grow beyond maxAmplification x baseline."""

    prometheus: PrometheusSource = Field(
        description="The request rate toward the dependency, e.g. sum(rate(backend_requests_total[15s]))."
    )
    max_amplification: float = Field(
        default=2.0,
        gt=1,
        le=1000,
        description="Highest acceptable rate during the fault ÷ the rate before it (default 2).",
    )


class Backpressure(ApiModel):
    """Saturation (queue depth, in-flight requests): bounded with a plateau is graceful, growth is not."""

    prometheus: PrometheusSource = Field(description="The saturation, e.g. max(queue_depth).")
    limit: float | None = Field(default=None, ge=0, description="A value past this is a finding on its own.")


class Latency(ApiModel):
    """Client-side latency that must stay bounded: unbounded latency under a slow dependency means
    missing timeouts."""

    prometheus: PrometheusSource = Field(
        description="The client's latency in seconds, e.g. histogram_quantile(0.99, sum(rate(..._bucket[15s])) by (le))."
    )
    max_latency: Duration = Field(description="The latency the client must stay under, e.g. 2s.")


class Analysis(ApiModel):
    """How the system degraded: retry storms, backpressure, timeouts."""

    model_config = ConfigDict(json_schema_extra=validations(ANY_CHECK_RULE))

    retry_storm: RetryStorm | None = Field(default=None, description="Did clients amplify load?")
    backpressure: Backpressure | None = Field(default=None, description="Did queues stay bounded?")
    latency: Latency | None = Field(default=None, description="Did clients time out in time?")

    @model_validator(mode="after")
    def _any(self) -> Analysis:
        if self.retry_storm is None and self.backpressure is None and self.latency is None:
            raise ValueError(ANY_CHECK_RULE.error())
        return self

    def sources(self) -> dict[str, PrometheusSource]:
        found = {}
        if self.retry_storm is not None:
            found["retryStorm"] = self.retry_storm.prometheus
        if self.backpressure is not None:
            found["backpressure"] = self.backpressure.prometheus
        if self.latency is not None:
            found["latency"] = self.latency.prometheus
        return found

    def urls(self) -> list[str]:
        return [s.url for s in self.sources().values()]
