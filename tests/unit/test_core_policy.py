from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from aftershock.api.policy import ChaosPolicySpec, Weekday, Window
from aftershock.core.policy import (
    ALLOWED,
    Decision,
    PdbInfo,
    Reason,
    check_active,
    check_blast_radius,
    check_concurrency,
    check_duration,
    check_static,
    check_time,
    evaluate,
    max_duration,
    must_respect_disruption_budgets,
    node_cap,
    pdb_limit,
    pod_cap,
)
from aftershock.core.safety import PROTECTED_NAMESPACES

OPT_IN = {"aftershock.dev/chaos": "enabled"}
OPEN: dict[str, Any] = {"namespaces": {"selector": {}, "deny": []}, "crossNamespace": True}
"""A policy that selects every namespace and allows cross-namespace targets."""


def spec(wire: dict[str, Any] | None = None) -> ChaosPolicySpec:
    return ChaosPolicySpec.model_validate(wire or {})


def open_spec(**extra: Any) -> ChaosPolicySpec:
    return spec({**OPEN, **extra})


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def static(
    policies: list[tuple[str, ChaosPolicySpec]],
    *,
    experiment_namespace: str = "shop",
    target_namespace: str = "shop",
    labels: dict[str, str] | None = None,
    fault_kind: str = "podDelete",
    operator_namespace: str | None = "aftershock-system",
) -> Decision:
    return check_static(
        policies,
        experiment_namespace=experiment_namespace,
        target_namespace=target_namespace,
        target_namespace_labels=OPT_IN if labels is None else labels,
        fault_kind=fault_kind,
        operator_namespace=operator_namespace,
    )


def assert_denied(decision: Decision, reason: str, policy: str | None) -> None:
    assert not decision.allowed, decision
    assert decision.reason == reason, decision
    assert decision.policy == policy, decision
    assert decision.message
    if policy is not None:
        assert f"ChaosPolicy {policy}" in decision.message or policy in decision.message


# --- Decision -----------------------------------------------------------------------------------


def test_decision_allowed_constant_and_classmethod() -> None:
    assert ALLOWED.allowed and ALLOWED.reason == "Allowed" and ALLOWED.policy is None
    assert ALLOWED.retry_at is None
    d = Decision.allow("fine")
    assert d == Decision(True, "Allowed", "fine", None)


def test_decision_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        ALLOWED.allowed = False  # type: ignore[misc]


def test_decision_deny_uses_plain_reason_string() -> None:
    d = Decision.deny(Reason.BLACKOUT, "no", "p")
    assert d == Decision(False, "Blackout", "no", "p")
    assert type(d.reason) is str


def test_reasons_are_camel_case() -> None:
    for reason in Reason:
        assert reason.value[0].isupper() and reason.value.isalnum()


# --- static: no policy, always-denied namespaces ---------------------------------------------------


def test_no_policy_denies_and_names_the_opt_in_label() -> None:
    d = static([])
    assert_denied(d, "NoChaosPolicy", None)
    assert "ChaosPolicy" in d.message
    assert "create" in d.message.lower()
    assert "aftershock.dev/chaos=enabled" in d.message


@pytest.mark.parametrize("ns", sorted(PROTECTED_NAMESPACES))
def test_protected_namespaces_denied_even_when_a_policy_selects_them(ns: str) -> None:
    d = static([("wide", open_spec())], experiment_namespace=ns, target_namespace=ns, labels={})
    assert_denied(d, "ProtectedNamespace", None)
    assert repr(ns) in d.message


@pytest.mark.parametrize("ns", sorted(PROTECTED_NAMESPACES))
def test_protected_namespaces_denied_cross_namespace(ns: str) -> None:
    d = static([("wide", open_spec())], target_namespace=ns, labels={})
    assert d.reason == "ProtectedNamespace"


def test_protected_namespace_checked_before_no_policy() -> None:
    assert static([], target_namespace="kube-system").reason == "ProtectedNamespace"


def test_operator_namespace_denied_even_when_a_policy_selects_it() -> None:
    d = static([("wide", open_spec())], target_namespace="aftershock-system", labels={})
    assert_denied(d, "OperatorNamespace", None)
    assert "'aftershock-system'" in d.message and "operator" in d.message


def test_operator_namespace_denied_as_own_namespace() -> None:
    d = static(
        [("wide", open_spec())],
        experiment_namespace="aftershock-system",
        target_namespace="aftershock-system",
    )
    assert d.reason == "OperatorNamespace"


def test_operator_namespace_checked_before_no_policy() -> None:
    assert static([], target_namespace="aftershock-system").reason == "OperatorNamespace"


@pytest.mark.parametrize("operator_ns", [None, ""])
def test_unknown_operator_namespace_is_not_checked(operator_ns: str | None) -> None:
    d = static(
        [("wide", open_spec())],
        experiment_namespace="aftershock-system",
        target_namespace="aftershock-system",
        operator_namespace=operator_ns,
    )
    assert d.allowed


def test_empty_target_namespace_means_own_namespace() -> None:
    d = static([("default", spec())], target_namespace="")
    assert d.allowed
    d = static([("wide", open_spec())], experiment_namespace="kube-system", target_namespace="")
    assert d.reason == "ProtectedNamespace"


# --- static: suspend, deny, selector --------------------------------------------------------------


def test_default_policy_allows_opted_in_namespace() -> None:
    d = static([("default", spec())])
    assert d.allowed and d.reason == "Allowed"
    assert "ChaosPolicy default" in d.message


def test_allowed_message_names_all_policies() -> None:
    d = static([("a", spec()), ("b", spec())])
    assert d.allowed and "ChaosPolicies a, b" in d.message


def test_suspended_policy_denies() -> None:
    d = static([("ok", spec()), ("freeze", spec({"suspend": True}))])
    assert_denied(d, "PolicySuspended", "freeze")
    assert "spec.suspend" in d.message


def test_several_suspended_policies_are_all_named() -> None:
    d = static([("a", spec({"suspend": True})), ("b", spec({"suspend": True}))])
    assert_denied(d, "PolicySuspended", "a")
    assert "ChaosPolicies a, b are suspended" in d.message


def test_suspended_checked_before_deny_list() -> None:
    d = static([("a", spec({"suspend": True, "namespaces": {"deny": ["shop"]}}))])
    assert d.reason == "PolicySuspended"


def test_deny_list_of_any_policy_denies() -> None:
    policies = [("wide", open_spec()), ("careful", spec({"namespaces": {"deny": ["shop"]}}))]
    d = static(policies)
    assert_denied(d, "NamespaceDenied", "careful")
    assert "'shop'" in d.message and "spec.namespaces.deny" in d.message


def test_deny_list_wins_over_selector_match() -> None:
    d = static([("p", spec({"namespaces": {"selector": {}, "deny": ["shop"]}}))])
    assert d.reason == "NamespaceDenied"


def test_default_policy_refuses_namespace_without_opt_in_label() -> None:
    d = static([("default", spec())], labels={"team": "web"})
    assert_denied(d, "NamespaceNotSelected", "default")
    assert "aftershock.dev/chaos=enabled" in d.message
    assert "kubectl label namespace shop aftershock.dev/chaos=enabled" in d.message


def test_empty_selector_selects_every_namespace() -> None:
    assert static([("wide", open_spec())], labels={}).allowed


def test_selector_must_match_in_every_policy() -> None:
    policies = [
        ("wide", open_spec()),
        ("team", spec({"namespaces": {"selector": {"matchLabels": {"team": "web"}}}})),
    ]
    assert static(policies, labels={"team": "web"}).allowed
    d = static(policies, labels={"team": "db", **OPT_IN})
    assert_denied(d, "NamespaceNotSelected", "team")
    assert "team=web" in d.message


def test_selector_with_expressions_has_no_kubectl_hint() -> None:
    selector = {"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev", "staging"]}]}
    policies = [("envs", spec({"namespaces": {"selector": selector}}))]
    assert static(policies, labels={"env": "dev"}).allowed
    d = static(policies, labels={"env": "prod"})
    assert_denied(d, "NamespaceNotSelected", "envs")
    assert "env in (dev,staging)" in d.message
    assert "kubectl" not in d.message


# --- static: cross-namespace and fault kinds -------------------------------------------------------


def test_cross_namespace_denied_by_default() -> None:
    d = static([("default", spec())], experiment_namespace="ops", target_namespace="shop")
    assert_denied(d, "CrossNamespaceNotAllowed", "default")
    assert "'ops'" in d.message and "'shop'" in d.message and "crossNamespace" in d.message


def test_cross_namespace_needs_every_policy() -> None:
    policies = [("a", spec({"crossNamespace": True})), ("b", spec()), ("c", spec())]
    d = static(policies, experiment_namespace="ops", target_namespace="shop")
    assert_denied(d, "CrossNamespaceNotAllowed", "b")
    both = [("a", spec({"crossNamespace": True})), ("b", spec({"crossNamespace": True}))]
    assert static(both, experiment_namespace="ops", target_namespace="shop").allowed


def test_own_namespace_needs_no_cross_namespace() -> None:
    assert static([("default", spec())], experiment_namespace="shop", target_namespace="shop").allowed


@pytest.mark.parametrize("kind", ["podDelete", "networkPartition", "litmus", "toxiproxy"])
def test_default_allows_pod_level_faults(kind: str) -> None:
    assert static([("default", spec())], fault_kind=kind).allowed


def test_fault_kind_must_be_in_every_policy() -> None:
    policies = [("a", spec()), ("b", spec({"allowedFaults": ["networkPartition"]}))]
    assert static(policies, fault_kind="networkPartition").allowed
    d = static(policies, fault_kind="podDelete")
    assert_denied(d, "FaultNotAllowed", "b")
    assert "podDelete" in d.message and "networkPartition" in d.message


def test_node_fault_denied_by_default_with_explanation() -> None:
    d = static([("default", spec())], fault_kind="nodeDrain")
    assert_denied(d, "FaultNotAllowed", "default")
    assert "node fault" in d.message and "allowedFaults" in d.message


def test_node_fault_needs_explicit_listing_in_every_policy() -> None:
    listed = spec({"allowedFaults": ["podDelete", "nodeDrain"]})
    d = static([("nodes", listed), ("default", spec())], fault_kind="nodeDrain")
    assert_denied(d, "FaultNotAllowed", "default")
    assert static([("nodes", listed), ("nodes2", listed)], fault_kind="nodeDrain").allowed


def test_empty_allowed_faults_allows_nothing() -> None:
    d = static([("none", spec({"allowedFaults": []}))])
    assert_denied(d, "FaultNotAllowed", "none")
    assert "lists nothing" in d.message


def test_unknown_fault_kind_denied() -> None:
    assert static([("default", spec())], fault_kind="meteor").reason == "FaultNotAllowed"


@pytest.mark.parametrize(
    ("wire", "kwargs", "reason"),
    [
        # deny list before selector
        ({"namespaces": {"deny": ["shop"]}}, {"labels": {}}, "NamespaceDenied"),
        # selector before cross-namespace
        ({}, {"labels": {}, "experiment_namespace": "ops"}, "NamespaceNotSelected"),
        # cross-namespace before fault kind
        ({}, {"experiment_namespace": "ops", "fault_kind": "nodeDrain"}, "CrossNamespaceNotAllowed"),
        # suspended before everything policy-related
        ({"suspend": True, "allowedFaults": []}, {"labels": {}}, "PolicySuspended"),
    ],
)
def test_static_check_order(wire: dict[str, Any], kwargs: dict[str, Any], reason: str) -> None:
    assert static([("p", spec(wire))], **kwargs).reason == reason


# --- time: windows -----------------------------------------------------------------------------------

OFFICE_UTC = {"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "start": "09:00", "end": "17:00"}


def windows(*items: dict[str, Any]) -> ChaosPolicySpec:
    return spec({"windows": list(items)})


def test_naive_now_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check_time([("p", spec())], now=datetime(2026, 6, 5, 12, 0))


def test_time_without_policy_denied() -> None:
    assert_denied(check_time([], now=at("2026-06-05T12:00:00Z")), "NoChaosPolicy", None)


def test_no_windows_means_any_time() -> None:
    for hour in range(24):
        assert check_time([("p", spec())], now=at("2026-06-06T00:00:00Z") + timedelta(hours=hour)).allowed


@pytest.mark.parametrize(
    ("now", "allowed"),
    [
        ("2026-06-05T08:59:59Z", False),  # Fri
        ("2026-06-05T09:00:00Z", True),
        ("2026-06-05T16:59:59Z", True),
        ("2026-06-05T17:00:00Z", False),
        ("2026-06-06T12:00:00Z", False),  # Sat
        ("2026-06-07T12:00:00Z", False),  # Sun
        ("2026-06-08T12:00:00Z", True),  # Mon
    ],
)
def test_utc_window_boundaries(now: str, allowed: bool) -> None:
    assert check_time([("office", windows(OFFICE_UTC))], now=at(now)).allowed is allowed


def test_window_denial_gives_next_opening_and_windows_as_written() -> None:
    d = check_time([("office", windows(OFFICE_UTC))], now=at("2026-06-06T12:00:00Z"))
    assert_denied(d, "OutsideWindow", "office")
    assert d.retry_at == at("2026-06-08T09:00:00Z")
    assert "Mon-Fri 09:00-17:00 UTC" in d.message
    assert "2026-06-08T09:00:00Z (Mon 09:00 UTC)" in d.message
    assert "2026-06-06T12:00:00Z" in d.message


def test_next_opening_later_the_same_day() -> None:
    d = check_time([("office", windows(OFFICE_UTC))], now=at("2026-06-05T07:00:00Z"))
    assert d.retry_at == at("2026-06-05T09:00:00Z")


def test_window_days_written_out() -> None:
    d = check_time(
        [("p", windows({"days": ["Sun", "Tue", "Wed"], "start": "01:00", "end": "02:00"}))],
        now=at("2026-06-05T12:00:00Z"),
    )
    assert "Tue,Wed,Sun 01:00-02:00 UTC" in d.message
    d = check_time([("p", windows({"start": "01:00", "end": "02:00"}))], now=at("2026-06-05T12:00:00Z"))
    assert "every day 01:00-02:00 UTC" in d.message


@pytest.mark.parametrize(
    ("now", "allowed"),
    [
        ("2026-06-05T21:59:59Z", False),  # Fri before opening
        ("2026-06-05T22:00:00Z", True),  # Fri 22:00 opens
        ("2026-06-05T23:59:59Z", True),
        ("2026-06-06T00:00:00Z", True),  # Sat, still Friday's window
        ("2026-06-06T05:59:59Z", True),
        ("2026-06-06T06:00:00Z", False),
        ("2026-06-06T22:30:00Z", False),  # Sat is not an opening day
        ("2026-06-05T03:00:00Z", False),  # Fri early morning belongs to Thursday's window
    ],
)
def test_window_across_midnight_belongs_to_its_opening_day(now: str, allowed: bool) -> None:
    night = windows({"days": ["Fri"], "start": "22:00", "end": "06:00"})
    assert check_time([("night", night)], now=at(now)).allowed is allowed


def test_window_across_midnight_every_day() -> None:
    night = windows({"start": "22:00", "end": "06:00"})
    assert check_time([("night", night)], now=at("2026-06-03T03:00:00Z")).allowed
    assert not check_time([("night", night)], now=at("2026-06-03T12:00:00Z")).allowed


def test_window_until_midnight() -> None:
    late = windows({"start": "20:00", "end": "00:00"})
    assert check_time([("late", late)], now=at("2026-06-03T23:59:59Z")).allowed
    assert not check_time([("late", late)], now=at("2026-06-04T00:00:00Z")).allowed


def test_api_rejects_equal_start_and_end() -> None:
    with pytest.raises(ValidationError):
        Window.model_validate({"start": "09:00", "end": "09:00"})


def test_equal_start_and_end_read_as_a_full_day_if_they_get_through() -> None:
    full = Window.model_construct(days=[Weekday.WED], start="09:00", end="09:00", time_zone="UTC")
    policy = spec().model_copy(update={"windows": [full]})
    assert check_time([("p", policy)], now=at("2026-06-03T09:00:00Z")).allowed  # Wed
    assert check_time([("p", policy)], now=at("2026-06-04T08:59:59Z")).allowed
    assert not check_time([("p", policy)], now=at("2026-06-04T09:00:00Z")).allowed
    assert not check_time([("p", policy)], now=at("2026-06-03T08:59:59Z")).allowed


def test_any_window_of_a_policy_suffices() -> None:
    two = windows({"start": "01:00", "end": "02:00"}, {"start": "13:00", "end": "14:00"})
    assert check_time([("p", two)], now=at("2026-06-03T01:30:00Z")).allowed
    assert check_time([("p", two)], now=at("2026-06-03T13:30:00Z")).allowed
    d = check_time([("p", two)], now=at("2026-06-03T03:00:00Z"))
    assert not d.allowed and d.retry_at == at("2026-06-03T13:00:00Z")


def test_windows_of_all_policies_must_be_open() -> None:
    policies = [
        ("morning", windows({"start": "09:00", "end": "17:00"})),
        ("any", spec()),
        ("afternoon", windows({"start": "12:00", "end": "20:00"})),
    ]
    assert_denied(check_time(policies, now=at("2026-06-03T10:00:00Z")), "OutsideWindow", "afternoon")
    assert check_time(policies, now=at("2026-06-03T12:00:00Z")).allowed
    assert check_time(policies, now=at("2026-06-03T16:59:59Z")).allowed
    assert_denied(check_time(policies, now=at("2026-06-03T18:00:00Z")), "OutsideWindow", "morning")


def test_now_in_another_zone_is_the_same_moment() -> None:
    office = [("office", windows(OFFICE_UTC))]
    plus_two = timezone(timedelta(hours=2))
    assert check_time(office, now=datetime(2026, 6, 5, 11, 0, tzinfo=plus_two)).allowed  # 09:00Z
    assert not check_time(office, now=datetime(2026, 6, 5, 10, 59, tzinfo=plus_two)).allowed


def test_unknown_time_zone_denies() -> None:
    bad = windows({"start": "09:00", "end": "17:00", "timeZone": "Mars/Olympus_Mons"})
    d = check_time([("ok", spec()), ("mars", bad)], now=at("2026-06-03T10:00:00Z"))
    assert_denied(d, "UnknownTimeZone", "mars")
    assert "Mars/Olympus_Mons" in d.message and "spec.windows[0].timeZone" in d.message


def test_host_local_time_zone_is_refused() -> None:
    local = windows({"start": "00:00", "end": "23:59", "timeZone": "Local"})
    assert check_time([("p", local)], now=at("2026-06-03T10:00:00Z")).reason == "UnknownTimeZone"


# --- time: Europe/Berlin and daylight saving time ----------------------------------------------------
# 2026: clocks go forward on Sun 29 March (02:00 CET -> 03:00 CEST, at 01:00Z) and back on
# Sun 25 October (03:00 CEST -> 02:00 CET, at 01:00Z).

OFFICE_BERLIN = {**OFFICE_UTC, "timeZone": "Europe/Berlin"}


@pytest.mark.parametrize(
    ("now", "allowed"),
    [
        ("2026-03-27T07:59:59Z", False),  # Fri 08:59:59 CET
        ("2026-03-27T08:00:00Z", True),  # Fri 09:00 CET
        ("2026-03-27T15:59:59Z", True),  # Fri 16:59:59 CET
        ("2026-03-27T16:00:00Z", False),  # Fri 17:00 CET
        ("2026-03-30T06:59:59Z", False),  # Mon 08:59:59 CEST
        ("2026-03-30T07:00:00Z", True),  # Mon 09:00 CEST
        ("2026-03-30T14:59:59Z", True),  # Mon 16:59:59 CEST
        ("2026-03-30T15:00:00Z", False),  # Mon 17:00 CEST
        ("2026-10-23T07:00:00Z", True),  # Fri 09:00 CEST
        ("2026-10-26T07:00:00Z", False),  # Mon 08:00 CET
        ("2026-10-26T08:00:00Z", True),  # Mon 09:00 CET
    ],
)
def test_berlin_office_hours_follow_dst(now: str, allowed: bool) -> None:
    assert check_time([("office", windows(OFFICE_BERLIN))], now=at(now)).allowed is allowed


def test_berlin_next_opening_after_spring_forward() -> None:
    d = check_time([("office", windows(OFFICE_BERLIN))], now=at("2026-03-28T12:00:00Z"))
    assert_denied(d, "OutsideWindow", "office")
    assert d.retry_at == at("2026-03-30T07:00:00Z")
    assert "2026-03-30T07:00:00Z (Mon 09:00 Europe/Berlin)" in d.message
    assert "Mon-Fri 09:00-17:00 Europe/Berlin" in d.message


@pytest.mark.parametrize(
    ("now", "allowed"),
    [
        ("2026-03-28T23:59:59Z", False),  # 00:59:59 CET
        ("2026-03-29T00:00:00Z", True),  # 01:00 CET opens
        ("2026-03-29T01:30:00Z", True),  # 03:30 CEST
        ("2026-03-29T01:59:59Z", True),
        ("2026-03-29T02:00:00Z", False),  # 04:00 CEST closes: two real hours
    ],
)
def test_berlin_window_spanning_spring_forward_is_shorter(now: str, allowed: bool) -> None:
    night = windows({"days": ["Sun"], "start": "01:00", "end": "04:00", "timeZone": "Europe/Berlin"})
    assert check_time([("night", night)], now=at(now)).allowed is allowed


@pytest.mark.parametrize(
    ("now", "allowed"),
    [
        ("2026-10-24T22:59:59Z", False),  # 00:59:59 CEST
        ("2026-10-24T23:00:00Z", True),  # 01:00 CEST opens
        ("2026-10-25T01:30:00Z", True),  # 02:30 CET, the second time
        ("2026-10-25T02:59:59Z", True),  # 03:59:59 CET
        ("2026-10-25T03:00:00Z", False),  # 04:00 CET closes: four real hours
    ],
)
def test_berlin_window_spanning_fall_back_is_longer(now: str, allowed: bool) -> None:
    night = windows({"days": ["Sun"], "start": "01:00", "end": "04:00", "timeZone": "Europe/Berlin"})
    assert check_time([("night", night)], now=at(now)).allowed is allowed


@pytest.mark.parametrize(
    ("now", "allowed"),
    [
        ("2026-03-28T20:59:59Z", False),  # Sat 21:59:59 CET
        ("2026-03-28T21:00:00Z", True),  # Sat 22:00 CET
        ("2026-03-29T00:59:59Z", True),  # Sun 01:59:59 CET
        ("2026-03-29T01:00:00Z", True),  # Sun 03:00 CEST
        ("2026-03-29T03:59:59Z", True),  # Sun 05:59:59 CEST
        ("2026-03-29T04:00:00Z", False),  # Sun 06:00 CEST
        ("2026-03-29T21:00:00Z", False),  # Sun 23:00 CEST: Sunday does not open
    ],
)
def test_berlin_window_across_midnight_and_spring_forward(now: str, allowed: bool) -> None:
    night = windows({"days": ["Sat"], "start": "22:00", "end": "06:00", "timeZone": "Europe/Berlin"})
    assert check_time([("night", night)], now=at(now)).allowed is allowed


def test_berlin_start_skipped_by_the_clock_opens_at_the_jump() -> None:
    gap = windows({"start": "02:30", "end": "05:00", "timeZone": "Europe/Berlin"})
    assert not check_time([("gap", gap)], now=at("2026-03-29T00:59:59Z")).allowed  # 01:59:59 CET
    assert check_time([("gap", gap)], now=at("2026-03-29T01:00:00Z")).allowed  # 03:00 CEST
    d = check_time([("gap", gap)], now=at("2026-03-29T00:30:00Z"))
    assert d.retry_at == at("2026-03-29T01:00:00Z")
    # on an ordinary day it opens at 02:30 local
    assert check_time([("gap", gap)], now=at("2026-03-30T00:30:00Z")).allowed  # 02:30 CEST
    assert not check_time([("gap", gap)], now=at("2026-03-30T00:29:59Z")).allowed


def test_berlin_window_entirely_skipped_by_the_clock_does_not_open() -> None:
    skipped = windows({"days": ["Sun"], "start": "02:10", "end": "02:50", "timeZone": "Europe/Berlin"})
    for minutes in range(0, 120, 5):
        moment = at("2026-03-29T00:00:00Z") + timedelta(minutes=minutes)
        assert not check_time([("p", skipped)], now=moment).allowed
    d = check_time([("p", skipped)], now=at("2026-03-29T00:30:00Z"))
    assert d.retry_at == at("2026-04-05T00:10:00Z")  # next Sunday 02:10 CEST


def test_berlin_end_read_twice_closes_at_its_first_occurrence() -> None:
    early = windows({"days": ["Sun"], "start": "01:00", "end": "02:30", "timeZone": "Europe/Berlin"})
    assert check_time([("p", early)], now=at("2026-10-25T00:29:59Z")).allowed  # 02:29:59 CEST
    assert not check_time([("p", early)], now=at("2026-10-25T00:30:00Z")).allowed  # 02:30 CEST
    assert not check_time([("p", early)], now=at("2026-10-25T01:15:00Z")).allowed  # 02:15 CET


def test_berlin_start_read_twice_opens_at_its_first_occurrence() -> None:
    repeated = windows({"days": ["Sun"], "start": "02:30", "end": "03:30", "timeZone": "Europe/Berlin"})
    assert not check_time([("p", repeated)], now=at("2026-10-25T00:29:59Z")).allowed
    assert check_time([("p", repeated)], now=at("2026-10-25T00:30:00Z")).allowed  # 02:30 CEST
    assert check_time([("p", repeated)], now=at("2026-10-25T02:29:59Z")).allowed  # 03:29:59 CET
    assert not check_time([("p", repeated)], now=at("2026-10-25T02:30:00Z")).allowed


def test_berlin_message_shows_local_time_of_next_opening() -> None:
    d = check_time([("office", windows(OFFICE_BERLIN))], now=at("2026-10-24T12:00:00Z"))
    assert d.retry_at == at("2026-10-26T08:00:00Z")
    local = d.retry_at.astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.hour, local.minute) == (9, 0)
    assert "(Mon 09:00 Europe/Berlin)" in d.message


# --- time: blackouts ---------------------------------------------------------------------------------

FREEZE = {"start": "2026-12-20T00:00:00Z", "end": "2027-01-04T00:00:00Z"}


@pytest.mark.parametrize(
    ("now", "allowed"),
    [
        ("2026-12-19T23:59:59Z", True),
        ("2026-12-20T00:00:00Z", False),  # start is inside
        ("2027-01-03T23:59:59Z", False),
        ("2027-01-04T00:00:00Z", True),  # end is outside
    ],
)
def test_blackout_boundaries(now: str, allowed: bool) -> None:
    assert check_time([("freeze", spec({"blackouts": [FREEZE]}))], now=at(now)).allowed is allowed


def test_blackout_of_any_policy_denies() -> None:
    policies = [("a", spec()), ("freeze", spec({"blackouts": [FREEZE]}))]
    d = check_time(policies, now=at("2026-12-24T12:00:00Z"))
    assert_denied(d, "Blackout", "freeze")
    assert d.retry_at == at("2027-01-04T00:00:00Z")
    assert "2026-12-20T00:00:00Z" in d.message and "2027-01-04T00:00:00Z" in d.message


def test_blackout_with_offsets_compares_moments() -> None:
    berlin_new_year = {"start": "2027-01-01T00:00:00+01:00", "end": "2027-01-01T06:00:00+01:00"}
    policies = [("p", spec({"blackouts": [berlin_new_year]}))]
    assert not check_time(policies, now=at("2026-12-31T23:00:00Z")).allowed
    assert check_time(policies, now=at("2026-12-31T22:59:59Z")).allowed
    assert check_time(policies, now=at("2027-01-01T05:00:00Z")).allowed


def test_chained_blackouts_across_policies_give_the_final_end() -> None:
    policies = [
        ("a", spec({"blackouts": [{"start": "2026-12-01T00:00:00Z", "end": "2026-12-10T00:00:00Z"}]})),
        (
            "b",
            spec(
                {
                    "blackouts": [
                        {"start": "2026-12-10T00:00:00Z", "end": "2026-12-12T00:00:00Z"},
                        {"start": "2026-12-11T00:00:00Z", "end": "2026-12-15T00:00:00Z"},
                        {"start": "2026-12-20T00:00:00Z", "end": "2026-12-25T00:00:00Z"},
                    ]
                }
            ),
        ),
    ]
    d = check_time(policies, now=at("2026-12-05T00:00:00Z"))
    assert_denied(d, "Blackout", "a")
    assert d.retry_at == at("2026-12-15T00:00:00Z")
    assert "2026-12-15T00:00:00Z" in d.message
    assert check_time(policies, now=at("2026-12-15T00:00:00Z")).allowed


def test_blackout_wins_over_an_open_window() -> None:
    policy = spec({"windows": [{"start": "00:00", "end": "23:59"}], "blackouts": [FREEZE]})
    assert check_time([("p", policy)], now=at("2026-12-24T12:00:00Z")).reason == "Blackout"


def test_blackout_reported_before_closed_window() -> None:
    policies = [("office", windows(OFFICE_UTC)), ("freeze", spec({"blackouts": [FREEZE]}))]
    assert check_time(policies, now=at("2026-12-26T12:00:00Z")).reason == "Blackout"  # a Saturday


# --- concurrency -------------------------------------------------------------------------------------


def test_concurrency_without_policy_denied() -> None:
    assert check_concurrency([], active_total=0, active_in_namespace=0).reason == "NoChaosPolicy"


def test_concurrency_negative_counts_rejected() -> None:
    with pytest.raises(ValueError):
        check_concurrency([("p", spec())], active_total=-1, active_in_namespace=0)


@pytest.mark.parametrize(
    ("total", "in_ns", "allowed"),
    [(0, 0, True), (4, 0, True), (5, 0, False), (6, 0, False), (0, 1, False), (4, 1, False)],
)
def test_default_concurrency_limits(total: int, in_ns: int, allowed: bool) -> None:
    d = check_concurrency([("default", spec())], active_total=total, active_in_namespace=in_ns)
    assert d.allowed is allowed
    if not allowed:
        assert_denied(d, "ConcurrencyLimit", "default")


def test_cluster_limit_is_minimum_over_policies() -> None:
    policies = [
        ("loose", spec({"concurrency": {"maxActiveRuns": 10, "maxActiveRunsPerNamespace": 10}})),
        ("strict", spec({"concurrency": {"maxActiveRuns": 2, "maxActiveRunsPerNamespace": 10}})),
    ]
    assert check_concurrency(policies, active_total=1, active_in_namespace=0).allowed
    d = check_concurrency(policies, active_total=2, active_in_namespace=0)
    assert_denied(d, "ConcurrencyLimit", "strict")
    assert "at most 2 active runs in the cluster" in d.message and "maxActiveRuns" in d.message
    assert "2 are active" in d.message


def test_namespace_limit_is_minimum_over_policies() -> None:
    policies = [
        ("a", spec({"concurrency": {"maxActiveRunsPerNamespace": 3}})),
        ("b", spec({"concurrency": {"maxActiveRunsPerNamespace": 2}})),
    ]
    assert check_concurrency(policies, active_total=1, active_in_namespace=1).allowed
    d = check_concurrency(policies, active_total=2, active_in_namespace=2, namespace="shop")
    assert_denied(d, "ConcurrencyLimit", "b")
    assert "namespace 'shop'" in d.message and "maxActiveRunsPerNamespace" in d.message


def test_concurrency_tie_names_first_policy() -> None:
    d = check_concurrency([("x", spec()), ("y", spec())], active_total=5, active_in_namespace=0)
    assert d.policy == "x"


def test_concurrency_zero_stops_everything() -> None:
    policies = [("off", spec({"concurrency": {"maxActiveRuns": 0}}))]
    d = check_concurrency(policies, active_total=0, active_in_namespace=0)
    assert_denied(d, "ConcurrencyLimit", "off")
    assert "no active run" in d.message


def test_cluster_limit_reported_before_namespace_limit() -> None:
    d = check_concurrency([("p", spec())], active_total=5, active_in_namespace=1)
    assert "in the cluster" in d.message


# --- blast radius ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("total", "cap"), [(0, 0), (1, 0), (2, 1), (4, 2), (5, 2), (10, 5), (11, 5)])
def test_default_pod_cap_is_half_rounded_down(total: int, cap: int) -> None:
    assert pod_cap([("default", spec())], total_pods=total)[0] == cap


@pytest.mark.parametrize(
    ("percent", "total", "cap"),
    [(33, 10, 3), (1, 99, 0), (1, 100, 1), (100, 7, 7), (0, 10, 0), (99, 101, 99), (67, 3, 2), (25, 3, 0)],
)
def test_pod_cap_percent_rounds_down(percent: int, total: int, cap: int) -> None:
    policy = spec({"blastRadius": {"maxPodsPercent": percent}})
    assert pod_cap([("p", policy)], total_pods=total)[0] == cap


def test_pod_cap_sentence_explains_rounding() -> None:
    cap, sentence = pod_cap([("default", spec())], total_pods=5)
    assert cap == 2
    assert sentence == (
        "ChaosPolicy default allows at most 2 of 5 pods per run"
        " (blastRadius.maxPodsPercent is 50: 50% of 5 is 2.5, rounded down to 2)."
    )
    _, exact = pod_cap([("default", spec())], total_pods=4)
    assert "50% of 4 is 2)" in exact
    _, small = pod_cap([("p", spec({"blastRadius": {"maxPodsPercent": 33}}))], total_pods=7)
    assert "33% of 7 is 2.31, rounded down to 2" in small


def test_pod_cap_absolute_limit() -> None:
    policy = spec({"blastRadius": {"maxPodsPercent": 50, "maxPods": 10}})
    cap, sentence = pod_cap([("p", policy)], total_pods=100)
    assert cap == 10 and "maxPods is 10" in sentence
    cap, sentence = pod_cap([("p", policy)], total_pods=8)
    assert cap == 4 and "maxPodsPercent" in sentence
    cap, _ = pod_cap([("p", policy)], total_pods=20)
    assert cap == 10
    zero = spec({"blastRadius": {"maxPods": 0}})
    assert pod_cap([("z", zero)], total_pods=100)[0] == 0


def test_pod_cap_minimum_over_policies() -> None:
    policies = [
        ("half", spec()),
        ("three", spec({"blastRadius": {"maxPodsPercent": 100, "maxPods": 3}})),
        ("fifth", spec({"blastRadius": {"maxPodsPercent": 20}})),
    ]
    cap, sentence = pod_cap(policies, total_pods=10)
    assert cap == 2 and sentence.startswith("ChaosPolicy fifth ")
    cap, sentence = pod_cap(policies, total_pods=20)
    assert cap == 3 and sentence.startswith("ChaosPolicy three ") and "maxPods is 3" in sentence
    cap, sentence = pod_cap(policies[:1], total_pods=20)
    assert cap == 10 and sentence.startswith("ChaosPolicy half ")


def test_pod_cap_without_policy_is_zero() -> None:
    cap, sentence = pod_cap([], total_pods=10)
    assert cap == 0 and "No ChaosPolicy" in sentence


def test_pod_cap_negative_total_rejected() -> None:
    with pytest.raises(ValueError):
        pod_cap([("p", spec())], total_pods=-1)


def test_node_cap() -> None:
    assert node_cap([("default", spec())]) == (
        1,
        "ChaosPolicy default allows at most 1 node per run (blastRadius.maxNodes).",
    )
    policies = [("a", spec({"blastRadius": {"maxNodes": 3}})), ("b", spec({"blastRadius": {"maxNodes": 2}}))]
    cap, sentence = node_cap(policies)
    assert cap == 2 and "ChaosPolicy b" in sentence and "2 nodes" in sentence
    assert node_cap([("z", spec({"blastRadius": {"maxNodes": 0}}))])[0] == 0
    assert node_cap([])[0] == 0


@pytest.mark.parametrize(("requested", "allowed"), [(0, True), (1, True), (2, True), (3, False), (5, False)])
def test_blast_radius_at_and_above_cap(requested: int, allowed: bool) -> None:
    d = check_blast_radius([("default", spec())], requested=requested, total=5)
    assert d.allowed is allowed


def test_blast_radius_denial_message_has_the_numbers() -> None:
    d = check_blast_radius(
        [("loose", spec({"blastRadius": {"maxPodsPercent": 100}})), ("default", spec())], requested=3, total=5
    )
    assert_denied(d, "BlastRadiusExceeded", "default")
    assert "3 of 5 pods" in d.message
    assert "cap of 2" in d.message
    assert "not shrunk" in d.message
    assert "ChaosPolicy default" in d.message


def test_blast_radius_cap_zero_denies() -> None:
    d = check_blast_radius([("default", spec())], requested=1, total=1)
    assert_denied(d, "BlastRadiusExceeded", "default")
    assert "1 of 1 pod" in d.message and "No pod may be hit" in d.message
    d = check_blast_radius([("z", spec({"blastRadius": {"maxPods": 0}}))], requested=0, total=10)
    assert_denied(d, "BlastRadiusExceeded", "z")


def test_blast_radius_nodes() -> None:
    policies = [("default", spec())]
    assert check_blast_radius(policies, requested=1, total=3, unit="nodes").allowed
    d = check_blast_radius(policies, requested=2, total=3, unit="nodes")
    assert_denied(d, "BlastRadiusExceeded", "default")
    assert "2 of 3 nodes" in d.message and "maxNodes" in d.message
    zero = [("z", spec({"blastRadius": {"maxNodes": 0}}))]
    assert check_blast_radius(zero, requested=1, total=3, unit="nodes").reason == "BlastRadiusExceeded"


def test_blast_radius_without_policy_denied() -> None:
    assert check_blast_radius([], requested=1, total=10).reason == "NoChaosPolicy"


def test_blast_radius_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        check_blast_radius([("p", spec())], requested=1, total=10, unit="racks")
    with pytest.raises(ValueError):
        check_blast_radius([("p", spec())], requested=-1, total=10)


# --- PodDisruptionBudgets ----------------------------------------------------------------------------


def pdb(name: str, allowed: int, *pods: str) -> PdbInfo:
    return PdbInfo(name, allowed, frozenset(pods))


def test_no_pdbs_keeps_everything() -> None:
    assert pdb_limit(["a", "b"], []) == (["a", "b"], [])


def test_pdb_limits_and_explains() -> None:
    kept, notes = pdb_limit(["w1", "w2", "w3", "w4"], [pdb("web", 1, "w1", "w2", "w3", "w4", "w5")])
    assert kept == ["w1"]
    assert notes == ["PodDisruptionBudget web allows 1 disruption; 3 of the 4 chosen pods were spared"]


def test_pdb_with_room_leaves_no_note() -> None:
    assert pdb_limit(["w1", "w2"], [pdb("web", 2, "w1", "w2", "w3")]) == (["w1", "w2"], [])


def test_pdb_keeps_order_and_uncovered_pods() -> None:
    kept, notes = pdb_limit(["w1", "x", "w2", "y"], [pdb("web", 1, "w1", "w2")])
    assert kept == ["w1", "x", "y"]
    assert notes == ["PodDisruptionBudget web allows 1 disruption; 1 of the 2 chosen pods was spared"]


def test_pdb_zero_allowed_spares_all_covered() -> None:
    kept, notes = pdb_limit(["w1", "w2", "x"], [pdb("web", 0, "w1", "w2")])
    assert kept == ["x"]
    assert notes == ["PodDisruptionBudget web allows 0 disruptions; 2 of the 2 chosen pods were spared"]


def test_pdb_negative_allowed_counts_as_zero() -> None:
    kept, notes = pdb_limit(["w1"], [pdb("web", -1, "w1")])
    assert kept == []
    assert notes == ["PodDisruptionBudget web allows 0 disruptions; 1 of the 1 chosen pod was spared"]


def test_overlapping_pdbs_both_count() -> None:
    pdbs = [pdb("a", 2, "p1", "p2", "p3"), pdb("b", 1, "p2", "p3", "p4")]
    kept, notes = pdb_limit(["p1", "p2", "p3", "p4"], pdbs)
    assert kept == ["p1", "p2"]
    assert notes == [
        "PodDisruptionBudget a allows 2 disruptions; 1 of the 3 chosen pods was spared",
        "PodDisruptionBudget b allows 1 disruption; 2 of the 3 chosen pods were spared",
    ]


def test_spared_pod_does_not_use_other_budgets() -> None:
    pdbs = [pdb("a", 1, "p1", "p2"), pdb("b", 1, "p2", "p3")]
    kept, notes = pdb_limit(["p1", "p2", "p3"], pdbs)
    assert kept == ["p1", "p3"]
    assert notes == ["PodDisruptionBudget a allows 1 disruption; 1 of the 2 chosen pods was spared"]


def test_overlapping_pdb_with_zero_blocks_even_if_other_has_room() -> None:
    pdbs = [pdb("roomy", 5, "p1", "p2"), pdb("frozen", 0, "p2")]
    kept, notes = pdb_limit(["p1", "p2"], pdbs)
    assert kept == ["p1"]
    assert notes == ["PodDisruptionBudget frozen allows 0 disruptions; 1 of the 1 chosen pod was spared"]


def test_pdb_limit_rejects_duplicate_pods() -> None:
    with pytest.raises(ValueError):
        pdb_limit(["p1", "p1"], [])


def test_must_respect_disruption_budgets() -> None:
    off = spec({"respectDisruptionBudgets": False})
    assert must_respect_disruption_budgets([("a", spec())])
    assert must_respect_disruption_budgets([("a", off), ("b", spec())])
    assert not must_respect_disruption_budgets([("a", off), ("b", off)])
    assert must_respect_disruption_budgets([])


# --- evaluate ----------------------------------------------------------------------------------------


def run_evaluate(
    policies: list[tuple[str, ChaosPolicySpec]], *, now: str = "2026-06-03T12:00:00Z", active: int = 0
) -> Decision:
    return evaluate(
        policies,
        experiment_namespace="shop",
        target_namespace="shop",
        target_namespace_labels=OPT_IN,
        fault_kind="podDelete",
        operator_namespace="aftershock-system",
        now=at(now),
        active_total=active,
        active_in_namespace=active,
    )


def test_evaluate_returns_first_denial_or_allowed() -> None:
    assert run_evaluate([("default", spec())]).allowed
    assert run_evaluate([]).reason == "NoChaosPolicy"
    assert run_evaluate([("p", spec({"allowedFaults": []}))]).reason == "FaultNotAllowed"
    assert run_evaluate([("p", windows(OFFICE_UTC))], now="2026-06-06T12:00:00Z").reason == "OutsideWindow"
    d = run_evaluate([("p", spec())], active=1)
    assert d.reason == "ConcurrencyLimit" and "namespace 'shop'" in d.message


# --- maxDuration ----------------------------------------------------------------------------------


def test_max_duration_is_the_strictest_cap() -> None:
    assert max_duration([("a", spec())]) is None
    policies = [("a", spec({"maxDuration": "2h"})), ("b", spec()), ("c", spec({"maxDuration": "90m"}))]
    assert max_duration(policies) == ("c", timedelta(minutes=90))
    assert max_duration([("a", spec({"maxDuration": "1h"})), ("b", spec({"maxDuration": "60m"}))]) == (
        "a",
        timedelta(hours=1),
    )


def test_max_duration_is_validated_as_a_duration() -> None:
    with pytest.raises(ValidationError):
        spec({"maxDuration": "an hour"})


def test_check_duration_caps_fault_duration_and_recovery_timeout() -> None:
    capped = [("default", spec({"maxDuration": "1h"}))]
    ok = check_duration(capped, fault_duration=timedelta(hours=1), recovery_timeout=timedelta(minutes=5))
    assert ok.allowed
    long_fault = check_duration(capped, fault_duration=timedelta(hours=2), recovery_timeout=None)
    assert_denied(long_fault, "DurationExceeded", "default")
    assert "fault.duration is 2h" in long_fault.message and "1h" in long_fault.message
    assert "spec.maxDuration" in long_fault.message
    long_timeout = check_duration(capped, fault_duration=None, recovery_timeout=timedelta(minutes=61))
    assert_denied(long_timeout, "DurationExceeded", "default")
    assert "recovery.timeout is 1h1m" in long_timeout.message


def test_check_duration_without_a_cap_or_a_policy() -> None:
    assert check_duration([("a", spec())], fault_duration=timedelta(days=30), recovery_timeout=None).allowed
    assert check_duration([], fault_duration=None, recovery_timeout=None).reason == "NoChaosPolicy"


# --- check_active: the guardrails while a fault is in place ---------------------------------------------


def active_check(
    policies: list[tuple[str, ChaosPolicySpec]],
    *,
    labels: dict[str, str] | None = OPT_IN,
    fault_kind: str = "networkPartition",
    now: str = "2026-06-03T12:00:00Z",
    target_namespace: str = "shop",
    fault_duration: timedelta | None = timedelta(minutes=10),
) -> Decision:
    return check_active(
        policies,
        experiment_namespace="shop",
        target_namespace=target_namespace,
        target_namespace_labels=labels,
        fault_kind=fault_kind,
        operator_namespace="aftershock-system",
        now=at(now),
        fault_duration=fault_duration,
        recovery_timeout=timedelta(minutes=5),
    )


def test_check_active_holds_while_nothing_changed() -> None:
    d = active_check([("default", spec())])
    assert d.allowed and "ChaosPolicy default" in d.message


def test_check_active_ignores_concurrency_and_blast_radius() -> None:
    # a run that already holds its fault counts itself: limits on starting must not revoke it
    tight = spec({"concurrency": {"maxActiveRuns": 0}, "blastRadius": {"maxPodsPercent": 0}})
    assert active_check([("tight", tight)]).allowed


@pytest.mark.parametrize(
    ("policies", "changes", "reason", "policy"),
    [
        ([("default", spec())], {"labels": {}}, "NamespaceNotSelected", "default"),
        (
            [("default", spec({"namespaces": {"deny": ["shop"]}}))],
            {},
            "NamespaceDenied",
            "default",
        ),
        ([], {}, "NoChaosPolicy", None),
        ([("default", spec({"allowedFaults": ["podDelete"]}))], {}, "FaultNotAllowed", "default"),
        ([("default", spec())], {"target_namespace": "other"}, "CrossNamespaceNotAllowed", "default"),
        ([("default", spec({"suspend": True}))], {}, "PolicySuspended", "default"),
        (
            [
                (
                    "freeze",
                    spec({"blackouts": [{"start": "2026-06-03T11:00:00Z", "end": "2026-06-04T00:00:00Z"}]}),
                )
            ],
            {},
            "Blackout",
            "freeze",
        ),
        (
            [("office", spec({"windows": [{"start": "09:00", "end": "11:00"}]}))],
            {},
            "OutsideWindow",
            "office",
        ),
        ([("short", spec({"maxDuration": "5m"}))], {}, "DurationExceeded", "short"),
    ],
    ids=[
        "unlabelled",
        "denied",
        "no-policy",
        "fault",
        "cross-ns",
        "suspended",
        "blackout",
        "window",
        "duration",
    ],
)
def test_check_active_revokes_when_a_guardrail_no_longer_holds(
    policies: list[tuple[str, ChaosPolicySpec]], changes: dict[str, Any], reason: str, policy: str | None
) -> None:
    assert_denied(active_check(policies, **changes), reason, policy)


def test_check_active_revokes_when_the_namespace_is_gone() -> None:
    d = active_check([("default", spec())], labels=None)
    assert_denied(d, "TargetNamespaceGone", None)
    assert "'shop'" in d.message


def test_check_active_window_still_open() -> None:
    office = [("office", spec({"windows": [{"start": "09:00", "end": "17:00"}]}))]
    assert active_check(office, now="2026-06-03T16:59:00Z").allowed
    assert active_check(office, now="2026-06-03T17:00:00Z").reason == "OutsideWindow"
