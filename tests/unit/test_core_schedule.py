from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cronsim import CronSim

from aftershock.core import schedule as schedule_module
from aftershock.core.schedule import (
    MACROS,
    MISSED_COUNT_CAP,
    Action,
    ActiveRun,
    Decision,
    Schedule,
    ScheduleError,
    parse_schedule,
    plan,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def slots(schedule: Schedule, start: datetime, count: int) -> list[datetime]:
    out: list[datetime] = []
    t = start
    for _ in range(count):
        t = schedule.next_after(t)
        out.append(t)
    return out


CREATED = datetime(2025, 1, 1, tzinfo=UTC)


def decide(
    schedule: Schedule,
    *,
    now: datetime,
    last_scheduled: datetime | None = None,
    created: datetime = CREATED,
    suspended: bool = False,
    starting_deadline: timedelta | None = None,
    concurrency_policy: str = "Forbid",
    active: Sequence[ActiveRun] = (),
) -> Decision:
    return plan(
        schedule,
        now=now,
        last_scheduled=last_scheduled,
        created=created,
        suspended=suspended,
        starting_deadline=starting_deadline,
        concurrency_policy=concurrency_policy,
        active=active,
    )


HOURLY = parse_schedule("@hourly", "UTC")
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
CAMEL = re.compile(r"^[A-Z][A-Za-z]*$")


# --- parsing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("macro", "start", "expected"),
    [
        ("@yearly", utc(2025, 3, 1), utc(2026, 1, 1)),
        ("@annually", utc(2025, 3, 1), utc(2026, 1, 1)),
        ("@monthly", utc(2025, 3, 15), utc(2025, 4, 1)),
        ("@weekly", utc(2025, 1, 1), utc(2025, 1, 5)),  # 2025-01-05 is a Sunday
        ("@daily", utc(2025, 1, 1, 12), utc(2025, 1, 2)),
        ("@midnight", utc(2025, 1, 1, 12), utc(2025, 1, 2)),
        ("@hourly", utc(2025, 1, 1, 12, 15), utc(2025, 1, 1, 13)),
    ],
)
def test_macros(macro: str, start: datetime, expected: datetime) -> None:
    schedule = parse_schedule(macro, "UTC")
    assert schedule.cron == MACROS[macro]
    assert schedule.next_after(start) == expected


def test_macros_are_read_in_the_time_zone() -> None:
    daily = parse_schedule("@daily", "Europe/Berlin")
    assert daily.next_after(utc(2025, 1, 1, 12)) == utc(2025, 1, 1, 23)  # midnight CET


def test_macro_case_and_whitespace_are_tolerated() -> None:
    assert parse_schedule("  @Daily ", "UTC").cron == "0 0 * * *"
    assert parse_schedule(" */5  9-17\t* * 1-5 ", "UTC").cron == "*/5 9-17 * * 1-5"


def test_results_are_utc() -> None:
    schedule = parse_schedule("0 9 * * *", "Europe/Berlin")
    result = schedule.next_after(datetime(2025, 6, 1, tzinfo=timezone(timedelta(hours=5))))
    assert result.tzinfo is UTC
    assert result == utc(2025, 6, 1, 7)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("61 * * * *", "schedule '61 * * * *': minute 61 is out of range 0-59"),
        ("0 24 * * *", "schedule '0 24 * * *': hour 24 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month 0 is out of range 1-31"),
        ("0 0 * 13 *", "month 13 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week 8 is out of range 0-7"),
        ("*/0 * * * *", "minute step in '*/0' must be at least 1"),
        ("0 0 * * 5-3", "day-of-week range '5-3' goes backwards"),
        ("0 0 * FOO *", "month 'FOO' is not a number 1-12 or a name JAN-DEC"),
        ("x * * * *", "minute 'x' is not a number 0-59"),
        ("1,,2 * * * *", "minute field '1,,2' has an empty value"),
        ("0 0 30 2 *", "day-of-month '30' never occurs in month '2', so it would never run"),
        ("0 */5 * * * *", "has 6 fields; use 5 (minute hour day-of-month month day-of-week)"),
        ("* * *", "has 3 fields; a cron schedule has 5"),
        ("@fortnightly", "unknown macro '@fortnightly'; use one of @yearly"),
        ("@daily 5", "unknown macro '@daily'"),
        ("@every", "@every needs a duration"),
        ("@every 5x", "invalid duration '5x'"),
        ("@every 500ms", "the interval must be at least 1s"),
        ("@every 1500ms", "the interval must be a whole number of seconds"),
        ("TZ=Europe/Berlin 0 * * * *", "set the time zone in spec.timeZone"),
        ("   ", "schedule must not be empty"),
    ],
)
def test_invalid_expressions_say_why(expr: str, message: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_schedule(expr, "UTC", anchor=utc(2025, 1, 1))
    assert message in str(info.value)


def test_six_fields_rejected_although_cronsim_would_read_seconds() -> None:
    with pytest.raises(ScheduleError, match="a seconds field is not supported"):
        parse_schedule("0 0 * * * *", "UTC")


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        ("Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
        ("utc", "unknown time zone 'utc'"),
        ("../etc/passwd", "unknown time zone '../etc/passwd'"),
        ("Europe", "unknown time zone 'Europe'"),
        ("", "time zone must not be empty"),
        ("Local", "the operator host's zone"),
        ("localtime", "the operator host's zone"),
    ],
)
def test_invalid_time_zones(zone: str, message: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_schedule("@daily", zone)
    assert message in str(info.value)


def test_schedule_error_is_a_value_error() -> None:
    assert issubclass(ScheduleError, ValueError)


def test_a_schedule_is_either_cron_or_every() -> None:
    with pytest.raises(ValueError, match="parse_schedule"):
        Schedule("x", "UTC")
    with pytest.raises(ValueError, match="parse_schedule"):
        Schedule("x", "UTC", cron="* * * * *", interval=timedelta(seconds=1), anchor=CREATED)


def test_every_needs_an_aware_anchor() -> None:
    with pytest.raises(ValueError, match="needs an anchor") as info:
        parse_schedule("@every 5m", "UTC")
    assert not isinstance(info.value, ScheduleError)  # a caller bug, not a user error
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_schedule("@every 5m", "UTC", anchor=datetime(2025, 1, 1))


def test_naive_times_are_refused() -> None:
    naive = datetime(2025, 1, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        HOURLY.next_after(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        HOURLY.latest_at_or_before(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(HOURLY, now=naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(HOURLY, now=utc(2025, 1, 2), active=[ActiveRun("a", naive)])


# --- slots ----------------------------------------------------------------------------------------


def test_next_after_is_strict_and_latest_is_inclusive() -> None:
    assert HOURLY.next_after(utc(2025, 1, 1, 10)) == utc(2025, 1, 1, 11)
    assert HOURLY.latest_at_or_before(utc(2025, 1, 1, 10)) == utc(2025, 1, 1, 10)
    assert HOURLY.latest_at_or_before(utc(2025, 1, 1, 10, 59, 59) + timedelta(microseconds=999_999)) == utc(
        2025, 1, 1, 10
    )
    assert HOURLY.next_after(utc(2025, 1, 1, 10, 59, 59) + timedelta(microseconds=999_999)) == utc(
        2025, 1, 1, 11
    )


def test_latest_respects_not_before_strictly() -> None:
    now = utc(2025, 1, 1, 10, 30)
    assert HOURLY.latest_at_or_before(now, not_before=utc(2025, 1, 1, 9, 59)) == utc(2025, 1, 1, 10)
    assert HOURLY.latest_at_or_before(now, not_before=utc(2025, 1, 1, 10)) is None


def test_every_slots_are_anchored_to_creation() -> None:
    anchor = utc(2025, 1, 1, 10, 0, 0) + timedelta(microseconds=700_000)
    every = parse_schedule("@every 1m30s", "UTC", anchor=anchor)
    assert every.anchor == utc(2025, 1, 1, 10)  # truncated to whole seconds
    assert every.interval == timedelta(seconds=90)
    assert slots(every, utc(2025, 1, 1, 10), 3) == [
        utc(2025, 1, 1, 10, 1, 30),
        utc(2025, 1, 1, 10, 3),
        utc(2025, 1, 1, 10, 4, 30),
    ]
    assert every.next_after(utc(2025, 1, 1, 9)) == utc(2025, 1, 1, 10)
    assert every.latest_at_or_before(utc(2025, 1, 1, 9, 59)) is None
    assert every.latest_at_or_before(utc(2025, 1, 1, 10, 4, 29)) == utc(2025, 1, 1, 10, 3)
    assert every.latest_at_or_before(utc(2025, 1, 1, 10, 4, 30)) == utc(2025, 1, 1, 10, 4, 30)


def test_every_ignores_dst() -> None:
    anchor = utc(2025, 10, 25, 22, 17)
    every = parse_schedule("@every 1h", "Europe/Berlin", anchor=anchor)
    got = slots(every, anchor, 6)
    assert [b - a for a, b in itertools.pairwise([anchor, *got])] == [timedelta(hours=1)] * 6


def test_count_between() -> None:
    assert HOURLY.count_between(utc(2025, 1, 1, 10), utc(2025, 1, 1, 14)) == 3  # 11, 12, 13
    assert HOURLY.count_between(utc(2025, 1, 1, 10), utc(2025, 1, 1, 14), limit=2) == 2
    assert HOURLY.count_between(utc(2025, 1, 1, 14), utc(2025, 1, 1, 10)) == 0
    every = parse_schedule("@every 10s", "UTC", anchor=utc(2025, 1, 1))
    assert every.count_between(utc(2025, 1, 1), utc(2025, 1, 1, 0, 1)) == 5  # 10s .. 50s
    assert every.count_between(utc(2025, 1, 1, 0, 0, 5), utc(2025, 1, 1, 0, 1, 1)) == 6  # 10s .. 60s
    assert every.count_between(utc(2024, 12, 31), utc(2025, 1, 1, 0, 0, 1)) == 1  # the anchor
    assert every.count_between(utc(2024, 1, 1), utc(2026, 1, 1)) == MISSED_COUNT_CAP


# --- DST ------------------------------------------------------------------------------------------
# Europe/Berlin 2025: clocks go 02:00 CET -> 03:00 CEST on 30 March, 03:00 CEST -> 02:00 CET on 26
# October. America/New_York 2025: 02:00 EST -> 03:00 EDT on 9 March, 02:00 EDT -> 01:00 EST on
# 2 November.


def test_daily_spring_forward_berlin_runs_once_after_the_gap() -> None:
    daily = parse_schedule("30 2 * * *", "Europe/Berlin")
    assert slots(daily, utc(2025, 3, 28, 12), 3) == [
        utc(2025, 3, 29, 1, 30),  # 02:30 CET
        utc(2025, 3, 30, 1, 0),  # 02:30 does not exist: 03:00 CEST, as Debian cron does
        utc(2025, 3, 31, 0, 30),  # 02:30 CEST
    ]


def test_daily_fall_back_berlin_runs_once_in_the_repeated_hour() -> None:
    daily = parse_schedule("30 2 * * *", "Europe/Berlin")
    assert slots(daily, utc(2025, 10, 24, 12), 3) == [
        utc(2025, 10, 25, 0, 30),  # 02:30 CEST
        utc(2025, 10, 26, 0, 30),  # first 02:30 (CEST); the second (CET) does not fire
        utc(2025, 10, 27, 1, 30),  # 02:30 CET
    ]


def test_hourly_spring_forward_berlin() -> None:
    hourly = parse_schedule("0 * * * *", "Europe/Berlin")
    assert slots(hourly, utc(2025, 3, 29, 23, 30), 3) == [
        utc(2025, 3, 30, 0),  # 01:00 CET
        utc(2025, 3, 30, 1),  # 03:00 CEST: one real hour later, 02:00 never existed
        utc(2025, 3, 30, 2),
    ]


def test_hourly_fall_back_berlin_runs_every_real_hour() -> None:
    hourly = parse_schedule("0 * * * *", "Europe/Berlin")
    assert slots(hourly, utc(2025, 10, 25, 23, 30), 3) == [
        utc(2025, 10, 26, 0),  # 02:00 CEST
        utc(2025, 10, 26, 1),  # 02:00 CET, the repeated hour
        utc(2025, 10, 26, 2),  # 03:00 CET
    ]


def test_hour_list_spring_forward_berlin_merges_into_one_run() -> None:
    schedule = parse_schedule("0 1-3 * * *", "Europe/Berlin")
    assert slots(schedule, utc(2025, 3, 29, 12), 3) == [
        utc(2025, 3, 30, 0),  # 01:00 CET
        utc(2025, 3, 30, 1),  # 02:00 (skipped) and 03:00 CEST: one run
        utc(2025, 3, 30, 23),  # 01:00 CEST next day
    ]


def test_daily_spring_forward_new_york() -> None:
    daily = parse_schedule("30 2 * * *", "America/New_York")
    assert slots(daily, utc(2025, 3, 8), 3) == [
        utc(2025, 3, 8, 7, 30),  # 02:30 EST
        utc(2025, 3, 9, 7, 0),  # 03:00 EDT
        utc(2025, 3, 10, 6, 30),  # 02:30 EDT
    ]


def test_daily_fall_back_new_york() -> None:
    daily = parse_schedule("30 1 * * *", "America/New_York")
    assert slots(daily, utc(2025, 11, 1), 3) == [
        utc(2025, 11, 1, 5, 30),  # 01:30 EDT
        utc(2025, 11, 2, 5, 30),  # first 01:30 (EDT) only
        utc(2025, 11, 3, 6, 30),  # 01:30 EST
    ]


def test_hourly_new_york_across_both_changes() -> None:
    hourly = parse_schedule("30 * * * *", "America/New_York")
    assert slots(hourly, utc(2025, 11, 2, 4), 4) == [
        utc(2025, 11, 2, 4, 30),  # 00:30 EDT
        utc(2025, 11, 2, 5, 30),  # 01:30 EDT
        utc(2025, 11, 2, 6, 30),  # 01:30 EST
        utc(2025, 11, 2, 7, 30),  # 02:30 EST
    ]
    on_the_hour = parse_schedule("0 * * * *", "America/New_York")
    assert slots(on_the_hour, utc(2025, 3, 9, 5, 30), 3) == [
        utc(2025, 3, 9, 6),  # 01:00 EST
        utc(2025, 3, 9, 7),  # 03:00 EDT
        utc(2025, 3, 9, 8),
    ]


def test_latest_finds_the_slot_moved_out_of_the_spring_gap() -> None:
    # cronsim's reverse iteration alone would answer the day before; the fired slot is 03:00 CEST.
    daily = parse_schedule("30 2 * * *", "Europe/Berlin")
    assert daily.latest_at_or_before(utc(2025, 3, 30, 1, 0, 5)) == utc(2025, 3, 30, 1)
    assert daily.latest_at_or_before(utc(2025, 3, 30, 0, 59)) == utc(2025, 3, 29, 1, 30)


def test_times_in_the_second_pass_of_the_repeated_hour() -> None:
    # 01:15 UTC on 26 October is 02:15 CET, the second 02:15 in Berlin; 02:45 CEST (00:45 UTC)
    # already fired that night, so it is the latest slot and the next one is the day after.
    daily = parse_schedule("45 2 * * *", "Europe/Berlin")
    t = utc(2025, 10, 26, 1, 15)
    assert daily.latest_at_or_before(t) == utc(2025, 10, 26, 0, 45)
    assert daily.next_after(t) == utc(2025, 10, 27, 1, 45)
    assert daily.count_between(utc(2025, 10, 26, 1, 15), utc(2025, 10, 28)) == 1


@pytest.mark.parametrize(
    ("expr", "zone", "start"),
    [
        ("30 2 * * *", "Europe/Berlin", utc(2025, 3, 29)),
        ("30 2 * * *", "Europe/Berlin", utc(2025, 10, 25)),
        ("0,30 1-3 * * *", "Europe/Berlin", utc(2025, 10, 25)),
        ("0 * * * *", "Europe/Berlin", utc(2025, 3, 29, 20)),
        ("30 1 * * *", "America/New_York", utc(2025, 11, 1)),
        ("30 2 * * *", "America/New_York", utc(2025, 3, 8)),
        ("*/20 * * * *", "America/New_York", utc(2025, 11, 2, 3)),
    ],
)
def test_latest_and_next_agree_with_forward_iteration(expr: str, zone: str, start: datetime) -> None:
    """Around each change, every answer must match the slot list forward iteration produces."""
    schedule = parse_schedule(expr, zone)
    fired = slots(schedule, start - timedelta(days=1), 80)
    for slot in fired:
        assert schedule.latest_at_or_before(slot) == slot
    t = start
    while t < min(fired[-2], start + timedelta(days=3)):
        assert schedule.latest_at_or_before(t) == [s for s in fired if s <= t][-1]
        assert schedule.next_after(t) == next(s for s in fired if s > t)
        t += timedelta(minutes=7)


# --- plan -----------------------------------------------------------------------------------------


def test_waits_before_the_first_slot() -> None:
    d = decide(HOURLY, now=utc(2025, 1, 1, 10, 30), created=utc(2025, 1, 1, 10, 0, 30))
    assert d.action is Action.WAIT
    assert d.reason == "Waiting"
    assert d.slot is None
    assert d.next_slot == utc(2025, 1, 1, 11)
    assert "2025-01-01T11:00:00Z" in d.message


def test_a_slot_at_or_before_creation_never_runs() -> None:
    d = decide(HOURLY, now=utc(2025, 1, 1, 11, 0, 30), created=utc(2025, 1, 1, 11))
    assert d.action is Action.WAIT
    assert d.next_slot == utc(2025, 1, 1, 12)


def test_starts_a_due_slot() -> None:
    d = decide(HOURLY, now=utc(2025, 1, 1, 11, 0, 2), last_scheduled=utc(2025, 1, 1, 10))
    assert d == Decision(
        Action.START,
        utc(2025, 1, 1, 11),
        utc(2025, 1, 1, 12),
        "Scheduled",
        "Starting the run for the slot at 2025-01-01T11:00:00Z (2s late).",
    )


def test_the_slot_at_last_scheduled_was_handled() -> None:
    d = decide(HOURLY, now=utc(2025, 1, 1, 11, 30), last_scheduled=utc(2025, 1, 1, 11))
    assert d.action is Action.WAIT
    assert d.next_slot == utc(2025, 1, 1, 12)


def test_no_backfill_after_an_outage() -> None:
    d = decide(HOURLY, now=utc(2025, 1, 1, 15, 20), last_scheduled=utc(2025, 1, 1, 10))
    assert d.action is Action.START
    assert d.slot == utc(2025, 1, 1, 15)
    assert d.next_slot == utc(2025, 1, 1, 16)
    assert d.missed == 4  # 11, 12, 13, 14
    assert "4 earlier slots were missed since the last scheduled run at 2025-01-01T10:00:00Z" in d.message
    assert "no backfill" in d.message


def test_missed_since_creation() -> None:
    d = decide(HOURLY, now=utc(2025, 1, 1, 12, 5), created=utc(2025, 1, 1, 10, 30))
    assert (d.action, d.slot, d.missed) == (Action.START, utc(2025, 1, 1, 12), 1)
    assert d.message.endswith(
        "1 earlier slot was missed since the experiment was created at 2025-01-01T10:30:00Z;"
        " it is not run (no backfill)."
    )


def _reconcile_until_idle(
    schedule: Schedule, now: datetime, last: datetime, created: datetime
) -> list[Decision]:
    """Apply decisions the way the handler does, at one instant, until the planner waits."""
    decisions: list[Decision] = []
    for _ in range(5):
        d = decide(schedule, now=now, last_scheduled=last, created=created, concurrency_policy="Allow")
        decisions.append(d)
        if d.action is Action.WAIT:
            break
        assert d.slot is not None
        last = d.slot
    return decisions


def test_a_year_of_downtime_with_every_second_is_one_start() -> None:
    created = utc(2024, 1, 1)
    every = parse_schedule("@every 1s", "UTC", anchor=created)
    now = utc(2025, 1, 1, 0, 0, 0) + timedelta(microseconds=400_000)
    decisions = _reconcile_until_idle(every, now, utc(2024, 1, 1, 0, 0, 10), created)
    assert [d.action for d in decisions] == [Action.START, Action.WAIT]
    start = decisions[0]
    assert start.slot == utc(2025, 1, 1)
    assert start.next_slot == utc(2025, 1, 1, 0, 0, 1)
    assert start.missed == MISSED_COUNT_CAP
    assert f"{MISSED_COUNT_CAP}+ earlier slots were missed" in start.message


def test_a_year_of_downtime_with_minutely_cron_is_bounded_work(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = 0

    class CountingCronSim(CronSim):
        def __next__(self) -> datetime:
            nonlocal steps
            steps += 1
            return super().__next__()

    monkeypatch.setattr(schedule_module, "CronSim", CountingCronSim)
    minutely = parse_schedule("* * * * *", "Europe/Berlin")
    created = utc(2024, 1, 1)
    decisions = _reconcile_until_idle(minutely, utc(2025, 1, 1, 0, 0, 30), utc(2024, 1, 2), created)
    assert [d.action for d in decisions] == [Action.START, Action.WAIT]
    assert decisions[0].slot == utc(2025, 1, 1)
    assert decisions[0].missed == MISSED_COUNT_CAP
    assert steps < MISSED_COUNT_CAP + 50  # counting is capped; finding the slot is a few steps


def test_starting_deadline_skips_a_late_slot() -> None:
    d = decide(
        HOURLY,
        now=utc(2025, 1, 1, 11, 7, 30),
        last_scheduled=utc(2025, 1, 1, 10),
        starting_deadline=timedelta(minutes=5),
    )
    assert d.action is Action.SKIP
    assert d.reason == "MissedStartingDeadline"
    assert d.slot == utc(2025, 1, 1, 11)
    assert d.next_slot == utc(2025, 1, 1, 12)
    assert d.message == (
        "The slot at 2025-01-01T11:00:00Z is 7m30s late, more than the starting deadline of 5m;"
        " it is recorded as Skipped."
    )


def test_starting_deadline_is_inclusive() -> None:
    d = decide(
        HOURLY,
        now=utc(2025, 1, 1, 11, 5),
        last_scheduled=utc(2025, 1, 1, 10),
        starting_deadline=timedelta(minutes=5),
    )
    assert d.action is Action.START


def test_starting_deadline_wins_over_concurrency() -> None:
    d = decide(
        HOURLY,
        now=utc(2025, 1, 1, 11, 30),
        last_scheduled=utc(2025, 1, 1, 10),
        starting_deadline=timedelta(minutes=5),
        concurrency_policy="Replace",
        active=[ActiveRun("exp-1735725600", utc(2025, 1, 1, 10))],
    )
    assert (d.action, d.reason, d.replace) == (Action.SKIP, "MissedStartingDeadline", ())


ACTIVE = [
    ActiveRun("exp-1735729200", utc(2025, 1, 1, 11)),
    ActiveRun("exp-1735725600", utc(2025, 1, 1, 10)),
]
NOW = utc(2025, 1, 1, 12, 0, 1)
LAST = utc(2025, 1, 1, 11)


@pytest.mark.parametrize("policy", ["Forbid", "Allow", "Replace"])
def test_every_policy_starts_when_nothing_is_active(policy: str) -> None:
    d = decide(HOURLY, now=NOW, last_scheduled=LAST, concurrency_policy=policy)
    assert (d.action, d.slot, d.replace, d.reason) == (Action.START, utc(2025, 1, 1, 12), (), "Scheduled")


def test_allow_runs_alongside() -> None:
    d = decide(HOURLY, now=NOW, last_scheduled=LAST, concurrency_policy="Allow", active=ACTIVE)
    assert (d.action, d.slot, d.replace, d.reason) == (Action.START, utc(2025, 1, 1, 12), (), "Scheduled")
    assert "alongside runs exp-1735725600, exp-1735729200" in d.message


def test_forbid_skips_and_names_the_active_run() -> None:
    d = decide(HOURLY, now=NOW, last_scheduled=LAST, concurrency_policy="Forbid", active=ACTIVE[:1])
    assert (d.action, d.slot, d.next_slot) == (Action.SKIP, utc(2025, 1, 1, 12), utc(2025, 1, 1, 13))
    assert d.reason == "ConcurrencyForbid"
    assert "run exp-1735729200 is still active" in d.message


def test_replace_starts_and_lists_the_runs_to_abort_oldest_first() -> None:
    d = decide(HOURLY, now=NOW, last_scheduled=LAST, concurrency_policy="Replace", active=ACTIVE)
    assert (d.action, d.slot, d.reason) == (Action.START, utc(2025, 1, 1, 12), "ConcurrencyReplace")
    assert d.replace == ("exp-1735725600", "exp-1735729200")
    assert "runs exp-1735725600, exp-1735729200 are aborted first" in d.message


@pytest.mark.parametrize("policy", ["Forbid", "Allow", "Replace"])
def test_an_active_run_for_the_due_slot_means_it_was_started(policy: str) -> None:
    # lastScheduleTime not written yet, but the run exists: never start twice, never replace it.
    mine = ActiveRun("exp-1735732800", utc(2025, 1, 1, 12))
    d = decide(HOURLY, now=NOW, last_scheduled=LAST, concurrency_policy=policy, active=[mine])
    assert (d.action, d.reason, d.replace) == (Action.WAIT, "AlreadyStarted", ())
    assert d.next_slot == utc(2025, 1, 1, 13)


def test_unknown_policy_and_negative_deadline_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown concurrency policy 'Queue'"):
        decide(HOURLY, now=NOW, concurrency_policy="Queue")
    with pytest.raises(ValueError, match="must not be negative"):
        decide(HOURLY, now=NOW, starting_deadline=timedelta(seconds=-1))


def test_suspended_waits_without_a_next_slot() -> None:
    d = decide(HOURLY, now=NOW, last_scheduled=LAST, suspended=True)
    assert (d.action, d.slot, d.next_slot, d.reason) == (Action.WAIT, None, None, "Suspended")


def test_resume_without_deadline_starts_only_the_latest_missed_slot() -> None:
    # Suspended from 11:00 (the last run) until 15:30: like CronJob, the most recent missed slot
    # runs on resume; older ones are counted, not run.
    d = decide(HOURLY, now=utc(2025, 1, 1, 15, 30), last_scheduled=LAST)
    assert (d.action, d.slot, d.missed) == (Action.START, utc(2025, 1, 1, 15), 3)


def test_resume_with_deadline_skips_a_stale_slot_then_waits() -> None:
    deadline = timedelta(minutes=10)
    now = utc(2025, 1, 1, 15, 30)
    d = decide(HOURLY, now=now, last_scheduled=LAST, starting_deadline=deadline)
    assert (d.action, d.slot, d.reason) == (Action.SKIP, utc(2025, 1, 1, 15), "MissedStartingDeadline")
    assert "3 earlier slots were missed" in d.message
    after = decide(HOURLY, now=now, last_scheduled=d.slot, starting_deadline=deadline)
    assert (after.action, after.next_slot) == (Action.WAIT, utc(2025, 1, 1, 16))


def test_plan_across_spring_forward() -> None:
    daily = parse_schedule("30 2 * * *", "Europe/Berlin")
    d = decide(daily, now=utc(2025, 3, 30, 1, 0, 10), last_scheduled=utc(2025, 3, 29, 1, 30))
    assert (d.action, d.slot, d.next_slot) == (Action.START, utc(2025, 3, 30, 1), utc(2025, 3, 31, 0, 30))


def test_plan_in_the_repeated_hour_does_not_run_twice() -> None:
    daily = parse_schedule("30 2 * * *", "Europe/Berlin")
    first = utc(2025, 10, 26, 0, 30)  # 02:30 CEST
    d = decide(daily, now=utc(2025, 10, 26, 1, 45), last_scheduled=first)  # 02:45 CET
    assert (d.action, d.next_slot) == (Action.WAIT, utc(2025, 10, 27, 1, 30))


def test_plan_with_clock_behind_last_scheduled_waits_for_the_slot_after_it() -> None:
    d = decide(HOURLY, now=utc(2025, 1, 1, 10, 30), last_scheduled=utc(2025, 1, 1, 12))
    assert (d.action, d.next_slot) == (Action.WAIT, utc(2025, 1, 1, 13))


def _all_decisions() -> list[Decision]:
    out = [
        decide(HOURLY, now=NOW, last_scheduled=LAST, suspended=True),
        decide(HOURLY, now=utc(2025, 1, 1, 11, 30), last_scheduled=LAST),
        decide(HOURLY, now=NOW, last_scheduled=utc(2025, 1, 1, 8)),
        decide(HOURLY, now=NOW, last_scheduled=LAST, starting_deadline=timedelta(0)),
        decide(HOURLY, now=NOW, last_scheduled=LAST, active=ACTIVE),
        decide(HOURLY, now=NOW, last_scheduled=LAST, active=ACTIVE, concurrency_policy="Replace"),
        decide(HOURLY, now=NOW, last_scheduled=LAST, active=[ActiveRun("x", utc(2025, 1, 1, 12))]),
    ]
    return out


@pytest.mark.parametrize("decision", _all_decisions(), ids=lambda d: str(d.reason))
def test_reasons_are_camel_case_and_messages_are_sentences_in_utc(decision: Decision) -> None:
    assert CAMEL.match(decision.reason)
    assert decision.message.endswith(".")
    assert decision.message[0].isupper()
    assert "+00:00" not in decision.message
    if decision.slot is not None or decision.next_slot is not None:
        assert RFC3339.search(decision.message)


@pytest.mark.parametrize("decision", _all_decisions(), ids=lambda d: str(d.reason))
def test_next_slot_is_the_first_slot_after_the_decided_one(decision: Decision) -> None:
    if decision.reason == "Suspended":
        assert decision.next_slot is None
        return
    assert decision.next_slot is not None
    assert decision.next_slot > NOW or decision.reason == "Waiting"
    if decision.slot is not None:
        assert decision.next_slot == HOURLY.next_after(decision.slot)


def test_decision_and_active_run_are_frozen() -> None:
    d = decide(HOURLY, now=NOW, last_scheduled=LAST)
    with pytest.raises(AttributeError):
        d.action = Action.SKIP  # type: ignore[misc]
    with pytest.raises(AttributeError):
        ACTIVE[0].name = "other"  # type: ignore[misc]
    assert {a.value for a in Action} == {"Wait", "Start", "Skip"}
