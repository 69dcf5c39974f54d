from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from aftershock.core.litmus import engine_name
from aftershock.core.naming import (
    ANNOTATION_PREFIX,
    FINALIZER,
    LABEL_EXPERIMENT,
    LABEL_RUN,
    MAX_EXPERIMENT_NAME_LENGTH,
    bounded_name,
    carries_run_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_value,
    label_value,
    parse_run_name,
    run_artifact_name,
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


# --- generated names and label values from hostile input -------------------------------------

# names a person may give a hand-made run (any DNS-1123 subdomain up to 253 characters), chosen so
# that plain truncation would end in "-" or ".", or make two of them equal
LONG_RUNS = [
    "a" * 253,
    "a" * 52 + "-" + "b" * 200,  # "-" right where a 63-character cut lands
    "x" * 243 + "-" + "9" * 9,  # ends in digits after the cut
    "a." * 126 + "b",  # dots everywhere: a cut may end in "."
    "-".join(["ab"] * 84) + "c",  # dashes everywhere
    "team.checkout-" + "9" * 239,
]


@pytest.mark.parametrize("name", LONG_RUNS, ids=[f"len{len(n)}-{n[-3:]}" for n in LONG_RUNS])
@pytest.mark.parametrize("limit", [63, 253])
def test_bounded_names_are_valid_and_never_end_in_a_separator(name: str, limit: int) -> None:
    assert is_dns1123_subdomain(name)
    for prefix in ("", "aftershock-"):
        result = bounded_name(prefix + name, limit)
        assert len(result) <= limit
        assert is_dns1123_subdomain(result), result
        assert result[-1] not in "-.", result
        assert bounded_name(prefix + name, limit) == result  # deterministic


def test_bounded_name_keeps_names_that_fit() -> None:
    assert bounded_name("a" * 63, 63) == "a" * 63
    assert bounded_name("aftershock-exp-1766131200") == "aftershock-exp-1766131200"


def test_truncated_names_stay_distinct() -> None:
    # equal in their first 240 characters: truncation alone would give both the same name
    first, second = "a" * 240 + "-1766131200", "a" * 240 + "-1766131260"
    assert bounded_name("aftershock-" + first) != bounded_name("aftershock-" + second)
    assert bounded_name(first, 63) != bounded_name(second, 63)


def test_bounded_name_rejects_a_limit_without_room_for_the_hash() -> None:
    with pytest.raises(ValueError, match="no room"):
        bounded_name("abc", 8)


def test_bounded_name_of_separators_only_is_the_hash() -> None:
    result = bounded_name("-" * 80, 63)
    assert len(result) == 8 and result.isalnum()


@pytest.mark.parametrize("name", LONG_RUNS, ids=[f"len{len(n)}-{n[-3:]}" for n in LONG_RUNS])
def test_label_values_from_long_run_names(name: str) -> None:
    value = label_value(name)
    assert is_label_value(value), value
    assert len(value) <= 63


@pytest.mark.parametrize(
    "hostile",
    [
        "",
        "a b",
        "-lead",
        "trail-",
        "trail.",
        "_x_",
        "ünïcödé",
        "a/b",
        "x" * 64,
        "-" * 70,
        "a\nb",
        "a" * 62 + "-",
    ],
)
def test_label_value_of_anything_is_a_valid_label_value(hostile: str) -> None:
    value = label_value(hostile)
    assert is_label_value(value), (hostile, value)


def test_label_value_keeps_valid_values_and_separates_different_ones() -> None:
    assert label_value("checkout-1766131200") == "checkout-1766131200"
    assert label_value("A.b_c-9") == "A.b_c-9"
    assert label_value("a b") != label_value("a_b")  # sanitising never merges two inputs
    assert label_value("x" * 64) != label_value("x" * 65)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("", True),
        ("a", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("-a", False),
        ("a-", False),
        ("a.b_c", True),
    ],
)
def test_is_label_value(value: str, valid: bool) -> None:
    assert is_label_value(value) is valid


def test_run_artifact_names() -> None:
    run = "checkout-1766131200"
    assert run_artifact_name(run, "shop", "shop", prefix="aftershock-") == f"aftershock-{run}"
    elsewhere = run_artifact_name(run, "team-a", "shop", prefix="aftershock-")
    assert elsewhere.startswith(f"aftershock-{run}-")
    assert elsewhere != run_artifact_name(run, "team-b", "shop", prefix="aftershock-")
    longest = "r" * 253
    for ns in ("shop", "team-a"):
        name = run_artifact_name(longest, ns, "shop", prefix="aftershock-")
        assert len(name) <= 253 and is_dns1123_subdomain(name)


@pytest.mark.parametrize("name", LONG_RUNS, ids=[f"len{len(n)}-{n[-3:]}" for n in LONG_RUNS])
def test_litmus_engine_names_fit_a_label_value(name: str) -> None:
    for run_namespace in ("shop", "team-a"):
        engine = engine_name(name, run_namespace, "shop")
        assert is_label_value(engine) and is_dns1123_subdomain(engine), engine
    assert engine_name(name, "shop", "shop") != engine_name(name[:-1] + "z", "shop", "shop")


def test_litmus_engine_names_of_short_runs_are_unchanged() -> None:
    assert engine_name("exp-1766131200", "shop", "shop") == "exp-1766131200"
    assert engine_name("exp-1766131200", "team-a", "shop") == f"exp-1766131200-{_sha8('team-a')}"


def _sha8(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


@pytest.mark.parametrize(
    ("obj", "owned"),
    [
        ({"metadata": {"labels": {LABEL_RUN: "uid-1"}}}, True),
        ({"metadata": {"labels": {LABEL_RUN: "uid-2"}}}, False),
        ({"metadata": {"labels": {}}}, False),
        ({"metadata": {"labels": None}}, False),
        ({"metadata": {}}, False),
        ({}, False),
        (None, False),
    ],
)
def test_an_object_is_a_runs_own_only_by_its_label(obj: dict[str, object] | None, owned: bool) -> None:
    assert carries_run_label(obj, "uid-1") is owned


def test_an_empty_run_uid_owns_nothing() -> None:
    assert not carries_run_label({"metadata": {"labels": {LABEL_RUN: ""}}}, "")
