from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from aftershock.core.recovery import (
    PodState,
    ready_count,
    recovered_at,
    recovery_deadline,
    recovery_seconds,
)

T0 = datetime(2026, 1, 5, 10, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ready(uid: str, since: float, deleted: bool = False) -> PodState:
    return PodState(uid=uid, ready=True, ready_since=at(since), deleted=deleted)


def unready(uid: str, deleted: bool = False) -> PodState:
    return PodState(uid=uid, ready=False, ready_since=None, deleted=deleted)


# --- PodState ---------------------------------------------------------------------------------


def test_ready_pod_needs_ready_since() -> None:
    with pytest.raises(ValueError, match="ready pods need ready_since"):
        PodState(uid="a", ready=True, ready_since=None, deleted=False)


def test_pod_state_rejects_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        PodState(uid="a", ready=True, ready_since=datetime(2026, 1, 1), deleted=False)


def test_unready_pod_may_keep_last_transition() -> None:
    p = PodState(uid="a", ready=False, ready_since=at(-5))
    assert p.deleted is False


# --- recovered_at -----------------------------------------------------------------------------


def test_pod_delete_recovers_when_replacement_ready() -> None:
    # 3 replicas, pod "a" deleted at T0; replacement "d" Ready at +7.4s.
    pods = [ready("a", -3600, deleted=True), ready("b", -3600), ready("c", -3600), ready("d", 7.4)]
    assert recovered_at(T0, 3, pods) == at(7.4)


def test_not_recovered_while_replacement_not_ready() -> None:
    pods = [ready("b", -3600), ready("c", -3600), unready("d")]
    assert recovered_at(T0, 3, pods) is None


def test_deleted_pod_still_reporting_ready_does_not_count() -> None:
    # The victim is terminating but its Ready condition has not flipped yet.
    pods = [ready("a", -3600, deleted=True), ready("b", -3600), ready("c", -3600)]
    assert recovered_at(T0, 3, pods) is None


def test_uses_desired_th_earliest_ready_time() -> None:
    # Two replacements; recovery is when the second of them (the 3rd Ready pod) became Ready.
    pods = [ready("b", -60), ready("x", 12.0), ready("y", 4.0), ready("z", 30.0)]
    assert recovered_at(T0, 3, pods) == at(12.0)


def test_extra_ready_pods_do_not_delay_recovery() -> None:
    # Surge pods that became Ready later are irrelevant once desired was reached.
    pods = [ready("a", 1.0), ready("b", 2.0), ready("c", 3.0), ready("surge", 50.0)]
    assert recovered_at(T0, 3, pods) == at(3.0)


def test_ready_since_before_injection_is_clamped_to_injection() -> None:
    # Nothing visibly broke (all Ready since before the fault): recovery is immediate, never negative.
    pods = [ready("a", -100), ready("b", -50)]
    assert recovered_at(T0, 2, pods) == T0


def test_exactly_at_injection() -> None:
    assert recovered_at(T0, 1, [ready("a", 0)]) == T0


def test_input_order_irrelevant() -> None:
    pods = [ready("c", 9.0), ready("a", 3.0), ready("b", 6.0)]
    assert recovered_at(T0, 2, pods) == at(6.0)
    assert recovered_at(T0, 2, list(reversed(pods))) == at(6.0)


def test_no_pods() -> None:
    assert recovered_at(T0, 1, []) is None


def test_desired_zero_is_recovered_at_injection() -> None:
    assert recovered_at(T0, 0, []) == T0


def test_negative_desired_rejected() -> None:
    with pytest.raises(ValueError, match="desired must be >= 0"):
        recovered_at(T0, -1, [])


def test_naive_injected_at_rejected() -> None:
    with pytest.raises(ValueError, match="injected_at must be timezone-aware"):
        recovered_at(datetime(2026, 1, 5, 10), 1, [ready("a", 1)])


def test_other_timezones_compare_correctly() -> None:
    berlin = timezone(timedelta(hours=1))
    injected = datetime(2026, 1, 5, 11, 0, 0, tzinfo=berlin)  # == T0
    assert recovered_at(injected, 1, [ready("a", 2.0)]) == at(2.0)


def test_ready_count_and_degraded() -> None:
    pods = [ready("a", 1, deleted=True), ready("b", 1), unready("c")]
    assert ready_count(pods) == 1


# --- recovery_seconds / deadline --------------------------------------------------------------


def test_recovery_seconds_rounded_to_milliseconds() -> None:
    assert recovery_seconds(T0, T0 + timedelta(seconds=7, microseconds=412_600)) == 7.413
    assert recovery_seconds(T0, T0 + timedelta(microseconds=400)) == 0.0


def test_recovery_seconds_zero() -> None:
    assert recovery_seconds(T0, T0) == 0.0


def test_recovery_before_injection_rejected() -> None:
    with pytest.raises(ValueError, match="is before injected_at"):
        recovery_seconds(T0, at(-1))


def test_recovery_seconds_rejects_naive() -> None:
    with pytest.raises(ValueError, match="recovered_at must be timezone-aware"):
        recovery_seconds(T0, datetime(2026, 1, 5, 10, 0, 5))


def test_recovered_at_feeds_recovery_seconds() -> None:
    pods = [ready("b", -10), ready("new", 7.4)]
    when = recovered_at(T0, 2, pods)
    assert when is not None
    assert recovery_seconds(T0, when) == 7.4


def test_recovery_deadline() -> None:
    assert recovery_deadline(T0, 300) == at(300)
    assert recovery_deadline(T0, 0) == T0
    with pytest.raises(ValueError):
        recovery_deadline(T0, -1)
