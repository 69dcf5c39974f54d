"""Whether a run's journal (its `status`) may be acted on.

`status` is writable by whoever may write `chaosruns/status` — a tenant with a broad role, not
only the operator. So the targets and times it holds are claims to check, never orders: before
anything is injected (or held) on the strength of a journal, it must agree with what the frozen
spec and the cluster can produce. A journal that does not is rejected and nothing is touched.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aftershock.api.run import TargetRecord

SKEW = dt.timedelta(seconds=5)


def deadline_grace(timeout: dt.timedelta) -> dt.timedelta:
    """Slack after fault.duration + recovery.timeout before the dead-man's switch fires: half the
    timeout, at least 5 s and at most a minute."""
    return min(dt.timedelta(minutes=1), max(dt.timedelta(seconds=5), timeout / 2))


def longest_run(held: dt.timedelta, timeout: dt.timedelta, start_allowance: float) -> dt.timedelta:
    """From accepting a run to its deadline: the fault held, recovery awaited, grace, and the time
    an engine may take to start (e.g. Litmus's runner pod)."""
    return held + timeout + deadline_grace(timeout) + dt.timedelta(seconds=start_allowance)


@dataclass(frozen=True)
class Expected:
    """What the spec, the policy and the cluster allow this run's journal to say."""

    target_namespace: str
    unit: str  # "Pod" or "Node": the kind of record the fault's engine writes
    now: dt.datetime
    created: dt.datetime | None  # the run's creationTimestamp
    longest: dt.timedelta  # pending → deadline at most: fault held + recovery timeout + grace
    allowed_count: int | None = None  # how many targets the selection can yield; None: not checked
    live_pods: Mapping[str, str] | None = None  # uid → name of pods the selection yields now
    live_nodes: frozenset[str] = field(default_factory=frozenset)  # the nodes those pods run on


def journal_problem(
    records: Sequence[TargetRecord],
    start_time: dt.datetime | None,
    deadline: dt.datetime | None,
    expected: Expected,
) -> str | None:
    """The first thing in the journal the operator must not act on, as a sentence; None if sound.

    Records already injected are checked for place and time only (their pods may be gone: that
    is the fault); records still to inject must name live objects the selection yields."""
    seen: set[tuple[str, str | None, str | None]] = set()
    for record in records:
        where = f"{record.kind} {record.namespace + '/' if record.namespace else ''}{record.name}"
        if record.kind != expected.unit:
            return f"target {where} is not a {expected.unit}, the only kind this fault acts on"
        if expected.unit == "Pod" and record.namespace != expected.target_namespace:
            return f"target {where} is outside the run's target namespace {expected.target_namespace}"
        if expected.unit == "Node" and record.namespace:
            return f"target {where}: a node has no namespace"
        key = (record.name, record.namespace, record.uid)
        if key in seen:
            return f"target {where} is recorded twice"
        seen.add(key)
        if record.injected_at is not None:
            if start_time is None or not (start_time - SKEW <= record.injected_at <= expected.now + SKEW):
                return (
                    f"target {where} says it was injected at {record.injected_at.isoformat()},"
                    " outside the run's own time"
                )
            continue
        if expected.live_pods is None:
            continue
        if expected.unit == "Pod" and expected.live_pods.get(record.uid or "") != record.name:
            return f"target {where} (uid {record.uid}) is not a live pod the run's selector matches"
        if expected.unit == "Node" and record.name not in expected.live_nodes:
            return f"target {where} runs none of the pods the run's selector matches"
    if expected.allowed_count is not None and len(records) > expected.allowed_count:
        return (
            f"{len(records)} targets recorded, but the run's target (mode and value) yields at most"
            f" {expected.allowed_count}"
        )
    if records and start_time is None:
        return "targets are recorded without a start time"
    if start_time is not None:
        if start_time > expected.now + SKEW or (
            expected.created is not None and start_time < expected.created - SKEW
        ):
            return f"start time {start_time.isoformat()} lies outside the run's life"
        if deadline is not None and deadline > start_time + expected.longest + SKEW:
            return (
                f"deadline {deadline.isoformat()} is later than the spec allows"
                f" ({(start_time + expected.longest).isoformat()} at the latest)"
            )
    return None
