"""How the system degraded under the fault, judged from samples of Prometheus queries.

Pure: the samples (time, value) of each query and its baseline (taken right before injecting) go
in, findings with their evidence come out. Severity is high for each (DESIGN.md: "the client
amplified load (retry storm) / had no backpressure"; unbounded latency is the same failure of
the client: it waits on a slow dependency instead of timing out).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from aftershock.api.analysis import Analysis
from aftershock.api.common import Finding, Severity
from aftershock.api.durations import parse_duration

Sample = tuple[dt.datetime, float]
BASELINE_FLOOR = 0.05
"""A rate below this (requests/s) counts as this much, so that a ratio to an idle baseline is finite."""
PLATEAU_SHARE = 0.10
"""Growth over the last third of the fault smaller than this share of the peak counts as a plateau."""


@dataclass(frozen=True)
class Series:
    """One query's baseline and its samples during the fault."""

    baseline: float | None
    samples: Sequence[Sample]

    def peak(self) -> Sample | None:
        return max(self.samples, key=lambda s: s[1]) if self.samples else None


def _when(moment: dt.datetime) -> str:
    return moment.isoformat()


def retry_storm(series: Series, max_amplification: float) -> tuple[float | None, Finding | None]:
    """(amplification, finding): the peak rate during the fault ÷ the baseline."""
    peak = series.peak()
    if peak is None or series.baseline is None:
        return None, None
    baseline = max(series.baseline, BASELINE_FLOOR)
    ratio = peak[1] / baseline
    if ratio <= max_amplification:
        return ratio, None
    return ratio, Finding(
        severity=Severity.HIGH,
        title="Retry storm",
        detail=f"the request rate toward the dependency rose from {series.baseline:.3g}/s before the fault to"
        f" {peak[1]:.3g}/s at {_when(peak[0])}: {ratio:.1f} times as much (maxAmplification {max_amplification:g});"
        " clients retried without backoff or budget and multiplied the load on a struggling dependency",
    )


def grows_without_plateau(samples: Sequence[Sample], baseline: float | None) -> bool:
    """Whether saturation kept rising until the fault ended: the last third of the samples still
    climbs by more than PLATEAU_SHARE of the peak, and the peak is well above the baseline."""
    if len(samples) < 3:
        return False
    values = [v for _t, v in samples]
    peak = max(values)
    start = max(baseline or 0.0, 0.0)
    if peak <= max(2 * start, start + 1):
        return False
    tail = values[len(values) * 2 // 3 :]
    return tail[-1] - tail[0] > PLATEAU_SHARE * peak and tail[-1] >= peak * 0.9


def backpressure(series: Series, limit: float | None) -> Finding | None:
    peak = series.peak()
    if peak is None:
        return None
    before = f"{series.baseline:.3g}" if series.baseline is not None else "unknown"
    if limit is not None and peak[1] > limit:
        return Finding(
            severity=Severity.HIGH,
            title="No backpressure",
            detail=f"saturation reached {peak[1]:.3g} at {_when(peak[0])}, past the limit {limit:g} (before the"
            f" fault: {before}); the service queued work instead of shedding it",
        )
    if grows_without_plateau(series.samples, series.baseline):
        last = series.samples[-1]
        return Finding(
            severity=Severity.HIGH,
            title="No backpressure",
            detail=f"saturation grew from {before} to {last[1]:.3g} by {_when(last[0])} and was still rising when"
            " the fault ended (no plateau): nothing bounds the queue",
        )
    return None


def latency(series: Series, max_latency: str) -> Finding | None:
    peak = series.peak()
    bound = parse_duration(max_latency).total_seconds()
    if peak is None or peak[1] <= bound:
        return None
    before = f"{series.baseline:.3g}s" if series.baseline is not None else "unknown"
    return Finding(
        severity=Severity.HIGH,
        title="Missing timeouts",
        detail=f"client latency reached {peak[1]:.3g}s at {_when(peak[0])} (before the fault: {before}; maxLatency"
        f" {max_latency}): requests waited on the slow dependency instead of timing out",
    )


def judge(analysis: Analysis, series: dict[str, Series]) -> tuple[list[Finding], dict[str, float | None]]:
    """Every analysis finding, and the retry amplification (for the record)."""
    found: list[Finding] = []
    measured: dict[str, float | None] = {}
    if analysis.retry_storm is not None and "retryStorm" in series:
        ratio, finding = retry_storm(series["retryStorm"], analysis.retry_storm.max_amplification)
        measured["amplification"] = None if ratio is None else round(ratio, 2)
        if finding:
            found.append(finding)
    if analysis.backpressure is not None and "backpressure" in series:
        finding = backpressure(series["backpressure"], analysis.backpressure.limit)
        if finding:
            found.append(finding)
    if analysis.latency is not None and "latency" in series:
        finding = latency(series["latency"], analysis.latency.max_latency)
        if finding:
            found.append(finding)
    return found, measured
