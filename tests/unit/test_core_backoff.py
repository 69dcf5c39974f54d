from __future__ import annotations

import datetime as dt

import pytest

from aftershock.core.backoff import Backoff, parse_retry_after

NOW = dt.datetime(2026, 11, 28, 12, 0, 0, tzinfo=dt.UTC)


def test_ceiling_grows_exponentially_from_base() -> None:
    b = Backoff(base=0.1, factor=2, cap=100)
    assert [b.ceiling(n) for n in range(5)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6])


def test_ceiling_is_capped_and_never_overflows() -> None:
    b = Backoff(base=0.1, factor=2, cap=5)
    assert b.ceiling(5) == pytest.approx(3.2)
    assert b.ceiling(6) == 5
    assert b.ceiling(10_000) == 5


def test_delays_stay_within_the_jitter_band() -> None:
    b = Backoff(base=1, factor=2, cap=8, jitter=0.5)
    for retry, ceiling in enumerate([1, 2, 4, 8, 8]):
        assert b.delay(retry, 0.0) == pytest.approx(ceiling / 2)  # the floor: never immediate
        assert b.delay(retry, 1.0) == pytest.approx(ceiling)
        assert ceiling / 2 <= b.delay(retry, 0.37) <= ceiling


def test_no_jitter_is_exact_and_full_jitter_may_be_short() -> None:
    assert Backoff(base=1, jitter=0).delay(2, 0.9) == 4
    assert Backoff(base=1, jitter=1).delay(2, 0.0) == 0
    assert Backoff(base=1, jitter=1).delay(2, 0.5) == 2


def test_retry_after_is_honoured_as_a_minimum_plus_own_jitter() -> None:
    b = Backoff(base=0.1, factor=2, cap=5, jitter=0.5)
    assert b.delay(0, 0.0, retry_after=3) == pytest.approx(3.05)
    assert b.delay(0, 1.0, retry_after=3) == pytest.approx(3.1)
    assert b.delay(10, 1.0, retry_after=1) == pytest.approx(6)  # our own delay on top, capped one
    assert b.delay(1, 1.0, retry_after=0) == pytest.approx(0.2)  # "now" is no reason to hurry


@pytest.mark.parametrize(
    "kwargs",
    [{"base": 0}, {"factor": 0.5}, {"cap": 0.01, "base": 0.1}, {"jitter": 1.5}, {"jitter": -0.1}],
)
def test_invalid_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        Backoff().ceiling(-1)
    with pytest.raises(ValueError):
        Backoff().delay(0, 1.5)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("Sat, 28 Nov 2026 12:00:07 GMT", 7.0),
        ("Sat, 28 Nov 2026 11:59:00 GMT", 0.0),  # in the past: retry now (plus backoff)
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),  # delay-seconds is a whole number by definition
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, NOW) == seconds
