"""When did the workload recover? Computed from pod Ready conditions, not from when we looked.

The Ready condition's ``lastTransitionTime`` is written by the kubelet when the pod actually became
Ready; it is the ground truth. Using the time the operator *observed* readiness would add the
watch/poll delay (seconds, more under a slow API server) to every measurement and make recovery
times depend on operator load. So the observer only needs to look *eventually*; the timestamps it
reads say when recovery happened.

All timestamps must be timezone-aware (Kubernetes times are UTC); naive ones raise ValueError
rather than being silently interpreted in local time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


def _aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")


@dataclass(frozen=True)
class PodState:
    """The recovery-relevant part of a pod.

    ready: the Ready condition is True.
    ready_since: that condition's lastTransitionTime; required when ready. If a pod lacks it, the
        caller should pass the time it observed the pod instead (an upper bound).
    deleted: a victim of the fault or terminating (deletionTimestamp set); never counts as
        recovered capacity, even while still reporting Ready.
    """

    uid: str
    ready: bool
    ready_since: datetime | None
    deleted: bool = False

    def __post_init__(self) -> None:
        if self.ready and self.ready_since is None:
            raise ValueError(f"pod {self.uid}: ready pods need ready_since (Ready lastTransitionTime)")
        if self.ready_since is not None:
            _aware(f"pod {self.uid} ready_since", self.ready_since)


def _counted(pods: Iterable[PodState]) -> list[PodState]:
    return [p for p in pods if p.ready and not p.deleted]


def ready_count(pods: Iterable[PodState]) -> int:
    """Ready pods that count towards recovery (not deleted, not terminating)."""
    return len(_counted(pods))


def recovered_at(injected_at: datetime, desired: int, pods: Sequence[PodState]) -> datetime | None:
    """The moment the workload was back to `desired` Ready pods, or None if it is not (yet).

    That is the desired-th earliest ready_since among ready, non-deleted pods — the moment the last
    pod needed to reach `desired` became Ready — but never earlier than `injected_at`: pods that
    survived the fault were Ready before it, and recovery cannot precede the fault. With
    desired == 0 the workload is recovered at injection.
    """
    _aware("injected_at", injected_at)
    if desired < 0:
        raise ValueError(f"desired must be >= 0, got {desired}")
    if desired == 0:
        return injected_at
    since = sorted(p.ready_since for p in _counted(pods) if p.ready_since is not None)
    if len(since) < desired:
        return None
    return max(since[desired - 1], injected_at)


def recovery_seconds(injected_at: datetime, recovered: datetime) -> float:
    """Seconds from injection to recovery, rounded to milliseconds (status precision)."""
    _aware("injected_at", injected_at)
    _aware("recovered_at", recovered)
    seconds = (recovered - injected_at).total_seconds()
    if seconds < 0:
        raise ValueError(
            f"recovered_at {recovered.isoformat()} is before injected_at {injected_at.isoformat()}"
        )
    return round(seconds, 3)


def recovery_deadline(injected_at: datetime, timeout_seconds: float) -> datetime:
    """When the run stops waiting for recovery (``recovery.timeout`` after injection)."""
    _aware("injected_at", injected_at)
    if timeout_seconds < 0:
        raise ValueError(f"timeout_seconds must be >= 0, got {timeout_seconds}")
    return injected_at + timedelta(seconds=timeout_seconds)
