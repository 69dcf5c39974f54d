"""Judging the steady-state hypothesis from probe answers."""

from __future__ import annotations

import datetime as dt

from aftershock.api.common import Severity
from aftershock.api.steady_state import Probe
from aftershock.core import probes as core

T0 = dt.datetime(2026, 11, 29, 8, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def ok(seconds: float = 0, latency: float | None = 10.0) -> core.Answer:
    return core.Answer(ok=True, detail="HTTP 200 in 10 ms", at=at(seconds), latency_ms=latency)


def bad(seconds: float = 0, detail: str = "HTTP 503 in 3 ms") -> core.Answer:
    return core.Answer(ok=False, detail=detail, at=at(seconds), latency_ms=3.0)


def probe(abort_after: int | None = None) -> Probe:
    return Probe.model_validate(
        {"name": "checkout", "http": {"url": "http://checkout.shop.svc/healthz"}, "abortAfter": abort_after}
    )


def test_a_tally_counts_failures_streaks_and_latency() -> None:
    tally = core.Tally("checkout", "http")
    for answer in (ok(0), bad(2), bad(4), ok(6), bad(8)):
        tally.record(answer)
    assert (tally.samples, tally.failures, tally.consecutive) == (5, 3, 1)
    assert (tally.first_failure, tally.last_failure) == (at(2), at(8))
    status = tally.to_status(before=ok(-1), after=ok(20))
    assert status.success_ratio == 0.4 and status.before == "Held" and status.after == "Held"
    assert status.latency_p50_ms == 3.0 and status.latency_p95_ms == 10.0
    assert status.last_answer == "HTTP 200 in 10 ms"


def test_the_hypothesis_must_hold_before_injecting_and_refusals_are_errors_not_skips() -> None:
    assert core.not_met({"a": ok(), "b": ok()}) is None
    why = core.not_met({"a": ok(), "b": bad(detail="HTTP 500 in 2 ms")})
    assert (
        why is not None and "b: HTTP 500 in 2 ms" in why and "a:" not in why and "nothing was injected" in why
    )
    refused = core.Answer(ok=False, detail="refused: http://169.254.169.254/ ...", at=T0, refused=True)
    assert (
        core.refusal({"a": ok(), "m": refused})
        == "probe m: refused: http://169.254.169.254/ ...; nothing was injected"
    )
    assert core.refusal({"a": bad()}) is None


def test_abort_after_consecutive_failures_only() -> None:
    p, tally = probe(abort_after=3), core.Tally("checkout", "http")
    for answer in (bad(0), bad(1), ok(2), bad(3), bad(4)):
        tally.record(answer)
        assert not core.abort_due(p, tally)
    tally.record(bad(5))
    assert core.abort_due(p, tally)
    assert not core.abort_due(probe(None), tally)
    finding = core.abort_finding(p, tally)
    assert finding.severity is Severity.HIGH and "checkout" in finding.title
    assert "3 consecutive checks (abortAfter 3)" in finding.detail and finding.detail.count("HTTP 503") == 3


def test_failed_after_recovery_is_high_and_cleared_failures_are_low_with_evidence() -> None:
    stayed, cleared, clean = (
        core.Tally("a", "http"),
        core.Tally("b", "prometheus"),
        core.Tally("c", "kubernetes"),
    )
    for t in (stayed, cleared, clean):
        t.record(ok(0))
    stayed.record(bad(2))
    cleared.record(bad(3, "4 (must be below 1)"))
    found = core.findings([stayed, cleared, clean], {"a": bad(30), "b": ok(30), "c": ok(30)})
    assert [f.severity for f in found] == [Severity.HIGH, Severity.LOW]
    assert "after recovery a still answered" in found[0].detail and "1 of 2 checks" in found[0].detail
    assert "b failed 1 of 2 checks" in found[1].detail and "4 (must be below 1)" in found[1].detail
    assert "c " not in found[1].detail
    assert core.findings([clean], {"c": ok(30)}) == []


def test_summary_for_kubectl_get() -> None:
    held = core.Tally("a", "http").to_status(ok(), ok())
    failing = core.Tally("b", "http").to_status(ok(), bad())
    flaky = core.Tally("c", "http")
    flaky.record(bad())
    assert core.summary([held]) == "1/1 held"
    assert core.summary([held, failing]) == "1/2 failed"
    assert core.summary([held, flaky.to_status(ok(), ok())]) == "2/2 held, 1 failures during"
    assert core.summary([held], aborted_by="a") == "aborted by a"
    assert core.summary([]) is None


def test_percentile_is_nearest_rank() -> None:
    assert core.percentile([], 50) is None
    assert core.percentile([5.0, 1.0, 3.0], 50) == 3.0
    assert core.percentile([float(i) for i in range(1, 101)], 95) == 95.0
