"""Judging the steady-state hypothesis from probe answers: pure, so every rule is tested once.

Probes answer (`Answer`); a `Tally` keeps one probe's record while the fault is in place; the
functions here decide whether the hypothesis holds before injecting, when consecutive failures
must abort the run, and which findings the answers justify (severity per DESIGN.md: a probe
still failing after recovery is high, failures that cleared again are low, an abort at least high).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aftershock.api.common import Finding, Severity
from aftershock.api.run import ProbeStatus
from aftershock.api.steady_state import Probe

HELD = "Held"
FAILED = "Failed"
NOT_MET_REASON = "SteadyStateNotMet"
ABORT_REASON = "SteadyStateLost"
REFUSED_REASON = "EndpointNotAllowed"
GATE_REASON = "ErrorBudgetExhausted"
KEEP_ANSWERS = 3
KEEP_LATENCIES = 2048


@dataclass(frozen=True)
class Answer:
    """One check of one probe. `refused`: the operator would not connect (endpoint policy) — a
    configuration problem, never the service's fault."""

    ok: bool
    detail: str
    at: dt.datetime
    latency_ms: float | None = None
    refused: bool = False

    def line(self) -> str:
        return f"{self.at.strftime('%H:%M:%S')} {self.detail}"


@dataclass
class Tally:
    """One probe's checks while the fault is in place (and until recovery was measured)."""

    name: str
    type: str
    samples: int = 0
    failures: int = 0
    consecutive: int = 0
    first_failure: dt.datetime | None = None
    last_failure: dt.datetime | None = None
    last: Answer | None = None
    recent: deque[Answer] = field(default_factory=lambda: deque(maxlen=KEEP_ANSWERS))
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=KEEP_LATENCIES))

    def record(self, answer: Answer) -> None:
        self.samples += 1
        self.last = answer
        self.recent.append(answer)
        if answer.latency_ms is not None:
            self.latencies.append(answer.latency_ms)
        if answer.ok:
            self.consecutive = 0
            return
        self.failures += 1
        self.consecutive += 1
        self.first_failure = self.first_failure or answer.at
        self.last_failure = answer.at

    def ratio(self) -> float | None:
        return None if not self.samples else (self.samples - self.failures) / self.samples

    def to_status(self, before: Answer | None, after: Answer | None) -> ProbeStatus:
        ratio = self.ratio()
        latest = after or self.last or before
        return ProbeStatus(
            name=self.name,
            type=self.type,
            before=_held(before),
            after=_held(after),
            samples=self.samples,
            failures=self.failures,
            success_ratio=None if ratio is None else round(ratio, 4),
            first_failure=self.first_failure,
            last_failure=self.last_failure,
            last_answer=_clip(latest.detail if latest is not None else None),
            latency_p50_ms=percentile(self.latencies, 50),
            latency_p95_ms=percentile(self.latencies, 95),
        )


def _held(answer: Answer | None) -> str | None:
    return None if answer is None else HELD if answer.ok else FAILED


def _clip(text: str | None, limit: int = 500) -> str | None:
    return text if text is None or len(text) <= limit else text[: limit - 1] + "…"


def percentile(values: Sequence[float] | deque[float], q: float) -> float | None:
    """Nearest-rank percentile, rounded to 0.1 ms; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return round(ordered[rank - 1], 1)


def refusal(answers: Mapping[str, Answer]) -> str | None:
    """The first endpoint refusal among the answers, as a message; None when none was refused."""
    for name, answer in answers.items():
        if answer.refused:
            return f"probe {name}: {answer.detail}; nothing was injected"
    return None


def not_met(answers: Mapping[str, Answer]) -> str | None:
    """Why the hypothesis does not hold before injecting (None: it holds). Nothing is blamed: the
    service was already unhealthy, so breaking it would teach nothing."""
    failing = [f"{name}: {a.detail}" for name, a in answers.items() if not a.ok]
    if not failing:
        return None
    return (
        "the steady-state hypothesis does not hold before injecting, so nothing was injected: "
        + "; ".join(failing)
    )


def abort_due(probe: Probe, tally: Tally) -> bool:
    return probe.abort_after is not None and tally.consecutive >= probe.abort_after


def abort_finding(probe: Probe, tally: Tally) -> Finding:
    answers = "; ".join(a.line() for a in tally.recent)
    when = tally.last_failure.isoformat() if tally.last_failure else "?"
    return Finding(
        severity=Severity.HIGH,
        title=f"Run aborted by steady-state probe {probe.name}",
        detail=f"{probe.name} failed {tally.consecutive} consecutive checks (abortAfter {probe.abort_after}),"
        f" the last at {when}; the fault was reverted at once. Last answers: {answers}",
    )


def findings(tallies: Sequence[Tally], after: Mapping[str, Answer]) -> list[Finding]:
    """What the probes found: a high finding per probe still failing after recovery, one low
    finding for failures during the fault that cleared again, each with its evidence."""
    found: list[Finding] = []
    transient: list[str] = []
    for tally in tallies:
        final = after.get(tally.name)
        if final is not None and not final.ok:
            during = (
                f"; during the fault it failed {tally.failures} of {tally.samples} checks"
                if tally.samples
                else ""
            )
            found.append(
                Finding(
                    severity=Severity.HIGH,
                    title=f"Steady-state probe {tally.name} stayed failed",
                    detail=f"after recovery {tally.name} still answered {final.line()}{during}",
                )
            )
        elif tally.failures:
            span = ""
            if tally.first_failure and tally.last_failure:
                span = f" between {tally.first_failure.isoformat()} and {tally.last_failure.isoformat()}"
            last_bad = next((a for a in reversed(tally.recent) if not a.ok), None)
            example = f" (e.g. {last_bad.detail})" if last_bad else ""
            transient.append(
                f"{tally.name} failed {tally.failures} of {tally.samples} checks{span}{example}, held after recovery"
            )
    if transient:
        found.append(
            Finding(
                severity=Severity.LOW,
                title="Transient probe failures during the fault",
                detail="; ".join(transient),
            )
        )
    return found


def summary(statuses: Sequence[ProbeStatus], aborted_by: str | None = None) -> str | None:
    """A few words for kubectl get: 3/3 held, 1/3 failed, aborted by NAME."""
    if not statuses:
        return None
    if aborted_by:
        return f"aborted by {aborted_by}"[:64]
    final = [s.after or s.before for s in statuses]
    failed = sum(1 for f in final if f == FAILED)
    if failed:
        return f"{failed}/{len(statuses)} failed"
    if any(s.failures for s in statuses):
        return f"{len(statuses)}/{len(statuses)} held, {sum(s.failures for s in statuses)} failures during"
    return f"{len(statuses)}/{len(statuses)} held"
