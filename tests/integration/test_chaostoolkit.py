"""Chaos Toolkit, for real: an exported experiment run by `chaos run` against the local cluster,
imported back and accepted by the API server, and aftershock's journal of its own run of the same
experiment shaped like the journal `chaos run` wrote."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from tests.support.chaos import Chaos, experiment
from tests.support.cluster import Cluster
from tests.support.health import health_server
from tests.support.operator import OperatorProcess
from tests.support.podwatch import PodDeletions
from tests.support.tools import REPO
from tests.support.waiting import wait_for
from tests.support.workloads import deployment, ready_pods

Body = dict[str, Any]
BIN = REPO / ".venv" / "bin"


def run(cluster: Cluster, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*args],
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=cwd,
    )


def quiet(where: Path) -> list[str]:
    """chaos's options for an empty settings file and a log of its own, both in `where`."""
    (where / "settings.yaml").write_text("{}\n")
    return ["--settings", str(where / "settings.yaml"), "--log-file", str(where / "chaostoolkit.log")]


def keys(doc: Any) -> set[str]:
    return set(doc) if isinstance(doc, dict) else set()


def test_an_export_runs_in_chaos_toolkit_imports_back_and_journals_alike(
    cluster: Cluster, api: client.ApiClient, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    client.AppsV1Api(api).create_namespaced_deployment(namespace, deployment("shop", replicas=3))
    wait_for(lambda: len(ready_pods(api, namespace, "shop")) == 3, timeout=60, message="Ready pods")
    chaos = Chaos(api, namespace)
    with health_server(lambda: True) as health:
        steady = {
            "steadyState": {
                "interval": "1s",
                "probes": [
                    {"name": "health", "http": {"url": health.url, "timeout": "2s"}},
                    {
                        "name": "replicas",
                        "kubernetes": {"kind": "Deployment", "name": "shop", "readyAtLeast": 2},
                    },
                ],
            },
            "schedule": "@yearly",
            "suspend": True,  # aftershock does not run it by itself; `chaos run` and a trigger do
        }
        body = experiment("shop-kill", app="shop", extra_spec=steady)
        body["spec"]["fault"] = {"podDelete": {"gracePeriodSeconds": 0}}
        chaos.create_experiment(body)
        exported = tmp_path / "experiment.json"
        done = run(
            cluster,
            str(BIN / "aftershock"),
            "export",
            "chaostoolkit",
            "-n",
            namespace,
            "shop-kill",
            "-o",
            str(exported),
        )
        assert done.returncode == 0, done.stderr
        assert run(cluster, str(BIN / "chaos"), *quiet(tmp_path), "validate", str(exported)).returncode == 0
        # Chaos Toolkit runs it: one pod of shop is deleted, and its steady state holds before and after
        before = {p.metadata.uid for p in ready_pods(api, namespace, "shop")}
        with PodDeletions(api, namespace) as watch:
            ran = run(
                cluster,
                str(BIN / "chaos"),
                *quiet(tmp_path),
                "run",
                str(exported),
                "--journal-path",
                str(tmp_path / "ctk-journal.json"),
                cwd=tmp_path,
            )
            assert ran.returncode == 0, ran.stdout + ran.stderr
            wait_for(lambda: watch.deleted, timeout=30, message="the pod's DELETED event")
        assert len(watch.deleted) == 1 and set(watch.deleted) <= before
        real = json.loads((tmp_path / "ctk-journal.json").read_text())
        assert real["status"] == "completed" and real["deviated"] is False
        assert real["steady_states"]["before"]["steady_state_met"] is True
        # ... and the same experiment comes back from Chaos Toolkit as the API server accepts it
        imported = run(
            cluster, str(BIN / "aftershock"), "import", "chaostoolkit", str(exported), "-n", namespace
        )
        assert imported.returncode == 0, imported.stderr
        back = yaml.safe_load(imported.stdout)
        assert back["spec"]["fault"] == {"podDelete": {"gracePeriodSeconds": 0}}
        assert back["spec"]["target"]["selector"] == {"matchLabels": {"app": "shop"}}
        assert [p["name"] for p in back["spec"]["steadyState"]["probes"]] == ["health", "replicas"]
        path = tmp_path / "imported.yaml"
        path.write_text(yaml.safe_dump({**back, "metadata": {**back["metadata"], "name": "shop-kill-again"}}))
        cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(path))
        # aftershock runs it too; its journal reads like the one `chaos run` wrote
        wait_for(lambda: len(ready_pods(api, namespace, "shop")) == 3, timeout=60, message="shop whole again")
        assert run(cluster, str(BIN / "aftershock"), "trigger", "shop-kill", "-n", namespace).returncode == 0
        finished = wait_for(lambda: chaos.finished_run("shop-kill"), timeout=90, message="aftershock's run")
    assert finished["status"]["phase"] == "Completed", finished["status"]
    written = run(cluster, str(BIN / "aftershock"), "journal", "-n", namespace, finished["metadata"]["name"])
    assert written.returncode == 0, written.stderr
    ours = json.loads(written.stdout)
    assert keys(real) <= keys(ours), keys(real) - keys(ours)
    assert ours["status"] == "completed" and ours["deviated"] is False
    assert keys(real["steady_states"]) == keys(ours["steady_states"])
    for when in ("before", "after"):
        assert keys(real["steady_states"][when]) == keys(ours["steady_states"][when])
        assert keys(real["steady_states"][when]["probes"][0]) <= keys(
            ours["steady_states"][when]["probes"][0]
        )
        assert ours["steady_states"][when]["steady_state_met"] is True
    assert keys(real["run"][0]) - {"exception"} <= keys(ours["run"][0])
    assert ours["run"][0]["activity"] == real["run"][0]["activity"]  # the same action, as exported
    assert ours["experiment"]["method"] == real["experiment"]["method"]
