from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import pytest

from aftershock.core.targets import TargetMode, TargetSelectionError, count_for_mode, select_targets


@dataclass(frozen=True)
class Pod:
    name: str


def names(pods: list[Pod]) -> list[str]:
    return [p.name for p in pods]


def pods(n: int) -> list[Pod]:
    return [Pod(f"pod-{i:02d}") for i in range(n)]


def by_name(p: Pod) -> str:
    return p.name


# --- count_for_mode ---------------------------------------------------------------------------


def test_modes_are_the_design_strings() -> None:
    assert [m.value for m in TargetMode] == ["one", "fixed", "percent", "all"]


@pytest.mark.parametrize(("total", "expected"), [(0, 0), (1, 1), (5, 1)])
def test_one(total: int, expected: int) -> None:
    assert count_for_mode("one", None, total) == expected


def test_one_ignores_value() -> None:
    # The DESIGN example writes `mode: one` with `value: 1`; a defaulted value is harmless.
    assert count_for_mode("one", 7, 10) == 1


@pytest.mark.parametrize(("total", "expected"), [(0, 0), (1, 1), (9, 9)])
def test_all(total: int, expected: int) -> None:
    assert count_for_mode("all", None, total) == expected
    assert count_for_mode("all", 3, total) == expected


@pytest.mark.parametrize(
    ("value", "total", "expected"),
    [(1, 5, 1), (3, 5, 3), (5, 5, 5), (10, 5, 5), (2, 0, 0)],
)
def test_fixed(value: int, total: int, expected: int) -> None:
    assert count_for_mode("fixed", value, total) == expected


@pytest.mark.parametrize("value", [None, 0, -1])
def test_fixed_needs_positive_value(value: int | None) -> None:
    with pytest.raises(ValueError, match="'fixed' needs a value >= 1"):
        count_for_mode("fixed", value, 5)


@pytest.mark.parametrize(
    ("value", "total", "expected"),
    [
        (50, 10, 5),
        (50, 5, 2),  # 2.5 floors to 2
        (33, 10, 3),  # 3.3 floors to 3
        (99, 10, 9),  # 9.9 floors to 9
        (100, 7, 7),
        (1, 10, 1),  # 0.1 floors to 0, raised to the minimum of 1
        (10, 3, 1),  # 0.3 -> 1
        (1, 1, 1),
        (1, 100, 1),
        (1, 250, 2),
        (50, 0, 0),  # nothing to select
    ],
)
def test_percent(value: int, total: int, expected: int) -> None:
    assert count_for_mode("percent", value, total) == expected


@pytest.mark.parametrize("value", [None, 0, -5, 101])
def test_percent_needs_value_in_range(value: int | None) -> None:
    with pytest.raises(ValueError, match="'percent' needs a value between 1 and 100"):
        count_for_mode("percent", value, 10)


def test_percent_never_exceeds_total() -> None:
    for total in range(0, 60):
        for value in range(1, 101):
            n = count_for_mode("percent", value, total)
            assert 0 <= n <= total
            assert (n >= 1) == (total >= 1)


def test_unknown_mode_lists_allowed() -> None:
    with pytest.raises(
        ValueError, match=r"unknown target mode 'some': expected one of one, fixed, percent, all"
    ):
        count_for_mode("some", 1, 3)


def test_mode_is_case_sensitive() -> None:
    with pytest.raises(ValueError):
        count_for_mode("All", None, 3)


def test_negative_total_rejected() -> None:
    with pytest.raises(ValueError, match="total must be >= 0"):
        count_for_mode("all", None, -1)


def test_accepts_enum() -> None:
    assert count_for_mode(TargetMode.FIXED, 2, 5) == 2


# --- select_targets ---------------------------------------------------------------------------


def test_empty_candidates_raise_selection_error_with_reason() -> None:
    with pytest.raises(TargetSelectionError) as err:
        select_targets([], "one", None, "run-1", key=by_name, what="pods of Deployment shop/checkout")
    assert err.value.reason == (
        "no pods of Deployment shop/checkout matched the target selector; there is nothing to inject into"
    )
    assert str(err.value) == err.value.reason


def test_selection_error_is_not_a_value_error() -> None:
    assert not issubclass(TargetSelectionError, ValueError)


def test_invalid_spec_is_value_error_even_with_no_candidates() -> None:
    with pytest.raises(ValueError, match="'fixed' needs"):
        select_targets([], "fixed", None, "run-1", key=by_name)


def test_empty_seed_rejected() -> None:
    with pytest.raises(ValueError, match="seed must be non-empty"):
        select_targets(pods(3), "one", None, "", key=by_name)


def test_duplicate_keys_rejected() -> None:
    with pytest.raises(ValueError, match="duplicate target key 'a'"):
        select_targets([Pod("a"), Pod("b"), Pod("a")], "one", None, "s", key=by_name)


@pytest.mark.parametrize(
    ("mode", "value", "n", "expected"),
    [("one", None, 5, 1), ("fixed", 3, 5, 3), ("fixed", 9, 5, 5), ("percent", 40, 5, 2), ("all", None, 5, 5)],
)
def test_selects_count_for_mode(mode: str, value: int | None, n: int, expected: int) -> None:
    chosen = select_targets(pods(n), mode, value, "checkout-pod-delete-1766131200", key=by_name)
    assert len(chosen) == expected
    assert len(set(chosen)) == expected
    assert set(chosen) <= set(pods(n))


def test_all_returns_every_candidate_sorted() -> None:
    shuffled = pods(6)
    random.Random(1).shuffle(shuffled)
    assert names(select_targets(shuffled, "all", None, "s", key=by_name)) == names(pods(6))


def test_result_sorted_by_key() -> None:
    chosen = names(select_targets(pods(20), "fixed", 7, "seed", key=by_name))
    assert chosen == sorted(chosen)


def test_same_seed_same_targets_regardless_of_order() -> None:
    candidates = pods(30)
    first = select_targets(candidates, "fixed", 4, "run-a", key=by_name)
    for i in range(10):
        shuffled = list(candidates)
        random.Random(i).shuffle(shuffled)
        assert select_targets(shuffled, "fixed", 4, "run-a", key=by_name) == first


PINNED = ["pod-04", "pod-05", "pod-07"]  # computed once; must never change between releases


def test_selection_is_stable_across_processes() -> None:
    # A fixed expectation: the hash-based ranking must not depend on PYTHONHASHSEED or Python
    # version, or a resumed operator (new process, maybe new image) would pick other victims.
    assert names(select_targets(pods(10), "fixed", 3, "checkout-1766131200", key=by_name)) == PINNED
    assert names(select_targets(pods(10), "one", None, "x", key=by_name)) == [_expected_one("x", 10)]


def _expected_one(seed: str, n: int) -> str:
    import hashlib

    return min(
        (f"pod-{i:02d}" for i in range(n)),
        key=lambda k: hashlib.sha256(f"{seed}\x00{k}".encode()).digest(),
    )


def test_different_seeds_spread_selection() -> None:
    counts: Counter[str] = Counter()
    for i in range(2000):
        counts.update(names(select_targets(pods(10), "one", None, f"run-{i}", key=by_name)))
    assert set(counts) == set(names(pods(10)))
    # ~200 each; a generous bound that still catches a badly skewed ranking.
    assert all(120 <= c <= 280 for c in counts.values()), counts


def test_removing_an_unchosen_candidate_changes_nothing() -> None:
    candidates = pods(20)
    before = select_targets(candidates, "fixed", 5, "s", key=by_name)
    unchosen = next(p for p in candidates if p not in before)
    after = select_targets([p for p in candidates if p != unchosen], "fixed", 5, "s", key=by_name)
    assert after == before


def test_removing_a_chosen_candidate_keeps_the_other_choices() -> None:
    candidates = pods(20)
    before = select_targets(candidates, "fixed", 5, "s", key=by_name)
    gone = before[0]
    after = select_targets([p for p in candidates if p != gone], "fixed", 5, "s", key=by_name)
    assert set(before) - {gone} <= set(after)
    assert len(after) == 5 and gone not in after


def test_larger_count_is_superset_for_same_seed() -> None:
    small = set(select_targets(pods(12), "fixed", 2, "s", key=by_name))
    large = set(select_targets(pods(12), "fixed", 6, "s", key=by_name))
    assert small <= large


def test_works_with_plain_strings() -> None:
    assert select_targets(["b", "a"], "all", None, "s", key=str) == ["a", "b"]


def test_input_not_modified() -> None:
    candidates = [Pod("c"), Pod("a"), Pod("b")]
    select_targets(candidates, "fixed", 2, "s", key=by_name)
    assert names(candidates) == ["c", "a", "b"]


def test_core_reexports_the_api_target_mode() -> None:
    from aftershock.api import experiment

    assert TargetMode is experiment.TargetMode
