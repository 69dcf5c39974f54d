"""The schedule planner: which slot of a ChaosExperiment's schedule is due, and what to do with it.

Pure: the clock is a parameter (``now``), nothing is read or written. The handler asks `plan` on
every reconcile and carries out the one `Decision` it gets; because run names are derived from
the slot (``<experiment>-<unix seconds>``), acting on the same decision twice is harmless.

Semantics follow the CronJob controller, because that is what platform engineers expect:

- A schedule is a 5-field cron expression (evaluated by cronsim in ``spec.timeZone``), a macro
  (@hourly ... @yearly), or ``@every <duration>`` with slots ``anchor + k * interval`` (the anchor
  is the experiment's creation time, so an interval does not drift with restarts or edits).
- DST: cron slots behave like Debian cron as cronsim models it. A fixed-time job whose local time
  is skipped by spring-forward runs once, at the first valid local time after the gap; one whose
  local time repeats at fall-back runs once, at the first occurrence. Jobs with ``*`` in the
  minute or hour field run on every real occurrence (an hourly job runs every real hour).
- Only slots strictly after ``max(lastScheduleTime, creationTimestamp)`` are due: the slot at
  lastScheduleTime has been handled, and a slot before the experiment existed never runs.
- No backfill: of all due slots only the most recent is acted on; older ones are counted
  (``missed``) and reported, never run. An outage of a year yields one run, not a storm.
- A due slot later than ``startingDeadline`` is skipped (the caller records a Skipped run).
- Suspension: nothing starts while suspended. On resume the most recent slot missed during the
  suspension is treated like any other late slot: started if within ``startingDeadline`` (or if
  no deadline is set, as CronJob does), otherwise recorded as Skipped. Set a deadline to avoid a
  surprise run right after resuming.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from aftershock.api.durations import format_duration, parse_duration
from aftershock.api.experiment import ConcurrencyPolicy
from aftershock.core.conditions import format_time

__all__ = [
    "MACROS",
    "MIN_INTERVAL",
    "MISSED_COUNT_CAP",
    "Action",
    "ActiveRun",
    "Decision",
    "Schedule",
    "ScheduleError",
    "parse_schedule",
    "plan",
]

MACROS: Final[dict[str, str]] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
"""The cron macros, as the 5-field expressions they stand for (cronsim has no macros)."""

MIN_INTERVAL: Final = timedelta(seconds=1)
"""Shortest ``@every`` interval; run names have second resolution, so shorter would collide."""

MISSED_COUNT_CAP: Final = 1000
"""Missed slots are counted up to this many (``Decision.missed == MISSED_COUNT_CAP`` means "at
least"), so a long outage of a minutely schedule costs a bounded amount of work."""

_EVERY: Final = "@every"
_FIELD_NAMES: Final = "minute hour day-of-month month day-of-week"
_REFERENCE: Final = datetime(2001, 1, 1, tzinfo=UTC)  # any fixed instant, to probe a schedule once
_MAX_STEPS: Final = 1000  # bound on correction loops that in practice run once or twice


class ScheduleError(ValueError):
    """A schedule or time zone that cannot be used; the message says why, for a Stalled condition."""


@dataclass(frozen=True)
class _CronField:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # symbolic values, index = value - names_base
    names_base: int = 0


_CRON_FIELDS: Final = (
    _CronField("minute", 0, 59),
    _CronField("hour", 0, 23),
    _CronField("day-of-month", 1, 31),
    _CronField(
        "month",
        1,
        12,
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        1,
    ),
    _CronField("day-of-week", 0, 7, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")),
)


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule. Build it with `parse_schedule`; all times in and out are aware, out in UTC.

    ``cron`` is the 5-field expression evaluated (macros expanded), or None for ``@every``, which
    has ``interval`` and ``anchor`` instead.
    """

    expression: str
    time_zone: str
    cron: str | None = None
    interval: timedelta | None = None
    anchor: datetime | None = None

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.interval is None or self.anchor is None):
            raise ValueError(
                "a Schedule has either cron or interval and anchor; build it with parse_schedule"
            )

    def next_after(self, t: datetime) -> datetime:
        """The first slot strictly after `t`."""
        _require_aware("t", t)
        if self.cron is None:
            anchor, interval = self._every()
            if t < anchor:
                return anchor
            return anchor + ((t - anchor) // interval + 1) * interval
        cursor = t
        for _ in range(_MAX_STEPS):
            slot = self._cron_step(cursor, reverse=False)
            if slot is None:
                break
            if slot > t:
                return slot
            # At fall-back cronsim compares wall-clock times, so from the second pass through the
            # repeated hour it can return the first pass's slot, which is before `t`: step on.
            cursor = slot
        raise ScheduleError(f"schedule {self.expression!r} has no time after {format_time(t)}")

    def latest_at_or_before(self, t: datetime, *, not_before: datetime | None = None) -> datetime | None:
        """The latest slot <= `t`; None if there is none, or if it is not strictly after `not_before`
        (a slot at `not_before` itself counts as handled, like lastScheduleTime)."""
        _require_aware("t", t)
        if not_before is not None:
            _require_aware("not_before", not_before)
        latest = self._latest(t)
        if latest is None or (not_before is not None and latest <= not_before):
            return None
        return latest

    def count_between(self, after: datetime, before: datetime, *, limit: int = MISSED_COUNT_CAP) -> int:
        """How many slots lie strictly between `after` and `before`, counting at most `limit`."""
        _require_aware("after", after)
        _require_aware("before", before)
        if limit <= 0 or before <= after:
            return 0
        if self.cron is None:
            anchor, interval = self._every()
            first = 0 if after < anchor else (after - anchor) // interval + 1
            if before <= anchor:
                return 0
            last = -(-(before - anchor) // interval) - 1  # ceil(...) - 1: the last k with slot < before
            return max(0, min(limit, last - first + 1))
        count = 0
        iterator = CronSim(self.cron, after.astimezone(self._zone))
        for _ in range(limit + _MAX_STEPS):
            try:
                slot = next(iterator).astimezone(UTC)
            except StopIteration:
                break
            if slot >= before:
                break
            if slot > after:  # see next_after: a wall-clock step may land before `after` at fall-back
                count += 1
                if count >= limit:
                    break
        return count

    # --- internals ------------------------------------------------------------------------------

    @property
    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)  # ZoneInfo caches instances: cheap

    def _every(self) -> tuple[datetime, timedelta]:
        assert self.anchor is not None and self.interval is not None  # guaranteed by parse_schedule
        return self.anchor, self.interval

    def _cron_step(self, t: datetime, *, reverse: bool) -> datetime | None:
        """cronsim's next slot after (or before, `reverse`) `t`, in UTC; None past its 50-year horizon."""
        assert self.cron is not None
        try:
            return next(CronSim(self.cron, t.astimezone(self._zone), reverse=reverse)).astimezone(UTC)
        except StopIteration:
            return None

    def _latest(self, t: datetime) -> datetime | None:
        if self.cron is None:
            anchor, interval = self._every()
            if t < anchor:
                return None
            return anchor + ((t - anchor) // interval) * interval
        # cronsim's reverse iteration excludes its start and ignores microseconds: start one whole
        # second after t's second, so a slot exactly at t is included.
        start = t.replace(microsecond=0) + timedelta(seconds=1)
        candidate = self._cron_step(start, reverse=True)
        for _ in range(_MAX_STEPS):
            if candidate is None or candidate <= t:
                break
            candidate = self._cron_step(candidate, reverse=True)
        else:
            return None
        if candidate is None:
            return None
        # Reverse iteration never yields a slot moved out of a spring-forward gap (forward
        # iteration does, and forward is what fires), so walk forward to the true latest slot.
        for _ in range(_MAX_STEPS):
            following = self.next_after(candidate)
            if following > t:
                break
            candidate = following
        return candidate


def _check_zone(time_zone: str) -> ZoneInfo:
    if not time_zone:
        raise ScheduleError("time zone must not be empty; use an IANA name such as UTC or Europe/Berlin")
    if time_zone in ("Local", "localtime"):
        raise ScheduleError(
            f"time zone {time_zone!r} means the operator host's zone; use an IANA name such as Europe/Berlin"
        )
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(
            f"unknown time zone {time_zone!r}: use an IANA name such as UTC or Europe/Berlin"
        ) from None


def parse_schedule(expr: str, time_zone: str = "UTC", *, anchor: datetime | None = None) -> Schedule:
    """Parse ``spec.schedule`` read in ``spec.timeZone``; raise ScheduleError saying what is wrong.

    `anchor` (required for ``@every``, ignored otherwise) is where ``@every`` slots are counted
    from: pass the experiment's creationTimestamp. It is truncated to whole seconds.
    """
    _check_zone(time_zone)
    text = expr.strip()
    if not text:
        raise ScheduleError(
            "schedule must not be empty: use a 5-field cron expression, a macro such as @daily, "
            "or @every <duration>; omit the field to run once"
        )
    if re.match(r"^(CRON_)?TZ=", text, re.IGNORECASE):
        raise ScheduleError(f"schedule {expr!r}: set the time zone in spec.timeZone, not in the schedule")
    if text.startswith("@"):
        word = text.split()[0].lower()
        if word == _EVERY:
            return _parse_every(expr, text[len(_EVERY) :].strip(), time_zone, anchor)
        if word in MACROS and len(text.split()) == 1:
            cron = MACROS[word]
        else:
            raise ScheduleError(
                f"schedule {expr!r}: unknown macro {text.split()[0]!r}; use one of "
                f"{', '.join(MACROS)} or @every <duration> such as @every 5m"
            )
    else:
        cron = _check_cron(expr, text.split())
    schedule = Schedule(expression=expr, time_zone=time_zone, cron=cron)
    if schedule._cron_step(_REFERENCE, reverse=False) is None:  # pragma: no cover - cronsim rejects these
        raise ScheduleError(f"schedule {expr!r} never fires")
    return schedule


def _parse_every(expr: str, duration: str, time_zone: str, anchor: datetime | None) -> Schedule:
    if not duration:
        raise ScheduleError(f"schedule {expr!r}: @every needs a duration, such as @every 5m or @every 1h30m")
    try:
        interval = parse_duration(duration)
    except ValueError as exc:
        raise ScheduleError(f"schedule {expr!r}: {exc}") from None
    if interval < MIN_INTERVAL:
        raise ScheduleError(f"schedule {expr!r}: the interval must be at least 1s")
    if interval % timedelta(seconds=1):
        raise ScheduleError(f"schedule {expr!r}: the interval must be a whole number of seconds")
    if anchor is None:
        raise ValueError("an @every schedule needs an anchor (the experiment's creation time)")
    _require_aware("anchor", anchor)
    return Schedule(
        expression=expr,
        time_zone=time_zone,
        interval=interval,
        anchor=anchor.astimezone(UTC).replace(microsecond=0),
    )


def _check_cron(expr: str, fields: list[str]) -> str:
    """Validate 5 cron fields with cronsim, explaining any problem in words; return the expression."""
    if len(fields) == 6:
        raise ScheduleError(
            f"schedule {expr!r} has 6 fields; use 5 ({_FIELD_NAMES}): a seconds field is not supported"
        )
    if len(fields) != 5:
        raise ScheduleError(
            f"schedule {expr!r} has {len(fields)} field{'s' if len(fields) != 1 else ''}; a cron schedule "
            f"has 5 ({_FIELD_NAMES}), or use a macro such as @daily or @every 5m"
        )
    for index, (spec, text) in enumerate(zip(_CRON_FIELDS, fields, strict=True)):
        probe = ["*"] * 5
        probe[index] = text
        try:
            CronSim(" ".join(probe), _REFERENCE)
        except (CronSimError, ValueError, IndexError):
            raise ScheduleError(f"schedule {expr!r}: {_explain(spec, text)}") from None
    cron = " ".join(fields)
    try:
        CronSim(cron, _REFERENCE)
    except (CronSimError, ValueError, IndexError):
        raise ScheduleError(
            f"schedule {expr!r}: day-of-month {fields[2]!r} never occurs in month {fields[3]!r}, "
            "so it would never run"
        ) from None
    return cron


def _explain(spec: _CronField, text: str) -> str:
    """Why cronsim rejected one field, as specifically as can be said."""
    for term in text.split(","):
        base, _, step = term.partition("/")
        if "/" in term:
            if not step.isdigit():
                return f"{spec.name} step {step!r} in {text!r} is not a number"
            if int(step) == 0:
                return f"{spec.name} step in {text!r} must be at least 1"
        if base in ("*", ""):
            if base == "":
                return f"{spec.name} field {text!r} has an empty value"
            continue
        ends = base.split("-", 1)
        values: list[int] = []
        for end in ends:
            upper = end.upper()
            if upper in spec.names:
                values.append(spec.names.index(upper) + spec.names_base)
            elif end.isdigit():
                if not spec.low <= int(end) <= spec.high:
                    return f"{spec.name} {int(end)} is out of range {spec.low}-{spec.high}"
                values.append(int(end))
            elif "#" not in end and "L" not in upper:
                allowed = f"a number {spec.low}-{spec.high}"
                if spec.names:
                    allowed += f" or a name {spec.names[0]}-{spec.names[-1]}"
                return f"{spec.name} {end!r} is not {allowed}"
        if len(values) == 2 and values[0] > values[1]:
            return f"{spec.name} range {base!r} goes backwards; the start must not be after the end"
    return (
        f"{spec.name} field {text!r} is not valid; use numbers {spec.low}-{spec.high}, "
        "ranges (1-5), lists (1,15) and steps (*/10)"
    )


# --- planning -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActiveRun:
    """A run of the experiment that has not finished, and the slot it was created for."""

    name: str
    scheduled_time: datetime


class Action(StrEnum):
    """What the caller does: nothing yet, create the run for `slot`, or record `slot` as Skipped."""

    WAIT = "Wait"
    START = "Start"
    SKIP = "Skip"


@dataclass(frozen=True)
class Decision:
    """The planner's answer.

    - `slot`: the slot acted on (START/SKIP); None for WAIT.
    - `next_slot`: the first slot after `slot` (or after now when waiting), for
      status.nextScheduleTime; None while suspended.
    - `reason`: a CamelCase word; `message`: a sentence, times in RFC 3339 UTC.
    - `replace`: runs to abort before starting (concurrencyPolicy Replace).
    - `missed`: older due slots passed over without running (capped at MISSED_COUNT_CAP).
    """

    action: Action
    slot: datetime | None
    next_slot: datetime | None
    reason: str
    message: str
    replace: tuple[str, ...] = ()
    missed: int = 0


def _missed_sentence(missed: int, lower: datetime, created: datetime) -> str:
    if missed == 0:
        return ""
    count = f"{MISSED_COUNT_CAP}+" if missed >= MISSED_COUNT_CAP else str(missed)
    since = "the experiment was created" if lower == created else "the last scheduled run"
    noun, pronoun = ("slot was", "it is") if missed == 1 else ("slots were", "they are")
    return (
        f" {count} earlier {noun} missed since {since} at {format_time(lower)}; "
        f"{pronoun} not run (no backfill)."
    )


def plan(
    schedule: Schedule,
    *,
    now: datetime,
    last_scheduled: datetime | None,
    created: datetime,
    suspended: bool,
    starting_deadline: timedelta | None,
    concurrency_policy: str,
    active: Sequence[ActiveRun],
) -> Decision:
    """Decide what to do about the schedule at `now` (see the module docstring for the rules).

    After START or SKIP the caller records lastScheduleTime = `slot` (the Skipped run's or the new
    run's spec.scheduledTime); otherwise the next call returns the same decision again.
    An active run whose scheduled_time equals the due slot means that slot was already started
    (status not yet updated): the answer is WAIT, never a second start or a Replace of it.
    """
    _require_aware("now", now)
    _require_aware("created", created)
    if last_scheduled is not None:
        _require_aware("last_scheduled", last_scheduled)
    for run in active:
        _require_aware(f"scheduled_time of active run {run.name}", run.scheduled_time)
    if starting_deadline is not None and starting_deadline < timedelta(0):
        raise ValueError(f"starting_deadline must not be negative, got {starting_deadline}")
    try:
        policy = ConcurrencyPolicy(concurrency_policy)
    except ValueError:
        raise ValueError(
            f"unknown concurrency policy {concurrency_policy!r}; use one of "
            f"{', '.join(p.value for p in ConcurrencyPolicy)}"
        ) from None

    if suspended:
        return Decision(
            Action.WAIT,
            None,
            None,
            "Suspended",
            "The experiment is suspended (spec.suspend); no runs are started.",
        )

    lower = created if last_scheduled is None else max(last_scheduled, created)
    slot = schedule.latest_at_or_before(now, not_before=lower)
    if slot is None:
        following = schedule.next_after(max(now, lower))
        return Decision(
            Action.WAIT, None, following, "Waiting", f"The next run is due at {format_time(following)}."
        )

    next_slot = schedule.next_after(slot)
    at = format_time(slot)
    holding = sorted(r.name for r in active if r.scheduled_time == slot)
    if holding:
        return Decision(
            Action.WAIT,
            None,
            next_slot,
            "AlreadyStarted",
            f"Run {holding[0]} for the slot at {at} already exists; the next run is due at "
            f"{format_time(next_slot)}.",
        )

    missed = schedule.count_between(lower, slot, limit=MISSED_COUNT_CAP)
    missed_text = _missed_sentence(missed, lower, created)
    delay = now - slot
    if starting_deadline is not None and delay > starting_deadline:
        return Decision(
            Action.SKIP,
            slot,
            next_slot,
            "MissedStartingDeadline",
            f"The slot at {at} is {_late(delay)} late, more than the starting deadline of "
            f"{format_duration(starting_deadline)}; it is recorded as Skipped.{missed_text}",
            missed=missed,
        )

    others = tuple(r.name for r in sorted(active, key=lambda r: (r.scheduled_time, r.name)))
    lateness = f" ({_late(delay)} late)" if delay >= timedelta(seconds=1) else ""
    if others and policy is ConcurrencyPolicy.FORBID:
        return Decision(
            Action.SKIP,
            slot,
            next_slot,
            "ConcurrencyForbid",
            f"The slot at {at} is skipped: concurrencyPolicy is Forbid and "
            f"{_runs(others)} {_be(others)} still active; it is recorded as Skipped.{missed_text}",
            missed=missed,
        )
    if others and policy is ConcurrencyPolicy.REPLACE:
        return Decision(
            Action.START,
            slot,
            next_slot,
            "ConcurrencyReplace",
            f"Starting the run for the slot at {at}{lateness}; concurrencyPolicy is Replace, so "
            f"{_runs(others)} {_be(others)} aborted first.{missed_text}",
            replace=others,
            missed=missed,
        )
    alongside = f"; it runs alongside {_runs(others)} (concurrencyPolicy Allow)" if others else ""
    return Decision(
        Action.START,
        slot,
        next_slot,
        "Scheduled",
        f"Starting the run for the slot at {at}{lateness}{alongside}.{missed_text}",
        missed=missed,
    )


def _late(delay: timedelta) -> str:
    return format_duration(max(timedelta(0), delay) // timedelta(seconds=1) * timedelta(seconds=1))


def _runs(names: Sequence[str]) -> str:
    return f"run {names[0]}" if len(names) == 1 else f"runs {', '.join(names)}"


def _be(names: Sequence[str]) -> str:
    return "is" if len(names) == 1 else "are"
