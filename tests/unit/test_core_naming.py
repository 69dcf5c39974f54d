from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from aftershock.core.naming import (
    ANNOTATION_PREFIX,
    FINALIZER,
    LABEL_EXPERIMENT,
    LABEL_RUN,
    MAX_EXPERIMENT_NAME_LENGTH,
    is_dns1123_label,
    is_dns1123_subdomain,
    parse_run_name,
    run_name,
    validate_experiment_name,
)

SLOT = datetime(2025, 12, 19, 8, 0, 0, tzinfo=UTC)  # 1766131200


def test_constants() -> None:
    assert LABEL_RUN == "aftershock.dev/run"
    assert LABEL_EXPERIMENT == "aftershock.dev/experiment"
    assert FINALIZER == "aftershock.dev/finalizer"
    assert ANNOTATION_PREFIX == "aftershock.dev"
    assert MAX_EXPERIMENT_NAME_LENGTH == 52


def test_run_name_matches_design_example() -> None:
    assert run_name("checkout-pod-delete", SLOT) == "checkout-pod-delete-1766131200"


def test_run_name_is_deterministic_and_timezone_independent() -> None:
    berlin = SLOT.astimezone(timezone(timedelta(hours=1)))
    assert run_name("exp", berlin) == run_name("exp", SLOT)


def test_run_name_drops_subseconds() -> None:
    assert run_name("exp", SLOT + timedelta(microseconds=999_999)) == "exp-1766131200"


def test_different_slots_different_names() -> None:
    assert run_name("exp", SLOT) != run_name("exp", SLOT + timedelta(minutes=1))


def test_naive_time_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        run_name("exp", datetime(2025, 12, 19, 8, 0, 0))


def test_before_epoch_rejected() -> None:
    with pytest.raises(ValueError, match="before 1970"):
        run_name("exp", datetime(1969, 12, 31, tzinfo=UTC))


def test_epoch_zero() -> None:
    assert run_name("exp", datetime(1970, 1, 1, tzinfo=UTC)) == "exp-0"


def test_max_length_experiment_gives_63_char_run_name() -> None:
    name = "a" * 52
    result = run_name(name, SLOT)
    assert len(result) == 63
    assert is_dns1123_label(result)


def test_experiment_name_too_long() -> None:
    with pytest.raises(ValueError, match="is 53 characters; at most 52"):
        run_name("a" * 53, SLOT)


@pytest.mark.parametrize("bad", ["", "Checkout", "-exp", "exp-", "exp_1", "exp..x", "ex p"])
def test_invalid_experiment_names(bad: str) -> None:
    with pytest.raises(ValueError, match="experiment name"):
        validate_experiment_name(bad)


@pytest.mark.parametrize("good", ["a", "exp", "exp-1", "team.exp", "0abc"])
def test_valid_experiment_names(good: str) -> None:
    validate_experiment_name(good)
    assert run_name(good, SLOT).startswith(f"{good}-")


def test_dns1123_helpers() -> None:
    assert is_dns1123_subdomain("a.b-c")
    assert not is_dns1123_subdomain("a" * 254)
    assert is_dns1123_subdomain("a" * 253)
    assert not is_dns1123_subdomain("A")
    assert is_dns1123_label("shop")
    assert not is_dns1123_label("a.b")
    assert not is_dns1123_label("a" * 64)
    assert not is_dns1123_label("")


def test_parse_run_name_roundtrip() -> None:
    assert parse_run_name(run_name("checkout-pod-delete", SLOT)) == ("checkout-pod-delete", SLOT)


def test_parse_run_name_experiment_ending_in_digits() -> None:
    assert parse_run_name(run_name("exp-2", SLOT)) == ("exp-2", SLOT)


@pytest.mark.parametrize("name", ["manual-run", "1766131200", "exp-", "exp-12x"])
def test_parse_run_name_other_shapes(name: str) -> None:
    assert parse_run_name(name) is None
