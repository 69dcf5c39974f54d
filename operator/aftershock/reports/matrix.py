"""The failure-mode matrix: what breaks, how badly and how fast it recovers, per target and fault
kind, built from ChaosRuns and what experiments keep of pruned runs (pure: the CLI reads).

Rows are what was broken: a target workload (the run's frozen target: namespace, kind and
selector) or, for Toxiproxy faults, the dependency (the proxy). Columns are fault kinds (a Litmus
experiment is a column of its own: `litmus:pod-network-latency`). A cell counts the finished runs
in the window — Skipped runs never ran and are left out — with the pass rate over Completed runs,
the worst severity, recovery p50/p95 (nearest rank, as `status.summary`) against the objective,
a trend (newer half against older half of the window's Completed runs) and the newest finding.

Runs pruned by the history limits survive only as totals (`status.history`), without times: they
count when the report covers all time (no `since`) and are left out of a window, which the report
says (`scope.retiredIncluded`). The JSON is versioned (`API_VERSION`; docs/reports.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aftershock.api.durations import parse_duration
from aftershock.core.selectors import to_label_selector
from aftershock.core.severity import Severity, worst
from aftershock.core.summary import percentile
from aftershock.core.times import parse_time

API_VERSION = "aftershock.dev/report/v1"
TREND_MARGIN = 0.2  # a change of the newer half's median recovery by more than this share counts
MIN_TREND_RUNS = 4
SEVERITY_ORDER = ("none", "low", "medium", "high", "critical")
COUNTED = ("Completed", "Aborted", "Errored")


@dataclass
class _Cell:
    runs: int = 0
    passed: int = 0
    failed: int = 0
    errored: int = 0
    aborted: int = 0
    severities: list[str] = field(default_factory=list)
    recoveries: list[tuple[dt.datetime, float | None, bool]] = field(default_factory=list)
    retired_recoveries: list[float] = field(default_factory=list)  # pruned runs': no times, no trend
    objective: float | None = None
    newest: dict[str, Any] | None = None
    newest_at: dt.datetime | None = None
    experiments: set[str] = field(default_factory=set)


def row_of(spec: Mapping[str, Any], namespace: str) -> tuple[str, str, str, str]:
    """(row id, label, namespace, kind) of what a run or experiment spec breaks."""
    fault = spec.get("fault") or {}
    target = spec.get("target") or {}
    target_ns = str(target.get("namespace") or namespace)
    toxiproxy = fault.get("toxiproxy")
    if toxiproxy:
        proxy, endpoint = str(toxiproxy.get("proxy")), str(toxiproxy.get("endpoint"))
        return (
            f"{target_ns}/toxiproxy/{proxy}",
            f"dependency {proxy} (Toxiproxy {endpoint})",
            target_ns,
            "dependency",
        )
    kind = str(target.get("kind") or "Deployment")
    selector = to_label_selector(target.get("selector") or {})
    return f"{target_ns}/{kind}/{selector}", f"{kind} {target_ns} ({selector})", target_ns, "workload"


def fault_column(fault: Mapping[str, Any]) -> str:
    """The matrix column of a fault: its kind; a Litmus fault by experiment."""
    litmus = fault.get("litmus")
    if litmus:
        return f"litmus:{litmus.get('experiment')}"
    kinds = [k for k in fault if k != "duration" and fault.get(k) is not None]
    return str(kinds[0]) if kinds else "unknown"


def _seconds(text: Any) -> float | None:
    try:
        return parse_duration(str(text)).total_seconds() if text else None
    except ValueError:
        return None


def _finished_at(run: Mapping[str, Any]) -> dt.datetime | None:
    status = run.get("status") or {}
    return parse_time(status.get("completionTime")) or parse_time(
        (run.get("metadata") or {}).get("creationTimestamp")
    )


def _worst_finding(findings: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    ranked = [f for f in findings if f.get("severity") in SEVERITY_ORDER]
    return max(ranked, key=lambda f: SEVERITY_ORDER.index(str(f["severity"])), default=None)


def trend(points: Sequence[tuple[dt.datetime, float | None, bool]]) -> str:
    """better / worse / steady over the Completed runs of a cell (time, recovery, failed), or new
    when there are too few to say."""
    if len(points) < MIN_TREND_RUNS:
        return "new"
    ordered = sorted(points, key=lambda p: p[0])
    half = len(ordered) // 2
    older, newer = ordered[:half], ordered[len(ordered) - half :]
    fail_old = sum(1 for p in older if p[2]) / len(older)
    fail_new = sum(1 for p in newer if p[2]) / len(newer)
    if fail_new != fail_old:
        return "better" if fail_new < fail_old else "worse"
    old = percentile([p[1] for p in older if p[1] is not None], 50)
    new = percentile([p[1] for p in newer if p[1] is not None], 50)
    if old is None or new is None or old == 0:
        return "steady"
    change = (new - old) / old
    if change > TREND_MARGIN:
        return "worse"
    if change < -TREND_MARGIN:
        return "better"
    return "steady"


def build(
    experiments: Iterable[Mapping[str, Any]],
    runs: Iterable[Mapping[str, Any]],
    *,
    now: dt.datetime,
    since: dt.timedelta | None = None,
    namespaces: Sequence[str] | None = None,
    labels: Mapping[str, str] | None = None,
    recommendations: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The report document (API_VERSION). `labels`: better row labels by row id (the workloads a
    selector matched, looked up by the caller); `recommendations`: the recovery design's rules."""
    start = now - since if since is not None else None
    cells: dict[tuple[str, str], _Cell] = {}
    rows: dict[str, dict[str, Any]] = {}
    columns: list[str] = []
    series: dict[str, dict[str, Any]] = {}
    findings: list[dict[str, Any]] = []

    def cell_for(spec: Mapping[str, Any], namespace: str) -> tuple[str, str, _Cell]:
        row_id, label, row_ns, kind = row_of(spec, namespace)
        rows.setdefault(
            row_id,
            {"id": row_id, "label": (labels or {}).get(row_id, label), "namespace": row_ns, "kind": kind},
        )
        column = fault_column(spec.get("fault") or {})
        if column not in columns:
            columns.append(column)
        return row_id, column, cells.setdefault((row_id, column), _Cell())

    for exp in experiments:
        meta, spec, status = exp.get("metadata") or {}, exp.get("spec") or {}, exp.get("status") or {}
        namespace = str(meta.get("namespace"))
        key = f"{namespace}/{meta.get('name')}"
        row_id, column, cell = cell_for(spec, namespace)
        cell.experiments.add(key)
        cell.objective = _seconds((spec.get("recovery") or {}).get("objective"))
        retired = status.get("history") or {}
        series[key] = {
            "namespace": namespace,
            "name": str(meta.get("name")),
            "row": row_id,
            "faultKind": column,
            "objectiveSeconds": cell.objective,
            "timeoutSeconds": _seconds((spec.get("recovery") or {}).get("timeout")),
            "points": [],
            "retired": {k: int(retired.get(k) or 0) for k in ("runs", "passed", "failed", "errored")},
        }
        if start is None and retired:
            cell.runs += int(retired.get("runs") or 0)
            cell.passed += int(retired.get("passed") or 0)
            cell.failed += int(retired.get("failed") or 0)
            cell.errored += int(retired.get("errored") or 0)
            if retired.get("worstSeverity"):
                cell.severities.append(str(retired["worstSeverity"]))
            cell.retired_recoveries += [float(s) for s in retired.get("recoverySamples") or []]

    for run in runs:
        meta, spec, status = run.get("metadata") or {}, run.get("spec") or {}, run.get("status") or {}
        phase = str(status.get("phase") or "")
        if phase not in COUNTED or not spec.get("fault"):
            continue
        finished = _finished_at(run)
        if start is not None and (finished is None or finished < start):
            continue
        namespace = str(meta.get("namespace"))
        row_id, column, cell = cell_for(spec, namespace)
        experiment = f"{namespace}/{spec.get('experiment')}"
        cell.experiments.add(experiment)
        cell.runs += 1
        verdict = status.get("verdict")
        recovery = status.get("recoverySeconds")
        if phase == "Errored":
            cell.errored += 1
        elif phase == "Aborted":
            cell.aborted += 1
        elif verdict == "Passed":
            cell.passed += 1
        elif verdict == "Failed":
            cell.failed += 1
        if status.get("severity"):
            cell.severities.append(str(status["severity"]))
        moment = finished or now
        if phase == "Completed":
            cell.recoveries.append(
                (moment, float(recovery) if recovery is not None else None, verdict == "Failed")
            )
            cell.objective = _seconds((spec.get("recovery") or {}).get("objective")) or cell.objective
        run_key = f"{namespace}/{meta.get('name')}"
        for finding in status.get("findings") or []:
            findings.append(
                {
                    "row": row_id,
                    "label": rows[row_id]["label"],
                    "faultKind": column,
                    "experiment": experiment,
                    "run": run_key,
                    "time": _stamp(moment),
                    "severity": str(finding.get("severity")),
                    "title": str(finding.get("title")),
                    "detail": str(finding.get("detail") or ""),
                }
            )
        top = _worst_finding(status.get("findings") or [])
        if top is not None and (cell.newest_at is None or moment >= cell.newest_at):
            cell.newest_at = moment
            cell.newest = {
                "severity": str(top.get("severity")),
                "title": str(top.get("title")),
                "detail": str(top.get("detail") or ""),
                "run": run_key,
                "time": _stamp(moment),
            }
        point = {
            "run": str(meta.get("name")),
            "time": _stamp(moment),
            "recoverySeconds": recovery,
            "phase": phase,
            "verdict": verdict,
            "severity": status.get("severity"),
        }
        series.setdefault(
            experiment,
            {
                "namespace": namespace,
                "name": str(spec.get("experiment")),
                "row": row_id,
                "faultKind": column,
                "objectiveSeconds": _seconds((spec.get("recovery") or {}).get("objective")),
                "timeoutSeconds": _seconds((spec.get("recovery") or {}).get("timeout")),
                "points": [],
                "retired": {"runs": 0, "passed": 0, "failed": 0, "errored": 0},
            },
        )["points"].append(point)

    for entry in series.values():
        entry["points"].sort(key=lambda p: p["time"])
    findings.sort(
        key=lambda f: (
            f["label"],
            -SEVERITY_ORDER.index(f["severity"]) if f["severity"] in SEVERITY_ORDER else 0,
            f["time"],
        )
    )
    out_rows = []
    for row_id in sorted(rows, key=lambda r: rows[r]["label"]):
        row = dict(rows[row_id])
        row["cells"] = {
            column: _cell_json(cells[(row_id, column)]) for column in columns if (row_id, column) in cells
        }
        out_rows.append(row)
    return {
        "apiVersion": API_VERSION,
        "generatedAt": _stamp(now),
        "scope": {
            "namespaces": list(namespaces) if namespaces is not None else None,
            "since": _since_text(since),
            "from": _stamp(start) if start is not None else None,
            "to": _stamp(now),
            "retiredIncluded": start is None,
        },
        "faultKinds": columns,
        "rows": out_rows,
        "experiments": sorted(series.values(), key=lambda e: (e["namespace"], e["name"])),
        "findings": findings,
        "recommendations": [dict(r) for r in recommendations],
    }


def _cell_json(cell: _Cell) -> dict[str, Any]:
    values = [r for _, r, _ in cell.recoveries if r is not None] + cell.retired_recoveries
    judged = cell.passed + cell.failed
    return {
        "runs": cell.runs,
        "passed": cell.passed,
        "failed": cell.failed,
        "errored": cell.errored,
        "aborted": cell.aborted,
        "passRate": round(cell.passed / judged, 4) if judged else None,
        "worstSeverity": str(worst([Severity(s) for s in cell.severities])) if cell.severities else None,
        "recovery": {
            "p50": percentile(values, 50),
            "p95": percentile(values, 95),
            "objective": cell.objective,
        },
        "trend": trend(cell.recoveries),
        "newestFinding": cell.newest,
        "experiments": sorted(cell.experiments),
    }


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _since_text(since: dt.timedelta | None) -> str | None:
    if since is None:
        return None
    seconds = int(since.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
