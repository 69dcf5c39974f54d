"""The chart's monitoring: the Grafana dashboard ConfigMap and the PrometheusRule, rendered offline
(both off by default), the dashboard read against the metrics the operator exports, and the alert
rules checked and tested by the real promtool (the pinned Prometheus build, `make tools`)."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram, Summary

from aftershock import metrics
from tests.support.tools import REPO, bin_dir
from tests.unit.test_chart_static import CHART, helm, one, render

RULES_FILE = CHART / "files" / "rules" / "aftershock.rules.yaml"
RULES_TEST = REPO / "tests" / "unit" / "data" / "aftershock.rules.test.yaml"
DASHBOARD_FILE = CHART / "files" / "dashboards" / "aftershock.json"
DASHBOARD = ("--set", "monitoring.dashboard.enabled=true")
RULE = ("--set", "monitoring.prometheusRule.enabled=true")

ALERTS = [
    "AftershockFaultLeftBehind",
    "AftershockRunErrored",
    "AftershockKillSwitchEngaged",
    "AftershockScheduleStalled",
    "AftershockWebhookDown",
    "AftershockReconcileErrors",
]
PROPOSED = {"aftershock_schedule_lag_seconds"}
"""Metrics the rules already read, which the operator does not export yet (until it does, those
alerts decide on their proxy over today's metrics alone)."""
SEVERITIES = {"critical", "warning", "info"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = bin_dir("prometheus") / "promtool"
    if not binary.is_file():
        pytest.fail(
            f"promtool is not in the tool cache ({binary}): build it with `make tools`"
            " (or `python hack/build_tools.py prometheus`)",
            pytrace=False,
        )
    return subprocess.run([str(binary), *args], text=True, capture_output=True, timeout=120, check=False)


def rules_file() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(RULES_FILE.read_text())
    return data


def file_rules() -> list[dict[str, Any]]:
    return [rule for group in rules_file()["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD_FILE.read_text())
    return data


def prometheus_rule(*args: str) -> dict[str, Any]:
    return one(render(*RULE, *args), "PrometheusRule")


def rendered_rules(*args: str) -> dict[str, dict[str, Any]]:
    spec = prometheus_rule(*args)["spec"]
    return {rule["alert"]: rule for group in spec["groups"] for rule in group["rules"]}


def dashboard_configmaps(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == "ConfigMap" and "aftershock.json" in (d.get("data") or {})]


# --- what the operator exports ---------------------------------------------------------------------


def exported() -> dict[str, set[str]]:
    """Every series name the operator exports → its labels (histograms with le on _bucket)."""
    names: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if not isinstance(value, Counter | Gauge | Histogram | Summary):
            continue
        name, labels = value._name, set(value._labelnames)
        if isinstance(value, Counter):
            names[f"{name}_total"] = labels
        elif isinstance(value, Histogram):
            names[f"{name}_bucket"] = labels | {"le"}
            names[f"{name}_count"] = labels
            names[f"{name}_sum"] = labels
        elif isinstance(value, Summary):
            names[f"{name}_count"] = labels
            names[f"{name}_sum"] = labels
        else:
            names[name] = labels
    return names


TARGET_LABELS = {"job", "instance", "namespace", "pod", "container", "service", "endpoint"}
_METRIC = re.compile(r"\b(aftershock_[a-z_]+)\b(\{[^}]*\})?")
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
_BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def check_expression(expr: str, known: dict[str, set[str]], allowed_unknown: set[str]) -> list[str]:
    """Problems with the metric names and labels `expr` uses."""
    problems: list[str] = []
    used: set[str] = set()
    for name, matchers in _METRIC.findall(expr):
        if name not in known:
            if name not in allowed_unknown:
                problems.append(f"unknown metric {name}")
            continue
        used |= known[name]
        for label in _MATCHER.findall(matchers or ""):
            if label not in known[name] | TARGET_LABELS:
                problems.append(f"{name} has no label {label}")
    for group in _BY.findall(expr):
        for label in (part.strip() for part in group.split(",")):
            if label and label not in used | TARGET_LABELS:
                problems.append(f"grouping by {label}, which none of its metrics has")
    return problems


# --- off by default ------------------------------------------------------------------------------------


def test_monitoring_is_off_by_default() -> None:
    docs = render()
    assert "PrometheusRule" not in {d["kind"] for d in docs}
    assert dashboard_configmaps(docs) == []


@pytest.mark.parametrize("args", [(), (*DASHBOARD, *RULE)], ids=["default", "monitoring"])
def test_helm_lint_strict_passes(args: tuple[str, ...]) -> None:
    result = helm("lint", "--strict", str(CHART), *args, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (["--set", "monitoring.prometheusRule.for.AftershockNoSuchAlert=5m"], "AftershockNoSuchAlert"),
        (["--set", "monitoring.prometheusRule.for.AftershockRunErrored=soon"], "AftershockRunErrored"),
        (["--set", "monitoring.prometheusRule.disabled={AftershockNope}"], "disabled"),
        (["--set-string", "monitoring.dashboard.enabled=yes"], "enabled"),
        (["--set", "monitoring.dashboard.label=not a label"], "label"),
        (["--set", "monitoring.grafana=true"], "grafana"),
    ],
    ids=["unknown-alert", "bad-duration", "unknown-disabled", "enabled-not-bool", "bad-label", "unknown-key"],
)
def test_schema_refuses_bad_monitoring_values(override: list[str], expected: str) -> None:
    result = helm("template", "rel", str(CHART), *override, check=False)
    assert result.returncode != 0, result.stdout
    output = result.stdout + result.stderr
    assert "values don't meet the specifications of the schema" in output, output
    assert expected in output, output


# --- the dashboard ConfigMap ------------------------------------------------------------------------------


def test_dashboard_configmap_for_the_grafana_sidecar() -> None:
    docs = render(*DASHBOARD)
    (configmap,) = dashboard_configmaps(docs)
    assert configmap["apiVersion"] == "v1"
    assert configmap["metadata"]["name"] == "rel-aftershock-dashboard"
    assert configmap["metadata"]["namespace"] == "chaos-system"
    labels = configmap["metadata"]["labels"]
    assert labels["grafana_dashboard"] == "1"
    assert labels["app.kubernetes.io/instance"] == "rel"
    assert json.loads(configmap["data"]["aftershock.json"]) == dashboard()
    assert "PrometheusRule" not in {d["kind"] for d in docs}


def test_dashboard_label_namespace_and_annotations_are_configurable() -> None:
    (configmap,) = dashboard_configmaps(
        render(
            *DASHBOARD,
            "--set",
            "monitoring.dashboard.label=example.com/dashboard",
            "--set-string",
            "monitoring.dashboard.labelValue=true",
            "--set",
            "monitoring.dashboard.namespace=monitoring",
            "--set",
            "monitoring.dashboard.labels.team=platform",
            "--set",
            "monitoring.dashboard.annotations.grafana_folder=Chaos",
        )
    )
    meta = configmap["metadata"]
    assert meta["namespace"] == "monitoring"
    assert meta["labels"]["example.com/dashboard"] == "true"
    assert "grafana_dashboard" not in meta["labels"]
    assert meta["labels"]["team"] == "platform"
    assert meta["annotations"] == {"grafana_folder": "Chaos"}


# --- the dashboard ------------------------------------------------------------------------------------------


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def expressions(board: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in panels(board) for t in p.get("targets", [])]


def test_dashboard_is_a_grafana_dashboard_with_a_datasource_variable() -> None:
    board = dashboard()
    assert board["schemaVersion"] == 39
    assert board["uid"] == "aftershock" and board["title"]
    assert board["id"] is None  # provisioned dashboards carry no database id
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(board):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for t in panel["targets"]:
            assert t["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert t["refId"] and t["expr"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"]["uid"] == "${datasource}"
    # every variable an expression uses exists
    builtins = {"__rate_interval", "__range", "__interval"}
    for expr in expressions(board):
        for name in re.findall(r"\$\{?(\w+)", expr):
            assert name in variables or name in builtins, f"{expr} uses ${name}"


def test_dashboard_reads_the_operators_metrics() -> None:
    board = dashboard()
    known = exported()
    problems = {expr: p for expr in expressions(board) if (p := check_expression(expr, known, set()))}
    assert not problems, problems
    used = {name for expr in expressions(board) for name in re.findall(r"\baftershock_[a-z_]+\b", expr)}
    for needed in (
        "aftershock_runs_total",  # runs by verdict and phase
        "aftershock_active_faults",
        "aftershock_recovery_seconds_bucket",  # recovery quantiles
        "aftershock_probe_success_ratio",
        "aftershock_probe_aborts_total",
        "aftershock_injections_total",
        "aftershock_api_retries_total",
        "aftershock_reconcile_errors_total",
        "aftershock_admission_seconds_bucket",  # admission latency
    ):
        assert needed in used, needed


def grafana_to_promql(expr: str) -> str:
    for variable, value in (
        ("$__rate_interval", "2m"),
        ("$__range", "1d"),
        ("$__interval", "1m"),
        ("$window", "1d"),
        ("$job", ".*"),
        ("$fault", ".*"),
    ):
        expr = expr.replace(variable, value)
    return expr


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    """promtool parses every panel query (Grafana's variables replaced by typical values)."""
    rules = [
        {"record": f"aftershock:dashboard_query_{i}", "expr": grafana_to_promql(expr)}
        for i, expr in enumerate(expressions(dashboard()))
    ]
    path = tmp_path / "dashboard.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


# --- the rules file ------------------------------------------------------------------------------------------


def test_rules_file_passes_promtool_check() -> None:
    result = promtool("check", "rules", str(RULES_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout, result.stdout


def test_rules_pass_promtool_unit_tests() -> None:
    """tests/unit/data/aftershock.rules.test.yaml: series in, alerts (and their absence) out."""
    result = promtool("test", "rules", str(RULES_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_promtool_tests_cover_every_alert_firing_and_not_firing() -> None:
    tests = yaml.safe_load(RULES_TEST.read_text())
    assert tests["rule_files"] == [str(Path("../../..") / RULES_FILE.relative_to(REPO))]
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert fired == set(ALERTS)
    assert quiet == set(ALERTS)


def test_rules_are_the_aftershock_alerts_with_severity_and_annotations() -> None:
    groups = rules_file()["groups"]
    assert [g["name"] for g in groups] == ["aftershock"]
    rules = file_rules()
    assert [r["alert"] for r in rules] == ALERTS
    known = exported()
    for rule in rules:
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        assert "for" in rule, rule["alert"]
        assert not check_expression(rule["expr"], known, PROPOSED), rule["alert"]


def test_proposed_metrics_are_still_missing() -> None:
    """When the operator starts exporting one of them, drop it from PROPOSED (and the rule file's
    comments that say it is missing)."""
    assert not PROPOSED & set(exported())


# --- the PrometheusRule ---------------------------------------------------------------------------------------


def test_prometheus_rule_embeds_the_rules_file() -> None:
    docs = render(*RULE)
    rule = one(docs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["name"] == "rel-aftershock"
    assert rule["metadata"]["namespace"] == "chaos-system"
    assert rule["metadata"]["labels"]["app.kubernetes.io/part-of"] == "aftershock"
    # with the default values it is the file itself
    assert rule["spec"] == rules_file()
    assert dashboard_configmaps(docs) == []


def test_values_for_defaults_are_the_files() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["monitoring"]["prometheusRule"]["for"] == {r["alert"]: r["for"] for r in file_rules()}
    schema = json.loads((CHART / "values.schema.json").read_text())
    rule_schema = schema["properties"]["monitoring"]["properties"]["prometheusRule"]["properties"]
    assert list(rule_schema["for"]["properties"]) == ALERTS
    assert rule_schema["disabled"]["items"]["enum"] == ALERTS


def test_prometheus_rule_overrides() -> None:
    rules = rendered_rules(
        "--set",
        "monitoring.prometheusRule.for.AftershockRunErrored=10m",
        "--set",
        "monitoring.prometheusRule.disabled={AftershockScheduleStalled,AftershockKillSwitchEngaged}",
        "--set",
        "monitoring.prometheusRule.additionalRuleLabels.team=platform",
        "--set",
        "monitoring.prometheusRule.additionalRuleLabels.severity=page",
    )
    assert list(rules) == [
        a for a in ALERTS if a not in ("AftershockScheduleStalled", "AftershockKillSwitchEngaged")
    ]
    assert rules["AftershockRunErrored"]["for"] == "10m"
    assert rules["AftershockWebhookDown"]["for"] == "5m"
    for rule in rules.values():
        assert rule["labels"]["team"] == "platform"
    # an alert's own severity wins over the extra labels
    assert rules["AftershockFaultLeftBehind"]["labels"]["severity"] == "critical"
    assert rules["AftershockRunErrored"]["labels"]["severity"] == "warning"
    originals = {r["alert"]: r for r in file_rules()}
    for name, rule in rules.items():
        assert rule["expr"] == originals[name]["expr"]
        assert rule["annotations"] == originals[name]["annotations"]


def test_prometheus_rule_labels_and_namespace() -> None:
    rule = prometheus_rule(
        "--set",
        "monitoring.prometheusRule.labels.release=kube-prometheus-stack",
        "--set",
        "monitoring.prometheusRule.namespace=monitoring",
    )
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["metadata"]["namespace"] == "monitoring"


def test_rendered_rules_pass_promtool_check() -> None:
    """What Helm renders (through fromYaml and toYaml) is still a valid rule file."""
    spec = prometheus_rule("--set", "monitoring.prometheusRule.for.AftershockRunErrored=10m")["spec"]
    with tempfile.TemporaryDirectory(prefix="aftershock-rules-") as folder:
        path = Path(folder) / "rendered.rules.yaml"
        path.write_text(yaml.safe_dump(spec))
        result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
