"""The API models: DESIGN.md's examples are accepted, bad input is rejected with the CRD's words."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from aftershock.api import (
    FAULT_KINDS,
    KNOWN_FAULT_KINDS,
    ChaosExperiment,
    ChaosExperimentSpec,
    ChaosExperimentStatus,
    ChaosPolicy,
    ChaosRun,
    ChaosRunSpec,
    Condition,
    ConditionStatus,
    Fault,
    LabelSelector,
    LastRun,
    RunPhase,
    Severity,
    TargetMode,
    Verdict,
    format_duration,
    parse_duration,
    worst,
)
from aftershock.api.cel import CelRule, matches
from aftershock.api.common import is_label_key, is_label_value
from aftershock.api.durations import DURATION_PATTERN
from aftershock.api.experiment import RECOVERY_RULE, SCHEDULE_PATTERN

DESIGN_EXPERIMENT = """
apiVersion: aftershock.dev/v1alpha1
kind: ChaosExperiment
metadata: {name: checkout-pod-delete, namespace: shop}
spec:
  schedule: "*/30 9-17 * * 1-5"
  timeZone: Europe/Berlin
  suspend: false
  concurrencyPolicy: Forbid
  startingDeadline: 5m
  successfulRunsHistoryLimit: 5
  failedRunsHistoryLimit: 10
  dryRun: false
  target:
    namespace: shop
    kind: Deployment
    selector: {matchLabels: {app: checkout}}
    mode: one
  fault:
    duration: 60s
    podDelete: {gracePeriodSeconds: 0}
  recovery:
    objective: 30s
    timeout: 5m
    probes: []
status:
  observedGeneration: 3
  conditions: []
  active: [{name: checkout-pod-delete-1766131200}]
  lastRun: {name: checkout-pod-delete-1766129400, verdict: Passed, severity: none, recoverySeconds: 12.5,
            completionTime: "2025-12-19T08:12:00Z"}
  summary: {runs: 4, passed: 3, failed: 1, worstSeverity: medium, recoverySeconds: {p50: 10, p95: 31.5, max: 40}}
"""

DESIGN_POLICY = """
apiVersion: aftershock.dev/v1alpha1
kind: ChaosPolicy
metadata: {name: default}
spec:
  suspend: false
  namespaces:
    selector: {matchLabels: {aftershock.dev/chaos: enabled}}
    deny: [kube-system, kube-public, kube-node-lease]
  crossNamespace: false
  allowedFaults: [podDelete, networkPartition, litmus, toxiproxy]
  blastRadius: {maxPodsPercent: 50, maxPods: 10, maxNodes: 1}
  respectDisruptionBudgets: true
  windows: [{days: [Mon, Tue, Wed, Thu, Fri], start: "09:00", end: "17:00", timeZone: Europe/Berlin}]
  blackouts: [{start: 2026-12-20T00:00:00Z, end: 2027-01-04T00:00:00Z}]
  concurrency: {maxActiveRuns: 5, maxActiveRunsPerNamespace: 1}
"""


def design_experiment() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DESIGN_EXPERIMENT)
    return loaded


def with_spec(**changes: Any) -> dict[str, Any]:
    """The DESIGN.md experiment with dotted spec paths replaced (None deletes)."""
    obj = design_experiment()
    for path, value in changes.items():
        node = obj["spec"]
        *parents, last = path.split("__")
        for part in parents:
            node = node[part]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return obj


def rejection(model: type[ChaosExperiment | ChaosRun | ChaosPolicy], obj: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        model.model_validate(obj)
    return str(info.value)


# --- durations ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("500ms", timedelta(milliseconds=500)),
        ("1.5h", timedelta(minutes=90)),
        ("30s5m", timedelta(minutes=5, seconds=30)),
        ("0s", timedelta(0)),
        ("250us", timedelta(microseconds=250)),
        ("1500ns", timedelta(microseconds=1)),
        ("2h45m30s100ms", timedelta(hours=2, minutes=45, seconds=30, milliseconds=100)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert re.fullmatch(DURATION_PATTERN, text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "must not be empty"),
        ("-5s", "invalid duration '-5s'"),
        ("5", "invalid duration '5'"),
        ("5 minutes", "invalid duration '5 minutes'"),
        ("5m ", "invalid duration"),
        (" 5m", "invalid duration"),
        ("1d", "invalid duration '1d'"),
        (".5s", "invalid duration"),
        ("5.s", "invalid duration"),
        ("5µs", "invalid duration"),
        ("9999999999h", "out of range"),
        ("1" * 40 + "s", "longer than 32 characters"),
    ],
)
def test_parse_duration_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_duration(text)


def test_parse_duration_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        parse_duration(30)  # type: ignore[arg-type]


def test_duration_pattern_is_anchored() -> None:
    assert DURATION_PATTERN.startswith("^") and DURATION_PATTERN.endswith("$")
    assert not re.search(DURATION_PATTERN, "x5m")
    assert not re.search(DURATION_PATTERN, "")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(minutes=5), "5m"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(seconds=1, microseconds=500_250), "1s500ms250us"),
        (timedelta(days=2), "48h"),
    ],
)
def test_format_duration(value: timedelta, expected: str) -> None:
    assert format_duration(value) == expected
    assert parse_duration(expected) == value


def test_format_duration_round_trips() -> None:
    for micros in (1, 999, 1000, 1_000_001, 59_999_999, 3_600_000_000, 86_400_123_456):
        value = timedelta(microseconds=micros)
        text = format_duration(value)
        assert re.fullmatch(DURATION_PATTERN, text)
        assert parse_duration(text) == value


def test_format_duration_rejects_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(timedelta(seconds=-1))


# --- ChaosExperiment ------------------------------------------------------------------------------


def test_design_experiment_is_accepted() -> None:
    exp = ChaosExperiment.model_validate(design_experiment())
    spec = exp.spec
    assert exp.name == "checkout-pod-delete" and exp.namespace == "shop"
    assert spec.schedule == "*/30 9-17 * * 1-5" and spec.time_zone == "Europe/Berlin"
    assert spec.starting_deadline_delta == timedelta(minutes=5)
    assert spec.target.selector.match_labels == {"app": "checkout"}
    assert spec.target.mode is TargetMode.ONE and spec.target.value is None
    assert spec.fault.kind == "podDelete"
    assert spec.fault.pod_delete is not None and spec.fault.pod_delete.grace_period_seconds == 0
    assert spec.fault.duration_delta == timedelta(seconds=60)
    assert spec.recovery.objective_delta == timedelta(seconds=30)
    assert spec.recovery.timeout_delta == timedelta(minutes=5)
    assert exp.status.last_run is not None and exp.status.last_run.verdict is Verdict.PASSED
    assert exp.status.summary is not None and exp.status.summary.worst_severity is Severity.MEDIUM


def test_minimal_experiment_gets_defaults() -> None:
    spec = ChaosExperimentSpec.model_validate(
        {
            "target": {"kind": "Deployment", "selector": {"matchLabels": {"app": "a"}}},
            "fault": {"podDelete": {}},
        }
    )
    assert spec.schedule is None
    assert spec.time_zone == "UTC"
    assert not spec.suspend and not spec.dry_run
    assert spec.concurrency_policy == "Forbid"
    assert (spec.successful_runs_history_limit, spec.failed_runs_history_limit) == (5, 10)
    assert spec.target.mode is TargetMode.ONE
    assert (spec.recovery.objective, spec.recovery.timeout, spec.steady_state, spec.gate) == (
        "30s",
        "5m",
        None,
        None,
    )
    assert spec.starting_deadline_delta is None and spec.fault.duration_delta is None


@pytest.mark.parametrize(
    ("mode", "value"), [("percent", 1), ("percent", 100), ("fixed", 1), ("fixed", 500), ("all", None)]
)
def test_valid_modes(mode: str, value: int | None) -> None:
    obj = with_spec(target__mode=mode, target__value=value)
    assert ChaosExperiment.model_validate(obj).spec.target.value == value


REJECTED: list[tuple[str, dict[str, Any], str]] = [
    (
        "percent without value",
        with_spec(target__mode="percent"),
        "value must be set to a percentage from 1 to 100",
    ),
    (
        "percent above 100",
        with_spec(target__mode="percent", target__value=150),
        "from 1 to 100 when mode is percent",
    ),
    (
        "percent zero",
        with_spec(target__mode="percent", target__value=0),
        "from 1 to 100 when mode is percent",
    ),
    ("fixed without value", with_spec(target__mode="fixed"), "value must be set to a count of at least 1"),
    ("fixed zero", with_spec(target__mode="fixed", target__value=0), "at least 1 when mode is fixed"),
    ("one with value", with_spec(target__value=1), "value must not be set when mode is one;"),
    (
        "all with value",
        with_spec(target__mode="all", target__value=3),
        "value must not be set when mode is all;",
    ),
    (
        "no fault kind",
        with_spec(fault={"duration": "60s"}),
        "fault must set exactly one fault kind, one of: podDelete",
    ),
    ("unknown fault kind", with_spec(fault={"nodeReboot": {}}), "fault must set exactly one fault kind"),
    (
        "objective above timeout",
        with_spec(recovery={"objective": "10m", "timeout": "5m"}),
        "recovery.objective (10m) must not be longer than recovery.timeout (5m)",
    ),
    ("bad duration", with_spec(recovery__timeout="5 minutes"), "invalid duration '5 minutes'"),
    ("negative duration", with_spec(startingDeadline="-5s"), "invalid duration '-5s'"),
    ("empty duration", with_spec(fault__duration=""), "a duration must not be empty"),
    (
        "system namespace",
        with_spec(target__namespace="kube-system"),
        "target.namespace kube-system is a system namespace",
    ),
    ("empty selector", with_spec(target__selector={}), "target.selector must not be empty"),
    (
        "empty matchLabels",
        with_spec(target__selector={"matchLabels": {}}),
        "target.selector must not be empty",
    ),
    (
        "In without values",
        with_spec(target__selector={"matchExpressions": [{"key": "app", "operator": "In"}]}),
        "values must be non-empty when operator is In or NotIn",
    ),
    (
        "Exists with values",
        with_spec(
            target__selector={"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]}
        ),
        "and empty when it is Exists or DoesNotExist",
    ),
    ("empty schedule", with_spec(schedule=""), "schedule must be a 5-field cron expression"),
    ("short schedule", with_spec(schedule="* * *"), "schedule must be a 5-field cron expression"),
    ("unknown macro", with_spec(schedule="@fortnightly"), "one of @yearly"),
    ("@every without a duration", with_spec(schedule="@every soon"), "@every <duration>"),
    ("empty timeZone", with_spec(timeZone=""), "timeZone must be an IANA time zone name"),
    (
        "node target",
        with_spec(target__kind="Node"),
        "Input should be 'Deployment', 'StatefulSet' or 'DaemonSet'",
    ),
    (
        "negative grace period",
        with_spec(fault__podDelete={"gracePeriodSeconds": -1}),
        "greater than or equal to 0",
    ),
    ("negative history", with_spec(failedRunsHistoryLimit=-1), "greater than or equal to 0"),
    ("no target", with_spec(target=None), "target\n  Field required"),
]


@pytest.mark.parametrize(
    ("obj", "message"), [(o, m) for _, o, m in REJECTED], ids=[n for n, _, _ in REJECTED]
)
def test_experiment_rejections(obj: dict[str, Any], message: str) -> None:
    assert message in rejection(ChaosExperiment, obj)


def test_experiment_name_limit() -> None:
    obj = design_experiment()
    obj["metadata"]["name"] = "a" * 52
    ChaosExperiment.model_validate(obj)
    obj["metadata"]["name"] = "a" * 53
    assert "metadata.name must be at most 52 characters" in rejection(ChaosExperiment, obj)


@pytest.mark.parametrize(
    "schedule", ["*/30 9-17 * * 1-5", "0 0 * * *", "@daily", "@hourly", " 0 12 1 */2 MON-FRI ", "0\t0 * * *"]
)
def test_schedules_accepted(schedule: str) -> None:
    ChaosExperiment.model_validate(with_spec(schedule=schedule))


def test_cel_matches_uses_re2_end_anchor() -> None:
    """Python's $ matches before a trailing newline; the apiserver's does not."""
    assert not matches(r"^UTC$", "UTC\n")
    assert "timeZone" in rejection(ChaosExperiment, with_spec(timeZone="UTC\n"))
    assert matches(SCHEDULE_PATTERN, "* * * * *\n")  # trailing whitespace is allowed by \s*


def test_unknown_fields_are_ignored() -> None:
    obj = design_experiment()
    obj["spec"]["newerField"] = {"x": 1}
    obj["spec"]["target"]["alsoNew"] = True
    obj["status"]["futureStat"] = 1
    ChaosExperiment.model_validate(obj)


def test_fields_populate_by_name_and_alias() -> None:
    by_name = LabelSelector(match_labels={"a": "b"})
    by_alias = LabelSelector.model_validate({"matchLabels": {"a": "b"}})
    assert by_name == by_alias
    assert by_name.to_json() == {"matchLabels": {"a": "b"}, "matchExpressions": []}


def test_fault_kinds_are_derived_from_the_model() -> None:
    assert FAULT_KINDS == ("podDelete", "networkPartition", "litmus", "toxiproxy", "nodeDrain", "nodeTaint")
    assert set(FAULT_KINDS) <= set(KNOWN_FAULT_KINDS)
    assert set(FAULT_KINDS) == {f.alias for n, f in Fault.model_fields.items() if n not in Fault.SETTINGS}


def test_status_patch_is_json_ready() -> None:
    exp = ChaosExperiment.model_validate(with_spec())
    exp.status = ChaosExperimentStatus(
        observed_generation=4,
        last_schedule_time=datetime(2026, 1, 1, 9, 30, tzinfo=UTC),
        last_run=LastRun(
            name="checkout-pod-delete-1767259800",
            phase=RunPhase.COMPLETED,
            severity=Severity.LOW,
            recovery_seconds=3.5,
        ),
        conditions=[
            Condition(
                type="Ready",
                status=ConditionStatus.TRUE,
                reason="Scheduled",
                last_transition_time=datetime(2026, 1, 1, tzinfo=UTC),
            )
        ],
    )
    assert exp.status_patch() == {
        "observedGeneration": 4,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Scheduled",
                "message": "",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
        "lastScheduleTime": "2026-01-01T09:30:00Z",
        "active": [],
        "lastRun": {
            "name": "checkout-pod-delete-1767259800",
            "phase": "Completed",
            "severity": "low",
            "recoverySeconds": 3.5,
        },
    }


def test_round_trip_through_json() -> None:
    exp = ChaosExperiment.model_validate(design_experiment())
    again = ChaosExperiment.model_validate(exp.to_json())
    assert again == exp
    assert exp.to_json()["spec"]["recovery"] == {"objective": "30s", "timeout": "5m"}


def test_naive_timestamps_are_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        LastRun.model_validate({"name": "r", "completionTime": "2026-01-01T00:00:00"})


def test_from_body_accepts_any_mapping() -> None:
    class Body(dict[str, Any]):
        pass

    assert ChaosExperiment.from_body(Body(design_experiment())).spec.target.kind == "Deployment"


# --- ChaosRun --------------------------------------------------------------------------------------


def test_run_with_only_experiment_is_accepted() -> None:
    run = ChaosRun.model_validate(
        {
            "apiVersion": "aftershock.dev/v1alpha1",
            "kind": "ChaosRun",
            "metadata": {"name": "r"},
            "spec": {"experiment": "checkout"},
        }
    )
    assert run.spec.experiment == "checkout"
    assert not run.spec.is_complete()
    assert run.status.phase is RunPhase.PENDING


def test_run_spec_from_experiment_is_a_frozen_copy() -> None:
    exp = ChaosExperiment.model_validate(design_experiment())
    slot = datetime(2025, 12, 19, 8, 0, tzinfo=UTC)
    spec = ChaosRunSpec.from_experiment(exp.name, exp.spec, slot)
    assert spec.is_complete()
    assert spec.target == exp.spec.target and spec.target is not exp.spec.target
    exp.spec.target.selector.match_labels["app"] = "changed"
    assert spec.target.selector.match_labels == {"app": "checkout"}
    assert spec.to_json()["scheduledTime"] == "2025-12-19T08:00:00Z"
    assert ChaosRunSpec.model_validate(spec.to_json()) == spec


def test_run_status_journal() -> None:
    run = ChaosRun.model_validate(
        {
            "metadata": {
                "name": "checkout-pod-delete-1766131200",
                "namespace": "shop",
                "uid": "u1",
                "generation": 1,
            },
            "spec": {"experiment": "checkout-pod-delete"},
            "status": {
                "phase": "Completed",
                "startTime": "2025-12-19T08:00:01Z",
                "targets": [
                    {
                        "kind": "Pod",
                        "name": "checkout-abc",
                        "namespace": "shop",
                        "uid": "p1",
                        "injectedAt": "2025-12-19T08:00:02Z",
                        "unhealthyAt": "2025-12-19T08:00:02Z",
                        "recoveredAt": "2025-12-19T08:00:14Z",
                    }
                ],
                "recoverySeconds": 12.0,
                "verdict": "Passed",
                "severity": "none",
                "findings": [
                    {"severity": "low", "title": "capacity dipped", "detail": "1 of 3 pods for 12s"}
                ],
            },
        }
    )
    assert run.uid == "u1" and run.generation == 1
    assert run.status.phase.is_terminal
    assert run.status.targets[0].recovered_at == datetime(2025, 12, 19, 8, 0, 14, tzinfo=UTC)
    patch = run.status_patch()
    assert patch["targets"][0]["injectedAt"] == "2025-12-19T08:00:02Z"
    assert "reason" not in patch


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "experiment\n  Field required"),
        ({"experiment": "Bad_Name"}, "String should match pattern"),
        (
            {
                "experiment": "x",
                "target": {"kind": "Deployment", "selector": {"matchLabels": {"a": "b"}}, "mode": "percent"},
            },
            "value must be set to a percentage from 1 to 100",
        ),
        ({"experiment": "x", "fault": {}}, "fault must set exactly one fault kind"),
        ({"experiment": "x", "recovery": {"objective": "1h"}}, "recovery.objective (1h) must not be longer"),
    ],
)
def test_run_rejections(spec: dict[str, Any], message: str) -> None:
    assert message in rejection(ChaosRun, {"metadata": {"name": "r"}, "spec": spec})


# --- ChaosPolicy -----------------------------------------------------------------------------------


def test_design_policy_is_accepted() -> None:
    policy = ChaosPolicy.model_validate(yaml.safe_load(DESIGN_POLICY))
    spec = policy.spec
    assert spec.namespaces.selector.match_labels == {"aftershock.dev/chaos": "enabled"}
    assert spec.allowed_faults == ["podDelete", "networkPartition", "litmus", "toxiproxy"]
    assert spec.blast_radius.max_pods == 10
    assert spec.windows[0].days == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    assert spec.blackouts[0].end == datetime(2027, 1, 4, tzinfo=UTC)


def test_empty_policy_is_the_safe_default() -> None:
    spec = ChaosPolicy.model_validate({"metadata": {"name": "p"}}).spec
    assert not spec.suspend and not spec.cross_namespace and spec.respect_disruption_budgets
    assert spec.namespaces.selector.match_labels == {"aftershock.dev/chaos": "enabled"}
    assert spec.namespaces.deny == ["kube-system", "kube-public", "kube-node-lease"]
    assert "nodeDrain" not in spec.allowed_faults and "podDelete" in spec.allowed_faults
    assert (spec.blast_radius.max_pods_percent, spec.blast_radius.max_pods, spec.blast_radius.max_nodes) == (
        50,
        None,
        1,
    )
    assert (spec.concurrency.max_active_runs, spec.concurrency.max_active_runs_per_namespace) == (5, 1)
    assert spec.windows == [] and spec.blackouts == []


def test_window_defaults_to_every_day_and_may_cross_midnight() -> None:
    spec = ChaosPolicy.model_validate({"spec": {"windows": [{"start": "22:00", "end": "06:00"}]}}).spec
    assert len(spec.windows[0].days) == 7 and spec.windows[0].time_zone == "UTC"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"windows": [{"start": "09:00", "end": "09:00"}]}, "a window's start and end must differ"),
        ({"windows": [{"start": "24:00", "end": "06:00"}]}, "String should match pattern"),
        ({"windows": [{"start": "09:00", "end": "10:00", "days": []}]}, "at least 1 item"),
        (
            {"windows": [{"start": "09:00", "end": "10:00", "timeZone": ""}]},
            "timeZone must be an IANA time zone name",
        ),
        (
            {"blackouts": [{"start": "2027-01-04T00:00:00Z", "end": "2026-12-20T00:00:00Z"}]},
            "a blackout's end must be after its start",
        ),
        ({"blastRadius": {"maxPodsPercent": 150}}, "less than or equal to 100"),
        ({"allowedFaults": ["bogus"]}, "Input should be 'podDelete'"),
        ({"namespaces": {"deny": ["Not A Namespace"]}}, "String should match pattern"),
    ],
)
def test_policy_rejections(spec: dict[str, Any], message: str) -> None:
    assert message in rejection(ChaosPolicy, {"metadata": {"name": "p"}, "spec": spec})


# --- shared types ----------------------------------------------------------------------------------


def test_severity_orders_by_rank() -> None:
    assert [s.rank for s in Severity] == [0, 1, 2, 3, 4]
    assert Severity.LOW < Severity.MEDIUM < Severity.CRITICAL
    assert Severity.CRITICAL > Severity.NONE  # lexicographically "critical" < "none"
    assert Severity.HIGH >= "medium" and Severity.NONE <= "low"
    assert max([Severity.NONE, Severity.HIGH, Severity.CRITICAL, Severity.LOW]) is Severity.CRITICAL
    assert sorted(["high", Severity.NONE, Severity.MEDIUM], key=Severity) == ["none", "medium", "high"]
    with pytest.raises(ValueError):
        _ = Severity.LOW < "bogus"
    with pytest.raises(TypeError):
        _ = Severity.LOW < 3


def test_worst() -> None:
    assert worst([]) is Severity.NONE
    assert worst(["low", Severity.HIGH, "medium"]) is Severity.HIGH
    assert worst(iter([Severity.CRITICAL])) is Severity.CRITICAL


def test_run_phase_terminal() -> None:
    terminal = {p for p in RunPhase if p.is_terminal}
    assert terminal == {RunPhase.COMPLETED, RunPhase.ABORTED, RunPhase.SKIPPED, RunPhase.ERRORED}


def test_condition_validates_like_metav1() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    Condition(type="aftershock.dev/Ready", status=ConditionStatus.TRUE, reason="Ok", last_transition_time=now)
    with pytest.raises(ValidationError):
        Condition(type="Ready", status=ConditionStatus.TRUE, reason="not a reason", last_transition_time=now)
    with pytest.raises(ValidationError):
        Condition.model_validate(
            {"type": "Ready", "status": "Maybe", "reason": "X", "lastTransitionTime": now}
        )


# --- the CEL rule helper ---------------------------------------------------------------------------


def test_template_becomes_message_expression() -> None:
    assert RECOVERY_RULE.message_expression == (
        '"recovery.objective (" + self.objective + ") must not be longer than recovery.timeout (" + self.timeout + ")"'
    )
    rule = CelRule(rule="true", message="m", template="{self} is bad")
    assert rule.message_expression == 'self + " is bad"'
    assert rule.error(self="x") == "x is bad"
    assert CelRule(rule="true", message="static").error() == "static"
    assert "messageExpression" not in CelRule(rule="true", message="static").to_schema()


def test_template_may_not_break_out_of_cel_strings() -> None:
    with pytest.raises(ValueError, match="double quotes"):
        CelRule(rule="true", message="m", template='say "hi" {self}')


def test_target_mode_values() -> None:
    assert [m.value for m in TargetMode] == ["one", "fixed", "percent", "all"]
    obj = copy.deepcopy(with_spec(target__mode="percent", target__value=50))
    assert ChaosExperiment.model_validate(obj).spec.target.to_json()["value"] == 50


@pytest.mark.parametrize(
    "selector",
    [
        {},
        {"matchLabels": {"b": "2", "a": "1"}},
        {
            "matchLabels": {"app": "checkout"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["web", "api"]},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "canary", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"},
            ],
        },
    ],
)
def test_selector_query_matches_core_rendering(selector: dict[str, Any]) -> None:
    from aftershock.core.selectors import to_label_selector

    assert LabelSelector.model_validate(selector).to_query() == to_label_selector(selector)


def test_selector_query_format() -> None:
    selector = LabelSelector.model_validate(
        {
            "matchLabels": {"app": "x"},
            "matchExpressions": [{"key": "t", "operator": "In", "values": ["b", "a"]}],
        }
    )
    assert selector.to_query() == "app=x,t in (a,b)"


def test_litmus_fault_is_checked_like_the_crd_checks_it() -> None:
    from aftershock.api.experiment import Fault

    litmus = {"experiment": "pod-network-latency", "chaosServiceAccount": "litmus-admin"}
    fault = Fault.model_validate({"duration": "30s", "litmus": {**litmus, "env": {"NETWORK_LATENCY": "300"}}})
    assert fault.kind == "litmus" and fault.policy_kind == "litmus"
    assert fault.litmus is not None and str(fault.litmus.job_clean_up_policy) == "delete"
    with pytest.raises(ValidationError, match="NETWORK_LATENCY must be a whole number"):
        Fault.model_validate({"duration": "30s", "litmus": {**litmus, "env": {"NETWORK_LATENCY": "3s"}}})
    with pytest.raises(ValidationError, match=r"fault\.duration is required"):
        Fault.model_validate({"litmus": litmus})
    drain = Fault.model_validate(
        {"duration": "30s", "litmus": {"experiment": "node-drain", "chaosServiceAccount": "litmus-admin"}}
    )
    assert drain.policy_kind == "litmusNode"


# --- input that cannot be misread: selector labels and bounds ------------------------------------

KEY_HELP = "must be a label key"
VALUE_HELP = "must be a label value"

HOSTILE_SELECTORS = [
    ("space in key", {"matchLabels": {"app name": "x"}}, "every matchLabels key " + KEY_HELP),
    ("key starts with a dash", {"matchLabels": {"-bad/x": "x"}}, "every matchLabels key " + KEY_HELP),
    ("upper-case prefix", {"matchLabels": {"Example.com/app": "x"}}, "every matchLabels key " + KEY_HELP),
    ("two slashes", {"matchLabels": {"a/b/c": "x"}}, "every matchLabels key " + KEY_HELP),
    ("empty name after prefix", {"matchLabels": {"example.com/": "x"}}, "every matchLabels key " + KEY_HELP),
    ("name of 64", {"matchLabels": {"a" * 64: "x"}}, "every matchLabels key " + KEY_HELP),
    ("prefix of 254", {"matchLabels": {"a" * 254 + "/app": "x"}}, "every matchLabels key " + KEY_HELP),
    ("empty key", {"matchLabels": {"": "x"}}, "every matchLabels key " + KEY_HELP),
    ("space in value", {"matchLabels": {"app": "a b"}}, "every matchLabels value " + VALUE_HELP),
    ("value ends with a dash", {"matchLabels": {"app": "web-"}}, "every matchLabels value " + VALUE_HELP),
    ("value of 64", {"matchLabels": {"app": "a" * 64}}, "at most 63 characters"),
    ("selector operator in value", {"matchLabels": {"app": "x,env!=prod"}}, "every matchLabels value"),
    (
        "expression key with a space",
        {"matchExpressions": [{"key": "app name", "operator": "Exists"}]},
        "matchExpressions key " + KEY_HELP,
    ),
    (
        "expression value with a comma",
        {"matchExpressions": [{"key": "app", "operator": "In", "values": ["a,b"]}]},
        "every matchExpressions value " + VALUE_HELP,
    ),
    (
        "too many labels",
        {"matchLabels": {f"k{i}": "v" for i in range(65)}},
        "at most 64 items",
    ),
]


@pytest.mark.parametrize(
    ("selector", "message"),
    [(s, m) for _, s, m in HOSTILE_SELECTORS],
    ids=[n for n, _, _ in HOSTILE_SELECTORS],
)
def test_selector_labels_are_checked_as_labels(selector: dict[str, Any], message: str) -> None:
    assert message in rejection(ChaosExperiment, with_spec(target__selector=selector))
    # the same selector type guards a policy's namespaces
    policy = {"metadata": {"name": "p"}, "spec": {"namespaces": {"selector": selector}}}
    assert message in rejection(ChaosPolicy, policy)


@pytest.mark.parametrize(
    "selector",
    [
        {"matchLabels": {"app": "checkout"}},
        {"matchLabels": {"app.kubernetes.io/name": "Check_out.v2"}},
        {"matchLabels": {"node-role.kubernetes.io/control-plane": ""}},
        {"matchLabels": {"a" * 253 + "/" + "b" * 63: "c" * 63}},
        {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["", "db"]}]},
        {"matchExpressions": [{"key": "example.com/X_y", "operator": "DoesNotExist"}]},
    ],
)
def test_valid_selector_labels_are_accepted(selector: dict[str, Any]) -> None:
    ChaosExperiment.model_validate(with_spec(target__selector=selector))


def test_label_key_rule_is_the_pattern_pair_the_schema_uses() -> None:
    assert is_label_key("app") and is_label_key("a.b/c") and not is_label_key("a/b/c")
    assert is_label_value("") and not is_label_value("x\n")  # RE2's $: a trailing newline is not allowed


BOUNDS = [
    ("history limit above 100", with_spec(successfulRunsHistoryLimit=101), "less than or equal to 100"),
    ("failed history above 100", with_spec(failedRunsHistoryLimit=1000), "less than or equal to 100"),
    (
        "grace period above an hour",
        with_spec(fault={"podDelete": {"gracePeriodSeconds": 3601}}),
        "less than or equal to 3600",
    ),
    (
        "fixed count above 10000",
        with_spec(target__mode="fixed", target__value=10_001),
        "less than or equal to 10000",
    ),
    (
        "fault duration above 24h",
        with_spec(fault__duration="25h"),
        "fault.duration (25h) must be at most 24h",
    ),
    (
        "recovery timeout above 24h",
        with_spec(recovery={"objective": "30s", "timeout": "1441m"}),
        "recovery.timeout (1441m) must be at most 24h",
    ),
    (
        "starting deadline above 24h",
        with_spec(startingDeadline="48h"),
        "startingDeadline (48h) must be at most 24h",
    ),
    (
        "litmus env of 33 entries",
        with_spec(
            fault={
                "duration": "30s",
                "litmus": {
                    "experiment": "pod-delete",
                    "chaosServiceAccount": "litmus",
                    "env": {f"K{i}": "v" for i in range(33)},
                },
            }
        ),
        "at most 32 items",
    ),
    (
        "litmus env value of 1025",
        with_spec(
            fault={
                "duration": "30s",
                "litmus": {
                    "experiment": "pod-network-latency",
                    "chaosServiceAccount": "litmus",
                    "env": {"NETWORK_INTERFACE": "e" * 1025},
                },
            }
        ),
        "at most 1024 characters",
    ),
]


@pytest.mark.parametrize(("obj", "message"), [(o, m) for _, o, m in BOUNDS], ids=[n for n, _, _ in BOUNDS])
def test_numbers_and_lists_are_bounded(obj: dict[str, Any], message: str) -> None:
    assert message in rejection(ChaosExperiment, obj)


def test_bounds_are_inclusive() -> None:
    ChaosExperiment.model_validate(
        with_spec(
            successfulRunsHistoryLimit=100,
            failedRunsHistoryLimit=100,
            startingDeadline="24h",
            fault={"duration": "24h", "networkPartition": {}},
            recovery={"objective": "1h", "timeout": "24h"},
        )
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"blastRadius": {"maxPods": 10_001}}, "less than or equal to 10000"),
        ({"blastRadius": {"maxNodes": 1001}}, "less than or equal to 1000"),
        ({"concurrency": {"maxActiveRuns": 10_001}}, "less than or equal to 10000"),
        ({"concurrency": {"maxActiveRunsPerNamespace": 10_001}}, "less than or equal to 10000"),
    ],
)
def test_policy_counts_are_bounded(spec: dict[str, Any], message: str) -> None:
    assert message in rejection(ChaosPolicy, {"metadata": {"name": "p"}, "spec": spec})


def test_run_experiment_names_are_experiment_names() -> None:
    assert "at most 52 characters" in rejection(
        ChaosRun, {"metadata": {"name": "r"}, "spec": {"experiment": "e" * 53}}
    )
