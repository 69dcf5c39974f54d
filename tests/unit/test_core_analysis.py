"""How the system degraded: retry storms, backpressure and timeouts from query samples."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from aftershock.api.analysis import Analysis
from aftershock.api.common import Severity
from aftershock.core import analysis

T0 = dt.datetime(2026, 11, 29, 9, 0, tzinfo=dt.UTC)
PROM = {"url": "http://prometheus.monitoring.svc:9090", "query": "x"}


def series(baseline: float | None, *values: float) -> analysis.Series:
    return analysis.Series(baseline, [(T0 + dt.timedelta(seconds=2 * i), v) for i, v in enumerate(values)])


def test_a_retry_storm_is_the_peak_rate_over_the_baseline_beyond_the_limit() -> None:
    ratio, finding = analysis.retry_storm(series(10, 12, 35, 71, 40), max_amplification=2)
    assert ratio == pytest.approx(7.1)
    assert finding is not None and finding.severity is Severity.HIGH and finding.title == "Retry storm"
    assert "from 10/s" in finding.detail and "71/s" in finding.detail and "7.1 times" in finding.detail
    assert "09:00:04" in finding.detail  # when the peak was seen
    ratio, finding = analysis.retry_storm(series(10, 11, 14, 12), max_amplification=2)
    assert ratio == pytest.approx(1.4) and finding is None
    assert analysis.retry_storm(series(None, 5), 2) == (None, None)  # no baseline, no verdict
    ratio, finding = analysis.retry_storm(series(0, 3), 2)  # an idle baseline counts as 0.05/s
    assert ratio == pytest.approx(60) and finding is not None


def test_backpressure_past_the_limit_or_growing_without_a_plateau() -> None:
    past = analysis.backpressure(series(2, 5, 400, 1200), limit=1000)
    assert past is not None and "past the limit 1000" in past.detail
    growing = analysis.backpressure(series(1, 5, 20, 40, 80, 160, 320), limit=None)
    assert growing is not None and "still rising" in growing.detail and growing.severity is Severity.HIGH
    plateau = analysis.backpressure(series(1, 20, 48, 50, 50, 49, 50), limit=None)
    assert plateau is None  # bounded: graceful degradation
    assert analysis.backpressure(series(1, 1, 2, 1), limit=None) is None
    assert analysis.backpressure(series(1), limit=10) is None


def test_latency_beyond_the_bound_means_missing_timeouts() -> None:
    slow = analysis.latency(series(0.01, 0.5, 3.2, 6.0), "2s")
    assert slow is not None and slow.title == "Missing timeouts" and "6s" in slow.detail
    assert analysis.latency(series(0.01, 0.4, 0.6), "2s") is None


def test_judge_runs_the_checks_the_analysis_asks_for() -> None:
    spec = Analysis.model_validate(
        {
            "retryStorm": {"prometheus": PROM, "maxAmplification": 3},
            "latency": {"prometheus": PROM, "maxLatency": "1s"},
        }
    )
    found, measured = analysis.judge(
        spec, {"retryStorm": series(1, 2, 9), "latency": series(0.1, 0.3), "backpressure": series(0, 1e9)}
    )
    assert [f.title for f in found] == ["Retry storm"] and measured == {"amplification": 9.0}
    with pytest.raises(ValidationError, match="at least one of retryStorm"):
        Analysis.model_validate({})
    with pytest.raises(ValidationError, match="greater than 1"):
        Analysis.model_validate({"retryStorm": {"prometheus": PROM, "maxAmplification": 1}})
