"""ChaosPolicy decisions: may this chaos action happen under the policies in force, and how big may it be?

Pure: no I/O, no clock (``now`` is a parameter). The caller lists the ChaosPolicies, the target
namespace's labels, the active runs and the PodDisruptionBudgets, and asks. Every refusal is a
`Decision` with a CamelCase ``reason`` (for conditions and metrics) and a ``message`` a person can act
on: it names the policy responsible and what to change.

Semantics:

- **No policy, no chaos.** With no ChaosPolicy every check denies (reason ``NoChaosPolicy``); the
  message says to create one, whose default allows namespaces labelled
  ``aftershock.dev/chaos=enabled``.
- **Several policies: all apply, the strictest wins** (an intersection). The target namespace must
  be selected by every policy's ``namespaces.selector`` and on no policy's ``namespaces.deny``; the
  fault kind must be in every policy's ``allowedFaults``; another namespace than the experiment's
  own only if every policy sets ``crossNamespace``; blast-radius caps and concurrency limits are the
  minimum over the policies; a run may start only inside a window of every policy that has windows
  (a policy without windows allows any time) and inside no blackout of any policy. When several
  policies are equally strict, the first in the given order is named (pass them sorted by name for
  stable messages).
- **Always denied**, whatever the policies say: the system namespaces (kube-system, kube-public,
  kube-node-lease) and the operator's own namespace (a fault there could remove the operator that
  must revert it).
- **Suspend**: one suspended policy stops everything (``PolicySuspended``).
- **Node faults** (``NODE_FAULT_KINDS``, e.g. nodeDrain) are allowed only where every policy lists
  them in ``allowedFaults`` explicitly; the default list leaves them out.
- **Order of the static checks** (`check_static`, the first failing one is reported): protected
  namespace, operator namespace, no policy, suspended, deny list, opt-in selector, cross-namespace,
  fault kind. `check_time` reports an unknown time zone first, then a blackout, then a closed window.
  `check_concurrency` reports the cluster-wide limit before the per-namespace one.
- **Windows** are weekly: ``days`` (Mon..Sun), ``start`` and ``end`` ("HH:MM", 24 h) read in the
  window's IANA ``timeZone`` (default UTC). A window is open from ``start`` (inclusive) to ``end``
  (exclusive). ``end`` earlier than ``start`` means the window crosses midnight and ``days`` name
  the day it *opens*: ``{days: [Fri], start: "22:00", end: "06:00"}`` is open from Friday 22:00 to
  Saturday 06:00, and not on Saturday night. The API rejects ``start == end``; should one get
  through anyway, it reads as a full day from ``start``. Daylight saving time: a window opens at the
  first moment the local clock reads ``start`` (or later) on an opening day and closes at the first
  moment after that it reads ``end`` (or later). So a time the clock skips (02:30 on a spring-forward
  night in Europe/Berlin) opens or closes the window at the jump (03:00), a time the clock reads
  twice (02:30 on a fall-back night) counts once, at its first occurrence, and a window spanning a
  change is an hour shorter or longer in real time (01:00-04:00 Europe/Berlin lasts two real hours
  on the last Sunday of March and four on the last Sunday of October). A denial gives the next
  opening (also as `Decision.retry_at`) when there is one within a week, and the windows as written.
  An unknown time zone denies (``UnknownTimeZone``): a guardrail that cannot be read is not ignored.
- **Blackouts** hold from ``start`` (inclusive) to ``end`` (exclusive). ``retry_at`` is when no
  blackout of any policy covers the moment any more (overlapping or back-to-back blackouts chain).
- **maxDuration** caps ``fault.duration`` and ``recovery.timeout`` (the minimum over the policies
  that set it; none set: no cap). Longer is denied (``DurationExceeded``), never shortened.
- **Active runs** (`check_active`): a fault stays in place only while the static checks, the time
  checks and the duration cap still hold; a deleted target namespace denies
  (``TargetNamespaceGone``). Concurrency and blast radius are decided once, at the start.
- **Concurrency**: the counts given exclude the run being decided; it may start while
  ``active_total < maxActiveRuns`` and ``active_in_namespace < maxActiveRunsPerNamespace``
  (minimum over the policies); a limit of 0 stops all runs.
- **Blast radius**: one run may affect at most ``floor(total * maxPodsPercent / 100)`` pods, and at
  most ``maxPods`` when it is set; at most ``maxNodes`` nodes. A run asking for more is *denied*
  (``BlastRadiusExceeded``), never silently shrunk: a smaller experiment than the one written would
  measure something else. A cap of 0 denies every run (with the default 50%, a one-pod workload
  cannot be hit: killing its only pod is an outage, not an experiment).
- **PodDisruptionBudgets** (`pdb_limit`, applied when any policy sets
  ``respectDisruptionBudgets``, see `must_respect_disruption_budgets`): the chosen pods are taken in
  order; a pod is kept unless a PDB covering it has already used up its ``disruptionsAllowed`` on
  pods kept before it; a spared pod does not stop the pods after it. Unlike the blast radius this
  does shrink the run: PDBs change from moment to moment and the notes record what was spared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aftershock.api.common import NODE_FAULT_KINDS
from aftershock.api.durations import format_duration, parse_duration
from aftershock.api.policy import OPT_IN_LABEL, OPT_IN_VALUE, ChaosPolicySpec, Weekday, Window
from aftershock.core.conditions import format_time
from aftershock.core.safety import PROTECTED_NAMESPACES
from aftershock.core.selectors import matches

__all__ = [
    "ALLOWED",
    "Decision",
    "PdbInfo",
    "Policies",
    "Reason",
    "check_active",
    "check_blast_radius",
    "check_concurrency",
    "check_duration",
    "check_static",
    "check_time",
    "evaluate",
    "max_duration",
    "must_respect_disruption_budgets",
    "node_cap",
    "pdb_limit",
    "pod_cap",
]

Policies = Sequence[tuple[str, ChaosPolicySpec]]
"""The ChaosPolicies in force as (name, spec) pairs."""


class Reason(StrEnum):
    """The CamelCase reasons a `Decision` carries."""

    ALLOWED = "Allowed"
    NO_CHAOS_POLICY = "NoChaosPolicy"
    PROTECTED_NAMESPACE = "ProtectedNamespace"
    OPERATOR_NAMESPACE = "OperatorNamespace"
    POLICY_SUSPENDED = "PolicySuspended"
    NAMESPACE_DENIED = "NamespaceDenied"
    NAMESPACE_NOT_SELECTED = "NamespaceNotSelected"
    CROSS_NAMESPACE_NOT_ALLOWED = "CrossNamespaceNotAllowed"
    FAULT_NOT_ALLOWED = "FaultNotAllowed"
    UNKNOWN_TIME_ZONE = "UnknownTimeZone"
    BLACKOUT = "Blackout"
    OUTSIDE_WINDOW = "OutsideWindow"
    CONCURRENCY_LIMIT = "ConcurrencyLimit"
    BLAST_RADIUS_EXCEEDED = "BlastRadiusExceeded"
    DURATION_EXCEEDED = "DurationExceeded"
    TARGET_NAMESPACE_GONE = "TargetNamespaceGone"


@dataclass(frozen=True)
class Decision:
    """Whether an action is allowed; for a denial, why (``reason``, ``message``) and by which policy.

    ``policy`` is the name of the ChaosPolicy responsible, None when no single policy is (allowed,
    no policy at all, a protected namespace). ``retry_at`` is set for denials that lift by
    themselves (a window opening, a blackout ending): the earliest moment worth checking again;
    other policies may still deny then.
    """

    allowed: bool
    reason: str
    message: str
    policy: str | None
    retry_at: datetime | None = None

    @classmethod
    def allow(cls, message: str = "Allowed by every ChaosPolicy in force.") -> Decision:
        """An allowed decision."""
        return cls(True, Reason.ALLOWED.value, message, None)

    @classmethod
    def deny(
        cls, reason: Reason, message: str, policy: str | None = None, retry_at: datetime | None = None
    ) -> Decision:
        """A denial."""
        return cls(False, reason.value, message, policy, retry_at)


ALLOWED: Final = Decision.allow()
"""The plain "allowed" decision."""


@dataclass(frozen=True)
class PdbInfo:
    """A PodDisruptionBudget as `pdb_limit` needs it.

    ``disruptions_allowed`` is its ``status.disruptionsAllowed`` (negative counts as 0); ``covers``
    holds the names of the pods its selector matches.
    """

    name: str
    disruptions_allowed: int
    covers: frozenset[str]


# --- static checks ------------------------------------------------------------------------------


def check_static(
    policies: Policies,
    *,
    experiment_namespace: str,
    target_namespace: str,
    target_namespace_labels: Mapping[str, str],
    fault_kind: str,
    operator_namespace: str | None,
) -> Decision:
    """Everything that does not depend on time, counts or the cluster's state.

    An empty ``target_namespace`` means the experiment's own namespace.
    """
    target = target_namespace or experiment_namespace
    if target in PROTECTED_NAMESPACES:
        protected = ", ".join(sorted(PROTECTED_NAMESPACES))
        return Decision.deny(
            Reason.PROTECTED_NAMESPACE,
            f"Namespace {target!r} is protected: chaos is never allowed in {protected}, whatever a"
            " ChaosPolicy says. Target another namespace.",
        )
    if operator_namespace and target == operator_namespace:
        return Decision.deny(
            Reason.OPERATOR_NAMESPACE,
            f"Namespace {target!r} is where the aftershock operator runs: it is never a target, whatever"
            " a ChaosPolicy says, or a fault could remove the operator that must revert it. Target"
            " another namespace.",
        )
    if not policies:
        return _no_policy()
    suspended = [name for name, spec in policies if spec.suspend]
    if suspended:
        return Decision.deny(
            Reason.POLICY_SUSPENDED,
            f"{_policies_phrase(suspended)} {'is' if len(suspended) == 1 else 'are'} suspended"
            " (spec.suspend: true): no chaos run may start. Set spec.suspend to false to allow chaos again.",
            suspended[0],
        )
    for name, spec in policies:
        if target in spec.namespaces.deny:
            return Decision.deny(
                Reason.NAMESPACE_DENIED,
                f"Namespace {target!r} is on the deny list of ChaosPolicy {name} (spec.namespaces.deny)."
                f" Remove it from that list to allow chaos in it, or target another namespace.",
                name,
            )
    for name, spec in policies:
        selector = spec.namespaces.selector
        if not matches(selector.to_json(), target_namespace_labels):
            hint = ""
            if selector.match_labels and not selector.match_expressions:
                labels = " ".join(f"{k}={v}" for k, v in sorted(selector.match_labels.items()))
                hint = f" (kubectl label namespace {target} {labels})"
            return Decision.deny(
                Reason.NAMESPACE_NOT_SELECTED,
                f"Namespace {target!r} is not selected by ChaosPolicy {name}: its"
                f" spec.namespaces.selector requires {selector.to_query()}. Label the namespace to"
                f" opt in{hint}, or change the policy's selector.",
                name,
            )
    if target != experiment_namespace:
        for name, spec in policies:
            if not spec.cross_namespace:
                return Decision.deny(
                    Reason.CROSS_NAMESPACE_NOT_ALLOWED,
                    f"The experiment in namespace {experiment_namespace!r} may not target namespace"
                    f" {target!r}: ChaosPolicy {name} does not allow cross-namespace targets"
                    " (spec.crossNamespace is false). Create the experiment in the target namespace,"
                    " or set crossNamespace: true in that policy.",
                    name,
                )
    for name, spec in policies:
        allowed_faults = [str(k) for k in spec.allowed_faults]
        if fault_kind not in allowed_faults:
            listed = ", ".join(allowed_faults) if allowed_faults else "nothing"
            if fault_kind in NODE_FAULT_KINDS:
                message = (
                    f"{fault_kind} is a node fault: it is allowed only when every ChaosPolicy lists it"
                    f" in spec.allowedFaults explicitly, and ChaosPolicy {name} does not (it allows"
                    f" {listed}). Add {fault_kind} to that policy's allowedFaults to allow it."
                )
            else:
                message = (
                    f"Fault kind {fault_kind} is not allowed by ChaosPolicy {name}: its spec.allowedFaults"
                    f" lists {listed}. Add {fault_kind} there to allow it."
                )
            return Decision.deny(Reason.FAULT_NOT_ALLOWED, message, name)
    return Decision.allow(
        f"Namespace {target!r} and fault kind {fault_kind} are allowed by {_policies_phrase(_names(policies))}."
    )


# --- time: windows and blackouts -----------------------------------------------------------------


def check_time(policies: Policies, *, now: datetime) -> Decision:
    """Whether a run may start at ``now`` (timezone-aware): blackouts and windows."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be timezone-aware, got naive {now.isoformat()}")
    if not policies:
        return _no_policy()
    for name, spec in policies:
        for index, window in enumerate(spec.windows):
            if _zone(window.time_zone) is None:
                return Decision.deny(
                    Reason.UNKNOWN_TIME_ZONE,
                    f"ChaosPolicy {name} has a window in time zone {window.time_zone!r}"
                    f" (spec.windows[{index}].timeZone), which is not a known IANA time zone, so"
                    " its windows cannot be checked and no run may start. Use a name such as UTC or"
                    " Europe/Berlin.",
                    name,
                )
    for name, spec in policies:
        for blackout in spec.blackouts:
            if blackout.start <= now < blackout.end:
                until = _blackouts_end(policies, now)
                more = "" if until == blackout.end else " (blackouts that follow on run until then)"
                return Decision.deny(
                    Reason.BLACKOUT,
                    f"ChaosPolicy {name} has a blackout from {format_time(blackout.start)} to"
                    f" {format_time(blackout.end)} (spec.blackouts): no run may start before"
                    f" {format_time(until)}{more}. Wait, or remove the blackout from the policy.",
                    name,
                    until,
                )
    for name, spec in policies:
        if spec.windows and not any(_window_open(w, now) for w in spec.windows):
            written = "; ".join(_describe_window(w) for w in spec.windows)
            following = _next_opening(spec.windows, now)
            if following is None:
                when = ""
            else:
                opening, window = following
                local = opening.astimezone(_zone_or_utc(window.time_zone))
                when = (
                    f" The next window opens at {format_time(opening)} ({local:%a %H:%M} {window.time_zone})."
                )
            return Decision.deny(
                Reason.OUTSIDE_WINDOW,
                f"ChaosPolicy {name} allows runs to start only inside its windows ({written}), and"
                f" {format_time(now)} is outside all of them.{when} Wait for a window, or change"
                " spec.windows of the policy.",
                name,
                None if following is None else following[0],
            )
    return Decision.allow(f"{format_time(now)} is inside every window and no blackout of the ChaosPolicies.")


_WEEK: Final = tuple(Weekday)
_UNSAFE_ZONES: Final = frozenset({"", "Local", "localtime"})


def _zone(name: str) -> ZoneInfo | None:
    if name in _UNSAFE_ZONES:
        return None  # the operator host's zone: it would change with the machine
    try:
        return ZoneInfo(name)  # ZoneInfo caches instances: cheap
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _zone_or_utc(name: str) -> ZoneInfo:
    return _zone(name) or ZoneInfo("UTC")


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def _resolve(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """The first moment the local clock reads ``clock`` or later on ``day`` (in UTC).

    A time read twice (fall-back) gives its first occurrence; a time the clock skips (spring
    forward) gives the moment of the jump.
    """
    naive = datetime.combine(day, clock)
    instant = naive.replace(tzinfo=zone).astimezone(UTC)  # fold=0: first occurrence, if any
    if instant.astimezone(zone).replace(tzinfo=None) == naive:
        return instant
    # In a gap: fold=1 maps before the jump, fold=0 after it; the wall clock rises through the gap,
    # so the jump is found by bisection (transitions fall on whole seconds).
    low = int(naive.replace(tzinfo=zone, fold=1).timestamp())
    high = int(instant.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _intervals(
    window: Window, zone: ZoneInfo, first: date, last: date
) -> Iterator[tuple[datetime, datetime]]:
    """[opening, closing) of the window for each opening day from ``first`` to ``last``."""
    days = {_WEEK.index(day) for day in window.days}
    start, end = _clock(window.start), _clock(window.end)
    crosses_midnight = end <= start
    day = first
    while day <= last:
        if day.weekday() in days:
            closing_day = day + timedelta(days=1) if crosses_midnight else day
            yield _resolve(day, start, zone), _resolve(closing_day, end, zone)
        day += timedelta(days=1)


def _window_open(window: Window, now: datetime) -> bool:
    zone = _zone_or_utc(window.time_zone)
    today = now.astimezone(zone).date()
    # a window open now opened today or yesterday; a day more either side is cheap insurance
    intervals = _intervals(window, zone, today - timedelta(days=2), today + timedelta(days=1))
    return any(opening <= now < closing for opening, closing in intervals)


def _next_opening(windows: Sequence[Window], now: datetime) -> tuple[datetime, Window] | None:
    best: tuple[datetime, Window] | None = None
    for window in windows:
        zone = _zone_or_utc(window.time_zone)
        today = now.astimezone(zone).date()
        for opening, closing in _intervals(
            window, zone, today - timedelta(days=1), today + timedelta(days=8)
        ):
            if now < opening < closing and (best is None or opening < best[0]):
                best = (opening, window)
    return best


def _describe_window(window: Window) -> str:
    indexes = sorted({_WEEK.index(day) for day in window.days})
    if len(indexes) == len(_WEEK):
        days = "every day"
    else:
        runs: list[list[int]] = []
        for index in indexes:
            if runs and runs[-1][-1] == index - 1:
                runs[-1].append(index)
            else:
                runs.append([index])
        parts: list[str] = []
        for run in runs:
            if len(run) >= 3:
                parts.append(f"{_WEEK[run[0]].value}-{_WEEK[run[-1]].value}")
            else:
                parts.extend(_WEEK[i].value for i in run)
        days = ",".join(parts)
    return f"{days} {window.start}-{window.end} {window.time_zone}"


def _blackouts_end(policies: Policies, now: datetime) -> datetime:
    """The first moment from ``now`` on that no blackout of any policy covers."""
    blackouts = [b for _, spec in policies for b in spec.blackouts]
    moment = now
    while True:
        ends = [b.end for b in blackouts if b.start <= moment < b.end]
        if not ends:
            return moment
        moment = max(ends)


# --- duration ------------------------------------------------------------------------------------


def max_duration(policies: Policies) -> tuple[str, timedelta] | None:
    """The strictest ``maxDuration`` of the policies and the policy that sets it (the first on a
    tie); None when no policy sets one."""
    best: tuple[str, timedelta] | None = None
    for name, spec in policies:
        if spec.max_duration is None:
            continue
        cap = parse_duration(spec.max_duration)
        if best is None or cap < best[1]:
            best = (name, cap)
    return best


def check_duration(
    policies: Policies, *, fault_duration: timedelta | None, recovery_timeout: timedelta | None
) -> Decision:
    """Whether ``fault.duration`` and ``recovery.timeout`` (None: not set) fit every policy's
    ``maxDuration``. The fault is reported first."""
    if not policies:
        return _no_policy()
    cap = max_duration(policies)
    if cap is None:
        return Decision.allow("No ChaosPolicy caps the duration (spec.maxDuration).")
    name, limit = cap
    for field, value in (("fault.duration", fault_duration), ("recovery.timeout", recovery_timeout)):
        if value is not None and value > limit:
            return Decision.deny(
                Reason.DURATION_EXCEEDED,
                f"{field} is {format_duration(value)}, longer than the {format_duration(limit)} ChaosPolicy"
                f" {name} allows (spec.maxDuration). Shorten {field} to at most {format_duration(limit)},"
                " or raise maxDuration in that policy.",
                name,
            )
    return Decision.allow(
        f"fault.duration and recovery.timeout are within the {format_duration(limit)} ChaosPolicy {name}"
        " allows (spec.maxDuration)."
    )


# --- while a run is active -----------------------------------------------------------------------


def check_active(
    policies: Policies,
    *,
    experiment_namespace: str,
    target_namespace: str,
    target_namespace_labels: Mapping[str, str] | None,
    fault_kind: str,
    operator_namespace: str | None,
    now: datetime,
    fault_duration: timedelta | None,
    recovery_timeout: timedelta | None,
) -> Decision:
    """Whether an active run may keep its fault in place: the guardrails hold for the whole run,
    not only at its start. A denial means the fault must be reverted now.

    The same rules as before injecting, minus what only limits how many runs *start* (concurrency,
    blast radius, PodDisruptionBudgets are decided once, when the targets are chosen):
    `check_static` (opt-in label, deny list, cross-namespace, fault kind, no policy at all),
    `check_time` (a window closed, a blackout began) and `check_duration` (a lowered
    ``maxDuration``). ``target_namespace_labels`` None means the namespace no longer exists.
    """
    target = target_namespace or experiment_namespace
    if target_namespace_labels is None:
        return Decision.deny(
            Reason.TARGET_NAMESPACE_GONE,
            f"Namespace {target!r} no longer exists (it was deleted while the run was active).",
        )
    static = check_static(
        policies,
        experiment_namespace=experiment_namespace,
        target_namespace=target,
        target_namespace_labels=target_namespace_labels,
        fault_kind=fault_kind,
        operator_namespace=operator_namespace,
    )
    if not static.allowed:
        return static
    timing = check_time(policies, now=now)
    if not timing.allowed:
        return timing
    duration = check_duration(policies, fault_duration=fault_duration, recovery_timeout=recovery_timeout)
    if not duration.allowed:
        return duration
    return Decision.allow(f"The run still satisfies {_policies_phrase(_names(policies))}.")


# --- concurrency ---------------------------------------------------------------------------------


def check_concurrency(
    policies: Policies, *, active_total: int, active_in_namespace: int, namespace: str | None = None
) -> Decision:
    """Whether one more run may become active; the counts exclude the run being decided.

    ``namespace`` (the target namespace) only makes the message more precise.
    """
    if active_total < 0 or active_in_namespace < 0:
        raise ValueError(f"active counts must be >= 0, got {active_total} and {active_in_namespace}")
    if not policies:
        return _no_policy()
    name, limit = _strictest(policies, lambda spec: spec.concurrency.max_active_runs)
    if active_total >= limit:
        return Decision.deny(
            Reason.CONCURRENCY_LIMIT,
            f"ChaosPolicy {name} allows {_at_most(limit, 'active run')} in the cluster"
            f" (spec.concurrency.maxActiveRuns) and {active_total} {_are(active_total)} active. Wait"
            " for a run to finish, or raise the limit.",
            name,
        )
    where = "one namespace" if namespace is None else f"namespace {namespace!r}"
    name, limit = _strictest(policies, lambda spec: spec.concurrency.max_active_runs_per_namespace)
    if active_in_namespace >= limit:
        return Decision.deny(
            Reason.CONCURRENCY_LIMIT,
            f"ChaosPolicy {name} allows {_at_most(limit, 'active run')} targeting {where}"
            f" (spec.concurrency.maxActiveRunsPerNamespace) and {active_in_namespace}"
            f" {_are(active_in_namespace)} active there. Wait for a run to finish, or raise the limit.",
            name,
        )
    return Decision.allow(
        f"{active_total} active {_noun(active_total, 'run')} in the cluster and {active_in_namespace} in the"
        " target namespace: within the ChaosPolicies' concurrency limits."
    )


# --- blast radius --------------------------------------------------------------------------------


def pod_cap(policies: Policies, *, total_pods: int) -> tuple[int, str]:
    """The most pods one run may affect out of ``total_pods``, and a sentence saying which limit sets it."""
    cap, _, sentence = _pod_cap(policies, total_pods)
    return cap, sentence


def node_cap(policies: Policies) -> tuple[int, str]:
    """The most nodes one run may affect, and a sentence saying which policy sets it."""
    cap, _, sentence = _node_cap(policies)
    return cap, sentence


def check_blast_radius(policies: Policies, *, requested: int, total: int, unit: str = "pods") -> Decision:
    """Whether a run may affect ``requested`` of ``total`` pods (unit "pods") or nodes (unit "nodes").

    More than the cap is denied, never shrunk; a cap of 0 denies whatever is requested.
    """
    if requested < 0 or total < 0:
        raise ValueError(f"requested and total must be >= 0, got {requested} and {total}")
    if unit not in ("pods", "nodes"):
        raise ValueError(f"unit must be 'pods' or 'nodes', got {unit!r}")
    if not policies:
        return _no_policy()
    if unit == "pods":
        cap, name, sentence = _pod_cap(policies, total)
    else:
        cap, name, sentence = _node_cap(policies)
    singular = unit[:-1]
    if cap == 0:
        return Decision.deny(
            Reason.BLAST_RADIUS_EXCEEDED,
            f"{sentence} No {singular} may be hit, so the run (which would affect {requested} of"
            f" {_noun(total, singular)}) is refused. Raise blastRadius in ChaosPolicy {name} to allow it.",
            name,
        )
    if requested > cap:
        return Decision.deny(
            Reason.BLAST_RADIUS_EXCEEDED,
            f"The run would affect {requested} of {_noun(total, singular)}, more than the cap of {cap}."
            f" {sentence} The run is refused, not shrunk: lower the experiment's spec.target"
            f" (mode/value), or raise blastRadius in ChaosPolicy {name}.",
            name,
        )
    return Decision.allow(f"{requested} of {_noun(total, singular)} is within the cap of {cap}. {sentence}")


def _pod_cap(policies: Policies, total: int) -> tuple[int, str | None, str]:
    if total < 0:
        raise ValueError(f"total_pods must be >= 0, got {total}")
    if not policies:
        return 0, None, _no_policy().message
    best: tuple[int, str, str] | None = None
    for name, spec in policies:
        radius = spec.blast_radius
        by_percent = total * radius.max_pods_percent // 100
        if radius.max_pods is not None and radius.max_pods < by_percent:
            cap, why = radius.max_pods, f"blastRadius.maxPods is {radius.max_pods}"
        else:
            cap, why = by_percent, _explain_percent(radius.max_pods_percent, total, by_percent)
        if best is None or cap < best[0]:
            best = (cap, name, why)
    assert best is not None
    cap, name, why = best
    return cap, name, f"ChaosPolicy {name} allows at most {cap} of {_noun(total, 'pod')} per run ({why})."


def _explain_percent(percent: int, total: int, cap: int) -> str:
    whole, hundredths = divmod(total * percent, 100)
    if hundredths == 0:
        return f"blastRadius.maxPodsPercent is {percent}: {percent}% of {total} is {whole}"
    exact = f"{whole}.{hundredths:02d}".rstrip("0")
    return f"blastRadius.maxPodsPercent is {percent}: {percent}% of {total} is {exact}, rounded down to {cap}"


def _node_cap(policies: Policies) -> tuple[int, str | None, str]:
    if not policies:
        return 0, None, _no_policy().message
    name, cap = _strictest(policies, lambda spec: spec.blast_radius.max_nodes)
    return (
        cap,
        name,
        f"ChaosPolicy {name} allows at most {_noun(cap, 'node')} per run (blastRadius.maxNodes).",
    )


# --- PodDisruptionBudgets ------------------------------------------------------------------------


def must_respect_disruption_budgets(policies: Policies) -> bool:
    """Whether `pdb_limit` applies: when any policy asks for it (or there is none: fail safe)."""
    return not policies or any(spec.respect_disruption_budgets for _, spec in policies)


def pdb_limit(chosen: Sequence[str], pdbs: Sequence[PdbInfo]) -> tuple[list[str], list[str]]:
    """Keep the chosen pods, in order, that no PodDisruptionBudget forbids; and say what each PDB spared.

    A pod is spared when a PDB covering it has already allowed ``disruptions_allowed`` of the pods
    kept before it; pods after a spared one are still considered. Returns (kept, notes), one note per
    PDB that spared at least one pod, in the order of ``pdbs``.
    """
    if len(set(chosen)) != len(chosen):
        raise ValueError("chosen pod names must be unique")
    used = [0] * len(pdbs)
    covered = [0] * len(pdbs)
    spared = [0] * len(pdbs)
    kept: list[str] = []
    for pod in chosen:
        covering = [i for i, pdb in enumerate(pdbs) if pod in pdb.covers]
        for i in covering:
            covered[i] += 1
        exhausted = [i for i in covering if used[i] >= max(0, pdbs[i].disruptions_allowed)]
        if exhausted:
            for i in exhausted:
                spared[i] += 1
            continue
        kept.append(pod)
        for i in covering:
            used[i] += 1
    notes = [
        f"PodDisruptionBudget {pdb.name} allows {_noun(max(0, pdb.disruptions_allowed), 'disruption')};"
        f" {spared[i]} of the {covered[i]} chosen {'pod' if covered[i] == 1 else 'pods'}"
        f" {'was' if spared[i] == 1 else 'were'} spared"
        for i, pdb in enumerate(pdbs)
        if spared[i]
    ]
    return kept, notes


# --- all at once ---------------------------------------------------------------------------------


def evaluate(
    policies: Policies,
    *,
    experiment_namespace: str,
    target_namespace: str,
    target_namespace_labels: Mapping[str, str],
    fault_kind: str,
    operator_namespace: str | None,
    now: datetime,
    active_total: int,
    active_in_namespace: int,
) -> Decision:
    """`check_static`, then `check_time`, then `check_concurrency`: the first denial, or allowed.

    The blast radius is checked separately, once the targets are counted.
    """
    static = check_static(
        policies,
        experiment_namespace=experiment_namespace,
        target_namespace=target_namespace,
        target_namespace_labels=target_namespace_labels,
        fault_kind=fault_kind,
        operator_namespace=operator_namespace,
    )
    if not static.allowed:
        return static
    timing = check_time(policies, now=now)
    if not timing.allowed:
        return timing
    concurrency = check_concurrency(
        policies,
        active_total=active_total,
        active_in_namespace=active_in_namespace,
        namespace=target_namespace or experiment_namespace,
    )
    if not concurrency.allowed:
        return concurrency
    return Decision.allow(f"Allowed by {_policies_phrase(_names(policies))}.")


# --- helpers -------------------------------------------------------------------------------------


def _no_policy() -> Decision:
    return Decision.deny(
        Reason.NO_CHAOS_POLICY,
        "No ChaosPolicy exists, so no chaos is allowed anywhere. Create a ChaosPolicy (the Helm chart"
        " installs a default one); an empty spec allows namespaces labelled"
        f" {OPT_IN_LABEL}={OPT_IN_VALUE}.",
    )


def _strictest(policies: Policies, limit: Callable[[ChaosPolicySpec], int]) -> tuple[str, int]:
    """The policy with the smallest limit (the first one on a tie) and that limit."""
    name, spec = policies[0]
    best = (name, limit(spec))
    for name, spec in policies[1:]:
        value = limit(spec)
        if value < best[1]:
            best = (name, value)
    return best


def _names(policies: Policies) -> list[str]:
    return [name for name, _ in policies]


def _policies_phrase(names: Sequence[str]) -> str:
    return f"ChaosPolicy {names[0]}" if len(names) == 1 else f"ChaosPolicies {', '.join(names)}"


def _noun(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _at_most(limit: int, noun: str) -> str:
    return f"no {noun}" if limit == 0 else f"at most {_noun(limit, noun)}"


def _are(count: int) -> str:
    return "is" if count == 1 else "are"
