"""The failure-mode matrix, its text forms and the scenario planner (pure)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import yaml

from aftershock.reports import matrix, planner, text

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
Body = dict[str, Any]


def spec(app: str = "checkout", fault: Body | None = None, objective: str = "30s") -> Body:
    return {
        "target": {"kind": "Deployment", "selector": {"matchLabels": {"app": app}}, "mode": "one"},
        "fault": fault or {"podDelete": {}},
        "recovery": {"objective": objective, "timeout": "5m"},
    }


def exp(name: str, app: str = "checkout", history: Body | None = None, **kw: Any) -> Body:
    return {
        "metadata": {"namespace": "shop", "name": name},
        "spec": spec(app, **kw),
        "status": {"history": history or {}},
    }


def run(
    name: str,
    experiment: str,
    phase: str,
    *,
    hours_ago: float,
    verdict: str | None = None,
    severity: str | None = None,
    recovery: float | None = None,
    findings: list[Body] | None = None,
    app: str = "checkout",
    fault: Body | None = None,
) -> Body:
    done = (NOW - dt.timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    status: Body = {"phase": phase, "completionTime": done, "findings": findings or []}
    if verdict:
        status["verdict"] = verdict
    if severity:
        status["severity"] = severity
    if recovery is not None:
        status["recoverySeconds"] = recovery
    return {
        "metadata": {"namespace": "shop", "name": name},
        "spec": {**spec(app, fault), "experiment": experiment},
        "status": status,
    }


SLOW = {"severity": "medium", "title": "recovered slowly", "detail": "45 s, objective 30 s"}


def sample() -> tuple[list[Body], list[Body]]:
    experiments = [
        exp("kill", history={"runs": 2, "passed": 2, "recoverySamples": [3.0, 4.0], "worstSeverity": "none"}),
        exp("cut", fault={"duration": "30s", "networkPartition": {}}),
        exp("never", app="cart"),
    ]
    runs = [
        run("kill-1", "kill", "Completed", hours_ago=30, verdict="Passed", severity="none", recovery=5.0),
        run(
            "kill-2",
            "kill",
            "Completed",
            hours_ago=3,
            verdict="Failed",
            severity="medium",
            recovery=45.0,
            findings=[SLOW],
        ),
        run("kill-3", "kill", "Errored", hours_ago=2),
        run("kill-4", "kill", "Skipped", hours_ago=1),
        run(
            "cut-1",
            "cut",
            "Aborted",
            hours_ago=1,
            severity="high",
            fault={"duration": "30s", "networkPartition": {}},
        ),
    ]
    return experiments, runs


def test_the_matrix_counts_finished_runs_and_pruned_ones_for_all_time() -> None:
    doc = matrix.build(*sample(), now=NOW, namespaces=["shop"])
    assert doc["apiVersion"] == "aftershock.dev/report/v1" and doc["scope"]["retiredIncluded"] is True
    assert doc["faultKinds"] == ["podDelete", "networkPartition"]
    rows = {r["id"]: r for r in doc["rows"]}
    kill = rows["shop/Deployment/app=checkout"]["cells"]["podDelete"]
    assert (kill["runs"], kill["passed"], kill["failed"], kill["errored"]) == (5, 3, 1, 1)  # Skipped left out
    assert kill["passRate"] == 0.75 and kill["worstSeverity"] == "medium"
    assert kill["recovery"] == {"p50": 4.0, "p95": 45.0, "objective": 30.0}
    assert (
        kill["newestFinding"]["title"] == "recovered slowly" and kill["newestFinding"]["run"] == "shop/kill-2"
    )
    cut = rows["shop/Deployment/app=checkout"]["cells"]["networkPartition"]
    assert (cut["runs"], cut["aborted"], cut["passRate"], cut["worstSeverity"]) == (1, 1, None, "high")
    assert rows["shop/Deployment/app=cart"]["cells"]["podDelete"]["runs"] == 0  # an experiment yet to run
    assert [f["title"] for f in doc["findings"]] == ["recovered slowly"]
    series = {e["name"]: e for e in doc["experiments"]}
    assert [p["run"] for p in series["kill"]["points"]] == ["kill-1", "kill-2", "kill-3"]
    assert series["kill"]["retired"]["runs"] == 2 and series["kill"]["objectiveSeconds"] == 30


def test_a_window_leaves_out_older_runs_and_the_pruned_ones() -> None:
    doc = matrix.build(*sample(), now=NOW, since=dt.timedelta(days=1))
    assert doc["scope"] == {
        "namespaces": None,
        "since": "1d",
        "from": "2026-11-28T12:00:00Z",
        "to": "2026-11-29T12:00:00Z",
        "retiredIncluded": False,
    }
    kill = doc["rows"][1]["cells"]["podDelete"]
    assert (kill["runs"], kill["passed"], kill["failed"]) == (2, 0, 1)


def test_labels_name_the_workloads_and_toxiproxy_faults_are_dependencies() -> None:
    toxic = {"duration": "1m", "toxiproxy": {"endpoint": "http://tp:8474", "proxy": "redis", "toxics": []}}
    runs = [
        run(
            "slow-1",
            "slow",
            "Completed",
            hours_ago=1,
            verdict="Passed",
            severity="none",
            recovery=1,
            fault=toxic,
        )
    ]
    doc = matrix.build([], runs, now=NOW, labels={"shop/toxiproxy/redis": "redis cache"})
    [row] = doc["rows"]
    assert (
        row["kind"] == "dependency" and row["label"] == "redis cache" and doc["faultKinds"] == ["toxiproxy"]
    )
    litmus = {"duration": "1m", "litmus": {"experiment": "pod-network-latency"}}
    assert matrix.fault_column(litmus) == "litmus:pod-network-latency"


def point(hours: float, recovery: float, failed: bool = False) -> tuple[dt.datetime, float | None, bool]:
    return (NOW - dt.timedelta(hours=hours), recovery, failed)


def test_trend_compares_the_newer_half_with_the_older() -> None:
    assert matrix.trend([point(3, 5), point(2, 5), point(1, 5)]) == "new"
    assert matrix.trend([point(4, 5), point(3, 5), point(2, 5), point(1, 5)]) == "steady"
    assert matrix.trend([point(4, 10), point(3, 10), point(2, 5), point(1, 5)]) == "better"
    assert matrix.trend([point(4, 5), point(3, 5), point(2, 9), point(1, 9)]) == "worse"
    assert matrix.trend([point(4, 5, True), point(3, 5), point(2, 5), point(1, 5)]) == "better"
    assert matrix.trend([point(4, 5), point(3, 5), point(2, 5), point(1, 5, True)]) == "worse"


def test_text_forms_carry_the_cells_and_findings() -> None:
    doc = matrix.build(*sample(), now=NOW, namespaces=["shop"])
    md = text.markdown(doc)
    assert md.startswith("# Failure-mode report") and "| target | podDelete | networkPartition |" in md
    assert "75% passed" in md and "**medium**" in md and "no runs" in md and "5 runs" in md
    assert text.cell_text(None) == "no runs"


WEB = planner.WorkloadInfo(
    "Deployment", "web", {"matchLabels": {"app": "web"}}, {"app": "web"}, 2, frozenset({"n1", "n2"})
)
JOB = planner.WorkloadInfo(
    "Deployment", "job", {"matchLabels": {"app": "job"}}, {"app": "job"}, 1, frozenset({"n1"})
)
SERVICE = {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}}}


def test_the_planner_covers_what_is_missing_and_nothing_twice() -> None:
    existing = [exp("web-kill", app="web")]
    existing[0]["spec"]["target"]["selector"] = {"matchLabels": {"app": "web"}}
    names = [s.manifest["metadata"]["name"] for s in planner.propose([WEB, JOB], [SERVICE], existing)]
    # job: pod delete only (no Service, one node); web: its pod delete exists already
    assert names == ["job-pod-delete", "web-partition", "web-node-drain"]
    for scenario in planner.propose([WEB], [SERVICE], []):
        body = yaml.safe_load(yaml.safe_dump(scenario.manifest))
        assert body["spec"]["target"]["selector"] == {"matchLabels": {"app": "web"}} and scenario.why


def test_the_planner_adds_the_toxics_a_known_proxy_lacks() -> None:
    toxic = {
        "duration": "1m",
        "toxiproxy": {"endpoint": "http://tp:8474", "proxy": "redis", "toxics": [{"type": "latency"}]},
    }
    existing = [exp("redis-slow", app="web", fault=toxic)]
    [reset] = [s for s in planner.propose([], [], existing)]
    assert reset.manifest["metadata"]["name"] == "redis-reset-peer"
    assert reset.manifest["spec"]["fault"]["toxiproxy"]["toxics"] == [
        {"type": "reset_peer", "attributes": {"timeout": 0}}
    ]
