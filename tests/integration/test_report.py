"""`aftershock report` and `aftershock recommend` over real runs: passed, failed, aborted and
errored ones, a pruned run kept only in the experiment's history, a deliberately weak workload and
a well-built one."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.support.chaos import Chaos, experiment, partition
from tests.support.cluster import Cluster
from tests.support.operator import OperatorProcess
from tests.support.policies import apply_policy, extra_policy, permissive
from tests.support.tools import REPO
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, ready_pods

Body = dict[str, Any]


def weak() -> Body:
    """One replica, no budget, no readiness probe, slow to become Ready."""
    return deployment("weak", replicas=1, ready_delay="3s")


def good() -> Body:
    """Three replicas spread over nodes, a budget that lets one go, readiness probes."""
    body = deployment("good", replicas=3)
    pod = body["spec"]["template"]["spec"]
    pod["containers"][0]["readinessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}}
    pod["containers"][0]["resources"] = {"requests": {"cpu": "10m", "memory": "16Mi"}}
    pod["topologySpreadConstraints"] = [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "nodeTaintsPolicy": "Honor",  # other tests' node pools are not for it
            "labelSelector": {"matchLabels": {"app": "good"}},
        }
    ]
    return body


def packed() -> Body:
    """Two replicas on one node, no budget."""
    return deployment("packed", replicas=2, node_selector={"kubernetes.io/hostname": "kwok-node-0"})


def cli(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / ".venv" / "bin" / "aftershock"), *args],
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def finished(chaos: Chaos, name: str, count: int = 1) -> list[Body]:
    def done() -> list[Body] | None:
        runs = [
            r
            for r in chaos.runs(name)
            if (r.get("status") or {}).get("phase") in ("Completed", "Aborted", "Errored", "Skipped")
        ]
        return runs if len(runs) >= count else None

    result: list[Body] = wait_for(done, timeout=90, message=f"{count} finished run(s) of {name}")
    return result


@pytest.fixture
def history(cluster: Cluster, api: client.ApiClient, namespace: str, operator: OperatorProcess) -> str:
    """Runs of every ending in `namespace`."""
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(namespace, weak())
    apps.create_namespaced_deployment(namespace, good())
    apps.create_namespaced_deployment(namespace, packed())
    client.PolicyV1Api(api).create_namespaced_pod_disruption_budget(
        namespace,
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "good"},
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "good"}}},
        },
    )
    wait_for(lambda: len(ready_pods(api, namespace, "weak")) == 1, timeout=60, message="weak Ready")
    wait_for(lambda: len(ready_pods(api, namespace, "good")) == 3, timeout=60, message="good Ready")
    wait_for(lambda: len(ready_pods(api, namespace, "packed")) == 2, timeout=60, message="packed Ready")
    chaos = Chaos(api, namespace)
    # an experiment on the packed workload that has not run yet: a row, and a target of the design
    packed_kill = experiment("packed-kill", app="packed")
    packed_kill["spec"].update(schedule="@yearly", suspend=True)
    chaos.create_experiment(packed_kill)
    # passed, every few seconds, keeping one: the older runs are pruned into status.history
    body = experiment("good-kill", app="good", objective="30s")
    body["spec"].update(schedule="@every 5s", successfulRunsHistoryLimit=1)
    chaos.create_experiment(body)

    def retired() -> int:
        return int(
            ((chaos.get("chaosexperiments", "good-kill").get("status") or {}).get("history") or {}).get(
                "runs"
            )
            or 0
        )

    wait_for(lambda: retired() >= 1, timeout=90, message="a run pruned into the experiment's history")
    chaos.objects.patch_namespaced_custom_object(
        "aftershock.dev", "v1alpha1", namespace, "chaosexperiments", "good-kill", {"spec": {"suspend": True}}
    )
    wait_for(
        lambda: all((r.get("status") or {}).get("phase") == "Completed" for r in chaos.runs("good-kill")),
        timeout=60,
        message="good-kill's runs finished",
    )
    wait_for(lambda: len(ready_pods(api, namespace, "good")) == 3, timeout=60, message="good whole again")
    # failed: the weak workload recovers slower than its 1-s objective
    chaos.create_experiment(experiment("weak-kill", app="weak", objective="1s"))
    # errored: nothing matches the selector
    chaos.create_experiment(experiment("ghost-kill", app="ghost"))
    for name in ("weak-kill", "ghost-kill"):
        finished(chaos, name)  # before the kill switch, which would abort them too
    # aborted by the kill switch while the partition is held
    chaos.create_experiment(experiment("good-cut", app="good", fault=partition(duration="60s")))
    wait_for(
        lambda: any((r.get("status") or {}).get("phase") == "Observing" for r in chaos.runs("good-cut")),
        timeout=60,
        message="the partition held",
    )
    body = permissive()
    body["spec"]["suspend"] = True
    apply_policy(api, body)
    try:
        finished(chaos, "good-cut")
    finally:
        apply_policy(api, permissive())
    return namespace


def test_report_in_every_format_and_the_recovery_design(
    cluster: Cluster, api: client.ApiClient, history: str, tmp_path: Path
) -> None:
    ns = history
    done = cli(cluster, "report", "-n", ns, "--format", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["apiVersion"] == "aftershock.dev/report/v1" and doc["scope"]["retiredIncluded"] is True
    assert doc["faultKinds"] == ["podDelete", "networkPartition"]
    rows = {r["label"]: r for r in doc["rows"]}
    good, weak = rows[f"Deployment {ns}/good"], rows[f"Deployment {ns}/weak"]
    kills = good["cells"]["podDelete"]
    chaos = Chaos(api, ns)
    live = len(chaos.runs("good-kill"))
    pruned = chaos.get("chaosexperiments", "good-kill")["status"]["history"]["runs"]
    assert live >= 1 and pruned >= 1
    assert (kills["runs"], kills["passed"], kills["failed"]) == (live + pruned, live + pruned, 0)
    assert (
        kills["passRate"] == 1.0 and kills["worstSeverity"] == "none" and kills["recovery"]["objective"] == 30
    )
    assert kills["recovery"]["p50"] is not None and kills["trend"] == "new"
    cut = good["cells"]["networkPartition"]
    assert (cut["runs"], cut["aborted"], cut["passRate"]) == (1, 1, None)
    slow = weak["cells"]["podDelete"]
    assert (slow["runs"], slow["failed"], slow["worstSeverity"]) == (1, 1, "medium")
    assert slow["newestFinding"]["severity"] == "medium"
    ghost = next(r for r in doc["rows"] if "app=ghost" in r["id"])
    assert ghost["cells"]["podDelete"]["errored"] == 1
    assert any(f["label"] == f"Deployment {ns}/weak" and f["severity"] == "medium" for f in doc["findings"])
    charts = {f"{e['namespace']}/{e['name']}": e for e in doc["experiments"]}
    assert (
        charts[f"{ns}/good-kill"]["retired"]["runs"] == pruned
        and len(charts[f"{ns}/good-kill"]["points"]) == live
    )
    # the recovery design: the weak workload's rules, nothing for the well-built one
    design = {(r["target"], r["id"]) for r in doc["recommendations"]}
    assert (f"Deployment {ns}/weak", "AS-R001") in design  # a single replica
    assert (f"Deployment {ns}/weak", "AS-R004") in design  # no readiness probe
    assert (f"Deployment {ns}/packed", "AS-R002") in design  # two replicas, no budget
    assert (f"Deployment {ns}/packed", "AS-R005") in design  # both on one node
    assert not any(target == f"Deployment {ns}/good" for target, _ in design), design
    assert rows[f"Deployment {ns}/packed"]["cells"]["podDelete"]["runs"] == 0
    # a window leaves the pruned run out, and says so
    windowed = json.loads(cli(cluster, "report", "-n", ns, "--since", "1h", "--format", "json").stdout)
    assert windowed["scope"]["retiredIncluded"] is False
    good_row = next(r for r in windowed["rows"] if r["label"] == f"Deployment {ns}/good")
    assert good_row["cells"]["podDelete"]["runs"] == live
    # the other formats say the same
    md = cli(cluster, "report", "-n", ns, "--format", "markdown")
    assert md.returncode == 0 and md.stdout.startswith("# Failure-mode report"), md.stderr
    assert f"| Deployment {ns}/weak |" in md.stdout and "AS-R001" in md.stdout
    table = cli(cluster, "report", "-n", ns, "-o", str(tmp_path / "report.txt"))
    assert table.returncode == 0, table.stderr
    text = (tmp_path / "report.txt").read_text()
    assert "failure-mode matrix" in text and f"Deployment {ns}/good" in text and "100% passed" in text
    page = cli(cluster, "report", "-n", ns, "--format", "html", "-o", str(tmp_path / "report.html"))
    assert page.returncode == 0, page.stderr
    html = (tmp_path / "report.html").read_text()
    assert html.count("data-fault=") >= 4 and 'src="http' not in html and "<link" not in html
    # `recommend` alone: the same rules, exit 3 while there is something to change
    done = cli(cluster, "recommend", "-n", ns, "-o", "json")
    assert done.returncode == 3, done.stderr
    rules = json.loads(done.stdout)["recommendations"]
    assert {r["target"] for r in rules} == {f"Deployment {ns}/weak", f"Deployment {ns}/packed"}
    single = next(r for r in rules if r["id"] == "AS-R001")
    assert "replicas: 2" in single["change"] and single["evidence"]


def test_plan_proposes_what_the_matrix_lacks_and_the_api_server_accepts(
    cluster: Cluster, api: client.ApiClient, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    api_body = deployment("api", replicas=2)
    api_body["spec"]["template"]["spec"]["topologySpreadConstraints"] = [
        {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "api"}},
        }
    ]
    client.AppsV1Api(api).create_namespaced_deployment(namespace, api_body)
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("worker", replicas=1))
    client.CoreV1Api(api).create_namespaced_service(
        namespace,
        {"metadata": {"name": "api"}, "spec": {"selector": {"app": "api"}, "ports": [{"port": 80}]}},
    )
    wait_for(lambda: len(ready_pods(api, namespace, "api")) == 2, timeout=60, message="api Ready")
    wait_for(lambda: len(ready_pods(api, namespace, "worker")) == 1, timeout=60, message="worker Ready")
    Chaos(api, namespace).create_experiment(
        experiment("worker-kill", app="worker", extra_spec={"suspend": True})
    )
    out = tmp_path / "scenarios"
    with extra_policy(api, allowedFaults=["podDelete", "networkPartition"]) as strict:
        done = cli(cluster, "plan", "-n", namespace, "-o", str(out))
    assert done.returncode == 0, done.stderr
    written = {p.stem: yaml.safe_load(p.read_text()) for p in out.glob("*.yaml")}
    # the worker's pod delete exists already; api is served by a Service and spans two nodes
    assert set(written) == {"api-pod-delete", "api-partition"}, (sorted(written), done.stderr)
    assert written["api-partition"]["spec"]["fault"]["networkPartition"] == {"direction": "Both"}
    assert written["api-pod-delete"]["spec"]["target"]["selector"] == {"matchLabels": {"app": "api"}}
    # the node drain was proposed but the stricter policy refused it: said, and not written
    assert "api-node-drain" in done.stderr and "refused" in done.stderr and strict in done.stderr
    # what was written is what the API server accepts now
    for path in out.glob("*.yaml"):
        applied = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(path))
        assert applied.returncode == 0, applied.stderr
